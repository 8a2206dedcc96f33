// Q8_0 / Q4_0 weight matmul kernels against Q8_0-quantized activations (llama.cpp's scheme).
//
// The integer dot products use AVX-512 VNNI (vpdpbusd: unsigned bytes x signed bytes, 4 products
// summed into each int32 lane) when the CPU has it (Highway target AVX3_DL); other targets run
// portable integer loops. vpdpbusd needs one operand unsigned, so weights are fed as unsigned
// bytes — Q8_0 as w + 128 (xor 0x80), Q4_0 as its raw nibble (w + 8) — and the accumulator
// starts from -bias * sum(x_block) (QuantizedActivations::corr), which makes every block sum
// exact: sum((w + bias) * x) - bias * sum(x) = sum(w * x).
//
// GEMV (1-3 tokens): lanes run along k; one 512-bit vector holds a pair of blocks (64 weights).
// Per row and pair: 2 loads, an unpack, one vpdpbusd per token, then int32 -> f32 and one FMA
// with (d_w * d_x) spread over 8 lanes each. One token (decode): rows in memory order, 16 rows
// reduced together; 2-3 tokens: 2 rows at a time sharing the activation loads.
//
// GEMM (>= 4 tokens): a panel of 32 rows is repacked (register transposes) so that lanes run
// along rows: for block b and 4-byte group j, vector (b, j, half) holds bytes 4j..4j+3 of rows
// half*16 .. half*16+15. The micro-kernel keeps 32 rows x 6 tokens of int32 block sums and f32
// totals in registers (24 zmm) and broadcasts 4 activation bytes per vpdpbusd: per block and
// tile 96 vpdpbusd against 16 weight loads, 48 broadcasts and 36 float ops (int32 -> f32,
// d_w * d_x, FMA), so at most ~73% of the vpdpbusd peak; it measures ~70% on Zen4.
#include "cpu/simd_targets.h"  // first: target selection

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/matmul_quant.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/half.h"
#include "cpu/matmul_internal.h"
#include "cpu/quants.h"

HWY_BEFORE_NAMESPACE();
namespace akv::cpu_internal {
namespace HWY_NAMESPACE {

// ------------------------------------------------------------ portable integer loops

namespace hn = hwy::HWY_NAMESPACE;

// Non-VNNI targets (AVX2, AVX3 without VNNI, scalar): for each row and block, the 32 weights
// are widened to int16 once and multiplied with every token's block (int16 x int16 -> int32
// pairs, ReorderWidenMulAccumulate), then sum over blocks of d_w * d_x * sum(w * x).
thread_local GrowBuffer<float> tls_portable_acc;

void GemvPortable(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                  int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = xq.n_blocks;
  const bool q4 = w.type == GgmlType::Q4_0;
  float* acc = tls_portable_acc.Get(static_cast<size_t>(t1 - t0));
  HWY_ALIGN int8_t wq[kQK];
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<int16_t> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const int n16 = static_cast<int>(hn::Lanes(d16));
#endif
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + r * static_cast<int64_t>(w.row_bytes);
    for (int64_t t = t0; t < t1; ++t) acc[t - t0] = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      float dw;
      if (q4) {
        const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
        for (int j = 0; j < kQK / 2; ++j) {
          wq[j] = static_cast<int8_t>((blk->qs[j] & 0x0F) - 8);
          wq[j + kQK / 2] = static_cast<int8_t>((blk->qs[j] >> 4) - 8);
        }
        dw = F16ToF32(blk->d);
      } else {
        const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
        std::memcpy(wq, blk->qs, kQK);
        dw = F16ToF32(blk->d);
      }
      for (int64_t t = t0; t < t1; ++t) {
        const int8_t* xb = xq.qs(t) + b * kQK;
        int32_t s = 0;
#if HWY_TARGET != HWY_SCALAR
        auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
        for (int j = 0; j < kQK; j += n16) {
          s0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LoadU(d8, wq + j)),
                                             hn::PromoteTo(d16, hn::LoadU(d8, xb + j)), s0, s1);
        }
        s = hn::GetLane(hn::SumOfLanes(d32, hn::Add(s0, s1)));
#else
        for (int j = 0; j < kQK; ++j) s += wq[j] * xb[j];
#endif
        acc[t - t0] += dw * xq.d(t)[b] * static_cast<float>(s);
      }
    }
    for (int64_t t = t0; t < t1; ++t) y[t * ldy + r] = acc[t - t0];
  }
}

