// Prefill attention (flash attention): a block takes one KV head and a tile of queries (rows =
// queries x the R heads of the group), streams the tiers' 32-slot tiles through shared memory
// (de-quantized once per block and shared by all rows: GQA reads each tile once per group), and
// keeps the online-softmax state per row. Causal: a slot is visible to a query when its position is
// <= the query's. Tiles of an `ordered` tier (slot = position) past the last query are skipped
// without being read.
//
// On the tensor cores (mma.sync m16n8k16), 64 rows per block, 16 per warp. S = Q K^T and
// O += P V with the f32 operands split into a high and a low f16 part (x = hi + lo) and a product
// per part (hi*hi + lo*hi, + hi*lo for de-quantized K / V, which are not f16 numbers; f32
// accumulators), so the result keeps f32 accuracy (the dropped lo*lo term is below 2^-22
// relative). Fragments: Q from row-major shared memory (ldmatrix.x4), K^T and V from the tile in
// its f16 page layout (ldmatrix.x2.trans), P from the S accumulators directly (the m16n8 C layout
// is the m16k16 A layout). The CUDA-core kernel this replaced (f32 dot products from shared
// memory, 32 rows per block) was 1.8-6.2x slower on 7B prompts (docs/CUDA.md).
#include <climits>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace akv::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kMmaRows = 64;  // rows per block: 4 warps x 16

// Shared memory. The tile's K and V keep the f16 page layout
// (kv/codecs/page_layout.h): keys channel-major [D][32 slots], values [D / 16 units][32 slots][16],
// in 16-byte chunks, XOR-swizzled so that the 8 rows of an ldmatrix hit distinct banks (the
// swizzles of the decode kernel's f16 tiers). f16 tiers are copied in with cp.async as they are;
// quantized tiers are de-quantized 8 values at a time into the high and low planes (lo = x - hi).
template <int D>
struct MmaSmem {
  static constexpr int P = D + 8;  // query row pitch in halves (D = 128: 272 bytes: distinct banks)
  __half qh[kMmaRows][P], ql[kMmaRows][P];  // queries (scaled into the log2 domain), high / low parts
  uint4 kh[D * 4], kl[D * 4];               // 16-byte chunks of the tile's keys
  uint4 vh[D * 4], vl[D * 4];               // ... and values
  int32_t pos[32];
  int32_t qpos[kMmaRows];
};
// Chunk index of (channel c, slots 8q .. 8q + 7) in the key planes, and of (slot s, channels
// 16u + 8q .. + 7) in the value planes.
__device__ __forceinline__ int KChunk(int c, int q) { return c * 4 + (q ^ ((c >> 1) & 3)); }
__device__ __forceinline__ int VChunk(int u, int s, int q) { return (u * 32 + s) * 2 + (q ^ ((s >> 2) & 1)); }

__device__ __forceinline__ void SplitF16(float x, __half* hi, __half* lo) {
  const __half h = __float2half_rn(x);
  *hi = h;
  *lo = __float2half_rn(x - __half2float(h));
}
// 8 codes of `bits` bits: field `field` of the 8 bytes at p (8-byte aligned).
__device__ __forceinline__ void Codes8(const uint8_t* p, int bits, int field, float (&c)[8]) {
  const uint2 w = *reinterpret_cast<const uint2*>(p);
  const uint32_t mask = (1u << bits) - 1u, sh = static_cast<uint32_t>(bits * field);
#pragma unroll
  for (int i = 0; i < 8; ++i) c[i] = static_cast<float>((((i < 4 ? w.x : w.y) >> (8 * (i % 4))) >> sh) & mask);
}
// fma(code, scale, zero) of 8 values as (hi, lo) f16 chunks.
__device__ __forceinline__ void Dequant8(const float (&c)[8], const float (&sc)[8], const float (&z)[8], uint4* hi,
                                         uint4* lo) {
  uint32_t h[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) SplitPair(fmaf(c[2 * i], sc[2 * i], z[2 * i]), fmaf(c[2 * i + 1], sc[2 * i + 1], z[2 * i + 1]), &h[i], &l[i]);
  *hi = make_uint4(h[0], h[1], h[2], h[3]);
  *lo = make_uint4(l[0], l[1], l[2], l[3]);
}
// c += a * b: a as (hi, lo) A fragments, b read with ldmatrix.x2.trans from chunk `at` of the high
// plane and, for de-quantized tiles (split), of the low plane too: hi*hi + lo*hi (+ hi*lo).
__device__ __forceinline__ void MmaSplit(float (&c)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4],
                                         const uint4* b_hi, const uint4* b_lo, int at, bool split) {
  uint32_t bh[2];
  LdsmX2T(bh, &b_hi[at]);
  Mma(c, ah[0], ah[1], ah[2], ah[3], bh[0], bh[1]);
  Mma(c, al[0], al[1], al[2], al[3], bh[0], bh[1]);
  if (split) {
    uint32_t bl[2];
    LdsmX2T(bl, &b_lo[at]);
    Mma(c, ah[0], ah[1], ah[2], ah[3], bl[0], bl[1]);
  }
}
__device__ __forceinline__ void Halves8(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = H2F(static_cast<uint16_t>(w[i] & 0xffff));
    f[2 * i + 1] = H2F(static_cast<uint16_t>(w[i] >> 16));
  }
}

