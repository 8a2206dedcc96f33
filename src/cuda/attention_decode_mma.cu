// Decode attention on the tensor cores for the int4 / int2 tiers (mma.sync.m16n8k16, f16 operands,
// f32 accumulators). Same grid and outputs as DecodeAttentionKernel (attention_decode.cu): one warp
// per (job = sequence x KV head, split), a split a contiguous range of 32-slot tiles, partial
// (m, d, o) per split and query head, optional log2 logits for the per-token mass.
//
// Each warp stages its tiles through shared memory with cp.async (two stages, as the CUDA-core
// kernel). Per tile:
//   Keys: logits = K (32 slots x D) . Q (D x columns) as two m-tiles of 16 slots, D / 16 k-steps.
//     The columns are (group, head) pairs, column = group * R + head, 8 per n-tile: a k-step of
//     group g only touches the n-tile of its columns, and the query operand holds zeros in the other
//     groups' columns, so each accumulator column is one group's partial sum for one head and the
//     per-slot (scale, zero) of every group is applied once per tile in f32:
//       q.k = sum_groups scale * sum(q * code) + zero * sum(q).
//     The A operand comes straight from the channel-major codes: for int4, ldmatrix.trans over 8
//     channel rows (16 bytes = 32 slots) gives each lane the bytes 2g, 2g+1 of two neighbouring
//     channels, i.e. two slots per byte field; int2 rows (8 bytes) are read with two 32-bit loads
//     and one byte permute to the same arrangement. One AND then leaves a code pair as a subnormal
//     f16 pair c * 2^(shift - 24), exact (the query is scaled by 2^m so its f16 is precise); the
//     tensor cores take subnormal f16 operands, and the powers of two come back out in f32.
//     Slot of accumulator row r of m-tile mu: int4 2 (r % 8) + r / 8 + 16 mu; int2 the same with
//     the byte pair of lane g % 4 and the field 2 mu + g / 4.
//   Softmax: online, log2 domain, each lane owns query heads 2t, 2t+1 (t = lane % 4) of 4 slots.
//   Values: out^T (D x heads) += V^T (D x 32 slots) . P' (32 slots x heads), P' = p * value scale
//     per group (f16, scaled by a per-warp power of two so it stays normal); P' is the probability
//     fragment transposed with movmatrix, and V^T comes from the token-major value units the same
//     way as the keys (ldmatrix.trans over slot rows for int4, permutes for int2). The zero term
//     sum p * zero is accumulated in f32 beside.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "cuda/attention_decode_mma.h"
#include "cuda/common.cuh"

