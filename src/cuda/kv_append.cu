// Writing tokens into KV pages on the device: f16 passthrough or group-wise asymmetric
// quantization (quantize-on-append), bit-identical to the CPU codecs (kv/codecs/group_quant.h:
// same (scale, zero) choice, same rounding, same packing), so the pages equal what KvPage writes.
//
// One warp per (token, KV head). Lane l holds channels l + 32 i (i < D / 32); with G >= 32 every
// group is made of whole i's, so group min / max are warp reductions.
#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace akv::cuda {

namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ uint16_t NextDownF16(uint16_t h) {
  if ((h & 0x7fff) == 0) return 0x8001;
  return (h & 0x8000) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h - 1);
}
__device__ __forceinline__ uint16_t NextUpF16(uint16_t h) {
  if ((h & 0x7fff) == 0) return 0x0001;
  return (h & 0x8000) ? static_cast<uint16_t>(h - 1) : static_cast<uint16_t>(h + 1);
}

// ChooseGroupParams of group_quant_ref.cc, operation for operation.
__device__ void ChooseGroupParams(float lo, float hi, int bits, uint16_t* scale, uint16_t* zero) {
  const float max_code = static_cast<float>((1 << bits) - 1);
  lo = __fadd_rn(lo, 0.0f);  // -0 -> +0
  uint16_t z = F2H(lo);
  if (H2F(z) > lo) z = NextDownF16(z);
  const float zf = H2F(z);
  *zero = z;
  if (!(hi > zf)) {
    *scale = 0;
    return;
  }
  uint16_t s = F2H(__fdiv_rn(__fsub_rn(hi, zf), max_code));
  while (fmaf(max_code, H2F(s), zf) < hi) s = NextUpF16(s);
  *scale = s;
}

__device__ __forceinline__ uint32_t QuantizeValue(float x, float zero, float inv_scale, int max_code) {
  const float t = rintf(__fmul_rn(__fsub_rn(x, zero), inv_scale));
  return static_cast<uint32_t>(t < 0 ? 0 : (t > float(max_code) ? max_code : int(t)));
}

// Sets `bits` bits at bit offset `shift` of byte `addr` (other slots' bits in the same word may be
// written concurrently by other warps: clear and set with atomics).
__device__ __forceinline__ void AtomicSetBits(uint8_t* addr, int shift, int bits, uint32_t code) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  unsigned int* word = reinterpret_cast<unsigned int*>(a & ~uintptr_t(3));
  const int bitpos = static_cast<int>(a & 3) * 8 + shift;
  const unsigned int mask = ((1u << bits) - 1u) << bitpos;
  atomicAnd(word, ~mask);
  atomicOr(word, (code << bitpos) & mask);
}

// Quantizes the D values this lane holds (x[i] = channel lane + 32 i) in groups of G. Returns codes
// in `codes`; scales / zeros of group g are written by lane 0 through `store(g, scale, zero)`.
template <int D, typename Store>
__device__ __forceinline__ void QuantizeLaneValues(const float (&x)[D / 32], int bits, int group, uint32_t (&codes)[D / 32],
                                                   Store store) {
  constexpr int NI = D / 32;
  float lo[NI], hi[NI];
#pragma unroll
  for (int i = 0; i < NI; ++i) {
    lo[i] = WarpMin(x[i]);
    hi[i] = WarpMax(x[i]);
  }
  const int per_group = group / 32;  // i's per group
  const int max_code = (1 << bits) - 1;
#pragma unroll
  for (int i = 0; i < NI; ++i) {
    const int g = i / per_group;
    float glo = lo[i], ghi = hi[i];
#pragma unroll
    for (int k = 0; k < NI; ++k) {
      if (k / per_group == g) {
        glo = fminf(glo, lo[k]);
        ghi = fmaxf(ghi, hi[k]);
      }
    }
    uint16_t s, z;
    ChooseGroupParams(glo, ghi, bits, &s, &z);
    const float sf = H2F(s);
    const float inv = sf > 0 ? __frcp_rn(sf) : 0.0f;
    codes[i] = QuantizeValue(x[i], H2F(z), inv, max_code);
    if (i % per_group == 0 && (threadIdx.x & 31) == 0) store(g, s, z);
  }
}

