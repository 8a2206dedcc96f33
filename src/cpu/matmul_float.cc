// Float-weight (F32, F16, BF16) matmul kernels, Highway with runtime dispatch.
//
// GEMV (few tokens): lanes run along k. Each weight row is loaded once per group of <= 4 tokens
// and widened to f32 in registers (vcvtph2ps for F16, a shift for BF16), so decode streams the
// weights exactly once, in memory order.
//
// GEMM (many tokens): a panel of 2 vectors of rows (32 rows with AVX-512) is converted to f32 and
// transposed once per call into packed[k][32]; the micro-kernel keeps a 32-row x kTokTile-token
// tile of accumulators in registers (2 x 12 zmm with AVX-512) and, per k, loads 2 weight vectors
// and broadcasts kTokTile activations: 24 FMAs per 2 loads + 12 broadcasts, i.e. FMA-bound.
#include "cpu/simd_targets.h"  // first: target selection

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/matmul_float.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cassert>

#include "core/half.h"
#include "cpu/matmul_internal.h"

HWY_BEFORE_NAMESPACE();
namespace akv::cpu_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

#if HWY_TARGET <= HWY_AVX3
#include "cpu/avx512_shuffles-inl.h"
#endif

template <typename WT>
HWY_INLINE VF LoadF32(DF df, const WT* p) {
  if constexpr (std::is_same_v<WT, float>) {
    return hn::LoadU(df, p);
  } else {
    const hn::Rebind<WT, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, p));
  }
}

template <typename WT>
HWY_INLINE float ScalarF32(const WT* p) {
  if constexpr (std::is_same_v<WT, float>) {
    return *p;
  } else if constexpr (std::is_same_v<WT, hwy::float16_t>) {
    return F16ToF32(p->bits);
  } else {
    return BF16ToF32(p->bits);
  }
}

template <typename WT>
HWY_INLINE const WT* Row(const WeightMatrix& w, int64_t r) {
  return reinterpret_cast<const WT*>(w.data + r * static_cast<int64_t>(w.row_bytes));
}

// ---------------------------------------------------------------- GEMV

// R rows x T tokens (T >= 2), lanes along k: each weight vector feeds T FMAs.
template <int R, int T, typename WT>
HWY_INLINE void GemvTile(const WeightMatrix& w, int64_t r, const float* x, int64_t ldx,
                         int64_t t, float* y, int64_t ldy) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k_total = w.cols;
  const int64_t k_vec = k_total - k_total % n;
  const WT* wr[R];
  for (int i = 0; i < R; ++i) wr[i] = Row<WT>(w, r + i);
  const float* xt[T];
  for (int j = 0; j < T; ++j) xt[j] = x + (t + j) * ldx;
  VF acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = hn::Zero(df);
  for (int64_t k = 0; k < k_vec; k += n) {
    VF xv[T];
    for (int j = 0; j < T; ++j) xv[j] = hn::LoadU(df, xt[j] + k);
    for (int i = 0; i < R; ++i) {
      const VF wv = LoadF32(df, wr[i] + k);
      for (int j = 0; j < T; ++j) acc[i][j] = hn::MulAdd(wv, xv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[i][j]));
      for (int64_t k = k_vec; k < k_total; ++k) s += ScalarF32(wr[i] + k) * xt[j][k];
      y[(t + j) * ldy + r + i] = s;
    }
  }
}

// Decode (one token): rows in memory order with 4 accumulators along k, so the weights are read
// as one sequential stream, which the hardware prefetchers follow best. Interleaving 4 rows
// (as GemvTile does) ran at ~7 GB/s from DRAM on the 32000 x 384 F16 output matrix, this at
// ~20 GB/s (Zen4, one thread). With AVX-512, 16 rows are reduced by one add tree.
template <typename WT>
HWY_INLINE VF RowDot(DF df, const WT* wr, const float* x, int64_t k_total) {
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k4 = k_total - k_total % (4 * n), k_vec = k_total - k_total % n;
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t k = 0;
  for (; k < k4; k += 4 * n) {
    a0 = hn::MulAdd(LoadF32(df, wr + k), hn::LoadU(df, x + k), a0);
    a1 = hn::MulAdd(LoadF32(df, wr + k + n), hn::LoadU(df, x + k + n), a1);
    a2 = hn::MulAdd(LoadF32(df, wr + k + 2 * n), hn::LoadU(df, x + k + 2 * n), a2);
    a3 = hn::MulAdd(LoadF32(df, wr + k + 3 * n), hn::LoadU(df, x + k + 3 * n), a3);
  }
  for (; k < k_vec; k += n) a0 = hn::MulAdd(LoadF32(df, wr + k), hn::LoadU(df, x + k), a0);
  VF sum = hn::Add(hn::Add(a0, a1), hn::Add(a2, a3));
  if (k < k_total) {
    float tail = 0.0f;
    for (; k < k_total; ++k) tail += ScalarF32(wr + k) * x[k];
    sum = hn::Add(sum, hn::IfThenElseZero(hn::FirstN(df, 1), hn::Set(df, tail)));
  }
  return sum;
}