#if HWY_TARGET == HWY_AVX3_DL
// Highway's AVX3_DL target string (1.0.3) names avxvnni but not avx512vnni.
#define AKV_VNNI __attribute__((target(HWY_TARGET_STR ",avx512vnni")))

bool HasVnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has;
}

#define AKV_SIMD_ATTR AKV_VNNI
#include "cpu/avx512_shuffles-inl.h"
#undef AKV_SIMD_ATTR

// d_w of blocks b, b+1 as f32, spread [d_b x 8, d_b+1 x 8] to match LoadPair's lanes: one
// load from the first block's start (both d's are in its first 64 bytes) and a word permute.
// vpgatherdd was far slower (about 23 cycles per gather on Zen4).
template <bool kQ4>
AKV_VNNI inline __m512 PairScales(const uint8_t* block, bool two) {
  if constexpr (kQ4) {  // d_b+1 is word 9
    const __m256i raw = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block))
                            : _mm256_maskz_loadu_epi16(1, block);
    const __m256i idx = _mm256_setr_epi32(0, 0, 0, 0, 0x90009, 0x90009, 0x90009, 0x90009);
    return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, raw));
  } else {  // d_b+1 is word 17
    const __m512i raw = two ? _mm512_loadu_si512(block) : _mm512_maskz_loadu_epi16(1, block);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0x110011, 0x110011, 0x110011, 0x110011,
                                          0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, raw)));
  }
}

// 64 unsigned weight bytes of blocks b, b+1 in element order (second block zero if absent).
template <bool kQ4>
AKV_VNNI inline __m512i LoadPair(const uint8_t* block, bool two) {
  if constexpr (kQ4) {
    const auto* blk = reinterpret_cast<const BlockQ4_0*>(block);
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs));
    const __m128i c = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs))
                          : _mm_setzero_si128();
    // [qs_b, qs_b, qs_b1, qs_b1]; shift the odd 128-bit lanes by 4: low nibbles are elements
    // 0..15 of a block, high nibbles 16..31.
    const __m512i v = _mm512_permutexvar_epi64(
        _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
        _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), c, 1)));
    const __m512i s = _mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4);
    return _mm512_and_si512(s, _mm512_set1_epi8(0x0F));
  } else {
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(block);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
    const __m256i c = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs))
                          : _mm256_setzero_si256();
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
  }
}