namespace akv::cuda {

namespace {

constexpr int kMmaWarps = 4;

__device__ __forceinline__ uint32_t Lds32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }


template <int D, int BITS, int R, int G>
struct Mc {
  static constexpr int NG = D / G;                 // groups per token (keys and values)
  static constexpr int KSTEPS = D / 16;
  static constexpr int NT = (R * NG + 7) / 8;      // key n-tiles (columns = group * R + head)
  static constexpr int UNITS = D / 32;             // value units of 32 channels
  static constexpr int U = 4 * BITS;               // bytes of one packed unit of 32 codes (f16: a key row)
  static constexpr int KD = D * U;                 // bytes of a tile's key (and value) codes
  static constexpr int KS = BITS == 16 ? 0 : 64 * NG;  // bytes of a tile's key scales (zeros, value scales, zeros)
  static constexpr int SB = 2 * KD + 4 * KS;       // one stage
  static constexpr int NE = R == 1 ? 1 : 2;        // query heads a lane owns
  static constexpr int OFF_KS = KD, OFF_KZ = KD + KS, OFF_VD = KD + 2 * KS, OFF_VS = 2 * KD + 2 * KS,
                       OFF_VZ = 2 * KD + 3 * KS;
};

__host__ __device__ constexpr int MmaStageBytes(int D, int bits, int G) {
  return 2 * D * 4 * bits + (bits == 16 ? 0 : 4 * 64 * (D / G));
}

// int4 value tiles: 16-byte chunk (unit u, slot s) stored at u * 32 + VSwz(s), so that the 8 rows of
// an ldmatrix (slots 2i + c) hit distinct banks.
__device__ __forceinline__ int VSwz(int s) { return s ^ ((s >> 3) & 1); }

template <int D, int BITS, int R, int G>
__global__ void __launch_bounds__(kMmaWarps * 32, R >= 2 ? 3 : 4)
    DecodeAttentionMmaKernel(DevTier tier, DecodeAttnArgs a, int stages) {
  using C = Mc<D, BITS, R, G>;
  static_assert(BITS == 4 || BITS == 2 || (BITS == 16 && G == D), "int4 / int2 / f16 tiers");
  constexpr bool kF16 = BITS == 16;
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int w = blockIdx.x * kMmaWarps + (threadIdx.x >> 5);
  const int job = w / a.n_splits, split = w % a.n_splits;
  if (job >= a.n_jobs) return;
  const DevPageLayout& L = tier.layout;
  const int n = tier.n_slots[job];
  const int T = (n + 31) / 32;
  const int t_begin = static_cast<int>(static_cast<int64_t>(split) * T / a.n_splits);
  const int t_end = static_cast<int>(static_cast<int64_t>(split + 1) * T / a.n_splits);
  const int tiles_per_page = L.capacity / 32;
  const int cap = tier.max_pages * L.capacity;
  float* const mass_logits = a.mass_logits;

  // ---- Queries (log2 domain). Lane l < R * NG sums group l % NG of head l / NG (the zero term);
  // every query value is read by some lane, so the warp max gives the f16 scale 2^m.
  const float qscale = a.scale * kLog2e;
  const float* qj = a.q + static_cast<int64_t>(job) * R * D;
  float qsum = 0, qmax = 0;
  if (lane < R * C::NG) {
    const float* qr = qj + (lane / C::NG) * D + (lane % C::NG) * G;
#pragma unroll 4
    for (int i = 0; i < G; ++i) {
      const float v = qr[i] * qscale;
      qsum += v;
      qmax = fmaxf(qmax, fabsf(v));
    }
  }
  qmax = WarpMax(qmax);
  int qe = 0;
  (void)frexpf(qmax, &qe);
  const float qup = ldexpf(1.0f, 14 - qe);  // max |q| * qup in [2^13, 2^14)
  // B operand of k-step j: column g of its n-tile, channels 16 j + 2t (+1, +8, +9); zero unless the
  // column belongs to the k-step's group.
  // f16 tiers (f32 accuracy): the query as f16 high and low parts, qb and ql, two products each.
  uint32_t qb[C::KSTEPS][2], ql[kF16 ? C::KSTEPS : 1][2];
#pragma unroll
  for (int j = 0; j < C::KSTEPS; ++j) {
    const int gj = 16 * j / G;
    const int nu = gj * R / 8;
    const int col = 8 * nu + g;
    qb[j][0] = qb[j][1] = 0;
    if constexpr (kF16) ql[j][0] = ql[j][1] = 0;
    if (col / R == gj) {
      const float* qr = qj + (col % R) * D + 16 * j + 2 * t;
      const float s = qscale * qup;
      const float v[4] = {qr[0] * s, qr[1] * s, qr[8] * s, qr[9] * s};
      if constexpr (kF16) {
        SplitPair(v[0], v[1], &qb[j][0], &ql[j][0]);
        SplitPair(v[2], v[3], &qb[j][1], &ql[j][1]);
      } else {
        qb[j][0] = Pack(v[0], v[1]);
        qb[j][1] = Pack(v[2], v[3]);
      }
    }
  }
  // Zero term per accumulator column this lane holds: (n-tile nu, column 2t + e).
  float qsz[C::NT][2];
#pragma unroll
  for (int nu = 0; nu < C::NT; ++nu)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = 8 * nu + 2 * t + e, gr = col / R, h = col % R;
      const float v = __shfl_sync(kFullMask, qsum, gr < C::NG ? h * C::NG + gr : 0);
      qsz[nu][e] = gr < C::NG ? v : 0.0f;
    }

  // ---- Per-lane geometry.
  // Byte field of m-tile mu (keys) / mu' (values): int4 mu; int2 2 mu + g / 4.
  uint32_t fmask[2];
  float kunit[2], vfield[2];
  int sb[2], vch[2];
#pragma unroll
  for (int mu = 0; mu < 2; ++mu) {
    const int f = BITS == 4 ? mu : 2 * mu + g / 4;
    fmask[mu] = (((1u << BITS) - 1u) * 0x00010001u) << (BITS * f);
    kunit[mu] = ldexpf(1.0f, 24 - BITS * f) / qup;
    vfield[mu] = ldexpf(1.0f, 24 - BITS * f);
    // Key rows g, g + 8 of m-tile mu hold slots sb, sb + sstep; value rows g, g + 8 channels vch, vch + cstep.
    sb[mu] = BITS == 16 ? g + 16 * mu : BITS == 4 ? 2 * g + 16 * mu : 2 * (g % 4) + 8 * (g / 4) + 16 * mu;
    vch[mu] = BITS == 16 ? g + 16 * mu : BITS == 4 ? 2 * g + 16 * mu : 2 * (g % 4) + 8 * f;
    if constexpr (kF16) kunit[mu] = 1.0f / qup;
  }
  constexpr int sstep = kF16 ? 8 : 1, cstep = kF16 ? 8 : 1;
  const int w2 = (g % 4) / 2;  // int2: word of the lane's byte pair in a row
  const uint32_t sel = (g % 2) ? 0x7632u : 0x5410u;  // int2: bytes 2h, 2h+1 of both words
  // int4 values: this lane's ldmatrix row address (matrix l / 8 = 2 mu + half, row l % 8 -> slot
  // 2 (l % 8) + half + 16 mu).
  const int vrow = VSwz(2 * (lane % 8) + ((lane / 8) & 1) + 16 * (lane / 16));

