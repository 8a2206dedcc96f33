// SIMD Hadamard rotation (Highway, runtime dispatch). Butterflies with a stride of at least one
// vector are whole-vector adds and subtracts; shorter strides swap lanes (i <-> i ^ h) and combine
// with x * (+-1) + swapped, which rounds exactly like the scalar a + b / a - b.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kv/codecs/hadamard.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <string>

#include "kv/codecs/hadamard.h"

HWY_BEFORE_NAMESPACE();
namespace akv {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU32 = hn::RebindToUnsigned<DF>;

// The signs of channels [c, c + N) (same hash as HadamardSign).
HWY_INLINE hn::Vec<DF> SignVector(int c) {
  const DF df;
  const DU32 du32;
  const auto idx = hn::Add(hn::Iota(du32, 0), hn::Set(du32, uint32_t(c)));
  const auto bit = hn::And(hn::ShiftRight<15>(hn::Mul(idx, hn::Set(du32, 0x9E3779B1u))), hn::Set(du32, 1u));
  // 1 - 2 * bit, exactly +-1.
  return hn::Sub(hn::Set(df, 1.0f), hn::ConvertTo(df, hn::BitCast(hn::RebindToSigned<DF>(), hn::Add(bit, bit))));
}

void ApplySigns(float* HWY_RESTRICT x, int n) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int c = 0; c < n; c += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, x + c), SignVector(c)), df, x + c);
}

void TransformBlock(float* HWY_RESTRICT x, int len) {
  const DF df;
  const DU32 du32;
  const int lanes = static_cast<int>(hn::Lanes(df));
  int h = 1;
  for (; h < len && h < lanes; h *= 2) {
    const auto swap = hn::IndicesFromVec(df, hn::Xor(hn::Iota(du32, 0), hn::Set(du32, uint32_t(h))));
    const auto has_bit = hn::Ne(hn::And(hn::Iota(du32, 0), hn::Set(du32, uint32_t(h))), hn::Zero(du32));
    const auto sign = hn::IfThenElse(hn::RebindMask(df, has_bit), hn::Set(df, -1.0f), hn::Set(df, 1.0f));
    for (int j = 0; j < len; j += lanes) {
      const auto v = hn::LoadU(df, x + j);
      hn::StoreU(hn::MulAdd(v, sign, hn::TableLookupLanes(v, swap)), df, x + j);
    }
  }
  for (; h < len; h *= 2)
    for (int i = 0; i < len; i += 2 * h)
      for (int j = i; j < i + h; j += lanes) {
        const auto a = hn::LoadU(df, x + j), b = hn::LoadU(df, x + j + h);
        hn::StoreU(hn::Add(a, b), df, x + j);
        hn::StoreU(hn::Sub(a, b), df, x + j + h);
      }
  const auto norm = hn::Set(df, float(1.0 / std::sqrt(double(len))));
  for (int j = 0; j < len; j += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, x + j), norm), df, x + j);
}

void TransformBlocks(float* x, int n) {
  int offset = 0;
  for (int len = 1 << 30; len >= 1; len >>= 1)
    if (n - offset >= len) {
      TransformBlock(x + offset, len);
      offset += len;
    }
}

void RotateSimd(float* x, int n) {
  ApplySigns(x, n);
  TransformBlocks(x, n);
}

void RotateInverseSimd(float* x, int n) {
  TransformBlocks(x, n);
  ApplySigns(x, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace akv
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv {

HWY_EXPORT(RotateSimd);
HWY_EXPORT(RotateInverseSimd);

namespace {
Status CheckLength(int n) {
  if (n > 0 && n % 16 == 0) return Status::Ok();
  return InvalidArgument("Hadamard rotation: length " + std::to_string(n) +
                         " is not a positive multiple of 16");
}
}  // namespace

Status HadamardRotate(float* x, int n) {
  AKV_RETURN_IF_ERROR(CheckLength(n));
  HWY_DYNAMIC_DISPATCH(RotateSimd)(x, n);
  return Status::Ok();
}

Status HadamardRotateInverse(float* x, int n) {
  AKV_RETURN_IF_ERROR(CheckLength(n));
  HWY_DYNAMIC_DISPATCH(RotateInverseSimd)(x, n);
  return Status::Ok();
}

}  // namespace akv
#endif  // HWY_ONCE
