// Activation quantization to Q8_0 for the integer matmul kernels (once per MatMul call).
// Vectorised, but bit-identical to QuantizeRowQ8_0: same amax, same d = amax / 127, same
// id = 1 / d (IEEE division, vector or not), and roundf's half-away-from-zero rounding of x * id.
#include "cpu/simd_targets.h"  // first: target selection

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/act_quant.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "core/half.h"
#include "cpu/matmul_internal.h"
#include "cpu/quants.h"

HWY_BEFORE_NAMESPACE();
namespace akv::cpu_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// roundf() for |v| < 2^23: v + copysign(0.49999997, v), truncated. Adding the largest float
// below 0.5 (not 0.5 itself) keeps values just under a .5 tie from rounding up, and exact ties
// still reach the next integer; checked bit-exact against roundf by the tests.
template <class D, class V>
HWY_INLINE V RoundHalfAwayTimes(D d, V v) {
  return hn::Add(v, hn::CopySign(hn::Set(d, 0.49999997f), v));
}

void QuantizeTokens(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                    QuantizedActivations* xq) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int n = static_cast<int>(hn::Lanes(df));
  const int64_t nb = xq->n_blocks, nbp = xq->padded_blocks();
  for (int64_t t = t0; t < t1; ++t) {
    const float* xt = x + t * ldx;
    int8_t* qs = xq->qs_buf.data() + t * nbp * kQK;
    float* dd = xq->d_buf.data() + t * nbp;
    int32_t* corr = xq->corr_buf.data() + t * nbp;
    // Pass 1: block maxima into dd (reused as scratch), then d = amax / 127 and id = 1 / d for
    // many blocks at once; id goes to corr (scratch) until pass 2 overwrites it.
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = xt + b * kQK;
      auto vmax = hn::Zero(df);
      for (int i = 0; i < kQK; i += n) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + i)));
      dd[b] = hn::GetLane(hn::MaxOfLanes(df, vmax));
    }
    float* id = reinterpret_cast<float*>(corr);
    int64_t b = 0;
#if HWY_TARGET != HWY_SCALAR
    // vcvtps2ph / vcvtph2ps round-trip d through f16 exactly like F32ToF16 / F16ToF32.
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    for (; b + n <= nb; b += n) {
      const auto d = hn::Div(hn::LoadU(df, dd + b), hn::Set(df, 127.0f));
      const auto nz = hn::Ne(d, hn::Zero(df));
      hn::StoreU(hn::IfThenElseZero(nz, hn::Div(hn::Set(df, 1.0f), d)), df, id + b);
      hn::StoreU(hn::PromoteTo(df, hn::DemoteTo(dh, d)), df, dd + b);
    }
#endif
    for (; b < nb; ++b) {
      const float d = dd[b] / 127.0f;
      id[b] = d != 0.0f ? 1.0f / d : 0.0f;
      dd[b] = F16ToF32(F32ToF16(d));
    }
    // Pass 2: q = roundf(x * id), and the block sums.
    for (b = 0; b < nb; ++b) {
      const float* xb = xt + b * kQK;
      const auto vid = hn::Set(df, id[b]);
      auto vsum = hn::Zero(di);
      for (int i = 0; i < kQK; i += n) {
        const auto v = hn::Mul(hn::LoadU(df, xb + i), vid);
        const auto q = hn::ConvertTo(di, RoundHalfAwayTimes(df, v));  // truncating convert
        vsum = hn::Add(vsum, q);
        hn::StoreU(hn::DemoteTo(d8, q), d8, qs + b * kQK + i);
      }
      corr[b] = -xq->bias * hn::GetLane(hn::SumOfLanes(di, vsum));
    }
    for (b = nb; b < nbp; ++b) {  // padding block
      std::memset(qs + b * kQK, 0, kQK);
      dd[b] = 0.0f;
      corr[b] = 0;
    }
    if (!xq->with_pairs) continue;
    float* dpair = xq->dpair_buf.data() + t * xq->n_pairs * 16;
    int32_t* cpair = xq->cpair_buf.data() + t * xq->n_pairs * 16;
    for (b = 0; b < nbp; ++b) {
      for (int l = 0; l < 8; ++l) {
        dpair[b * 8 + l] = dd[b];
        cpair[b * 8 + l] = corr[b] / 8;
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace akv::cpu_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv::cpu_internal {

HWY_EXPORT(QuantizeTokens);

void QuantizedActivations::Prepare(int64_t tokens, int64_t cols, GgmlType weight_type,
                                   bool pairs) {
  with_pairs = pairs;
  n_tokens = tokens;
  n_blocks = cols / kQK;
  n_pairs = (n_blocks + 1) / 2;
  bias = weight_type == GgmlType::Q4_0 ? 8 : 128;
  const size_t blocks = static_cast<size_t>(tokens * padded_blocks());
  qs_buf.Get(blocks * kQK);
  d_buf.Get(blocks);
  corr_buf.Get(blocks);
  if (pairs) {
    dpair_buf.Get(blocks * 8);
    cpair_buf.Get(blocks * 8);
  }
}

void QuantizeActivations(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                         QuantizedActivations* xq) {
  HWY_DYNAMIC_DISPATCH(QuantizeTokens)(x, ldx, t0, t1, xq);
}

}  // namespace akv::cpu_internal
#endif  // HWY_ONCE