// Stages tile `tip` of `page` into the planes: f16 with cp.async (high plane only), quantized
// de-quantized by the block's threads (both planes). Values of slots >= nvalid are zeros (their
// weight is 0, and 0 * whatever the page holds there could be NaN); their keys are whatever the
// page holds, masked by position.
template <int D>
__device__ void StageTile(MmaSmem<D>& sm, const DevPageLayout& L, const uint8_t* page, int tip, int nvalid, int tid) {
  constexpr int kChunks = D * 4;  // 16-byte chunks of a tile's keys (and values), f16
  if (L.bits == 16) {
    const uint8_t* gk = page + L.key_data_offset + static_cast<size_t>(tip) * D * 64;
    const uint8_t* gv = page + L.value_data_offset + static_cast<size_t>(tip) * D * 64;
    for (int ci = tid; ci < kChunks; ci += kThreads) {
      CpAsync16(&sm.kh[KChunk(ci / 4, ci % 4)], gk + ci * 16);
      const int row = ci / 2, u = row / 32, sl = row % 32;
      if (sl < nvalid) CpAsync16(&sm.vh[VChunk(u, sl, ci % 2)], gv + ci * 16);
      else sm.vh[VChunk(u, sl, ci % 2)] = make_uint4(0, 0, 0, 0);
    }
    CpAsyncCommit();
    CpAsyncWait(0);
    return;
  }
  const int bits = L.bits, U = 4 * bits, kg = L.key_group, vg = L.value_group;
  const uint16_t* ks = reinterpret_cast<const uint16_t*>(page + L.key_scales_offset);
  const uint16_t* kz = reinterpret_cast<const uint16_t*>(page + L.key_zeros_offset);
  const uint16_t* vs = reinterpret_cast<const uint16_t*>(page + L.value_scales_offset);
  const uint16_t* vz = reinterpret_cast<const uint16_t*>(page + L.value_zeros_offset);
  for (int it = tid; it < kChunks; it += kThreads) {
    {  // keys: channel c, slots 8q .. 8q + 7 (bytes (8q) % U .., field 8q / U of the channel's unit)
      const int c = it / 4, q = it % 4;
      float code[8], sc[8], z[8];
      Codes8(page + L.key_data_offset + (static_cast<size_t>(tip) * D + c) * U + (8 * q) % U, bits, 8 * q / U, code);
      const size_t at = (static_cast<size_t>(tip) * (D / kg) + c / kg) * 32 + 8 * q;
      Halves8(*reinterpret_cast<const uint4*>(ks + at), sc);
      Halves8(*reinterpret_cast<const uint4*>(kz + at), z);
      Dequant8(code, sc, z, &sm.kh[KChunk(c, q)], &sm.kl[KChunk(c, q)]);
    }
    {  // values: slot sl, channels c0 .. c0 + 7 of the 32-channel unit c0 / 32 (one scale and zero)
      const int row = it / 2, u = row / 32, sl = row % 32, q = it % 2;
      if (sl >= nvalid) {
        sm.vh[VChunk(u, sl, q)] = sm.vl[VChunk(u, sl, q)] = make_uint4(0, 0, 0, 0);
        continue;
      }
      const int c0 = 16 * u + 8 * q, j0 = c0 % 32;
      const uint8_t* vtile = page + L.value_data_offset + static_cast<size_t>(tip) * (D * 32 * bits / 8);
      float code[8], sc[8], z[8];
      Codes8(vtile + ((c0 / 32) * 32 + sl) * U + j0 % U, bits, j0 / U, code);
      const size_t at = (static_cast<size_t>(tip) * 32 + sl) * (D / vg) + c0 / vg;
      const float s1 = H2F(vs[at]), z1 = H2F(vz[at]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        sc[i] = s1;
        z[i] = z1;
      }
      Dequant8(code, sc, z, &sm.vh[VChunk(u, sl, q)], &sm.vl[VChunk(u, sl, q)]);
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) PrefillAttentionMmaKernel(DevTierSet tiers, PrefillAttnArgs a) {
  extern __shared__ __align__(16) uint8_t smem_raw[];
  MmaSmem<D>& sm = *reinterpret_cast<MmaSmem<D>*>(smem_raw);
  const int R = a.R, QT = kMmaRows / R, rows = QT * R;
  const int n_new = a.step->n_new, pos0 = a.step->pos0;
  const int q0 = blockIdx.x * QT;
  if (q0 >= n_new) return;
  const int g = blockIdx.y, job = a.job0 + g;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int fr = lane >> 2, fc = lane & 3;  // fragment row (0..7) and column pair (0..3)
  const float qscale = a.scale * kLog2e;
  const int q_last = min(q0 + QT, n_new) - 1;
  const int max_qpos = pos0 + q_last;

  for (int idx = tid; idx < kMmaRows * D; idx += kThreads) {
    const int r = idx / D, c = idx % D, qi = r / R, h = r % R;
    const bool ok = r < rows && q0 + qi < n_new;
    const float v = ok ? a.q[static_cast<int64_t>(q0 + qi) * a.ldq + static_cast<int64_t>(g * R + h) * D + c] * qscale : 0.0f;
    SplitF16(v, &sm.qh[r][c], &sm.ql[r][c]);
  }
  if (tid < kMmaRows) sm.qpos[tid] = (tid < rows && q0 + tid / R < n_new) ? pos0 + q0 + tid / R : INT_MIN;
  __syncthreads();
  // This warp's rows r0 .. r0 + 15 (query-major: an invalid first row means all are invalid).
  const int r0 = warp * 16;
  const bool active = sm.qpos[r0] != INT_MIN;
  int warp_max_qpos = INT_MIN;
  for (int i = 0; i < 16; ++i) warp_max_qpos = max(warp_max_qpos, sm.qpos[r0 + i]);
  const int qp[2] = {sm.qpos[r0 + fr], sm.qpos[r0 + fr + 8]};
  // ldmatrix row addresses of this lane (lanes 0..15 address the two matrices of an x2 load).
  const int lrow = lane % 8, lmat = (lane / 8) % 2;

  // Online-softmax state of rows fr and fr + 8; l is this lane's partial sum (its slots only).
  float o[D / 8][4];
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd)
#pragma unroll
    for (int i = 0; i < 4; ++i) o[nd][i] = 0;

  for (int ti = 0; ti < tiers.n; ++ti) {
    const DevTier& tier = tiers.t[ti];
    const DevPageLayout& L = tier.layout;
    const bool split = L.bits != 16;  // de-quantized K / V carry a low part
    const int n = tier.n_slots[job];
    const int T = (n + 31) / 32;
    const int tiles_per_page = L.capacity / 32;
    for (int t = 0; t < T; ++t) {
      if (tier.ordered && t * 32 > max_qpos) break;
      const uint8_t* page = PageOf(tier, job, t / tiles_per_page);
      const int tip = t % tiles_per_page;
      const int nvalid = min(32, n - t * 32);
      __syncthreads();  // the previous tile is consumed
      if (tid < 32)
        sm.pos[tid] = tid < nvalid ? reinterpret_cast<const int32_t*>(page + L.positions_offset)[tip * 32 + tid] : INT_MAX;
      StageTile<D>(sm, L, page, tip, nvalid, tid);
      __syncthreads();
      int min_pos = sm.pos[lane];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) min_pos = min(min_pos, __shfl_xor_sync(kFullMask, min_pos, off));
      if (min_pos > max_qpos) continue;  // block-uniform: every slot is in every query's future
      if (!active || min_pos > warp_max_qpos) continue;  // warp-uniform: ... in this warp's rows' future

      // S (16 rows x 32 slots) = Q K^T: n-tile nt holds slots 8 nt .. 8 nt + 7. B from the
      // channel-major keys: ldmatrix.trans of 8 channel rows x 8 slots.
      float sc[4][4];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) sc[nt][i] = 0;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        uint32_t ah[4], al[4];
        LdsmX4(ah, &sm.qh[r0 + lane % 16][16 * ks + 8 * (lane / 16)]);
        LdsmX4(al, &sm.ql[r0 + lane % 16][16 * ks + 8 * (lane / 16)]);
        const int c = 16 * ks + 8 * lmat + lrow;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) MmaSplit(sc[nt], ah, al, sm.kh, sm.kl, KChunk(c, nt), split);
      }
      // Causal mask and online softmax; accumulator i of n-tile nt: row fr + 8 (i / 2), slot 8 nt + 2 fc + i % 2.
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          if (sm.pos[8 * nt + 2 * fc + (i & 1)] > qp[i >> 1]) sc[nt][i] = -INFINITY;
          mx[i >> 1] = fmaxf(mx[i >> 1], sc[nt][i]);
        }
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(kFullMask, mx[hr], 1));
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(kFullMask, mx[hr], 2));
        const float mn = fmaxf(m[hr], mx[hr]);
        const float alpha = mn == -INFINITY ? 1.0f : exp2f(m[hr] - mn);
        m[hr] = mn;
        l[hr] *= alpha;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) {
          o[nd][2 * hr] *= alpha;
          o[nd][2 * hr + 1] *= alpha;
        }
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float mr = m[i >> 1];
          const float p = mr == -INFINITY ? 0.0f : exp2f(sc[nt][i] - mr);
          sc[nt][i] = p;
          l[i >> 1] += p;
        }
      // O (16 rows x D) += P (16 x 32 slots) V (32 slots x D), k-steps of 16 slots; A = P from the
      // S accumulators, B from the values: ldmatrix.trans of 8 slot rows x 8 channels.
