// Prefill attention (flash attention, CUDA cores): a block takes one KV head and a tile of
// queries (rows = queries x the R heads of the group, at most 32), streams the tiers' 32-slot tiles
// through shared memory (de-quantized once per block and shared by all rows: GQA reads each
// tile once per group), and keeps the online-softmax state per row. Causal: a slot is visible
// to a query when its position is <= the query's. Tiles of an `ordered` tier (slot = position)
// past the last query are skipped without being read.
#include <climits>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace akv::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kRows = 32;          // rows per block
constexpr int kRowsPerWarp = kRows / (kThreads / 32);

template <int D>
struct Smem {
  float q[kRows][D];
  float k[D][33];  // channel-major, padded: lane = slot reads without bank conflicts
  float v[32][D];
  float p[kRows][33];
  int32_t pos[32];
  int32_t qpos[kRows];
};

template <int D>
__global__ void __launch_bounds__(kThreads) PrefillAttentionKernel(DevTierSet tiers, PrefillAttnArgs a) {
  extern __shared__ __align__(16) uint8_t smem_raw[];
  Smem<D>& sm = *reinterpret_cast<Smem<D>*>(smem_raw);
  const int R = a.R, QT = kRows / R, rows = QT * R;
  const int n_new = a.step->n_new, pos0 = a.step->pos0;
  const int q0 = blockIdx.x * QT;
  if (q0 >= n_new) return;
  const int g = blockIdx.y, job = a.job0 + g;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float qscale = a.scale * kLog2e;
  const int q_last = min(q0 + QT, n_new) - 1;
  const int max_qpos = pos0 + q_last;

  for (int idx = tid; idx < kRows * D; idx += kThreads) {
    const int r = idx / D, c = idx % D, qi = r / R, h = r % R;
    const bool ok = r < rows && q0 + qi < n_new;
    sm.q[r][c] = ok ? a.q[static_cast<int64_t>(q0 + qi) * a.ldq + static_cast<int64_t>(g * R + h) * D + c] * qscale : 0.0f;
  }
  if (tid < kRows) sm.qpos[tid] = (tid < rows && q0 + tid / R < n_new) ? pos0 + q0 + tid / R : INT_MIN;

  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][D / 32];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0;
#pragma unroll
    for (int k = 0; k < D / 32; ++k) o[i][k] = 0;
  }

  for (int ti = 0; ti < tiers.n; ++ti) {
    const DevTier& tier = tiers.t[ti];
    const DevPageLayout& L = tier.layout;
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
      for (int idx = tid; idx < D * 32; idx += kThreads) {
        const int c = idx / 32, j = idx % 32;
        sm.k[c][j] = j < nvalid ? KeyElement(L, page, tip, c, j) : 0.0f;
      }
      for (int idx = tid; idx < 32 * D; idx += kThreads) {
        const int j = idx / D, c = idx % D;
        sm.v[j][c] = j < nvalid ? ValueElement(L, page, tip * 32 + j, c) : 0.0f;
      }
      __syncthreads();
      int min_pos = sm.pos[lane];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) min_pos = min(min_pos, __shfl_xor_sync(kFullMask, min_pos, off));
      if (min_pos > max_qpos) continue;  // block-uniform: every slot is in every query's future

#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
        const int r = warp * kRowsPerWarp + i;
        if (r >= rows) break;
        if (sm.qpos[r] == INT_MIN) break;
        float s = 0;
#pragma unroll 8
        for (int c = 0; c < D; ++c) s = fmaf(sm.q[r][c], sm.k[c][lane], s);
        if (sm.pos[lane] > sm.qpos[r]) s = -INFINITY;
        const float mn = fmaxf(m[i], WarpMax(s));
        float pe = 0;
        if (mn != -INFINITY) {
          const float alpha = exp2f(m[i] - mn);
          pe = exp2f(s - mn);
          l[i] = l[i] * alpha + WarpSum(pe);
#pragma unroll
          for (int k = 0; k < D / 32; ++k) o[i][k] *= alpha;
          m[i] = mn;
        }
        sm.p[r][lane] = pe;
      }
      __syncwarp();
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
        const int r = warp * kRowsPerWarp + i;
        if (r >= rows) break;
        if (sm.qpos[r] == INT_MIN) break;
#pragma unroll 4
        for (int j = 0; j < 32; ++j) {
          const float pj = sm.p[r][j];
#pragma unroll
          for (int k = 0; k < D / 32; ++k) o[i][k] = fmaf(pj, sm.v[j][lane + 32 * k], o[i][k]);
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int r = warp * kRowsPerWarp + i;
    if (r >= rows) break;
    const int qi = r / R, h = r % R;
    if (q0 + qi >= n_new) break;
    const float inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;
    float* dst = a.out + static_cast<int64_t>(q0 + qi) * a.ldo + static_cast<int64_t>(g * R + h) * D;
#pragma unroll
    for (int k = 0; k < D / 32; ++k) dst[lane + 32 * k] = o[i][k] * inv;
  }
}

template <int D>
cudaError_t Launch(const DevTierSet& tiers, const PrefillAttnArgs& a, cudaStream_t s) {
  static bool configured = false;
  const int bytes = static_cast<int>(sizeof(Smem<D>));
  if (!configured) {
    cudaError_t e = cudaFuncSetAttribute(PrefillAttentionKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int QT = kRows / a.R;
  const dim3 grid((a.max_tokens + QT - 1) / QT, a.n_kv);
  PrefillAttentionKernel<D><<<grid, kThreads, bytes, s>>>(tiers, a);
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