  float m[C::NE], dl[C::NE], zacc[C::NE][C::NG], cv[C::UNITS][2][4];
#pragma unroll
  for (int e = 0; e < C::NE; ++e) {
    m[e] = -INFINITY;
    dl[e] = 0;
#pragma unroll
    for (int k = 0; k < C::NG; ++k) zacc[e][k] = 0;
  }
#pragma unroll
  for (int u = 0; u < C::UNITS; ++u)
#pragma unroll
    for (int mu = 0; mu < 2; ++mu)
#pragma unroll
      for (int i = 0; i < 4; ++i) cv[u][mu][i] = 0;
  float vup = 0;  // value scales are multiplied by vup (a power of two) before f16; 0 until the first tile

  // ---- Staging.
  extern __shared__ uint4 smem_mma[];
  uint8_t* const ring = reinterpret_cast<uint8_t*>(smem_mma) + static_cast<size_t>(threadIdx.x >> 5) * stages * C::SB;
  int cp_page = t_begin / tiles_per_page, cp_tp = t_begin % tiles_per_page;
  const uint8_t* cp_pg = t_begin < t_end ? PageOf(tier, job, cp_page) : nullptr;
  // Scales and zeros: 4 sections of KS / 16 chunks; this lane's chunks (loop-invariant addresses).
  constexpr int kPer = kF16 ? 1 : C::KS / 16, kSc = kF16 ? 0 : 4 * kPer, kScIters = kF16 ? 1 : (kSc + 31) / 32;
  uint32_t sc_src[kScIters];
  int sc_dst[kScIters];
#pragma unroll
  for (int i = 0; i < kScIters; ++i) {
    const int c = max(0, min(lane + 32 * i, kSc - 1)), sec = c / kPer, off = c % kPer;
    sc_src[i] = (sec == 0 ? L.key_scales_offset
                 : sec == 1 ? L.key_zeros_offset
                 : sec == 2 ? L.value_scales_offset
                            : L.value_zeros_offset) + off * 16;
    sc_dst[i] = (sec == 0 ? C::OFF_KS : sec == 1 ? C::OFF_KZ : sec == 2 ? C::OFF_VS : C::OFF_VZ) + off * 16;
  }
  auto copy_tile = [&](uint8_t* dst) {
    const uint8_t* pg = cp_pg;
    const int tp = cp_tp;
    if (++cp_tp == tiles_per_page) {
      cp_tp = 0;
      ++cp_page;
      if (cp_page * tiles_per_page < T) cp_pg = PageOf(tier, job, cp_page);
    }
    const uint8_t* gk = pg + L.key_data_offset + static_cast<size_t>(tp) * C::KD;
    const uint8_t* gv = pg + L.value_data_offset + static_cast<size_t>(tp) * C::KD;
#pragma unroll
    for (int i = 0; i < C::KD / 16 / 32; ++i) {
      const int c = lane + 32 * i;
      // f16 keys: 16-byte chunk q of channel row r at r * 4 + (q ^ (r / 2 % 4)); f16 values: chunk q of
      // slot s of a 16-channel unit at s * 2 + (q ^ (s / 4 % 2)) (8 ldmatrix rows on distinct banks).
      const int kc = kF16 ? (c & ~3) + ((c & 3) ^ ((c >> 3) & 3)) : c;
      CpAsync16(dst + kc * 16, gk + c * 16);
      const int vc = kF16 ? (c & ~1) + ((c & 1) ^ ((c >> 3) & 1)) : BITS == 4 ? (c & ~31) + VSwz(c & 31) : c;
      CpAsync16(dst + C::OFF_VD + vc * 16, gv + c * 16);
    }
#pragma unroll
    for (int i = 0; i < kScIters; ++i)
      if (lane + 32 * i < kSc) CpAsync16(dst + sc_dst[i], pg + sc_src[i] + static_cast<size_t>(tp) * C::KS);
  };
  for (int k = 0; k < stages - 1; ++k) {
    if (t_begin + k < t_end) copy_tile(ring + k * C::SB);
    CpAsyncCommit();
  }
  int stage = 0;

