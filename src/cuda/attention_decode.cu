// Fused mixed-precision decode attention (flash-decoding, split-K), one launch per tier:
// one warp per (job = sequence x KV head, split); a split is a contiguous range of 32-slot tiles.
// The R query heads of the job share every tile load (GQA: each K/V byte is read once per group).
//
// Per tile (32 slots):
//   K: lane l holds channels [l*CPL, (l+1)*CPL) of all 32 slots (one channel row of the page's
//      channel-major key tile = one unit of 32 codes, so a lane's rows are contiguous bytes).
//      Each lane forms 32 partial dot products per head; a transposing butterfly (reduce-scatter,
//      31 shuffles) leaves lane l with the full logit of slot Brev5(l). Quantized keys: the first
//      stages reduce within a 32-channel block, whose (scale, zero) per slot is then applied:
//      q.k = scale * sum(q * code) + zero * sum(q), so codes never become floats twice.
//   Online softmax update (log2 domain) per head.
//      The codes of a key tile become exact f16 pairs once (mask | 0x6400 - 1024, two per
//      instruction); each head's 4-channel partial products use f16x2 FMAs, and everything from the
//      first cross-lane sum on is f32.
//   Online softmax update (log2 domain) per head.
//   V: the page's value tile is [D / unit][32 slots][unit] (kv/codecs/page_layout.h); a lane takes
//      VC channels of one slot per iteration (16-byte or smaller loads, consecutive lanes on
//      consecutive slots of a unit). De-quantization is folded into the weights:
//      sum p (code * s + z) = sum (p s) code + sum p z; the (p s) * code products of one tile
//      accumulate in f16 pairs (at most D / VC terms) before joining f32 accumulators.
// At the end the lanes holding the same channels are reduced and the split's (m, d, o) written.
// Nothing de-quantized reaches memory; the partial states are merged by LaunchAttentionMerge.
// f16 tiers use f32 arithmetic throughout.
#include <cstdlib>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace akv::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

constexpr int Log2(int x) { return x <= 1 ? 0 : 1 + Log2(x / 2); }
constexpr int Min(int a, int b) { return a < b ? a : b; }

template <int D, int BITS, int R>
struct Cfg {
  static constexpr int CPL = D / 32;                   // K: channels per lane
  static constexpr int ROWB = 32 * BITS / 8;           // bytes of one channel row of a key tile
  static constexpr int KW = CPL * ROWB / 4;            // words of key data per lane per tile
  static constexpr int U = 4 * BITS;                   // bytes of one packed unit (quantized)
  static constexpr int PS = BITS == 16 ? 0 : Log2(32 / CPL);  // stages inside a 32-channel block
  static constexpr int NV = 32 >> PS;                  // slots per lane after those stages
  static constexpr int RC = BITS == 16 ? ((R % 2 == 0 && R <= 4) ? 2 : 1) : (R % 2 == 0 ? 2 : 1);  // heads per K pass
  static constexpr bool kPrefetchV = R <= 2;           // V loads issued with K's (registers allow)
  // V: page value tiles are [D / VUC units][32 slots][VUB bytes]; a lane takes VC channels of a slot.
  static constexpr int VUC = BITS == 16 ? 16 : 32;
  static constexpr int VUB = BITS == 16 ? 32 : U;
  static constexpr int VCB = BITS == 16 ? 8 : (BITS == 8 ? 16 : 32);
  static constexpr int VCR = R <= 2 ? 32 : (R <= 4 ? 16 : 8);
  static constexpr int VC = Min(VCB, VCR);             // V: channels per lane chunk
  static constexpr int LPR = D / VC;                   // lanes per slot
  static constexpr int SPI = 32 / LPR;                 // slots per iteration
  static constexpr int ITERS = 32 / SPI;
  static constexpr int LB = BITS == 16 ? 2 * VC : Min(VC, U);  // bytes per lane per slot
  static constexpr int VW = LB / 4;
  static constexpr int NF = BITS == 16 ? 1 : (VC > U ? VC / U : 1);  // bit fields of a byte a V chunk uses
  static_assert(KW % 4 == 0 && VW >= 1 && VW <= 4 && LPR <= 32 && VC % 4 == 0, "tile geometry");
};

