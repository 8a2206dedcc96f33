// Element-wise and reduction kernels of the forward pass (Highway, runtime dispatch).
// Vector bodies with scalar tails; reductions use 4 accumulators to hide FMA/add latency.
#include "cpu/simd_targets.h"  // first: target selection

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/vec_ops.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>

#include "cpu/vec_ops.h"

HWY_BEFORE_NAMESPACE();
namespace akv::cpu_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

float DotImpl(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  auto s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * l <= n; i += 4 * l) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + l), hn::LoadU(df, b + i + l), s1);
    s2 = hn::MulAdd(hn::LoadU(df, a + i + 2 * l), hn::LoadU(df, b + i + 2 * l), s2);
    s3 = hn::MulAdd(hn::LoadU(df, a + i + 3 * l), hn::LoadU(df, b + i + 3 * l), s3);
  }
  for (; i + l <= n; i += l) s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void RmsNormImpl(const float* x, const float* weight, float eps, float* out, int64_t n) {
  const float ss = DotImpl(x, x, n);
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const DF df;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  const auto vs = hn::Set(df, scale);
  int64_t i = 0;
  for (; i + l <= n; i += l)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vs), hn::LoadU(df, weight + i)), df, out + i);
  for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// silu(g) * u = g / (1 + exp(-g)) * u; exp's argument is capped (exp(88) is still finite),
// so very negative g gives a tiny value instead of inf / inf.
void SwiGluImpl(const float* gate, const float* up, float* out, int64_t n) {
  const DF df;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  const auto one = hn::Set(df, 1.0f), cap = hn::Set(df, 88.0f);
  int64_t i = 0;
  for (; i + l <= n; i += l) {
    const auto g = hn::LoadU(df, gate + i);
    const auto e = hn::Exp(df, hn::Min(hn::Neg(g), cap));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(std::fmin(-g, 88.0f))) * up[i];
  }
}

void AddInPlaceImpl(float* y, const float* x, int64_t n) {
  const DF df;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + l <= n; i += l) hn::StoreU(hn::Add(hn::LoadU(df, y + i), hn::LoadU(df, x + i)), df, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

// exp(x - max) / sum. Exp returns exactly 0 below -104, so -inf (masked) entries become 0.
void SoftmaxImpl(float* x, int64_t n) {
  const DF df;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  float mx = -INFINITY;
  int64_t i = 0;
  if (n >= l) {
    auto vm = hn::Set(df, -INFINITY);
    for (; i + l <= n; i += l) vm = hn::Max(vm, hn::LoadU(df, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(df, vm));
  }
  for (; i < n; ++i) mx = std::fmax(mx, x[i]);
  const auto vmx = hn::Set(df, mx);
  auto vsum = hn::Zero(df);
  i = 0;
  for (; i + l <= n; i += l) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    vsum = hn::Add(vsum, e);
    hn::StoreU(e, df, x + i);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const auto vinv = hn::Set(df, inv);
  i = 0;
  for (; i + l <= n; i += l) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

// Half conversions: vcvtph2ps / vcvtps2ph (round to nearest even) match the scalar
// F16ToF32 / F32ToF16 bit for bit on every non-NaN input; the scalar target uses those.
void F16ToF32Impl(const f16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  const auto* s = reinterpret_cast<const hwy::float16_t*>(src);
  for (; i + l <= n; i += l) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, s + i)), df, dst + i);
#endif
  for (; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

void F32ToF16Impl(const float* src, f16_t* dst, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  auto* d = reinterpret_cast<hwy::float16_t*>(dst);
  for (; i + l <= n; i += l) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, src + i)), dh, d + i);
#endif
  for (; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

void BF16ToF32Impl(const bf16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  const DF df;
  const hn::Rebind<hwy::bfloat16_t, DF> db;
  const int64_t l = static_cast<int64_t>(hn::Lanes(df));
  const auto* s = reinterpret_cast<const hwy::bfloat16_t*>(src);
  for (; i + l <= n; i += l) hn::StoreU(hn::PromoteTo(df, hn::LoadU(db, s + i)), df, dst + i);
#endif
  for (; i < n; ++i) dst[i] = BF16ToF32(src[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace akv::cpu_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv {
namespace cpu_internal {
HWY_EXPORT(DotImpl);
HWY_EXPORT(RmsNormImpl);
HWY_EXPORT(SwiGluImpl);
HWY_EXPORT(AddInPlaceImpl);
HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(F16ToF32Impl);
HWY_EXPORT(F32ToF16Impl);
HWY_EXPORT(BF16ToF32Impl);
}  // namespace cpu_internal

using namespace cpu_internal;  // NOLINT: the HWY_EXPORT tables live there

void RmsNorm(const float* x, const float* weight, float eps, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(RmsNormImpl)(x, weight, eps, out, n);
}
void SwiGlu(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SwiGluImpl)(gate, up, out, n);
}
void AddInPlace(float* y, const float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddInPlaceImpl)(y, x, n);
}
float Dot(const float* a, const float* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(DotImpl)(a, b, n);
}
void Softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n); }
void F16ToF32Row(const f16_t* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F16ToF32Impl)(src, dst, n);
}
void F32ToF16Row(const float* src, f16_t* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F32ToF16Impl)(src, dst, n);
}
void BF16ToF32Row(const bf16_t* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(BF16ToF32Impl)(src, dst, n);
}

}  // namespace akv
#endif  // HWY_ONCE