  for (int tt = t_begin; tt < t_end; ++tt) {
    const int nvalid = min(32, n - tt * 32);
    CpAsyncWait(stages - 2);
    __syncwarp();
    if (tt + stages - 1 < t_end) copy_tile(ring + (stage == 0 ? stages - 1 : stage - 1) * C::SB);
    CpAsyncCommit();
    const uint8_t* cur = ring + stage * C::SB;
    stage = stage + 1 == stages ? 0 : stage + 1;
    // The tile's work, specialised for full tiles (every slot valid: no masks) and the last one.
    auto tile = [&](auto full_tag) {
    constexpr bool kFull = decltype(full_tag)::value;

    // ---- Keys: accumulators [m-tile][n-tile].
    float kc[2][C::NT][4];
#pragma unroll
    for (int mu = 0; mu < 2; ++mu)
#pragma unroll
      for (int nu = 0; nu < C::NT; ++nu)
#pragma unroll
        for (int i = 0; i < 4; ++i) kc[mu][nu][i] = 0;
    if constexpr (kF16) {
      // ldmatrix.trans of 8 channel rows x 8 slots gives the A fragment directly (f16 keys).
#pragma unroll
      for (int j = 0; j < C::KSTEPS; ++j) {
#pragma unroll
        for (int mu = 0; mu < 2; ++mu) {
          const int mi = lane / 8, row = 16 * j + 8 * (mi / 2) + lane % 8, q = 2 * mu + (mi & 1);
          uint32_t A[4];
          LdsmX4T(A, cur + row * 64 + ((q ^ ((row >> 1) & 3)) * 16));
          Mma(kc[mu][0], A[0], A[1], A[2], A[3], qb[j][0], qb[j][1]);
          Mma(kc[mu][0], A[0], A[1], A[2], A[3], ql[j][0], ql[j][1]);
        }
      }
    } else if constexpr (BITS == 4) {
#pragma unroll
      for (int p = 0; p < D / 32; ++p) {
        uint32_t X[4];
        LdsmX4T(X, cur + (32 * p + lane) * 16);
#pragma unroll
        for (int hj = 0; hj < 2; ++hj) {
          const int j = 2 * p + hj;
          const int nu = (16 * j / G) * R / 8;
          const uint32_t x0 = X[2 * hj], x1 = X[2 * hj + 1];
          const uint32_t y0 = x0 >> 8, y1 = x1 >> 8;
#pragma unroll
          for (int mu = 0; mu < 2; ++mu)
            Mma(kc[mu][nu], x0 & fmask[mu], y0 & fmask[mu], x1 & fmask[mu], y1 & fmask[mu], qb[j][0], qb[j][1]);
        }
      }
    } else {
#pragma unroll
      for (int j = 0; j < C::KSTEPS; ++j) {
        const int nu = (16 * j / G) * R / 8;
        uint32_t x[2];
#pragma unroll
        for (int e2 = 0; e2 < 2; ++e2) {
          const int c = 16 * j + 2 * t + 8 * e2;
          x[e2] = __byte_perm(Lds32(cur + c * 8 + 4 * w2), Lds32(cur + (c + 1) * 8 + 4 * w2), sel);
        }
        const uint32_t y0 = x[0] >> 8, y1 = x[1] >> 8;
#pragma unroll
        for (int mu = 0; mu < 2; ++mu)
          Mma(kc[mu][nu], x[0] & fmask[mu], y0 & fmask[mu], x[1] & fmask[mu], y1 & fmask[mu], qb[j][0], qb[j][1]);
      }
    }

    // ---- Scales and zeros per (slot, group): logits lg[mu][half][e] (log2 domain) of head 2t + e
    // (heads (2t + e) % R before the reduction below).
    float lg[2][2][C::NE];
#pragma unroll
    for (int mu = 0; mu < 2; ++mu) {
      float s1[2][2] = {{0, 0}, {0, 0}}, s2[2][2] = {{0, 0}, {0, 0}};
      if constexpr (kF16) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          s1[0][C::NE > 1 ? e : 0] += kc[mu][0][e];
          s1[1][C::NE > 1 ? e : 0] += kc[mu][0][2 + e];
        }
      } else if constexpr (R == 1) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int gr = min(2 * t + e, C::NG - 1);
          const float2 ks = __half22float2(*reinterpret_cast<const __half2*>(cur + C::OFF_KS + (gr * 32 + sb[mu]) * 2));
          const float2 kz = __half22float2(*reinterpret_cast<const __half2*>(cur + C::OFF_KZ + (gr * 32 + sb[mu]) * 2));
          s1[0][0] = fmaf(ks.x, kc[mu][0][e], s1[0][0]);
          s1[1][0] = fmaf(ks.y, kc[mu][0][2 + e], s1[1][0]);
          s2[0][0] = fmaf(kz.x, qsz[0][e], s2[0][0]);
          s2[1][0] = fmaf(kz.y, qsz[0][e], s2[1][0]);
        }
      } else {
#pragma unroll
        for (int nu = 0; nu < C::NT; ++nu) {
          const int gr = min((8 * nu + 2 * t) / R, C::NG - 1);
          const float2 ks = __half22float2(*reinterpret_cast<const __half2*>(cur + C::OFF_KS + (gr * 32 + sb[mu]) * 2));
          const float2 kz = __half22float2(*reinterpret_cast<const __half2*>(cur + C::OFF_KZ + (gr * 32 + sb[mu]) * 2));
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            s1[0][e] = fmaf(ks.x, kc[mu][nu][e], s1[0][e]);
            s1[1][e] = fmaf(ks.y, kc[mu][nu][2 + e], s1[1][e]);
            s2[0][e] = fmaf(kz.x, qsz[nu][e], s2[0][e]);
            s2[1][e] = fmaf(kz.y, qsz[nu][e], s2[1][e]);
          }
        }
      }