#pragma unroll
      for (int kk = 0; kk < 2; ++kk) {
        uint32_t ph[4], pl[4];
        SplitPair(sc[2 * kk][0], sc[2 * kk][1], &ph[0], &pl[0]);
        SplitPair(sc[2 * kk][2], sc[2 * kk][3], &ph[1], &pl[1]);
        SplitPair(sc[2 * kk + 1][0], sc[2 * kk + 1][1], &ph[2], &pl[2]);
        SplitPair(sc[2 * kk + 1][2], sc[2 * kk + 1][3], &ph[3], &pl[3]);
        const int sl = 16 * kk + 8 * lmat + lrow;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) MmaSplit(o[nd], ph, pl, sm.vh, sm.vl, VChunk(nd / 2, sl, nd % 2), split);
      }
    }
  }

#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l[hr] += __shfl_xor_sync(kFullMask, l[hr], 1);
    l[hr] += __shfl_xor_sync(kFullMask, l[hr], 2);
    const int r = r0 + fr + 8 * hr;
    if (r >= rows) continue;
    const int qi = r / R, h = r % R;
    if (q0 + qi >= n_new) continue;
    const float inv = l[hr] > 0 ? 1.0f / l[hr] : 0.0f;
    float* dst = a.out + static_cast<int64_t>(q0 + qi) * a.ldo + static_cast<int64_t>(g * R + h) * D;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
      dst[8 * nd + 2 * fc] = o[nd][2 * hr] * inv;
      dst[8 * nd + 2 * fc + 1] = o[nd][2 * hr + 1] * inv;
    }
  }
}