// R rows x T tokens, lanes along k.
template <int R, int T, bool kQ4>
AKV_VNNI void GemvTileVnni(const WeightMatrix& w, int64_t r, const QuantizedActivations& xq,
                           int64_t t, float* y, int64_t ldy) {
  constexpr int kBlockBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  const int64_t nb = xq.n_blocks;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = w.data + (r + i) * static_cast<int64_t>(w.row_bytes);
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool two = b + 1 < nb;
    __m512i wv[R];
    __m512 dw[R];
    for (int i = 0; i < R; ++i) {
      wv[i] = LoadPair<kQ4>(rows[i] + b * kBlockBytes, two);
      dw[i] = PairScales<kQ4>(rows[i] + b * kBlockBytes, two);
    }
    for (int j = 0; j < T; ++j) {
      const __m512i xv = _mm512_loadu_si512(xq.qs(t + j) + b * kQK);
      const __m512i cv = _mm512_loadu_si512(xq.cpair(t + j) + b * 8);
      const __m512 dv = _mm512_loadu_ps(xq.dpair(t + j) + b * 8);
      for (int i = 0; i < R; ++i) {
        const __m512i sum = _mm512_dpbusd_epi32(cv, wv[i], xv);
        acc[i][j] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw[i], dv), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) y[(t + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

// Decode (one token): rows in memory order (one sequential stream for the prefetchers, as in
// the float GEMV), 16 rows per chunk whose 16 accumulators are summed by one add tree.
// Per pair of blocks: 2 loads + xor (Q4_0: nibble unpack), vpdpbusd, cvt, the pair's d_w
// (PairScales) times the precomputed d_x pair, FMA.
template <bool kQ4>
AKV_VNNI void GemvOneTokenVnni(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t,
                               float* y, int64_t r0, int64_t r1) {
  constexpr int kBlockBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  const int64_t nb = xq.n_blocks;
  const int64_t row_bytes = static_cast<int64_t>(w.row_bytes);
  const int8_t* xs = xq.qs(t);
  const int32_t* xc = xq.cpair(t);
  const float* xd = xq.dpair(t);
  // Dot product of row r with x, as a vector to be summed.
  auto row_dot = [&](int64_t r) AKV_VNNI __attribute__((always_inline)) {
    const uint8_t* row = w.data + r * row_bytes;
    auto pair = [&](int64_t b) AKV_VNNI __attribute__((always_inline)) {
      const bool two = b + 1 < nb;
      const __m512i sum = _mm512_dpbusd_epi32(_mm512_loadu_si512(xc + b * 8),
                                              LoadPair<kQ4>(row + b * kBlockBytes, two),
                                              _mm512_loadu_si512(xs + b * kQK));
      const __m512 scale =
          _mm512_mul_ps(PairScales<kQ4>(row + b * kBlockBytes, two), _mm512_loadu_ps(xd + b * 8));
      return std::pair<__m512, __m512>(_mm512_cvtepi32_ps(sum), scale);
    };
    // Two named accumulators: indexing an array by pair parity made GCC keep it on the stack,
    // putting a store-to-load forwarding delay on every FMA.
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 < nb; b += 4) {
      const auto [s0, d0] = pair(b);
      const auto [s1, d1] = pair(b + 2);
      acc0 = _mm512_fmadd_ps(s0, d0, acc0);
      acc1 = _mm512_fmadd_ps(s1, d1, acc1);
    }
    if (b < nb) {
      const auto [s0, d0] = pair(b);
      acc0 = _mm512_fmadd_ps(s0, d0, acc0);
    }
    return _mm512_add_ps(acc0, acc1);
  };
  for (int64_t r = r0; r < r1; r += 16) {
    const int nr = static_cast<int>(std::min<int64_t>(16, r1 - r));
    const __m512 sums = SumRows16([&](int i) AKV_VNNI __attribute__((always_inline)) {
      return i < nr ? row_dot(r + i) : _mm512_setzero_ps();
    });
    _mm512_mask_storeu_ps(y + r, static_cast<__mmask16>((1u << nr) - 1), sums);
  }
}

template <int R, bool kQ4>
AKV_VNNI void GemvRowsVnni(const WeightMatrix& w, int64_t r, const QuantizedActivations& xq,
                           int64_t t0, int64_t t1, float* y, int64_t ldy) {
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) GemvTileVnni<R, 4, kQ4>(w, r, xq, t, y, ldy);
  switch (t1 - t) {
    case 3: GemvTileVnni<R, 3, kQ4>(w, r, xq, t, y, ldy); break;
    case 2: GemvTileVnni<R, 2, kQ4>(w, r, xq, t, y, ldy); break;
    case 1: GemvTileVnni<R, 1, kQ4>(w, r, xq, t, y, ldy); break;
    default: break;
  }
}

template <bool kQ4>
AKV_VNNI void GemvVnni(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                       int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  if (t1 - t0 == 1) return GemvOneTokenVnni<kQ4>(w, xq, t0, y + t0 * ldy, r0, r1);
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) GemvRowsVnni<2, kQ4>(w, r, xq, t0, t1, y, ldy);
  for (; r < r1; ++r) GemvRowsVnni<1, kQ4>(w, r, xq, t0, t1, y, ldy);
}

// ---- GEMM