#pragma unroll
      for (int hf = 0; hf < 2; ++hf)
#pragma unroll
        for (int e = 0; e < C::NE; ++e) lg[mu][hf][e] = fmaf(s1[hf][e], kunit[mu], s2[hf][e]);
    }
    // Lanes of a quad holding other groups of the same heads: R = 1, 2 all four, R = 4 pairs t, t ^ 2.
#pragma unroll
    for (int mu = 0; mu < 2; ++mu)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf)
#pragma unroll
        for (int e = 0; e < C::NE; ++e) {
          float v = lg[mu][hf][e];
          if constexpr (R <= 2) v += __shfl_xor_sync(kFullMask, v, 1);
          if constexpr (R <= 4) v += __shfl_xor_sync(kFullMask, v, 2);
          lg[mu][hf][e] = v;
        }

    // ---- Online softmax. Slot validity, mass logits.
    bool valid[2][2];
    float lmax[C::NE];
#pragma unroll
    for (int e = 0; e < C::NE; ++e) lmax[e] = -INFINITY;
#pragma unroll
    for (int mu = 0; mu < 2; ++mu)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int slot = sb[mu] + sstep * hf;
        valid[mu][hf] = kFull || slot < nvalid;
#pragma unroll
        for (int e = 0; e < C::NE; ++e) {
          const float l = valid[mu][hf] ? lg[mu][hf][e] : -INFINITY;
          lg[mu][hf][e] = l;
          lmax[e] = fmaxf(lmax[e], l);
        }
      }
    if (mass_logits) {
#pragma unroll
      for (int mu = 0; mu < 2; ++mu)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf)
#pragma unroll
          for (int e = 0; e < C::NE; ++e)
            if (valid[mu][hf] && 2 * t + e < R)
              mass_logits[(static_cast<int64_t>(job) * R + 2 * t + e) * cap + tt * 32 + sb[mu] + sstep * hf] = lg[mu][hf][e];
    }
    bool raise = false;
#pragma unroll
    for (int e = 0; e < C::NE; ++e) raise |= lmax[e] > m[e];
    if (__any_sync(kFullMask, raise)) {  // rare once the running max settles
#pragma unroll
      for (int e = 0; e < C::NE; ++e) {
        float tm = lmax[e];
        tm = fmaxf(tm, __shfl_xor_sync(kFullMask, tm, 4));
        tm = fmaxf(tm, __shfl_xor_sync(kFullMask, tm, 8));
        tm = fmaxf(tm, __shfl_xor_sync(kFullMask, tm, 16));
        const float mn = fmaxf(m[e], tm);
        const float alpha = mn == -INFINITY ? 1.0f : exp2f(m[e] - mn);
        m[e] = mn;
        dl[e] *= alpha;
#pragma unroll
        for (int k = 0; k < C::NG; ++k) zacc[e][k] *= alpha;
#pragma unroll
        for (int u = 0; u < C::UNITS; ++u)
#pragma unroll
          for (int mu = 0; mu < 2; ++mu) {
            cv[u][mu][e] *= alpha;
            cv[u][mu][2 + e] *= alpha;
          }
      }
    }
    float p[2][2][C::NE];
#pragma unroll
    for (int mu = 0; mu < 2; ++mu)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf)
#pragma unroll
        for (int e = 0; e < C::NE; ++e) {
          p[mu][hf][e] = valid[mu][hf] ? exp2f(lg[mu][hf][e] - m[e]) : 0.0f;
          dl[e] += p[mu][hf][e];
        }

    if constexpr (!kF16) {
    // ---- Value scales and zeros of this lane's slots as raw f16 words (zero for slots past the end;
    // scales are >= 0, so the largest is the largest 16-bit pattern).
    constexpr int VW = (C::NG + 1) / 2;
    uint32_t vsw[2][2][VW], vzw[2][2][VW];
    uint32_t vmaxw = 0;
#pragma unroll
    for (int mu = 0; mu < 2; ++mu)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int slot = sb[mu] + hf;
        const uint8_t* sp = cur + C::OFF_VS + slot * C::NG * 2;
        const uint8_t* zp = cur + C::OFF_VZ + slot * C::NG * 2;
        if constexpr (C::NG == 1) {
          vsw[mu][hf][0] = *reinterpret_cast<const uint16_t*>(sp);
          vzw[mu][hf][0] = *reinterpret_cast<const uint16_t*>(zp);
        } else if constexpr (C::NG == 2) {
          vsw[mu][hf][0] = Lds32(sp);
          vzw[mu][hf][0] = Lds32(zp);
        } else {
          const uint2 a2 = *reinterpret_cast<const uint2*>(sp), b2 = *reinterpret_cast<const uint2*>(zp);
          vsw[mu][hf][0] = a2.x;
          vsw[mu][hf][1] = a2.y;
          vzw[mu][hf][0] = b2.x;
          vzw[mu][hf][1] = b2.y;
        }
#pragma unroll
        for (int k = 0; k < VW; ++k) {
          if (!kFull && !valid[mu][hf]) vsw[mu][hf][k] = vzw[mu][hf][k] = 0;
          vmaxw = __vmaxu2(vmaxw, vsw[mu][hf][k]);
        }
      }
    const float vmax = H2F(static_cast<uint16_t>(max(vmaxw & 0xffffu, vmaxw >> 16)));
    auto half_at = [](const uint32_t* words, int k) { return H2F(static_cast<uint16_t>(words[k / 2] >> (16 * (k % 2)))); };
    if (__any_sync(kFullMask, vup == 0.0f || vmax * vup > 16384.0f)) {  // first tile, or a much larger scale
      const float wm = WarpMax(vmax);
      if (wm > 0) {
        int ve = 0;
        (void)frexpf(wm, &ve);
        const float nup = ldexpf(1.0f, 11 - ve);  // wm * nup in [2^10, 2^11)
        if (vup > 0) {
          const float r = nup / vup;
#pragma unroll
          for (int u = 0; u < C::UNITS; ++u)
#pragma unroll
            for (int mu = 0; mu < 2; ++mu)
#pragma unroll
              for (int i = 0; i < 4; ++i) cv[u][mu][i] *= r;
        }
        vup = nup;
      } else if (vup == 0.0f) {
        vup = 1.0f;
      }
    }
