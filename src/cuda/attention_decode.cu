// Fused mixed-precision decode attention (flash-decoding, split-K), one launch per tier:
// one warp per (job = sequence x KV head, split); a split is a contiguous range of 32-slot tiles.
// The R query heads of the job share every tile load (GQA: each K/V byte is read once per group).
//
// Quantized tiers (PIPE): each warp copies its next tile (codes, scales, zeros) into its own
// shared-memory stage with cp.async while it computes the current one (two stages), so loads are
// in flight without holding registers; f16 tiers read global memory directly.
//
// Per tile (32 slots):
//   K: lane l holds channels [l*CPL, (l+1)*CPL) of all 32 slots (one channel row of the page's
//      channel-major key tile = one unit of 32 codes, so a lane's rows are contiguous bytes).
//      Each lane forms 32 partial dot products per head; a transposing butterfly (reduce-scatter,
//      31 shuffles) leaves lane l with the full logit of slot Brev5(l). Quantized keys: the first
//      stages reduce within a 32-channel block, whose (scale, zero) per slot is then applied:
//      q.k = scale * sum(q * code) + zero * sum(q), so codes never become floats twice.
//      Codes become f16 pairs with one AND (CodePairRaw: the field's bits as a subnormal f16,
//      c * 2^(s - 24), exact); the query is scaled by 2^m so that the f16x2 products over a lane's
//      channels are normal numbers; everything from the first cross-lane sum on is f32, where the
//      powers of two are removed with the key scale.
//   Online softmax update (log2 domain) per head; the tile max is reduced across the warp only
//      when a vote says some logit exceeds the running max.
//   V: the page's value tile is [D / unit][32 slots][unit] (kv/codecs/page_layout.h); a lane takes
//      VC channels of one slot per iteration (16-byte or smaller loads, consecutive lanes on
//      consecutive slots of a unit). De-quantization is folded into the weights:
//      sum p (code * s + z) = sum (p s) code + sum p z; the (p s) * code products of one tile
//      accumulate in f16 pairs (at most D / VC terms) before joining f32 accumulators (staged
//      tiers with R <= 2: raw subnormal codes, weights scaled per lane and tile by 2^M).
// At the end the lanes holding the same channels are reduced and the split's (m, d, o) written.
// Nothing de-quantized reaches memory; the partial states are merged by LaunchAttentionMerge.
// f16 tiers use f32 arithmetic throughout.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <type_traits>

#include "cuda/attention_decode_mma.h"
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

// Two codes as an exact half2, taken in place: the `bits`-wide fields at bit `s` of bytes 0 and 2
// of w (s + bits <= 8) as the f16 pair c * 2^s (0x6400 | c << s is 1024 + c * 2^s, exact below 2048). One mask and one
// subtraction a pair, no shift: the 2^s is removed later, in f32, from a whole partial sum (for
// bytes 1 and 3 pass w >> 8, one shift a word).
template <int BITS>
__device__ __forceinline__ __half2 CodePairAt(uint32_t w, int s) {
  constexpr uint32_t kMask = ((1u << BITS) - 1u) * 0x00010001u;
  const uint32_t raw = (w & (kMask << s)) | 0x64006400u;
  return __hsub2(*reinterpret_cast<const __half2*>(&raw), __half2(__ushort_as_half(0x6400), __ushort_as_half(0x6400)));
}