constexpr int kPanelRows = kQuantPanelRows;  // 2 x 16 int32 lanes
constexpr int kTokTile = 6;     // 2 x 6 int32 + 2 x 6 f32 accumulators = 24 zmm
constexpr int64_t kPanelCodeBytes = kQuantPanelCodeBytes;    // 16 zmm, then 32 f16 scales
constexpr int64_t kPanelBlockBytes = kQuantPanelBlockBytes;  // one record

inline __m512i* PanelCodes(uint8_t* panel, int64_t b) {
  return reinterpret_cast<__m512i*>(panel + b * kPanelBlockBytes);
}
inline const __m512i* PanelCodes(const uint8_t* panel, int64_t b) {
  return reinterpret_cast<const __m512i*>(panel + b * kPanelBlockBytes);
}
inline uint16_t* PanelScales(uint8_t* panel, int64_t b) {
  return reinterpret_cast<uint16_t*>(panel + b * kPanelBlockBytes + kPanelCodeBytes);
}
inline const uint16_t* PanelScales(const uint8_t* panel, int64_t b) {
  return reinterpret_cast<const uint16_t*>(panel + b * kPanelBlockBytes + kPanelCodeBytes);
}

// Repacks rows [r, r + nr) (nr <= 32) into one panel: per block b a record of kPanelBlockBytes
// (kPanelCodeBytes of codes, then the f16 scales), codes pw[(b * 8 + j) * 2 + half] (see the file comment)
// and the rows' f16 scales ds[b][half][16]; rows beyond nr read as zero. The 4-byte groups are
// transposed in registers: 16 rows x (2 Q8_0 blocks or 4 Q4_0 blocks) of 16 dwords at a time.
// (Gathering each output vector instead cost as much as the GEMM itself below ~16 tokens.)
template <bool kQ4>
AKV_VNNI void PackPanelVnni(const WeightMatrix& w, int64_t r, int nr, uint8_t* panel) {
  constexpr int kBlockBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  const int64_t nb = w.cols / kQK;
  const int64_t row_bytes = static_cast<int64_t>(w.row_bytes);
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(static_cast<int>(row_bytes)));
  const __m512i zero = _mm512_setzero_si512();
  for (int h = 0; h < 2; ++h) {
    const int valid = std::clamp(nr - 16 * h, 0, 16);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    const uint8_t* base = w.data + (r + 16 * h) * row_bytes;
    if (valid == 0) base = w.data;  // never dereferenced (mask is empty)
    for (int64_t b = 0; b < nb; ++b) {
      const __m512i d = _mm512_mask_i32gather_epi32(zero, m, idx, base + b * kBlockBytes, 1);
      _mm256_store_si256(reinterpret_cast<__m256i*>(PanelScales(panel, b) + 16 * h),
                         _mm512_cvtepi32_epi16(d));
    }
    constexpr int kBlocksPerTile = kQ4 ? 4 : 2;  // 64 bytes of quants per row
    for (int64_t b = 0; b < nb; b += kBlocksPerTile) {
      const int n_blk = static_cast<int>(std::min<int64_t>(kBlocksPerTile, nb - b));
      __m512 t[16];
      for (int i = 0; i < 16; ++i) {
        __m512i v = zero;
        if (i < valid) {
          const uint8_t* q = base + i * row_bytes + b * kBlockBytes + 2;  // qs of block b
          if constexpr (kQ4) {
            auto part = [&](int k) HWY_ATTR {
              return k < n_blk ? _mm_loadu_si128(
                                     reinterpret_cast<const __m128i*>(q + k * kBlockBytes))
                               : _mm_setzero_si128();
            };
            v = _mm512_castsi128_si512(part(0));
            v = _mm512_inserti32x4(v, part(1), 1);
            v = _mm512_inserti32x4(v, part(2), 2);
            v = _mm512_inserti32x4(v, part(3), 3);
          } else {
            const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
            const __m256i hi =
                n_blk > 1
                    ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + kBlockBytes))
                    : _mm256_setzero_si256();
            v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
          }
        }
        t[i] = _mm512_castsi512_ps(v);
      }
      Transpose16x16(t);
      // t[c]: dword c of the 64 loaded bytes, for the 16 rows.
      for (int k = 0; k < n_blk; ++k) {
        __m512i* dst = PanelCodes(panel, b + k) + h;
        if constexpr (kQ4) {
          const __m512i low4 = _mm512_set1_epi8(0x0F);
          for (int j = 0; j < 4; ++j) {
            const __m512i v = _mm512_castps_si512(t[4 * k + j]);
            dst[j * 2] = _mm512_and_si512(v, low4);
            dst[(j + 4) * 2] = _mm512_and_si512(_mm512_srli_epi32(v, 4), low4);
          }
        } else {
          const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
          for (int j = 0; j < 8; ++j)
            dst[j * 2] = _mm512_xor_si512(_mm512_castps_si512(t[8 * k + j]), flip);
        }
      }
    }
  }
}