#pragma unroll
    for (int e = 0; e < C::NE; ++e)
#pragma unroll
      for (int k = 0; k < C::NG; ++k) {
        float z = zacc[e][k];
#pragma unroll
        for (int mu = 0; mu < 2; ++mu)
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) z = fmaf(p[mu][hf][e], half_at(vzw[mu][hf], k), z);
        zacc[e][k] = z;
      }

    // ---- Values. B operands (p * scale * vup, transposed) per group; A from the codes per unit.
    uint32_t B[2][2];
#pragma unroll
    for (int u = 0; u < C::UNITS; ++u) {
      const int gv = 32 * u / G;
      if ((32 * u) % G == 0) {
#pragma unroll
        for (int mu = 0; mu < 2; ++mu)
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const float s = half_at(vsw[mu][hf], gv) * vup;
            const float p0 = 2 * t < R ? p[mu][hf][0] * s : 0.0f;
            const float p1 = C::NE > 1 && 2 * t + 1 < R ? p[mu][hf][C::NE - 1] * s : 0.0f;
            B[mu][hf] = MovT(Pack(p0, p1));
          }
      }
      uint32_t X[2][2];  // [k-step mu][half]
      if constexpr (BITS == 4) {
        uint32_t Y[4];
        LdsmX4T(Y, cur + C::OFF_VD + (u * 32 + vrow) * 16);
        X[0][0] = Y[0];
        X[0][1] = Y[1];
        X[1][0] = Y[2];
        X[1][1] = Y[3];
      } else {
#pragma unroll
        for (int mu = 0; mu < 2; ++mu)
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const int s0 = 4 * t + hf + 16 * mu;
            const uint8_t* vb = cur + C::OFF_VD + (u * 32 + s0) * 8 + 4 * w2;
            X[mu][hf] = __byte_perm(Lds32(vb), Lds32(vb + 16), sel);
          }
      }
#pragma unroll
      for (int mu = 0; mu < 2; ++mu) {
        const uint32_t x0 = X[mu][0], x1 = X[mu][1], y0 = x0 >> 8, y1 = x1 >> 8;
#pragma unroll
        for (int mv = 0; mv < 2; ++mv)
          Mma(cv[u][mv], x0 & fmask[mv], y0 & fmask[mv], x1 & fmask[mv], y1 & fmask[mv], B[mu][0], B[mu][1]);
      }
    }
    } else {
      // f16 values: B = p as f16 high and low parts (transposed); A = ldmatrix.trans of 8 slots x 8
      // channels of a 16-channel unit, per m-tile of 16 channels and k-step of 16 slots.
      uint32_t Bh[2][2], Bl[2][2];
#pragma unroll
      for (int mu = 0; mu < 2; ++mu)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const float p0 = 2 * t < R ? p[mu][hf][0] : 0.0f;
          const float p1 = C::NE > 1 && 2 * t + 1 < R ? p[mu][hf][C::NE - 1] : 0.0f;
          uint32_t hi, lo;
          SplitPair(p0, p1, &hi, &lo);
          Bh[mu][hf] = MovT(hi);
          Bl[mu][hf] = MovT(lo);
        }
#pragma unroll
      for (int mt = 0; mt < D / 16; ++mt)