template <int N>
__device__ __forceinline__ void LoadWords(const uint8_t* p, uint32_t (&w)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(p) + i);
      w[4 * i] = v.x;
      w[4 * i + 1] = v.y;
      w[4 * i + 2] = v.z;
      w[4 * i + 3] = v.w;
    }
  } else if constexpr (N == 2) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
    w[0] = v.x;
    w[1] = v.y;
  } else {
    w[0] = __ldg(reinterpret_cast<const uint32_t*>(p));
  }
}

// f16 value s of a 32-slot key channel row held in words `row`.
__device__ __forceinline__ float F16KeyValue(const uint32_t* row, int s) {
  const uint32_t w = row[s / 2];
  return __half2float(__ushort_as_half(static_cast<uint16_t>((s & 1) ? (w >> 16) : (w & 0xffff))));
}

// Two codes as an exact half2: the `bits`-wide fields at bit `shift` of bytes 0 and 2 of w
// (0x6400 | c is the f16 1024 + c).
template <int BITS>
__device__ __forceinline__ __half2 CodePair(uint32_t w, int shift) {
  constexpr uint32_t kMask = ((1u << BITS) - 1u) * 0x00010001u;
  const uint32_t raw = ((w >> shift) & kMask) | 0x64006400u;
  return __hsub2(*reinterpret_cast<const __half2*>(&raw), __half2(__ushort_as_half(0x6400), __ushort_as_half(0x6400)));
}

// One transposing butterfly stage over a vector of L values: lanes with `mask` set keep the upper
// half, the others the lower half, each adding its partner's copy.
template <int L>
__device__ __forceinline__ void ReduceStage(float* v, int lane, int mask) {
  const bool upper = (lane & mask) != 0;
#pragma unroll
  for (int i = 0; i < L / 2; ++i) {
    const float send = upper ? v[i] : v[i + L / 2];
    const float keep = upper ? v[i + L / 2] : v[i];
    v[i] = keep + __shfl_xor_sync(kFullMask, send, mask);
  }
}