// The same fields as subnormal f16 values, one AND a pair: the bits of c << s with a zero exponent
// are the f16 c * 2^(s - 24), exactly. The keys multiply them with queries scaled by 2^m (KeyScale)
// so the products are normal numbers again; 2^(24 - m - s) is removed in f32 with the key scale.
template <int BITS>
__device__ __forceinline__ __half2 CodePairRaw(uint32_t w, int s) {
  constexpr uint32_t kMask = ((1u << BITS) - 1u) * 0x00010001u;
  const uint32_t raw = w & (kMask << s);
  return *reinterpret_cast<const __half2*>(&raw);
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

// ---- cp.async staging (PIPE): each warp copies its next tiles into its own shared-memory ring
// of `stages` buffers while it computes the current one, so several tiles' loads are in flight
// per warp without holding registers. A stage holds one tile's sections as the page stores them:
//   K data [KD] | K scales [KS] | K zeros [KS] | V data [KD] | V scales [VS] | V zeros [VS]
// (KS = 64 * D / key_group, VS = 64 * D / value_group bytes). The K data's 16-byte chunks are
// XOR-swizzled inside each lane's row group so that the 16-byte reads of 8 consecutive lanes hit
// distinct banks; int2 value units (8 bytes a slot) get a swizzle for the same reason.

constexpr int kMaxStages = 5;

template <int D, int BITS>
struct StageGeom {
  static constexpr int KD = D * 32 * BITS / 8;  // bytes of one tile's key (and value) codes
  static constexpr int CH = D * BITS / 128;     // 16-byte chunks of one lane's K rows
  static constexpr bool kVSwizzle = BITS == 2;  // 8-byte value units
};
__host__ __device__ constexpr int StageBytes(int D, int bits, int kgroups, int vgroups) {
  return 2 * (D * 32 * bits / 8) + 2 * 64 * kgroups + 2 * 64 * vgroups;
}
// K chunk j of lane-row l is stored at l * CH + (j ^ KSwz(l)).
template <int CH>
__device__ __forceinline__ int KSwz(int l) {
  if constexpr (CH <= 1) return 0;
  else return (l / (CH >= 8 ? 1 : 8 / CH)) & (CH - 1);
}
// Byte offset of value byte b of a tile in shared memory.
template <bool kSwz>
__device__ __forceinline__ int VSmemByte(int b) {
  if constexpr (!kSwz) return b;
  else return b ^ (((b >> 8) & 1) << 6);  // chunk q -> q ^ (((q >> 4) & 1) << 2)
}

// The same stage when every lane already holds its own half in v[0, L/2) and the other half in
// v[L/2, L): no selects (the quantized keys arrange this for the stages that split slots by the
// code field of a byte, choosing per lane which field they extract first: fperm).
template <int L>
__device__ __forceinline__ void ReduceStageOwnHalf(float* v, int mask) {
#pragma unroll
  for (int i = 0; i < L / 2; ++i) v[i] += __shfl_xor_sync(kFullMask, v[i + L / 2], mask);
}

// MINB: resident blocks per SM the register allocation must allow (3 => <= 170 registers, 12
// warps per SM; 4 => <= 128, 16 warps, with a few spilled registers for the quantized tiers).
// PIPE: tiles staged through shared memory with cp.async, `stages` deep (quantized tiers only).
template <int D, int BITS, int R, int MINB, bool PIPE>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, MINB)
    DecodeAttentionKernel(DevTier tier, DecodeAttnArgs a, int stages) {
  using C = Cfg<D, BITS, R>;
  using G = StageGeom<D, BITS>;
  constexpr bool kQuant = BITS != 16;
  static_assert(!PIPE || kQuant, "the f16 tier reads global memory directly");
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
  // Quantized keys: the f16 query of head h is q * 2^m_h with max |q| * 2^m_h in [2^13, 2^14), so
  // q * (c * 2^(s - 24)) with raw codes (CodePairRaw) is mostly a normal f16 and every 4-term sum
  // stays below 1; kunit[h] = 2^(24 - m_h) undoes it (with the field's 2^-s, kfix) in f32.
  float kunit[R];
#pragma unroll
  for (int h = 0; h < R; ++h) {
    kunit[h] = 1.0f;
    if constexpr (kQuant) {
      float mx = 0;
#pragma unroll
      for (int c = 0; c < C::CPL; ++c) mx = fmaxf(mx, fabsf(qk[h][c]));
      int e = 0;
      (void)frexpf(WarpMax(mx), &e);  // max |q| = f * 2^e, f in [0.5, 1)
      const int mh = 14 - e;
      const float up = ldexpf(1.0f, mh);
#pragma unroll
      for (int c = 0; c < C::CPL; ++c) qk[h][c] *= up;
      kunit[h] = ldexpf(1.0f, 24 - mh);
    }
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
  // CodePairRaw / CodePairAt leave field f of a byte scaled by 2^(BITS f): keys of slot s carry 2^(BITS (s / U))
  // (one factor for this lane's slots base .. base + NV - 1, folded into the key scales), values of
  // field f of this lane's chunk 2^(vshift0 + BITS f) (removed when a tile joins the f32 sums).
  const float kfix = kQuant ? exp2f(-static_cast<float>(BITS * (base / C::U))) : 1.0f;
  // Slot bits above log2(U) are the code field inside a byte (slot = 4k + j + U f, + 2): the first
  // kFieldStages butterfly stages split slots by field. Lane bit t of those stages set: the lane
  // reads field f ^ fperm where it would read f, so its own half is always the low half.
  constexpr int kFieldStages = kQuant ? Log2(8 / BITS) : 0;
  int fperm = 0;
#pragma unroll
  for (int t = 0; t < kFieldStages; ++t) fperm |= ((lane >> t) & 1) << (kFieldStages - 1 - t);
#pragma unroll
  for (int h = 0; h < R; ++h) kunit[h] *= kfix;
  float vfix[C::NF];
#pragma unroll
  for (int f = 0; f < C::NF; ++f) vfix[f] = kQuant ? exp2f(-static_cast<float>(vshift0 + BITS * f)) : 1.0f;

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
  constexpr bool kPrefetchV = C::kPrefetchV && !PIPE;  // PIPE: values are read from shared memory where used
  constexpr int kPre = kPrefetchV ? C::ITERS : 1;
  uint32_t vw[kPre][C::VW];
  float vs[kPre], vz[kPre];
  // PIPE: this warp's ring of stages; `cur` is the stage holding the tile being computed.
  extern __shared__ uint4 smem_stages[];
  const int KS = 64 * kgroups, VS = 64 * vgroups;
  const int SB = 2 * G::KD + 2 * KS + 2 * VS;
  uint8_t* const ring = reinterpret_cast<uint8_t*>(smem_stages) + static_cast<size_t>(threadIdx.x >> 5) * stages * SB;
  const uint8_t* cur = ring;
  // Tiles are copied in order from t_begin: a cursor (page, tile in page) and the page's address,
  // looked up once a page, so no division and no page-table load in the loop.
  int cp_page = 0, cp_tp = 0;
  const uint8_t* cp_pg = nullptr;
  if constexpr (PIPE) {
    cp_page = t_begin / tiles_per_page;
    cp_tp = t_begin % tiles_per_page;
    if (t_begin < t_end) cp_pg = PageOf(tier, job, cp_page);
  }
  auto copy_tile = [&](uint8_t* dst) {
    const uint8_t* pg = cp_pg;
    const int tp = cp_tp;
    if (++cp_tp == tiles_per_page) {
      cp_tp = 0;
      ++cp_page;
      if (cp_page * tiles_per_page < T) cp_pg = PageOf(tier, job, cp_page);
    }
    const uint8_t* gk = pg + L.key_data_offset + static_cast<size_t>(tp) * G::KD;
#pragma unroll
    for (int i = 0; i < G::CH; ++i) {
      const int c = lane + 32 * i, l = c / G::CH, j = c % G::CH;
      CpAsync16(dst + (l * G::CH + (j ^ KSwz<G::CH>(l))) * 16, gk + c * 16);
    }
    const uint8_t* gv = pg + L.value_data_offset + static_cast<size_t>(tp) * vtile_bytes;
#pragma unroll
    for (int i = 0; i < G::CH; ++i) {
      const int c = lane + 32 * i;
      CpAsync16(dst + G::KD + 2 * KS + VSmemByte<G::kVSwizzle>(c * 16), gv + c * 16);
    }
    // Scales and zeros: 2 * KS / 16 <= 32 and 2 * VS / 16 <= 32 chunks.
    if (lane < KS / 8) {
      const bool z = lane >= KS / 16;
      const uint8_t* g = pg + (z ? L.key_zeros_offset : L.key_scales_offset) + static_cast<size_t>(tp) * KS;
      CpAsync16(dst + G::KD + lane * 16, g + (z ? lane - KS / 16 : lane) * 16);
    }
    if (lane < VS / 8) {
      const bool z = lane >= VS / 16;
      const uint8_t* g = pg + (z ? L.value_zeros_offset : L.value_scales_offset) + static_cast<size_t>(tp) * VS;
      CpAsync16(dst + 2 * G::KD + 2 * KS + lane * 16, g + (z ? lane - VS / 16 : lane) * 16);
    }
  };
  auto issue_k = [&](int t) {
    if constexpr (PIPE) {
      const uint4* kd = reinterpret_cast<const uint4*>(cur);
#pragma unroll
      for (int j = 0; j < G::CH; ++j) {
        const uint4 v = kd[lane * G::CH + (j ^ KSwz<G::CH>(lane))];
        kw[4 * j] = v.x;
        kw[4 * j + 1] = v.y;
        kw[4 * j + 2] = v.z;
        kw[4 * j + 3] = v.w;
      }
      const uint16_t* sp = reinterpret_cast<const uint16_t*>(cur + G::KD) + kgrp * 32 + base;
      const uint16_t* zp = sp + KS / 2;
      if constexpr (C::NV == 4) {
        const uint2 sv = *reinterpret_cast<const uint2*>(sp), zv = *reinterpret_cast<const uint2*>(zp);
        const uint32_t sw[2] = {sv.x, sv.y}, zw[2] = {zv.x, zv.y};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          ks[i] = H2F(static_cast<uint16_t>(sw[i / 2] >> (16 * (i % 2))));
          kz[i] = H2F(static_cast<uint16_t>(zw[i / 2] >> (16 * (i % 2))));
        }
      } else {
#pragma unroll
        for (int i = 0; i < C::NV; ++i) {
          ks[i] = H2F(sp[i]);
          kz[i] = H2F(zp[i]);
        }
      }
      return;
    }
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
  // PIPE: this lane's value words of `slot` from the current stage.
  auto smem_v_words = [&](int slot, uint32_t (&words)[C::VW]) {
    const uint8_t* vp = cur + G::KD + 2 * KS + VSmemByte<G::kVSwizzle>((vu * 32 + slot) * C::VUB + voff);
    if constexpr (C::VW == 4) {
      const uint4 v = *reinterpret_cast<const uint4*>(vp);
      words[0] = v.x;
      words[1] = v.y;
      words[2] = v.z;
      words[3] = v.w;
    } else if constexpr (C::VW == 2) {
      const uint2 v = *reinterpret_cast<const uint2*>(vp);
      words[0] = v.x;
      words[1] = v.y;
    } else {
#pragma unroll
      for (int k = 0; k < C::VW; ++k) words[k] = reinterpret_cast<const uint32_t*>(vp)[k];
    }
  };
  auto load_v = [&](int t, int it, uint32_t (&words)[C::VW], float& vsc, float& vze) {
    const int slot = it * C::SPI + sub;
    if (PIPE && slot < min(32, n - t * 32)) {
      smem_v_words(slot, words);
      const uint16_t* vsp = reinterpret_cast<const uint16_t*>(cur + 2 * G::KD + 2 * KS) + slot * vgroups + vgrp;
      vsc = H2F(vsp[0]);
      vze = H2F(vsp[VS / 2]);
    } else if (!PIPE && slot < min(32, n - t * 32)) {
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
    if constexpr (kPrefetchV) {
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

  int stage = 0;
  if constexpr (PIPE) {
    for (int k = 0; k < stages - 1; ++k) {
      if (t_begin + k < t_end) copy_tile(ring + k * SB);
      CpAsyncCommit();
    }
  }

  for (int t = t_begin; t < t_end; ++t) {
    const int nvalid = min(32, n - t * 32);
    const bool more = kPipe && t + 1 < t_end;
    if constexpr (PIPE) {
      CpAsyncWait(stages - 2);  // this lane's copies of tile t have landed
      __syncwarp();             // ... and every lane's; the stage of tile t - 1 is free
      const int ahead = t + stages - 1;
      if (ahead < t_end) copy_tile(ring + (stage == 0 ? stages - 1 : stage - 1) * SB);
      CpAsyncCommit();
      cur = ring + stage * SB;
      stage = stage + 1 == stages ? 0 : stage + 1;
    }
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
              kh[c][(k * (8 / BITS) + f) * 2 + j] =
                  CodePairRaw<BITS>(kw[c * (C::U / 4) + k] >> (8 * j), BITS * (f ^ fperm));
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
      float qc[C::RC][C::CPL], qb[C::RC], ku[C::RC];
#pragma unroll
      for (int hh = 0; hh < R; ++hh)
#pragma unroll
        for (int h = 0; h < C::RC; ++h)
          if (kPasses == 1 ? hh == h : hh == pass * C::RC + h) {
#pragma unroll
            for (int c = 0; c < C::CPL; ++c) qc[h][c] = qk[hh][c];
            qb[h] = qblk[hh];
            ku[h] = kunit[hh];
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
                ph[h][p] = __hfma2(CodePairRaw<BITS>(kw[c * (C::U / 4) + k] >> (8 * j), BITS * (f ^ fperm)), q2, ph[h][p]);
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
          if constexpr (kFieldStages >= 1) ReduceStageOwnHalf<32>(v, 1);
          else ReduceStage<32>(v, lane, 1);
          if constexpr (kFieldStages >= 2) ReduceStageOwnHalf<16>(v, 2);
          else ReduceStage<16>(v, lane, 2);
          ReduceStage<8>(v, lane, 4);
          if constexpr (C::PS == 4) ReduceStage<4>(v, lane, 8);
#pragma unroll
          for (int i = 0; i < C::NV; ++i) v[i] = fmaf(v[i], ksc[i] * ku[h], kzc[i] * qb[h]);
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
      // The tile's max matters only where a logit exceeds the running max (one vote; after a few
      // tiles that is rare): else max(m, tile max) = m, and the 5-shuffle reduction is skipped.
      const float mn = __any_sync(kFullMask, l > m[h]) ? fmaxf(m[h], WarpMax(l)) : m[h];
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
    // kRawV (staged quantized tiles, R <= 2): value codes as raw subnormal pairs (CodePairRaw), the
    // weights of this lane's slots scaled by 2^M so that max p * scale * 2^M is in [2^13, 2^14):
    // products stay normal and below 0.25; 2^(24 - M) is removed with vfix when the tile's f16
    // sums join the f32 accumulators.
    constexpr bool kRawV = kQuant && PIPE && R <= 2;
    float vdown[R];
    // vh += codes of `words` * ps per head. Pair (k, f, j): channels 4k + j + LB f and that + 2 of
    // the chunk; raw: CodePairRaw (subnormal codes), else CodePairAt.
    auto accumulate_v = [&](const uint32_t (&words)[C::VW], const __half2 (&ps)[R], auto raw) {
#pragma unroll
      for (int k = 0; k < C::VW; ++k)
#pragma unroll
        for (int f = 0; f < C::NF; ++f)
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const __half2 code = decltype(raw)::value ? CodePairRaw<BITS>(words[k] >> (8 * j), vshift0 + BITS * f)
                                                      : CodePairAt<BITS>(words[k] >> (8 * j), vshift0 + BITS * f);
#pragma unroll
            for (int h = 0; h < R; ++h)
              vh[h][(k * C::NF + f) * 2 + j] = __hfma2(code, ps[h], vh[h][(k * C::NF + f) * 2 + j]);
          }
    };
    if constexpr (kRawV) {
      float pw[C::ITERS][R], vsi[C::ITERS], vzi[C::ITERS], big[R];
#pragma unroll
      for (int h = 0; h < R; ++h) big[h] = 0;
#pragma unroll
      for (int it = 0; it < C::ITERS; ++it) {
        const int slot = it * C::SPI + sub;
#pragma unroll
        for (int h = 0; h < R; ++h) pw[it][h] = __shfl_sync(kFullMask, p[h], Brev5(slot));
        vsi[it] = vzi[it] = 0;
        if (slot < nvalid) {
          const uint16_t* vsp = reinterpret_cast<const uint16_t*>(cur + 2 * G::KD + 2 * KS) + slot * vgroups + vgrp;
          vsi[it] = H2F(vsp[0]);
          vzi[it] = H2F(vsp[VS / 2]);
        }
#pragma unroll
        for (int h = 0; h < R; ++h) big[h] = fmaxf(big[h], fabsf(pw[it][h] * vsi[it]));
      }
      float up[R];
#pragma unroll
      for (int h = 0; h < R; ++h) {
        int e = 0;
        (void)frexpf(big[h], &e);
        up[h] = ldexpf(1.0f, 14 - e);
        vdown[h] = ldexpf(1.0f, 10 + e);  // 2^(24 - M), M = 14 - e
      }
#pragma unroll
      for (int it = 0; it < C::ITERS; ++it) {
        if (it * C::SPI >= nvalid) break;
        const int slot = it * C::SPI + sub;
        uint32_t words[C::VW];
        smem_v_words(slot, words);
        if (slot >= nvalid) {
#pragma unroll
          for (int k = 0; k < C::VW; ++k) words[k] = 0;
        }
        __half2 ps[R];
#pragma unroll
        for (int h = 0; h < R; ++h) {
          ps[h] = __float2half2_rn(pw[it][h] * vsi[it] * up[h]);
          zacc[h] = fmaf(pw[it][h], vzi[it], zacc[h]);
        }
        accumulate_v(words, ps, std::true_type{});
      }
    }
#pragma unroll
    for (int it = 0; it < C::ITERS; ++it) {
      if (kRawV || it * C::SPI >= nvalid) break;
      const int slot = it * C::SPI + sub;
      const int pi = kPrefetchV ? it : 0;
      if constexpr (!kPrefetchV) load_v(t, it, vw[0], vs[0], vz[0]);
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
        accumulate_v(vw[pi], ps, std::false_type{});
      }
    }
    if (more) issue_v(t + 1);
    if constexpr (kQuant) {
#pragma unroll
      for (int h = 0; h < R; ++h) {
        float vf[C::NF];
#pragma unroll
        for (int f = 0; f < C::NF; ++f) vf[f] = kRawV ? vfix[f] * vdown[h] : vfix[f];
#pragma unroll
        for (int k = 0; k < C::VW; ++k)
#pragma unroll
          for (int f = 0; f < C::NF; ++f)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const float2 v = __half22float2(vh[h][(k * C::NF + f) * 2 + j]);
              acc[h][4 * k + j + C::LB * f] = fmaf(v.x, vf[f], acc[h][4 * k + j + C::LB * f]);
              acc[h][4 * k + j + 2 + C::LB * f] = fmaf(v.y, vf[f], acc[h][4 * k + j + 2 + C::LB * f]);
            }
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
// bandwidth (4 drops it to 80%). AKV_CUDA_DECODE_MINB=3|4 forces one for experiments. With the
// cp.async stages, 5 (96 registers, 20 warps) measured slower (int2-g128 at 32K 0.370 -> 0.412 ms,
// bench/results/cuda_h100_attention_variant_MINB_5.json).
int MinBlocksR1(int bits) {
  static const int forced = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_MINB");
    return e ? std::atoi(e) : 0;
  }();
  if (forced == 3 || forced == 4) return forced;
  return bits == 16 ? 3 : 4;
}

// The quantized tiers stage their tiles through shared memory (PIPE) unless
// AKV_CUDA_DECODE_STAGES=0; =N (2..5) forces N stages. By default two stages (double buffering),
// where they keep the kernel's resident blocks per SM at what the registers allow. Measured on an
// H100 (bench/results/cuda_h100_attention_stages{0,2,3,4}.json, batch 8 x 32 heads, 32K): the
// global-load kernel -> 2 stages: int4-g32 0.656 -> 0.471 ms, int4-g128 0.527 -> 0.427, int2-g128
// 0.509 -> 0.422, int8-g32 1.070 -> 0.821; 3 or 4 stages within 3% of 2 (int4-g128: 0.441 / 0.484).
int ForcedStages() {
  static const int forced = [] {
    const char* e = std::getenv("AKV_CUDA_DECODE_STAGES");
    return e ? std::atoi(e) : -1;
  }();
  return forced;
}

struct Plan {
  int stages = 0;  // 0: the global-load kernel
  int smem = 0;
  int blocks = 0;  // resident blocks per SM
};

template <typename K>
int Occupancy(K kernel, int smem) {
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kWarpsPerBlock * 32, smem) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return blocks;
}

template <int D, int BITS, int R, int MINB>
Plan MakePlan(int kgroups, int vgroups) {
  Plan p;
  p.blocks = Occupancy(DecodeAttentionKernel<D, BITS, R, MINB, false>, 0);
  if constexpr (BITS != 16) {
    const int forced = ForcedStages();
    if (forced == 0) return p;
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return p;
    }
    auto* k = DecodeAttentionKernel<D, BITS, R, MINB, true>;
    if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, optin) != cudaSuccess ||
        cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout, 100) != cudaSuccess) {
      (void)cudaGetLastError();
      return p;
    }
    // Two stages may cost resident blocks (int8: 9 KB a tile): still faster there (int8-g32 at 32K:
    // 1.070 -> 0.821 ms with 12 instead of 16 warps per SM).
    const int st = forced > 0 ? std::min(forced, kMaxStages) : 2;
    const int smem = kWarpsPerBlock * st * StageBytes(D, BITS, kgroups, vgroups);
    const int b = smem <= optin ? Occupancy(k, smem) : 0;
    if (b > 0) return {st, smem, b};
  }
  return p;
}