#pragma unroll
        for (int mu = 0; mu < 2; ++mu) {
          const int mi = lane / 8, slot = 16 * mu + 8 * (mi / 2) + lane % 8, q = mi & 1;
          uint32_t A[4];
          LdsmX4T(A, cur + C::OFF_VD + mt * 1024 + slot * 32 + ((q ^ ((slot >> 2) & 1)) * 16));
          Mma(cv[mt / 2][mt % 2], A[0], A[1], A[2], A[3], Bh[mu][0], Bh[mu][1]);
          Mma(cv[mt / 2][mt % 2], A[0], A[1], A[2], A[3], Bl[mu][0], Bl[mu][1]);
        }
    }
    };
    if (nvalid == 32) tile(std::true_type{});
    else tile(std::false_type{});
  }

  // ---- Reduce over the slot lanes (g), write the split's state.
#pragma unroll
  for (int e = 0; e < C::NE; ++e) {
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
      dl[e] += __shfl_xor_sync(kFullMask, dl[e], o);
#pragma unroll
      for (int k = 0; k < C::NG; ++k) zacc[e][k] += __shfl_xor_sync(kFullMask, zacc[e][k], o);
    }
  }
  const float inv = vup > 0 ? 1.0f / vup : 0.0f;
#pragma unroll
  for (int e = 0; e < C::NE; ++e) {
    const int h = 2 * t + e;
    if (h >= R) continue;
    const int64_t idx = (static_cast<int64_t>(job) * R + h) * a.S_total + a.split_base + split;
    float* o = a.part_o + idx * D;
#pragma unroll
    for (int u = 0; u < C::UNITS; ++u)
#pragma unroll
      for (int mv = 0; mv < 2; ++mv) {
        const int ch = 32 * u + vch[mv];
        const float z = kF16 ? 0.0f : zacc[e][32 * u / G];
        const float f = kF16 ? 1.0f : vfield[mv] * inv;
        o[ch] = fmaf(cv[u][mv][e], f, z);
        o[ch + cstep] = fmaf(cv[u][mv][2 + e], f, z);
      }
    if (g == 0) {
      a.part_m[idx] = m[e];
      a.part_d[idx] = dl[e];
    }
  }
}

// ---- Launch.

bool MmaEnabled() {
  static const bool on = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_MMA");
    return !(e && e[0] == '0');
  }();
  return on;
}

// Stages per warp: AKV_CUDA_DECODE_MMA_STAGES=2..5 forces a count; by default the count with the
// most resident warps, and at equal occupancy the fewest stages (more only when one or two blocks
// fit). Measured on the H200 (bench/results/cuda_h200_mma_stages_run.log, batch 8 x 32 heads, 16K):
// int4-g32 2 stages 0.180 ms (16 warps/SM) vs 5 stages 0.193 (8 warps/SM); int2 within 2% for 2..5.
constexpr int kMaxMmaStages = 5;
int MmaForcedStages() {
  static const int st = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_MMA_STAGES");
    const int v = e ? std::atoi(e) : 0;
    return v >= 2 && v <= kMaxMmaStages ? v : 0;
  }();
  return st;
}

bool MmaForR1Int2() {  // AKV_CUDA_DECODE_MMA=2: the tensor-core kernel for R = 1 int2 as well
  static const bool on = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_MMA");
    return e && e[0] == '2';
  }();
  return on;
}

bool MmaF16() {  // AKV_CUDA_DECODE_MMA_F16=0: f16 tiers keep the CUDA-core kernel for every R
  static const bool on = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_MMA_F16");
    return !(e && e[0] == '0');
  }();
  return on;
}

struct MmaPlan {
  int stages = 0, smem = 0, blocks = 0;
};

template <int D, int BITS, int R, int G>
MmaPlan GetMmaPlan() {
  static std::atomic<uint64_t> cached{0};
  uint64_t v = cached.load(std::memory_order_relaxed);
  if (v == 0) {
    MmaPlan p;
    auto* k = DecodeAttentionMmaKernel<D, BITS, R, G>;
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess &&
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, optin) == cudaSuccess &&
        cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout, 100) == cudaSuccess) {
      const int forced = MmaForcedStages();
      for (int st = 2; st <= kMaxMmaStages; ++st) {
        if (forced && st != forced) continue;
        const int smem = kMmaWarps * st * MmaStageBytes(D, BITS, G);
        int b = 0;
        if (smem > optin || cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, k, kMmaWarps * 32, smem) != cudaSuccess ||
            b == 0)
          continue;
        // More resident warps first; at equal occupancy fewer stages, unless the occupancy is low
        // (f16 stages of 16 KB: one block per multiprocessor), where more tiles in flight help.
        if (p.blocks == 0 || b > p.blocks || (b == p.blocks && b <= 2)) p = {st, smem, b};
      }
    }
    (void)cudaGetLastError();
    if (std::getenv("AKV_CUDA_DECODE_MMA_PLAN"))
      std::fprintf(stderr, "[mma plan] D=%d bits=%d R=%d G=%d: %d stages, %d B smem, %d blocks/SM\n", D, BITS, R, G,
                   p.stages, p.smem, p.blocks);
    v = (uint64_t{1} << 63) | (static_cast<uint64_t>(p.stages) << 48) | (static_cast<uint64_t>(p.blocks) << 32) |
        static_cast<uint32_t>(p.smem);
    cached.store(v, std::memory_order_relaxed);
  }
  return {static_cast<int>((v >> 48) & 0x7fff), static_cast<int>(v & 0xffffffffu), static_cast<int>((v >> 32) & 0xffff)};
}