// MINB: resident blocks per SM the register allocation must allow (3 => <= 170 registers, 12
// warps per SM; 4 => <= 128, 16 warps, with a few spilled registers for the quantized tiers).
template <int D, int BITS, int R, int MINB>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, MINB) DecodeAttentionKernel(DevTier tier, DecodeAttnArgs a) {
  using C = Cfg<D, BITS, R>;
  constexpr bool kQuant = BITS != 16;
  const int lane = threadIdx.x & 31;
  const int w = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  const int job = w / a.n_splits, split = w % a.n_splits;
  if (job >= a.n_jobs) return;
  const DevPageLayout& L = tier.layout;
  const int n = tier.n_slots[job];
  const int T = (n + 31) / 32;
  const int t_begin = static_cast<int>(static_cast<int64_t>(split) * T / a.n_splits);
  const int t_end = static_cast<int>(static_cast<int64_t>(split + 1) * T / a.n_splits);
  const int tiles_per_page = L.capacity / 32;
  const int cap = tier.max_pages * L.capacity;

  // Queries: lane's K channels, scaled into the log2 domain (f32, and f16 pairs for the quantized
  // path); per-32-block sums for the zero term.
  const float qscale = a.scale * kLog2e;
  float qk[R][C::CPL];
  float qblk[R];
#pragma unroll
  for (int h = 0; h < R; ++h) {
    const float* qr = a.q + (static_cast<int64_t>(job) * R + h) * D + lane * C::CPL;
    float s = 0;
#pragma unroll
    for (int c = 0; c < C::CPL; ++c) {
      qk[h][c] = qr[c] * qscale;
      s += qk[h][c];
    }
#pragma unroll
    for (int k = 0; k < C::PS; ++k) s += __shfl_xor_sync(kFullMask, s, 1 << k);
    qblk[h] = s;
  }

  // V chunk of this lane: slot `sub` of each iteration, channels [c0, c0 + VC) of unit vu.
  const int sub = lane % C::SPI, ch = lane / C::SPI;
  const int c0 = ch * C::VC;
  const int vu = c0 / C::VUC;
  int voff, vshift0;  // byte offset inside the unit, bit offset of the fields
  if constexpr (!kQuant) {
    voff = (c0 % C::VUC) * 2;
    vshift0 = 0;
  } else {
    const int j0 = c0 % 32;
    voff = C::VC <= C::U ? j0 % C::U : 0;
    vshift0 = BITS * (j0 / C::U);  // j0 % U == 0 whenever VC > U
  }
  const int vtile_bytes = D * 32 * BITS / 8;
  const int kgroups = kQuant ? D / L.key_group : 1;
  const int kgrp = kQuant ? (lane * C::CPL) / L.key_group : 0;
  const int vgroups = kQuant ? D / L.value_group : 1;
  const int vgrp = kQuant ? c0 / L.value_group : 0;
  int base = 0;  // first slot this lane holds after the in-block stages
#pragma unroll
  for (int k = 0; k < C::PS; ++k) base += ((lane >> k) & 1) * (16 >> k);

  float m[R], dl[R], zacc[R], acc[R][C::VC];
#pragma unroll
  for (int h = 0; h < R; ++h) {
    m[h] = -INFINITY;
    dl[h] = 0;
    zacc[h] = 0;
#pragma unroll
    for (int i = 0; i < C::VC; ++i) acc[h][i] = 0;
  }

  // Tile loads (kw / ks / kz for keys, vw / vs / vz for values when prefetched).
  uint32_t kw[C::KW];
  float ks[C::NV], kz[C::NV];
  constexpr int kPre = C::kPrefetchV ? C::ITERS : 1;
  uint32_t vw[kPre][C::VW];
  float vs[kPre], vz[kPre];
  auto issue_k = [&](int t) {
    const uint8_t* pg = PageOf(tier, job, t / tiles_per_page);
    const int tp = t % tiles_per_page;
    LoadWords<C::KW>(pg + L.key_data_offset + static_cast<size_t>(tp) * D * C::ROWB + lane * C::CPL * C::ROWB, kw);
    if constexpr (kQuant) {
      const size_t at = (static_cast<size_t>(tp) * kgroups + kgrp) * 32 + base;
      const uint16_t* sp = reinterpret_cast<const uint16_t*>(pg + L.key_scales_offset) + at;
      const uint16_t* zp = reinterpret_cast<const uint16_t*>(pg + L.key_zeros_offset) + at;
#pragma unroll
      for (int i = 0; i < C::NV; ++i) {
        ks[i] = H2F(__ldg(sp + i));
        kz[i] = H2F(__ldg(zp + i));
      }
    }
  };
  // One V chunk (this lane's channels of slot it * SPI + sub of tile t) with its scale and zero;
  // zeros beyond the valid slots so they contribute nothing.
  auto load_v = [&](int t, int it, uint32_t (&words)[C::VW], float& vsc, float& vze) {
    const int slot = it * C::SPI + sub;
    if (slot < min(32, n - t * 32)) {
      const uint8_t* pg = PageOf(tier, job, t / tiles_per_page);
      const int tp = t % tiles_per_page;
      LoadWords<C::VW>(pg + L.value_data_offset + static_cast<size_t>(tp) * vtile_bytes + (vu * 32 + slot) * C::VUB + voff,
                       words);
      if constexpr (kQuant) {
        const size_t sip = static_cast<size_t>(tp) * 32 + slot;
        vsc = H2F(__ldg(reinterpret_cast<const uint16_t*>(pg + L.value_scales_offset) + sip * vgroups + vgrp));
        vze = H2F(__ldg(reinterpret_cast<const uint16_t*>(pg + L.value_zeros_offset) + sip * vgroups + vgrp));
      } else {
        vsc = vze = 0;
      }
    } else {
#pragma unroll
      for (int k = 0; k < C::VW; ++k) words[k] = 0;
      vsc = vze = 0;
    }
  };
  auto issue_v = [&](int t) {
    if constexpr (C::kPrefetchV) {
#pragma unroll
      for (int it = 0; it < C::ITERS; ++it) load_v(t, it, vw[it], vs[it], vz[it]);
    }
  };
  // Loading one tile ahead (kPipe) measured slower on an H100 (int4-g128 at 32K: 0.694 vs
  // 0.636 ms; int2-g128 0.730 vs 0.562 ms, bench/results/cuda_h100.md), so it is off; the
  // loads of a tile are issued together at its start and other warps hide their latency.
  constexpr bool kPipe = false;
  if (kPipe && t_begin < t_end) {
    issue_k(t_begin);
    issue_v(t_begin);
  }

  for (int t = t_begin; t < t_end; ++t) {
    const int nvalid = min(32, n - t * 32);
    const bool more = kPipe && t + 1 < t_end;
    if (!kPipe) {
      issue_k(t);
      issue_v(t);
    }

    // K: logits of slot Brev5(lane) for every head, RC heads per pass. Passes run one after the
    // other (not unrolled): interleaving them would keep RC * 32 partial sums per pass live.
    // Quantized keys: the codes become exact f16 pairs once per tile, and each pass forms its
    // 4-channel partial products with f16x2 FMAs (f32 from the first cross-lane sum on).
    constexpr int kPasses = R / C::RC;
    constexpr bool kHoldCodes = kQuant && kPasses > 1;  // one pass: decode codes where they are used
    __half2 kh[kHoldCodes ? C::CPL : 1][16];
    if constexpr (kHoldCodes) {
#pragma unroll
      for (int c = 0; c < C::CPL; ++c)
#pragma unroll
        for (int k = 0; k < C::U / 4; ++k)
#pragma unroll
          for (int f = 0; f < 8 / BITS; ++f)
#pragma unroll
            for (int j = 0; j < 2; ++j)
              kh[c][(k * (8 / BITS) + f) * 2 + j] = CodePair<BITS>(kw[c * (C::U / 4) + k], 8 * j + BITS * f);
    }
    float ksc[C::NV], kzc[C::NV];  // this tile's key scales; ks / kz receive the next tile's
#pragma unroll
    for (int i = 0; i < C::NV; ++i) {
      ksc[i] = ks[i];
      kzc[i] = kz[i];
    }
    if (kQuant && more) issue_k(t + 1);  // kw is free once the codes are extracted
    float logit[R];
#pragma unroll 1
    for (int pass = 0; pass < kPasses; ++pass) {
      float qc[C::RC][C::CPL], qb[C::RC];
#pragma unroll
      for (int hh = 0; hh < R; ++hh)
#pragma unroll
        for (int h = 0; h < C::RC; ++h)
          if (kPasses == 1 ? hh == h : hh == pass * C::RC + h) {
#pragma unroll
            for (int c = 0; c < C::CPL; ++c) qc[h][c] = qk[hh][c];
            qb[h] = qblk[hh];
          }
      float part[C::RC][32];
      if constexpr (kQuant) {
        __half2 ph[C::RC][16];
#pragma unroll
        for (int h = 0; h < C::RC; ++h)
#pragma unroll
          for (int p = 0; p < 16; ++p) ph[h][p] = __half2(__ushort_as_half(0), __ushort_as_half(0));
#pragma unroll
        for (int c = 0; c < C::CPL; ++c) {
#pragma unroll
          for (int h = 0; h < C::RC; ++h) {
            const __half2 q2 = __float2half2_rn(qc[h][c]);
#pragma unroll
            for (int p = 0; p < 16; ++p) {
              if constexpr (kHoldCodes) {
                ph[h][p] = __hfma2(kh[c][p], q2, ph[h][p]);
              } else {  // pair p = (k, f, j) of channel row c
                const int k = p / (2 * (8 / BITS)), f = (p / 2) % (8 / BITS), j = p % 2;
                ph[h][p] = __hfma2(CodePair<BITS>(kw[c * (C::U / 4) + k], 8 * j + BITS * f), q2, ph[h][p]);
              }
            }
          }
        }
        // Pair (k, f, j) holds slots 4k + j + U f and that + 2.
#pragma unroll
        for (int h = 0; h < C::RC; ++h)
#pragma unroll
          for (int k = 0; k < C::U / 4; ++k)
#pragma unroll
            for (int f = 0; f < 8 / BITS; ++f)
#pragma unroll
              for (int j = 0; j < 2; ++j) {
                const float2 v = __half22float2(ph[h][(k * (8 / BITS) + f) * 2 + j]);
                part[h][4 * k + j + C::U * f] = v.x;
                part[h][4 * k + j + 2 + C::U * f] = v.y;
              }
      } else {
#pragma unroll
        for (int h = 0; h < C::RC; ++h)
#pragma unroll
          for (int s = 0; s < 32; ++s) part[h][s] = 0;
#pragma unroll
        for (int c = 0; c < C::CPL; ++c) {
          const uint32_t* row = kw + c * (C::ROWB / 4);
#pragma unroll
          for (int s = 0; s < 32; ++s) {
            const float kv = F16KeyValue(row, s);
#pragma unroll
            for (int h = 0; h < C::RC; ++h) part[h][s] = fmaf(qc[h][c], kv, part[h][s]);
          }
        }
      }
#pragma unroll
      for (int h = 0; h < C::RC; ++h) {
        float* v = part[h];
        if constexpr (!kQuant) {
          ReduceStage<32>(v, lane, 1);
          ReduceStage<16>(v, lane, 2);
          ReduceStage<8>(v, lane, 4);
          ReduceStage<4>(v, lane, 8);
          ReduceStage<2>(v, lane, 16);
        } else {
          ReduceStage<32>(v, lane, 1);
          ReduceStage<16>(v, lane, 2);
          ReduceStage<8>(v, lane, 4);
          if constexpr (C::PS == 4) ReduceStage<4>(v, lane, 8);
#pragma unroll
          for (int i = 0; i < C::NV; ++i) v[i] = fmaf(v[i], ksc[i], kzc[i] * qb[h]);
          if constexpr (C::PS == 3) {
            ReduceStage<4>(v, lane, 8);
            ReduceStage<2>(v, lane, 16);
          } else {
            ReduceStage<2>(v, lane, 16);
          }
        }
#pragma unroll
        for (int hh = 0; hh < R; ++hh)
          if (kPasses == 1 ? hh == h : hh == pass * C::RC + h) logit[hh] = v[0];
      }
    }
    const int my_slot = Brev5(lane);
    const bool my_valid = my_slot < nvalid;

    // Online softmax (log2 domain).
    float p[R];
#pragma unroll
    for (int h = 0; h < R; ++h) {
      const float l = my_valid ? logit[h] : -INFINITY;
      if (a.mass_logits && my_valid)
        a.mass_logits[(static_cast<int64_t>(job) * R + h) * cap + t * 32 + my_slot] = l;
      const float mn = fmaxf(m[h], WarpMax(l));
      const float alpha = exp2f(m[h] - mn);
      p[h] = exp2f(l - mn);
      dl[h] = dl[h] * alpha + p[h];
      if (mn != m[h]) {  // warp-uniform; the running max settles after a few tiles
        zacc[h] *= alpha;
#pragma unroll
        for (int i = 0; i < C::VC; ++i) acc[h][i] *= alpha;
      }
      m[h] = mn;
    }

    // V. Quantized: the tile's (p * scale) * code products of this lane's slots accumulate in
    // f16 pairs (at most ITERS terms), then join the f32 accumulators.
    __half2 vh[kQuant ? R : 1][kQuant ? C::VC / 2 : 1];
    if constexpr (kQuant) {
#pragma unroll
      for (int h = 0; h < R; ++h)
#pragma unroll
        for (int i = 0; i < C::VC / 2; ++i) vh[h][i] = __half2(__ushort_as_half(0), __ushort_as_half(0));
    }
#pragma unroll
    for (int it = 0; it < C::ITERS; ++it) {
      if (it * C::SPI >= nvalid) break;
      const int slot = it * C::SPI + sub;
      const int pi = C::kPrefetchV ? it : 0;
      if constexpr (!C::kPrefetchV) load_v(t, it, vw[0], vs[0], vz[0]);
      float pv[R];
#pragma unroll
      for (int h = 0; h < R; ++h) pv[h] = __shfl_sync(kFullMask, p[h], Brev5(slot));
      if constexpr (!kQuant) {
#pragma unroll
        for (int i = 0; i < C::VC; ++i) {
          const uint32_t wd = vw[pi][i / 2];
          const float x = __half2float(__ushort_as_half(static_cast<uint16_t>((i & 1) ? (wd >> 16) : (wd & 0xffff))));
#pragma unroll
          for (int h = 0; h < R; ++h) acc[h][i] = fmaf(pv[h], x, acc[h][i]);
        }
      } else {
        __half2 ps[R];
#pragma unroll
        for (int h = 0; h < R; ++h) {
          ps[h] = __float2half2_rn(pv[h] * vs[pi]);
          zacc[h] = fmaf(pv[h], vz[pi], zacc[h]);
        }
        // Pair (k, f, j): channels 4k + j + LB f and that + 2 of the chunk.
#pragma unroll
        for (int k = 0; k < C::VW; ++k)
#pragma unroll
          for (int f = 0; f < C::NF; ++f)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const __half2 code = CodePair<BITS>(vw[pi][k], vshift0 + 8 * j + BITS * f);
#pragma unroll
              for (int h = 0; h < R; ++h)
                vh[h][(k * C::NF + f) * 2 + j] = __hfma2(code, ps[h], vh[h][(k * C::NF + f) * 2 + j]);
            }
      }
    }
    if (more) issue_v(t + 1);
    if constexpr (kQuant) {
#pragma unroll
      for (int h = 0; h < R; ++h)
#pragma unroll
        for (int k = 0; k < C::VW; ++k)
#pragma unroll
          for (int f = 0; f < C::NF; ++f)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const float2 v = __half22float2(vh[h][(k * C::NF + f) * 2 + j]);
              acc[h][4 * k + j + C::LB * f] += v.x;
              acc[h][4 * k + j + 2 + C::LB * f] += v.y;
            }
    }
  }

  // Reduce lanes that hold the same channels (they differ in the low log2(SPI) bits), then
  // write the split's state.