template <typename WT>
void GemvOneToken(const WeightMatrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  const DF df;
  const int64_t k_total = w.cols;
#if HWY_TARGET <= HWY_AVX3
  for (int64_t r = r0; r < r1; r += 16) {
    const int nr = static_cast<int>(std::min<int64_t>(16, r1 - r));
    const __m512 sums = SumRows16([&](int i) HWY_ATTR __attribute__((always_inline)) {
      return i < nr ? RowDot(df, Row<WT>(w, r + i), x, k_total).raw : _mm512_setzero_ps();
    });
    _mm512_mask_storeu_ps(y + r, static_cast<__mmask16>((1u << nr) - 1), sums);
  }
#else
  for (int64_t r = r0; r < r1; ++r)
    y[r] = hn::GetLane(hn::SumOfLanes(df, RowDot(df, Row<WT>(w, r), x, k_total)));
#endif
}

template <int R, typename WT>
HWY_INLINE void GemvRowsTokens(const WeightMatrix& w, int64_t r, const float* x, int64_t ldx,
                               int64_t n_tokens, float* y, int64_t ldy) {
  int64_t t = 0;
  for (; t + 4 <= n_tokens; t += 4) GemvTile<R, 4, WT>(w, r, x, ldx, t, y, ldy);
  switch (n_tokens - t) {
    case 3: GemvTile<R, 3, WT>(w, r, x, ldx, t, y, ldy); break;
    case 2: GemvTile<R, 2, WT>(w, r, x, ldx, t, y, ldy); break;
    case 1: GemvTile<R, 1, WT>(w, r, x, ldx, t, y, ldy); break;
    default: break;
  }
}

template <typename WT>
void GemvTyped(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
               int64_t ldy, int64_t r0, int64_t r1) {
  if (n_tokens == 1) return GemvOneToken<WT>(w, x, y, r0, r1);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) GemvRowsTokens<4, WT>(w, r, x, ldx, n_tokens, y, ldy);
  for (; r < r1; ++r) GemvRowsTokens<1, WT>(w, r, x, ldx, n_tokens, y, ldy);
}

void FloatGemv(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
               int64_t ldy, int64_t r0, int64_t r1) {
  switch (w.type) {
    case GgmlType::F32: return GemvTyped<float>(w, x, ldx, n_tokens, y, ldy, r0, r1);
    case GgmlType::F16: return GemvTyped<hwy::float16_t>(w, x, ldx, n_tokens, y, ldy, r0, r1);
    case GgmlType::BF16: return GemvTyped<hwy::bfloat16_t>(w, x, ldx, n_tokens, y, ldy, r0, r1);
    default: assert(false);
  }
}

// ---------------------------------------------------------------- GEMM

#if HWY_TARGET <= HWY_AVX3  // 32 vector registers: 2 x 12 accumulators
constexpr int kTokTile = 12;
#else  // 16 registers: 2 x 6
constexpr int kTokTile = 6;
#endif

// packed[k * P + j] = W[r0 + j][k] as f32, P = 2 vectors; rows j >= nr are zero.
#if HWY_TARGET <= HWY_AVX3
// AVX-512: 16 x 16 tiles are widened to f32 and transposed in registers (64 shuffles per tile).
// Strided scalar stores (one cache line per element) made packing cost more than the whole
// GEMM below ~64 tokens.
template <typename WT>
void PackPanel(const WeightMatrix& w, int64_t r0, int64_t nr, float* HWY_RESTRICT packed) {
  const DF df;
  constexpr int64_t kP = 32;
  const int64_t k_total = w.cols;
  const int64_t k16 = k_total - k_total % 16;
  for (int64_t h = 0; h < 2; ++h) {
    const int64_t valid = std::clamp<int64_t>(nr - 16 * h, 0, 16);
    const WT* rows[16];
    for (int64_t i = 0; i < valid; ++i) rows[i] = Row<WT>(w, r0 + 16 * h + i);
    for (int64_t k = 0; k < k16; k += 16) {
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] = i < valid ? LoadF32(df, rows[i] + k).raw : _mm512_setzero_ps();
      Transpose16x16(r);
      for (int c = 0; c < 16; ++c) _mm512_store_ps(packed + (k + c) * kP + 16 * h, r[c]);
    }
    for (int64_t k = k16; k < k_total; ++k)
      for (int64_t i = 0; i < 16; ++i)
        packed[k * kP + 16 * h + i] = i < valid ? ScalarF32(rows[i] + k) : 0.0f;
  }
}
#else
template <typename WT>
void PackPanel(const WeightMatrix& w, int64_t r0, int64_t nr, float* HWY_RESTRICT packed) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t p = 2 * n;
  const int64_t k_total = w.cols;
  const int64_t k_vec = k_total - k_total % n;
  HWY_ALIGN float tmp[HWY_MAX_BYTES / sizeof(float)];
  for (int64_t j = 0; j < p; ++j) {
    float* dst = packed + j;
    if (j >= nr) {
      for (int64_t k = 0; k < k_total; ++k) dst[k * p] = 0.0f;
      continue;
    }
    const WT* src = Row<WT>(w, r0 + j);
    int64_t k = 0;
    for (; k < k_vec; k += n) {
      hn::Store(LoadF32(df, src + k), df, tmp);
      for (int64_t l = 0; l < n; ++l) dst[(k + l) * p] = tmp[l];
    }
    for (; k < k_total; ++k) dst[k * p] = ScalarF32(src + k);
  }
}
#endif