inline int32_t Load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int T>
AKV_VNNI void GemmTileVnni(const uint8_t* panel, int64_t nb, const QuantizedActivations& xq,
                           int64_t t, float* y, int64_t ldy, int nr) {
  const int8_t* xs[T];
  const float* xd[T];
  const int32_t* xc[T];
  for (int j = 0; j < T; ++j) {
    xs[j] = xq.qs(t + j);
    xd[j] = xq.d(t + j);
    xc[j] = xq.corr(t + j);
  }
  __m512 fa[T][2];
  for (int j = 0; j < T; ++j) fa[j][0] = fa[j][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i ai[T][2];
    for (int j = 0; j < T; ++j) ai[j][0] = ai[j][1] = _mm512_set1_epi32(xc[j][b]);
    const __m512i* wb = PanelCodes(panel, b);
    for (int g = 0; g < 8; ++g) {
      const __m512i w0 = _mm512_load_si512(wb + 2 * g);
      const __m512i w1 = _mm512_load_si512(wb + 2 * g + 1);
      for (int j = 0; j < T; ++j) {
        const __m512i xb = _mm512_set1_epi32(Load4(xs[j] + b * kQK + 4 * g));
        ai[j][0] = _mm512_dpbusd_epi32(ai[j][0], w0, xb);
        ai[j][1] = _mm512_dpbusd_epi32(ai[j][1], w1, xb);
      }
    }
    const uint16_t* ds = PanelScales(panel, b);
    const __m512 d0 = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ds)));
    const __m512 d1 =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ds + 16)));
    for (int j = 0; j < T; ++j) {
      const __m512 dx = _mm512_set1_ps(xd[j][b]);
      fa[j][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[j][0]), _mm512_mul_ps(d0, dx), fa[j][0]);
      fa[j][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[j][1]), _mm512_mul_ps(d1, dx), fa[j][1]);
    }
  }
  const __mmask16 m0 = static_cast<__mmask16>((1u << std::min(nr, 16)) - 1);
  const __mmask16 m1 = static_cast<__mmask16>((1u << std::clamp(nr - 16, 0, 16)) - 1);
  for (int j = 0; j < T; ++j) {
    float* yt = y + (t + j) * ldy;
    _mm512_mask_storeu_ps(yt, m0, fa[j][0]);
    _mm512_mask_storeu_ps(yt + 16, m1, fa[j][1]);
  }
}

template <int T>
AKV_VNNI void GemmTileDispatch(int n, const uint8_t* panel, int64_t nb,
                               const QuantizedActivations& xq, int64_t t, float* y,
                               int64_t ldy, int nr) {
  if constexpr (T > 0) {
    if (n == T) return GemmTileVnni<T>(panel, nb, xq, t, y, ldy, nr);
    return GemmTileDispatch<T - 1>(n, panel, nb, xq, t, y, ldy, nr);
  }
}

thread_local GrowBuffer<uint8_t> tls_quant_panel;