#pragma unroll
  for (int mask = 1; mask < C::SPI; mask <<= 1) {
#pragma unroll
    for (int h = 0; h < R; ++h) {
      zacc[h] += __shfl_xor_sync(kFullMask, zacc[h], mask);
#pragma unroll
      for (int i = 0; i < C::VC; ++i) acc[h][i] += __shfl_xor_sync(kFullMask, acc[h][i], mask);
    }
  }
#pragma unroll
  for (int h = 0; h < R; ++h) {
    const float dsum = WarpSum(dl[h]);
    const int64_t idx = (static_cast<int64_t>(job) * R + h) * a.S_total + a.split_base + split;
    if (sub == 0) {
      float4* o = reinterpret_cast<float4*>(a.part_o + idx * D + c0);
#pragma unroll
      for (int i = 0; i < C::VC / 4; ++i)
        o[i] = make_float4(acc[h][4 * i] + zacc[h], acc[h][4 * i + 1] + zacc[h], acc[h][4 * i + 2] + zacc[h],
                           acc[h][4 * i + 3] + zacc[h]);
    }
    if (lane == 0) {
      a.part_m[idx] = m[h];
      a.part_d[idx] = dsum;
    }
  }
}

__global__ void MergeKernel(const float* part_m, const float* part_d, const float* part_o, int S, int D, float* out,
                            int64_t ld_out, int rows_per_token, float* merged_m, float* merged_d, float* stats_m,
                            float* stats_d) {
  const int row = blockIdx.x;
  const float* pm = part_m + static_cast<int64_t>(row) * S;
  const float* pd = part_d + static_cast<int64_t>(row) * S;
  float M = -INFINITY;
  for (int s = 0; s < S; ++s) M = fmaxf(M, pm[s]);
  float den = 0, num = 0;
  if (M != -INFINITY) {
    for (int s = 0; s < S; ++s) {
      const float ms = pm[s];
      if (ms == -INFINITY) continue;
      const float wgt = exp2f(ms - M);
      den += pd[s] * wgt;
      num += part_o[(static_cast<int64_t>(row) * S + s) * D + threadIdx.x] * wgt;
    }
  }
  const int tok = row / rows_per_token, within = row % rows_per_token;
  out[tok * ld_out + static_cast<int64_t>(within) * D + threadIdx.x] = den > 0 ? num / den : 0.0f;
  if (threadIdx.x == 0) {
    if (merged_m) merged_m[row] = M;
    if (merged_d) merged_d[row] = den;
    if (stats_m) stats_m[row] = M == -INFINITY ? -INFINITY : M * 0.6931471805599453f;
    if (stats_d) stats_d[row] = den;
  }
}

