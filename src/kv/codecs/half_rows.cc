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

// f16 bits of x rounded toward -inf (kDown) or +inf, in u32 lanes.
template <bool kDown>
HWY_INLINE VU32 RoundToF16Outward(VF x) {
  const DF df;
  const DU32 du32;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const hn::Rebind<uint16_t, DF> du16;
  const VU32 h = hn::PromoteTo(du32, hn::BitCast(du16, hn::DemoteTo(dh, x)));
  const VF back = hn::PromoteTo(df, hn::BitCast(dh, hn::DemoteTo(du16, hn::BitCast(DI32(), h))));
  const VU32 one = hn::Set(du32, 1u);
  const auto negative = hn::Ne(hn::And(h, hn::Set(du32, 0x8000u)), hn::Zero(du32));
  const auto is_zero = hn::Eq(hn::And(h, hn::Set(du32, 0x7fffu)), hn::Zero(du32));
  VU32 stepped;
  if constexpr (kDown) {
    // One f16 step toward -inf: +-0 -> 0x8001, negative -> more negative, positive -> smaller.
    stepped = hn::IfThenElse(negative, hn::Add(h, one), hn::Sub(h, one));
    stepped = hn::IfThenElse(is_zero, hn::Set(du32, 0x8001u), stepped);
    return hn::IfThenElse(hn::RebindMask(du32, hn::Gt(back, x)), stepped, h);
  } else {
    stepped = hn::IfThenElse(negative, hn::Sub(h, one), hn::Add(h, one));
    stepped = hn::IfThenElse(is_zero, one, stepped);
    return hn::IfThenElse(hn::RebindMask(du32, hn::Lt(back, x)), stepped, h);
  }
}

void ExtendF16BoundsSimd(const float* HWY_RESTRICT x, int n, f16_t* HWY_RESTRICT lo, f16_t* HWY_RESTRICT hi) {
  const DF df;
  const DU32 du32;
  const hn::Rebind<uint16_t, DF> du16;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int i = 0; i < n; i += lanes) {
    const VF v = hn::LoadU(df, x + i);
    const VF cur_lo = LoadF16AsF32(lo + i), cur_hi = LoadF16AsF32(hi + i);
    const auto below = hn::Lt(v, cur_lo), above = hn::Gt(v, cur_hi);
    if (hn::AllFalse(df, hn::Or(below, above))) continue;
    const VU32 old_lo = hn::PromoteTo(du32, hn::LoadU(du16, lo + i));
    const VU32 old_hi = hn::PromoteTo(du32, hn::LoadU(du16, hi + i));
    const VU32 new_lo = hn::IfThenElse(hn::RebindMask(du32, below), RoundToF16Outward<true>(v), old_lo);
    const VU32 new_hi = hn::IfThenElse(hn::RebindMask(du32, above), RoundToF16Outward<false>(v), old_hi);
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(DI32(), new_lo)), du16, lo + i);
    hn::StoreU(hn::DemoteTo(du16, hn::BitCast(DI32(), new_hi)), du16, hi + i);
  }
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
HWY_EXPORT(ExtendF16BoundsSimd);

void ExtendF16Bounds(const float* x, int n, f16_t* lo, f16_t* hi) {
  HWY_DYNAMIC_DISPATCH(ExtendF16BoundsSimd)(x, n, lo, hi);
}

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