// Writes one token (key and value rows, channel lane + 32 i in k[i] / v[i]) into slot `slot` of
// the job's pages.
template <int D>
__device__ void WriteSlot(const DevTier& t, int job, int slot, int position, const float (&k)[D / 32],
                          const float (&v)[D / 32]) {
  constexpr int NI = D / 32;
  const DevPageLayout& L = t.layout;
  const int lane = threadIdx.x & 31;
  uint8_t* page = PageOf(t, job, slot / L.capacity);
  const int sip = slot % L.capacity;
  const int tile = sip / 32, j = sip % 32;
  if (lane == 0) reinterpret_cast<int32_t*>(page + L.positions_offset)[sip] = position;
  // Value tiles: [D / unit channels][32 slots][unit bytes]; unit = 16 f16 channels or one packed
  // unit of 32 quantized channels.
  uint8_t* vtile = page + L.value_data_offset + static_cast<size_t>(tile) * (D * 32 * L.bits / 8);
  if (L.bits == 16) {
    uint16_t* ktile = reinterpret_cast<uint16_t*>(page + L.key_data_offset) + static_cast<size_t>(tile) * D * 32;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int c = lane + 32 * i;
      ktile[c * 32 + j] = F2H(k[i]);
      reinterpret_cast<uint16_t*>(vtile + ((c / 16) * 32 + j) * 32)[c % 16] = F2H(v[i]);
    }
    return;
  }
  const int bits = L.bits;
  const int U = 4 * bits;  // bytes per packed unit of 32 values
  // Keys: channel-major tile, one unit of 32 slots per channel; slot j at byte j % U, shift bits * (j / U).
  {
    uint32_t codes[NI];
    const int groups = D / L.key_group;
    uint16_t* ks = reinterpret_cast<uint16_t*>(page + L.key_scales_offset);
    uint16_t* kz = reinterpret_cast<uint16_t*>(page + L.key_zeros_offset);
    QuantizeLaneValues<D>(k, bits, L.key_group, codes, [&](int g, uint16_t s, uint16_t z) {
      const size_t at = (static_cast<size_t>(tile) * groups + g) * 32 + j;
      ks[at] = s;
      kz[at] = z;
    });
    uint8_t* ktile = page + L.key_data_offset + static_cast<size_t>(tile) * D * U;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int c = lane + 32 * i;
      uint8_t* unit = ktile + c * U;
      if (bits == 8) {
        unit[j] = static_cast<uint8_t>(codes[i]);
      } else {
        AtomicSetBits(unit + j % U, bits * (j / U), bits, codes[i]);
      }
    }
  }
  // Values: channel c = lane + 32 i is value `lane` of the slot's unit i. Byte b of a unit gathers
  // values b + U * m (m < 8 / bits) from lanes b + U * m.
  {
    uint32_t codes[NI];
    const int groups = D / L.value_group;
    uint16_t* vs = reinterpret_cast<uint16_t*>(page + L.value_scales_offset);
    uint16_t* vz = reinterpret_cast<uint16_t*>(page + L.value_zeros_offset);
    QuantizeLaneValues<D>(v, bits, L.value_group, codes, [&](int g, uint16_t s, uint16_t z) {
      vs[static_cast<size_t>(sip) * groups + g] = s;
      vz[static_cast<size_t>(sip) * groups + g] = z;
    });
    const int per_byte = 8 / bits;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      uint32_t byte = 0;
      for (int m = 0; m < per_byte; ++m) {
        const uint32_t c = __shfl_sync(kFullMask, codes[i], (lane + U * m) & 31);
        byte |= c << (bits * m);
      }
      if (lane < U) vtile[(i * 32 + j) * U + lane] = static_cast<uint8_t>(byte);
    }
  }
}

// Reads slot `slot` of a tier back as f32 (lane l gets channels l + 32 i), de-quantized as the CPU
// codecs do (KeyElement / ValueElement, common.cuh): the demotion source.
template <int D>
__device__ void ReadSlot(const DevTier& t, int job, int slot, float (&k)[D / 32], float (&v)[D / 32]) {
  const DevPageLayout& L = t.layout;
  const int lane = threadIdx.x & 31;
  const uint8_t* page = PageOf(t, job, slot / L.capacity);
  const int sip = slot % L.capacity;
#pragma unroll
  for (int i = 0; i < D / 32; ++i) {
    const int c = lane + 32 * i;
    k[i] = KeyElement(L, page, sip / 32, c, sip % 32);
    v[i] = ValueElement(L, page, sip, c);
  }
}