// Plans cached per instantiation and (key groups, value groups) per tile (1, 2 or 4).
template <int D, int BITS, int R, int MINB>
Plan GetPlan(int kgroups, int vgroups) {
  static std::atomic<uint64_t> cache[3][3];
  auto idx = [](int g) { return g >= 4 ? 2 : g >= 2 ? 1 : 0; };
  std::atomic<uint64_t>& slot = cache[idx(kgroups)][idx(vgroups)];
  uint64_t v = slot.load(std::memory_order_relaxed);
  if (v == 0) {
    const Plan p = MakePlan<D, BITS, R, MINB>(kgroups, vgroups);
    v = (uint64_t{1} << 63) | (static_cast<uint64_t>(p.stages) << 48) | (static_cast<uint64_t>(p.blocks) << 32) |
        static_cast<uint32_t>(p.smem);
    slot.store(v, std::memory_order_relaxed);
  }
  return {static_cast<int>((v >> 48) & 0x7fff), static_cast<int>(v & 0xffffffffu), static_cast<int>((v >> 32) & 0xffff)};
}

template <int D, int BITS, int R, int MINB>
cudaError_t LaunchKernel(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  const int warps = a.n_jobs * a.n_splits;
  const int blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int kg = BITS == 16 ? 1 : D / tier.layout.key_group, vg = BITS == 16 ? 1 : D / tier.layout.value_group;
  const Plan p = GetPlan<D, BITS, R, MINB>(kg, vg);
  if constexpr (BITS != 16) {
    if (p.stages > 0) {
      DecodeAttentionKernel<D, BITS, R, MINB, true><<<blocks, kWarpsPerBlock * 32, p.smem, s>>>(tier, a, p.stages);
      return cudaGetLastError();
    }
  }
  DecodeAttentionKernel<D, BITS, R, MINB, false><<<blocks, kWarpsPerBlock * 32, 0, s>>>(tier, a, 0);
  return cudaGetLastError();
}