// y[t + j][0 .. nr) for j < T, from the packed panel; x rows are token-major.
template <int T>
HWY_INLINE void GemmTile(const float* HWY_RESTRICT packed, int64_t k_total, const float* x,
                         int64_t ldx, float* y, int64_t ldy, int64_t nr) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t p = 2 * n;
  VF a0[T], a1[T];
  for (int j = 0; j < T; ++j) a0[j] = a1[j] = hn::Zero(df);
  const float* xp[T];
  for (int j = 0; j < T; ++j) xp[j] = x + j * ldx;
  for (int64_t k = 0; k < k_total; ++k) {
    const VF w0 = hn::Load(df, packed + k * p);
    const VF w1 = hn::Load(df, packed + k * p + n);
    for (int j = 0; j < T; ++j) {
      const VF xb = hn::Set(df, xp[j][k]);
      a0[j] = hn::MulAdd(w0, xb, a0[j]);
      a1[j] = hn::MulAdd(w1, xb, a1[j]);
    }
  }
  if (nr == p) {
    for (int j = 0; j < T; ++j) {
      hn::StoreU(a0[j], df, y + j * ldy);
      hn::StoreU(a1[j], df, y + j * ldy + n);
    }
  } else {
    HWY_ALIGN float tmp[2 * HWY_MAX_BYTES / sizeof(float)];
    for (int j = 0; j < T; ++j) {
      hn::Store(a0[j], df, tmp);
      hn::Store(a1[j], df, tmp + n);
      std::copy(tmp, tmp + nr, y + j * ldy);
    }
  }
}

template <int T>
void GemmTileDispatch(int tail, const float* packed, int64_t k_total, const float* x,
                      int64_t ldx, float* y, int64_t ldy, int64_t nr) {
  if constexpr (T > 0) {
    if (tail == T) return GemmTile<T>(packed, k_total, x, ldx, y, ldy, nr);
    return GemmTileDispatch<T - 1>(tail, packed, k_total, x, ldx, y, ldy, nr);
  }
}

thread_local GrowBuffer<float> tls_panel;

template <typename WT>
void GemmTyped(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
               int64_t ldy, int64_t r0, int64_t r1) {
  const DF df;
  const int64_t p = 2 * static_cast<int64_t>(hn::Lanes(df));
  const int64_t k_total = w.cols;
  float* packed = tls_panel.Get(static_cast<size_t>(k_total * p));
  for (int64_t r = r0; r < r1; r += p) {
    const int64_t nr = std::min(p, r1 - r);
    PackPanel<WT>(w, r, nr, packed);
    int64_t t = 0;
    for (; t + kTokTile <= n_tokens; t += kTokTile)
      GemmTile<kTokTile>(packed, k_total, x + t * ldx, ldx, y + t * ldy + r, ldy, nr);
    if (t < n_tokens) {
      GemmTileDispatch<kTokTile - 1>(static_cast<int>(n_tokens - t), packed, k_total,
                                     x + t * ldx, ldx, y + t * ldy + r, ldy, nr);
    }
  }
}

void FloatGemm(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
               int64_t ldy, int64_t r0, int64_t r1) {
  switch (w.type) {
    case GgmlType::F32: return GemmTyped<float>(w, x, ldx, n_tokens, y, ldy, r0, r1);
    case GgmlType::F16: return GemmTyped<hwy::float16_t>(w, x, ldx, n_tokens, y, ldy, r0, r1);
    case GgmlType::BF16: return GemmTyped<hwy::bfloat16_t>(w, x, ldx, n_tokens, y, ldy, r0, r1);
    default: assert(false);
  }
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace akv::cpu_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv::cpu_internal {

HWY_EXPORT(FloatGemv);
HWY_EXPORT(FloatGemm);
HWY_EXPORT(TargetName);

void FloatGemvRows(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                   float* y, int64_t ldy, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(FloatGemv)(w, x, ldx, n_tokens, y, ldy, r0, r1);
}

void FloatGemmRows(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                   float* y, int64_t ldy, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(FloatGemm)(w, x, ldx, n_tokens, y, ldy, r0, r1);
}

const char* DispatchedTargetName() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace akv::cpu_internal

namespace akv {
const char* CpuKernelTarget() { return cpu_internal::DispatchedTargetName(); }
}  // namespace akv
#endif  // HWY_ONCE