__global__ void MassKernel(DevTier tier, const float* L, const float* M, const float* Dn, int R, float* mass) {
  const int job = blockIdx.y;
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  const int n = tier.n_slots[job];
  if (s >= n) return;
  const int64_t cap = static_cast<int64_t>(tier.max_pages) * tier.layout.capacity;
  float sum = 0;
  for (int h = 0; h < R; ++h) {
    const int64_t row = static_cast<int64_t>(job) * R + h;
    if (Dn[row] > 0) sum += exp2f(L[row * cap + s] - M[row]) / Dn[row];
  }
  mass[job * cap + s] = sum;
}

// Blocks per SM asked of the register allocator for one query head per KV head. Measured on an
// H100 (bench/results/cuda_h100.md): 4 (16 warps per SM, a few spilled registers) makes the
// quantized tiers 10-20% faster (latency-bound, more warps hide it), 3 keeps f16 at 86% of copy
// bandwidth (4 drops it to 80%). AKV_CUDA_DECODE_MINB=3|4 forces one for experiments.
int MinBlocksR1(int bits) {
  static const int forced = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_MINB");
    return e ? std::atoi(e) : 0;
  }();
  if (forced == 3 || forced == 4) return forced;
  return bits == 16 ? 3 : 4;
}

template <int D, int BITS>
cudaError_t LaunchForR(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  const int warps = a.n_jobs * a.n_splits;
  const int blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  switch (a.R) {
    case 1:
      if (MinBlocksR1(BITS) == 4) DecodeAttentionKernel<D, BITS, 1, 4><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a);
      else DecodeAttentionKernel<D, BITS, 1, 3><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a);
      break;
    case 2: DecodeAttentionKernel<D, BITS, 2, 1><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a); break;
    case 3: DecodeAttentionKernel<D, BITS, 3, 1><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a); break;
    case 4: DecodeAttentionKernel<D, BITS, 4, 1><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a); break;
    case 6: DecodeAttentionKernel<D, BITS, 6, 1><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a); break;
    case 8: DecodeAttentionKernel<D, BITS, 8, 1><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <int D>