template <int D, int BITS>
cudaError_t LaunchForR(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t s) {
  switch (a.R) {
    case 1:
      return MinBlocksR1(BITS) == 4 ? LaunchKernel<D, BITS, 1, 4>(tier, a, s) : LaunchKernel<D, BITS, 1, 3>(tier, a, s);
    case 2: return LaunchKernel<D, BITS, 2, 1>(tier, a, s);
    case 3: return LaunchKernel<D, BITS, 3, 1>(tier, a, s);
    case 4: return LaunchKernel<D, BITS, 4, 1>(tier, a, s);
    case 6: return LaunchKernel<D, BITS, 6, 1>(tier, a, s);
    case 8: return LaunchKernel<D, BITS, 8, 1>(tier, a, s);
    default: return cudaErrorInvalidValue;
  }
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

// Warps per SM of the kernel a tier of `bits` with groups of 32 channels gets (the largest stage).
template <int D, int BITS>
int WarpsPerSmForR(int R) {
  const int g = BITS == 16 ? 1 : D / 32;
  int blocks = 0;
  switch (R) {
    case 1:
      blocks = MinBlocksR1(BITS) == 4 ? GetPlan<D, BITS, 1, 4>(g, g).blocks : GetPlan<D, BITS, 1, 3>(g, g).blocks;
      break;
    case 2: blocks = GetPlan<D, BITS, 2, 1>(g, g).blocks; break;
    case 3: blocks = GetPlan<D, BITS, 3, 1>(g, g).blocks; break;
    case 4: blocks = GetPlan<D, BITS, 4, 1>(g, g).blocks; break;
    case 6: blocks = GetPlan<D, BITS, 6, 1>(g, g).blocks; break;
    case 8: blocks = GetPlan<D, BITS, 8, 1>(g, g).blocks; break;
    default: break;
  }
  return blocks > 0 ? blocks * kWarpsPerBlock : 8;
}

}  // namespace

int DecodeAttentionWarpsPerSm(int head_dim, int R, int bits) {
  if (!DecodeAttentionSupports(head_dim, R, bits)) return 8;
  if (DecodeAttentionMmaApplies(head_dim, R, bits)) return DecodeAttentionMmaWarpsPerSm(head_dim, R, bits);
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
  // int4 / int2 tiers with R in {1, 2, 4, 8}: the tensor-core kernel (attention_decode_mma.cu);
  // AKV_CUDA_DECODE_MMA=0 keeps the CUDA-core kernel below.
  if (DecodeAttentionMmaApplies(tier.layout, a.R)) return LaunchDecodeAttentionMma(tier, a, s);
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