template <int D, int BITS, int R, int G>
cudaError_t LaunchMma(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  const MmaPlan p = GetMmaPlan<D, BITS, R, G>();
  if (p.stages == 0) return cudaErrorInvalidConfiguration;
  const int warps = a.n_jobs * a.n_splits;
  const int blocks = (warps + kMmaWarps - 1) / kMmaWarps;
  DecodeAttentionMmaKernel<D, BITS, R, G><<<blocks, kMmaWarps * 32, p.smem, s>>>(tier, a, p.stages);
  return cudaGetLastError();
}

template <int D, int BITS, int R>
cudaError_t LaunchForGroup(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  if constexpr (BITS == 16) {
    return LaunchMma<D, 16, R, D>(tier, a, s);
  } else {
  switch (tier.layout.key_group) {
    case 32: return LaunchMma<D, BITS, R, 32>(tier, a, s);
    case 64: return LaunchMma<D, BITS, R, 64>(tier, a, s);
    default:
      if constexpr (D == 128) return LaunchMma<D, BITS, R, 128>(tier, a, s);
      return cudaErrorInvalidValue;
  }
  }
}

template <int D, int BITS>
cudaError_t LaunchForR(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  switch (a.R) {
    case 1: return LaunchForGroup<D, BITS, 1>(tier, a, s);
    case 2: return LaunchForGroup<D, BITS, 2>(tier, a, s);
    case 4: return LaunchForGroup<D, BITS, 4>(tier, a, s);
    default: return LaunchForGroup<D, BITS, 8>(tier, a, s);
  }
}

template <int D>
cudaError_t LaunchForBits(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  switch (tier.layout.bits) {
    case 16: return LaunchForR<D, 16>(tier, a, s);
    case 4: return LaunchForR<D, 4>(tier, a, s);
    default: return LaunchForR<D, 2>(tier, a, s);
  }
}

template <int D, int BITS>
int WarpsForR(int R) {
  constexpr int G = BITS == 16 ? D : 32;
  MmaPlan p;
  switch (R) {
    case 1: p = GetMmaPlan<D, BITS, 1, G>(); break;
    case 2: p = GetMmaPlan<D, BITS, 2, G>(); break;
    case 4: p = GetMmaPlan<D, BITS, 4, G>(); break;
    default: p = GetMmaPlan<D, BITS, 8, G>(); break;
  }
  return p.blocks > 0 ? p.blocks * kMmaWarps : 8;
}

}  // namespace

// f16 tiers (R > 1): f32-accurate products from high and low f16 parts of the query and of p.
// R = 1 int2 (and f16) stays on the CUDA-core kernel: on the H200 it was faster there (int2-g32 at 16K 0.152 vs
// 0.175 ms; both are bound by instructions, bench/results/cuda_h200.md).
bool DecodeAttentionMmaApplies(int head_dim, int R, int bits) {
  return MmaEnabled() && (head_dim == 64 || head_dim == 128) && (R == 1 || R == 2 || R == 4 || R == 8) &&
         (bits == 4 || (bits == 2 && (R > 1 || MmaForR1Int2())) || (bits == 16 && MmaF16() && (R > 1 || MmaForR1Int2())));
}

bool DecodeAttentionMmaApplies(const DevPageLayout& l, int R) {
  if (!DecodeAttentionMmaApplies(l.head_dim, R, l.bits) || l.capacity % 32 != 0) return false;
  return l.bits == 16 || (l.key_group == l.value_group && (l.key_group == 32 || l.key_group == 64 || l.key_group == 128) &&
                          l.key_group <= l.head_dim);
}

cudaError_t LaunchDecodeAttentionMma(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  if (a.n_jobs <= 0 || a.n_splits <= 0) return cudaSuccess;
  if (!DecodeAttentionMmaApplies(tier.layout, a.R)) return cudaErrorInvalidValue;
  return tier.layout.head_dim == 64 ? LaunchForBits<64>(tier, a, s) : LaunchForBits<128>(tier, a, s);
}

int DecodeAttentionMmaWarpsPerSm(int head_dim, int R, int bits) {
  if (!DecodeAttentionMmaApplies(head_dim, R, bits)) return 8;
  if (head_dim == 64) return bits == 16 ? WarpsForR<64, 16>(R) : bits == 4 ? WarpsForR<64, 4>(R) : WarpsForR<64, 2>(R);
  return bits == 16 ? WarpsForR<128, 16>(R) : bits == 4 ? WarpsForR<128, 4>(R) : WarpsForR<128, 2>(R);
}

}  // namespace akv::cuda