template <int D>
cudaError_t Launch(const DevTierSet& tiers, const PrefillAttnArgs& a, cudaStream_t s) {
  static bool configured = false;
  const int bytes = static_cast<int>(sizeof(MmaSmem<D>));
  if (!configured) {
    cudaError_t e = cudaFuncSetAttribute(PrefillAttentionMmaKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int QT = kMmaRows / a.R;
  const dim3 grid((a.max_tokens + QT - 1) / QT, a.n_kv);
  PrefillAttentionMmaKernel<D><<<grid, kThreads, bytes, s>>>(tiers, a);
  return cudaGetLastError();
}

}  // namespace

bool PrefillAttentionSupports(int head_dim, int R) { return (head_dim == 64 || head_dim == 128) && R >= 1 && R <= 32; }

cudaError_t LaunchPrefillAttention(const DevTierSet& tiers, const PrefillAttnArgs& a, cudaStream_t s) {
  if (a.max_tokens <= 0 || a.n_kv <= 0 || tiers.n <= 0) return cudaSuccess;
  const int D = tiers.t[0].layout.head_dim;
  if (!PrefillAttentionSupports(D, a.R)) return cudaErrorInvalidValue;
  return D == 64 ? Launch<64>(tiers, a, s) : Launch<128>(tiers, a, s);
}

}  // namespace akv::cuda