// Rows [r0, r1) (r0 a multiple of kPanelRows) x tokens [t0, t1): each panel is repacked here,
// or read in place from w.panels (packed once at load, PackPanels).
template <bool kQ4>
AKV_VNNI void GemmVnni(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                       int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = xq.n_blocks;
  const bool packed = w.panels != nullptr;
  uint8_t* scratch = packed ? nullptr : tls_quant_panel.Get(static_cast<size_t>(nb * kPanelBlockBytes));
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, r1 - r));
    const uint8_t* panel;
    if (packed) {
      panel = w.panels + (r / kPanelRows) * nb * kPanelBlockBytes;
    } else {
      PackPanelVnni<kQ4>(w, r, nr, scratch);
      panel = scratch;
    }
    // y offset by r; the tile indexes tokens absolutely.
    int64_t t = t0;
    for (; t + kTokTile <= t1; t += kTokTile) GemmTileVnni<kTokTile>(panel, nb, xq, t, y + r, ldy, nr);
    if (t < t1)
      GemmTileDispatch<kTokTile - 1>(static_cast<int>(t1 - t), panel, nb, xq, t, y + r, ldy, nr);
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL

void QuantGemv(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0, int64_t t1,
               float* y, int64_t ldy, int64_t r0, int64_t r1) {
#if HWY_TARGET == HWY_AVX3_DL
  if (HasVnni()) {
    // Packed Q8_0: the panel kernel with 1-3 tokens is the fastest GEMV (no horizontal sums).
    if (w.panels) return GemmVnni<false>(w, xq, t0, t1, y, ldy, r0, r1);
    if (w.type == GgmlType::Q4_0) return GemvVnni<true>(w, xq, t0, t1, y, ldy, r0, r1);
    return GemvVnni<false>(w, xq, t0, t1, y, ldy, r0, r1);
  }
#endif
  GemvPortable(w, xq, t0, t1, y, ldy, r0, r1);
}

void QuantGemm(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0, int64_t t1,
               float* y, int64_t ldy, int64_t r0, int64_t r1) {
#if HWY_TARGET == HWY_AVX3_DL
  if (HasVnni()) {
    if (w.type == GgmlType::Q4_0) return GemmVnni<true>(w, xq, t0, t1, y, ldy, r0, r1);
    return GemmVnni<false>(w, xq, t0, t1, y, ldy, r0, r1);
  }
#endif
  GemvPortable(w, xq, t0, t1, y, ldy, r0, r1);
}

bool HasPanelKernel(GgmlType type) {
#if HWY_TARGET == HWY_AVX3_DL
  return type == GgmlType::Q8_0 && HasVnni();
#else
  (void)type;
  return false;
#endif
}

void PackAllPanels(const WeightMatrix& w, uint8_t* out) {
#if HWY_TARGET == HWY_AVX3_DL
  const int64_t nb = w.cols / kQK;
  for (int64_t r = 0; r < w.rows; r += kPanelRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, w.rows - r));
    PackPanelVnni<false>(w, r, nr, out + (r / kPanelRows) * nb * kPanelBlockBytes);
  }
#else
  (void)w;
  (void)out;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace akv::cpu_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv::cpu_internal {

HWY_EXPORT(QuantGemv);
HWY_EXPORT(QuantGemm);
HWY_EXPORT(HasPanelKernel);
HWY_EXPORT(PackAllPanels);

void QuantGemvRows(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                   int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(QuantGemv)(w, xq, t0, t1, y, ldy, r0, r1);
}

void QuantGemmRows(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                   int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(QuantGemm)(w, xq, t0, t1, y, ldy, r0, r1);
}

}  // namespace akv::cpu_internal

namespace akv {

size_t PanelBytes(const WeightMatrix& w) {
  if (w.rows <= 0 || w.cols <= 0 || w.cols % kQK != 0) return 0;
  if (!HWY_DYNAMIC_DISPATCH(cpu_internal::HasPanelKernel)(w.type)) return 0;
  const int64_t panels = (w.rows + cpu_internal::kQuantPanelRows - 1) / cpu_internal::kQuantPanelRows;
  return static_cast<size_t>(panels * (w.cols / kQK) * cpu_internal::kQuantPanelBlockBytes);
}

void PackPanels(const WeightMatrix& w, uint8_t* out) {
  if (PanelBytes(w) == 0) return;
  HWY_DYNAMIC_DISPATCH(cpu_internal::PackAllPanels)(w, out);
}

}  // namespace akv
#endif  // HWY_ONCE