// One warp per (slot, job): slot `slot` of src page `src_page` -> the same slot of dst page 0.
template <int D>
__global__ void __launch_bounds__(kWarps * 32) ConvertKernel(DevTier src, int src_page, DevTier dst, int dst_job0,
                                                             int n_slots, const int32_t* src_pages) {
  const int slot = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int job = blockIdx.y;
  if (slot >= n_slots) return;
  if (src_pages) src_page = src_pages[job];
  float k[D / 32], v[D / 32];
  const int cap = src.layout.capacity;
  ReadSlot<D>(src, job, src_page * cap + slot, k, v);
  const int32_t pos = reinterpret_cast<const int32_t*>(PageOf(src, job, src_page) + src.layout.positions_offset)[slot];
  WriteSlot<D>(dst, dst_job0 + job, slot, pos, k, v);
}

// f16 rounding of x toward -inf / +inf (attn/key_summary.cc's F16RoundDown / F16RoundUp).
__device__ __forceinline__ uint16_t F16RoundDown(float x) {
  const uint16_t h = F2H(x);
  return H2F(h) <= x ? h : NextDownF16(h);
}
__device__ __forceinline__ uint16_t F16RoundUp(float x) {
  const uint16_t h = F2H(x);
  return H2F(h) >= x ? h : NextUpF16(h);
}

// Key summary of page 0 of job dst_job0 + blockIdx.x: one warp per 32 slots, lanes over channels
// (as attn/key_summary.cc: [min, max] of the de-quantized keys, rounded outward; the order of the
// min / max does not change the result).
template <int D>
__global__ void __launch_bounds__(D) SummaryKernel(DevTier dst, int dst_job0, int n_slots) {
  const int job = dst_job0 + blockIdx.x;
  __shared__ float lo_s[D / 32][D], hi_s[D / 32][D];
  const int w = threadIdx.x >> 5;
  float lo[D / 32], hi[D / 32];
#pragma unroll
  for (int i = 0; i < D / 32; ++i) {
    lo[i] = INFINITY;
    hi[i] = -INFINITY;
  }
  for (int slot = w; slot < n_slots; slot += D / 32) {
    float k[D / 32], v[D / 32];
    ReadSlot<D>(dst, job, slot, k, v);
#pragma unroll
    for (int i = 0; i < D / 32; ++i) {
      lo[i] = fminf(lo[i], k[i]);
      hi[i] = fmaxf(hi[i], k[i]);
    }
  }
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < D / 32; ++i) {
    lo_s[w][lane + 32 * i] = lo[i];
    hi_s[w][lane + 32 * i] = hi[i];
  }
  __syncthreads();
  const int c = threadIdx.x;
  float l = INFINITY, h = -INFINITY;
  for (int i = 0; i < D / 32; ++i) {
    l = fminf(l, lo_s[i][c]);
    h = fmaxf(h, hi_s[i][c]);
  }
  uint8_t* page = PageOf(dst, job, 0);
  reinterpret_cast<uint16_t*>(page + dst.layout.key_min_offset)[c] = l <= h ? F16RoundDown(l) : uint16_t(0x7c00);
  reinterpret_cast<uint16_t*>(page + dst.layout.key_max_offset)[c] = l <= h ? F16RoundUp(h) : uint16_t(0xfc00);
}

template <int D>
__device__ __forceinline__ void LoadRows(const float* k, const float* v, int64_t off, float (&kr)[D / 32],
                                         float (&vr)[D / 32]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < D / 32; ++i) {
    kr[i] = k[off + lane + 32 * i];
    vr[i] = v[off + lane + 32 * i];
  }
}