cudaError_t LaunchForBits(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  switch (tier.layout.bits) {
    case 16: return LaunchForR<D, 16>(tier, a, s);
    case 8: return LaunchForR<D, 8>(tier, a, s);
    case 4: return LaunchForR<D, 4>(tier, a, s);
    case 2: return LaunchForR<D, 2>(tier, a, s);
    default: return cudaErrorInvalidValue;
  }
}

template <int D, int BITS>
int WarpsPerSmForR(int R) {
  int blocks = 0;
  cudaError_t e = cudaErrorInvalidValue;
  constexpr int kT = kWarpsPerBlock * 32;
  switch (R) {
    case 1:
      e = MinBlocksR1(BITS) == 4 ? cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 1, 4>, kT, 0)
                             : cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 1, 3>, kT, 0);
      break;
    case 2: e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 2, 1>, kT, 0); break;
    case 3: e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 3, 1>, kT, 0); break;
    case 4: e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 4, 1>, kT, 0); break;
    case 6: e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 6, 1>, kT, 0); break;
    case 8: e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, DecodeAttentionKernel<D, BITS, 8, 1>, kT, 0); break;
    default: break;
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return 8;
  }
  return blocks * kWarpsPerBlock;
}

}  // namespace

int DecodeAttentionWarpsPerSm(int head_dim, int R, int bits) {
  if (!DecodeAttentionSupports(head_dim, R, bits)) return 8;
  auto by_bits = [&](auto d) -> int {
    constexpr int kD = decltype(d)::value;
    switch (bits) {
      case 16: return WarpsPerSmForR<kD, 16>(R);
      case 8: return WarpsPerSmForR<kD, 8>(R);
      case 4: return WarpsPerSmForR<kD, 4>(R);
      default: return WarpsPerSmForR<kD, 2>(R);
    }
  };
  return head_dim == 64 ? by_bits(std::integral_constant<int, 64>{}) : by_bits(std::integral_constant<int, 128>{});
}

