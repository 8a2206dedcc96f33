#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kv/codecs/half_rows.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kv/codecs/simd_codes-inl.h"

#include <string>

#include "kv/codecs/half_rows.h"

HWY_BEFORE_NAMESPACE();
namespace akv {
namespace HWY_NAMESPACE {

// f32 -> f16 with the exact rounding of F32ToF16 (round to nearest even; the hardware converter
// does the same, but not every target has one, so the scalar bit trick is used off AVX2/AVX3).
bool ToF16Simd(const float* HWY_RESTRICT x, int n, f16_t* HWY_RESTRICT out) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  const VF limit = hn::Set(df, 65504.0f);
  auto bad = hn::Not(hn::Le(hn::Abs(hn::LoadU(df, x)), limit));
  for (int i = 0; i < n; i += lanes) bad = hn::Or(bad, hn::Not(hn::Le(hn::Abs(hn::LoadU(df, x + i)), limit)));
  if (!hn::AllFalse(df, bad)) return false;
#if HWY_TARGET <= HWY_AVX2
  const hn::Rebind<hwy::float16_t, DF> dh;
  for (int i = 0; i < n; i += lanes)
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, reinterpret_cast<hwy::float16_t*>(out + i));
#else
  for (int i = 0; i < n; ++i) out[i] = F32ToF16(x[i]);
#endif
  return true;
}

bool ToBF16Simd(const float* HWY_RESTRICT x, int n, bf16_t* HWY_RESTRICT out) {
  const DF df;
  const DU32 du32;
  const hn::Rebind<uint16_t, DF> du16;
  const int lanes = static_cast<int>(hn::Lanes(df));
  const VF limit = hn::Set(df, 3.38953139e38f);  // largest bf16; above it rounding may overflow
  auto bad = hn::Not(hn::Le(hn::Abs(hn::LoadU(df, x)), limit));
  for (int i = 0; i < n; i += lanes) {
    const VF v = hn::LoadU(df, x + i);
    bad = hn::Or(bad, hn::Not(hn::Le(hn::Abs(v), limit)));
    const VU32 bits = hn::BitCast(du32, v);
    const VU32 rounding = hn::Add(hn::Set(du32, 0x7fffu), hn::And(hn::ShiftRight<16>(bits), hn::Set(du32, 1u)));
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(DI32(), hn::ShiftRight<16>(hn::Add(bits, rounding)))), du16, out + i);
  }
  return hn::AllFalse(df, bad);
}

void FromF16Simd(const f16_t* HWY_RESTRICT x, int n, float* HWY_RESTRICT out) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int i = 0; i < n; i += lanes) hn::StoreU(LoadF16AsF32(x + i), df, out + i);
}

void FromBF16Simd(const bf16_t* HWY_RESTRICT x, int n, float* HWY_RESTRICT out) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int i = 0; i < n; i += lanes) hn::StoreU(LoadBF16AsF32(x + i), df, out + i);
}

}  // namespace HWY_NAMESPACE
}  // namespace akv
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv {

HWY_EXPORT(ToF16Simd);
HWY_EXPORT(ToBF16Simd);
HWY_EXPORT(FromF16Simd);
HWY_EXPORT(FromBF16Simd);

namespace {
Status CheckRowLength(int n) {
  if (n > 0 && n % 16 == 0) return Status::Ok();
  return InvalidArgument("half row conversion: length " + std::to_string(n) + " is not a positive multiple of 16");
}
}  // namespace

Status F32RowToF16(const float* x, int n, f16_t* out) {
  AKV_RETURN_IF_ERROR(CheckRowLength(n));
  if (HWY_DYNAMIC_DISPATCH(ToF16Simd)(x, n, out)) return Status::Ok();
  return InvalidArgument("f16 KV codec: a value is NaN, infinite or beyond the f16 range (65504)");
}

Status F32RowToBF16(const float* x, int n, bf16_t* out) {
  AKV_RETURN_IF_ERROR(CheckRowLength(n));
  if (HWY_DYNAMIC_DISPATCH(ToBF16Simd)(x, n, out)) return Status::Ok();
  return InvalidArgument("bf16 KV codec: a value is NaN or infinite");
}

void F16RowToF32(const f16_t* x, int n, float* out) { HWY_DYNAMIC_DISPATCH(FromF16Simd)(x, n, out); }
void BF16RowToF32(const bf16_t* x, int n, float* out) { HWY_DYNAMIC_DISPATCH(FromBF16Simd)(x, n, out); }

}  // namespace akv
#endif  // HWY_ONCE