// Tokens leaving the recent window move from the hot ring to the warm tier (before new tokens
// overwrite their ring slots).
template <int D>
__global__ void __launch_bounds__(kWarps * 32) DemoteKernel(DevTier hot, DevTier warm, PlacementPolicy p, int job0,
                                                            const StepParams* step) {
  const int i = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int job = job0 + blockIdx.y;
  const int pos0 = step->pos0, n_new = step->n_new;
  const int lo = max(p.n_sink, pos0 - p.window);
  const int hi = min(pos0, pos0 + n_new - p.window);
  const int pos = lo + i;
  if (pos >= hi) return;
  float k[D / 32], v[D / 32];
  ReadSlot<D>(hot, job, p.n_sink + (pos - p.n_sink) % p.window, k, v);
  WriteSlot<D>(warm, job, pos - p.n_sink - step->warm_base, pos, k, v);
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) AppendKernel(DevTier hot, DevTier warm, PlacementPolicy p, int job0,
                                                            const float* k, const float* v, int64_t ld,
                                                            const StepParams* step) {
  const int i = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int g = blockIdx.y;
  const int pos0 = step->pos0, n_new = step->n_new;
  if (i >= n_new) return;
  const int pos = pos0 + i;
  float kr[D / 32], vr[D / 32];
  LoadRows<D>(k, v, static_cast<int64_t>(i) * ld + static_cast<int64_t>(g) * D, kr, vr);
  if (p.window <= 0) {
    WriteSlot<D>(hot, job0 + g, pos, pos, kr, vr);
  } else if (pos < p.n_sink) {
    WriteSlot<D>(hot, job0 + g, pos, pos, kr, vr);
  } else if (pos >= pos0 + n_new - p.window) {
    WriteSlot<D>(hot, job0 + g, p.n_sink + (pos - p.n_sink) % p.window, pos, kr, vr);
  } else {
    WriteSlot<D>(warm, job0 + g, pos - p.n_sink - step->warm_base, pos, kr, vr);
  }
}

__global__ void CountsKernel(int32_t* hot_n, int32_t* warm_n, PlacementPolicy p, int job0, int n_kv,
                             const StepParams* step) {
  const int g = threadIdx.x + blockIdx.x * blockDim.x;
  if (g >= n_kv) return;
  const int total = step->pos0 + step->n_new;
  if (p.window <= 0) {
    hot_n[job0 + g] = total;
    return;
  }
  hot_n[job0 + g] = min(total, p.n_sink + p.window);
  if (warm_n) warm_n[job0 + g] = max(0, total - p.n_sink - p.window - step->warm_base);
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) WriteSlotsKernel(DevTier t, int job0, const float* k, const float* v,
                                                                int64_t ld, int n_tokens, const int32_t* slots,
                                                                const int32_t* positions) {
  const int i = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int g = blockIdx.y;
  if (i >= n_tokens) return;
  float kr[D / 32], vr[D / 32];
  LoadRows<D>(k, v, static_cast<int64_t>(i) * ld + static_cast<int64_t>(g) * D, kr, vr);
  WriteSlot<D>(t, job0 + g, slots[i], positions[i], kr, vr);
}

}  // namespace

cudaError_t LaunchKvAppend(const DevTier& hot, const DevTier* warm, const PlacementPolicy& policy, int job0, int n_kv,
                           const float* k, const float* v, int64_t ld, int max_tokens, const StepParams* step,
                           cudaStream_t s) {
  if (max_tokens <= 0 || n_kv <= 0) return cudaSuccess;
  const int D = hot.layout.head_dim;
  if ((D != 64 && D != 128) || (policy.window > 0 && (!warm || warm->layout.head_dim != D))) return cudaErrorInvalidValue;
  const dim3 grid((max_tokens + kWarps - 1) / kWarps, n_kv);
  const DevTier w = warm ? *warm : DevTier{};
  if (policy.window > 0) {
    if (D == 64) DemoteKernel<64><<<grid, kWarps * 32, 0, s>>>(hot, w, policy, job0, step);
    else DemoteKernel<128><<<grid, kWarps * 32, 0, s>>>(hot, w, policy, job0, step);
  }
  if (D == 64) AppendKernel<64><<<grid, kWarps * 32, 0, s>>>(hot, w, policy, job0, k, v, ld, step);
  else AppendKernel<128><<<grid, kWarps * 32, 0, s>>>(hot, w, policy, job0, k, v, ld, step);
  CountsKernel<<<(n_kv + 127) / 128, 128, 0, s>>>(hot.n_slots, warm ? warm->n_slots : nullptr, policy, job0, n_kv, step);
  return cudaGetLastError();
}

cudaError_t LaunchKvConvertPage(const DevTier& src, int src_page, const DevTier& dst, int dst_job0, int n_jobs,
                                int n_slots, cudaStream_t s, const int32_t* src_pages) {
  if (n_jobs <= 0) return cudaSuccess;
  const int D = src.layout.head_dim;
  if ((D != 64 && D != 128) || dst.layout.head_dim != D || dst.layout.capacity != src.layout.capacity ||
      n_slots < 0 || n_slots > src.layout.capacity)
    return cudaErrorInvalidValue;
  if (n_slots > 0) {
    const dim3 grid((n_slots + kWarps - 1) / kWarps, n_jobs);
    if (D == 64) ConvertKernel<64><<<grid, kWarps * 32, 0, s>>>(src, src_page, dst, dst_job0, n_slots, src_pages);
    else ConvertKernel<128><<<grid, kWarps * 32, 0, s>>>(src, src_page, dst, dst_job0, n_slots, src_pages);
  }
  if (D == 64) SummaryKernel<64><<<n_jobs, 64, 0, s>>>(dst, dst_job0, n_slots);
  else SummaryKernel<128><<<n_jobs, 128, 0, s>>>(dst, dst_job0, n_slots);
  return cudaGetLastError();
}