bool DecodeAttentionSupports(int head_dim, int R, int bits) {
  return (head_dim == 64 || head_dim == 128) && (R == 1 || R == 2 || R == 3 || R == 4 || R == 6 || R == 8) &&
         (bits == 16 || bits == 8 || bits == 4 || bits == 2);
}

cudaError_t LaunchDecodeAttention(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  if (a.n_jobs <= 0 || a.n_splits <= 0) return cudaSuccess;
  if (!DecodeAttentionSupports(tier.layout.head_dim, a.R, tier.layout.bits)) return cudaErrorInvalidValue;
  return tier.layout.head_dim == 64 ? LaunchForBits<64>(tier, a, s) : LaunchForBits<128>(tier, a, s);
}

cudaError_t LaunchAttentionMerge(const float* part_m, const float* part_d, const float* part_o, int n_rows,
                                 int S_total, int D, float* out, int64_t ld_out, int rows_per_token,
                                 float* merged_m, float* merged_d, float* stats_m, float* stats_d, cudaStream_t s) {
  if (n_rows <= 0) return cudaSuccess;
  MergeKernel<<<n_rows, D, 0, s>>>(part_m, part_d, part_o, S_total, D, out, ld_out, rows_per_token, merged_m, merged_d,
                                   stats_m, stats_d);
  return cudaGetLastError();
}

cudaError_t LaunchAttentionMass(const DevTier& tier, const float* mass_logits, const float* merged_m,
                                const float* merged_d, int n_jobs, int R, float* mass, cudaStream_t s) {
  if (n_jobs <= 0) return cudaSuccess;
  const int cap = tier.max_pages * tier.layout.capacity;
  MassKernel<<<dim3((cap + 255) / 256, n_jobs), 256, 0, s>>>(tier, mass_logits, merged_m, merged_d, R, mass);
  return cudaGetLastError();
}

}  // namespace akv::cuda