// One warp per (job, page); lane l holds channels l + 32 i.
static __global__ void __launch_bounds__(kWarps * 32) PageBoundsKernel(const float* q, int64_t q_stride,
                                                                const uint16_t* summaries, int n_kv, int R, int D,
                                                                int max_pages, int n_pages, float* bounds) {
  const int page = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int job = blockIdx.y;
  if (page >= n_pages) return;
  const int lane = threadIdx.x & 31, l = job / n_kv, g = job % n_kv;
  const uint16_t* lo = summaries + (static_cast<size_t>(job) * max_pages + page) * 2 * D;
  const uint16_t* hi = lo + D;
  float best = -INFINITY;
  for (int h = 0; h < R; ++h) {
    const float* qh = q + l * q_stride + static_cast<int64_t>(g * R + h) * D;
    float sum = 0;
    for (int c = lane; c < D; c += 32) {
      const float x = qh[c];
      sum += x > 0 ? x * H2F(hi[c]) : x * H2F(lo[c]);
    }
    best = fmaxf(best, WarpSum(sum));
  }
  if (lane == 0) bounds[static_cast<size_t>(job) * max_pages + page] = best;
}

// One block per job: decay the job's page scores, then add each slot's mass to its page.
static __global__ void PageScoresKernel(DevTier t, const float* mass, int mass_stride, float decay, float* scores) {
  const int job = blockIdx.x;
  for (int p = threadIdx.x; p < t.max_pages; p += blockDim.x) scores[job * t.max_pages + p] *= decay;
  __syncthreads();
  const int n = t.n_slots[job], cap = t.layout.capacity;
  const int32_t* table = t.page_table + static_cast<int64_t>(job) * t.max_pages;
  for (int s = threadIdx.x; s < n; s += blockDim.x)
    atomicAdd(&scores[table[s / cap]], mass[static_cast<int64_t>(job) * mass_stride + s]);
}

cudaError_t LaunchPageScores(const DevTier& tier, int n_jobs, const float* mass, int mass_stride, float decay,
                             float* scores, cudaStream_t s) {
  if (n_jobs <= 0) return cudaSuccess;
  PageScoresKernel<<<n_jobs, 256, 0, s>>>(tier, mass, mass_stride, decay, scores);
  return cudaGetLastError();
}

cudaError_t LaunchPageBounds(const float* q, int64_t q_stride, const uint16_t* summaries, int n_layer, int n_kv, int R,
                             int D, int max_pages, int n_pages, float* bounds, cudaStream_t s) {
  if (n_pages <= 0 || n_layer <= 0 || n_kv <= 0) return cudaSuccess;
  if (n_pages > max_pages || R <= 0 || D <= 0) return cudaErrorInvalidValue;
  const dim3 grid((n_pages + kWarps - 1) / kWarps, n_layer * n_kv);
  PageBoundsKernel<<<grid, kWarps * 32, 0, s>>>(q, q_stride, summaries, n_kv, R, D, max_pages, n_pages, bounds);
  return cudaGetLastError();
}

cudaError_t LaunchKvWriteSlots(const DevTier& tier, int job0, int n_kv, const float* k, const float* v, int64_t ld,
                               int n_tokens, const int32_t* slots, const int32_t* positions, cudaStream_t s) {
  if (n_tokens <= 0 || n_kv <= 0) return cudaSuccess;
  const int D = tier.layout.head_dim;
  const dim3 grid((n_tokens + kWarps - 1) / kWarps, n_kv);
  if (D == 64) WriteSlotsKernel<64><<<grid, kWarps * 32, 0, s>>>(tier, job0, k, v, ld, n_tokens, slots, positions);
  else if (D == 128) WriteSlotsKernel<128><<<grid, kWarps * 32, 0, s>>>(tier, job0, k, v, ld, n_tokens, slots, positions);
  else return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace akv::cuda
