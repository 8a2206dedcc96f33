// Matrix-vector products for decode (and small token batches): one warp per output row, 16-byte
// weight loads, f32 accumulation. Weight bandwidth bound: each weight byte is read once per
// chunk of up to 8 tokens.
//
// Quantized weights follow the CPU MatMul contract: activations are quantized to Q8_0
// (LaunchQuantizeQ8, llama.cpp rounding) and each 32-element block contributes
// d_w * d_x * (integer dot product), so the result equals MatMulReference up to float rounding.
#include <cuda_bf16.h>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace akv::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // warps per block, one row each
constexpr int kTokenChunk = 8;    // tokens sharing one pass over a weight row

template <typename T>
__device__ __forceinline__ void Widen8(const uint4& w, float* out);  // 16 bytes -> f32 values

template <>
__device__ __forceinline__ void Widen8<__half>(const uint4& w, float* out) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&words[i]));
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}
template <>
__device__ __forceinline__ void Widen8<__nv_bfloat16>(const uint4& w, float* out) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(words[i] << 16);
    out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}
template <>
__device__ __forceinline__ void Widen8<float>(const uint4& w, float* out) {
  out[0] = __uint_as_float(w.x);
  out[1] = __uint_as_float(w.y);
  out[2] = __uint_as_float(w.z);
  out[3] = __uint_as_float(w.w);
}

template <typename T>
__device__ __forceinline__ float ScalarToFloat(T v);
template <>
__device__ __forceinline__ float ScalarToFloat<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float ScalarToFloat<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float ScalarToFloat<float>(float v) { return v; }

// VEC: cols is a multiple of the 16-byte vector and x rows are 16-byte aligned.
template <typename T, bool VEC>
__global__ void __launch_bounds__(256) GemvFloatKernel(const T* __restrict__ W, int64_t rows, int64_t cols,
                                                       const float* __restrict__ x, int64_t ldx, int n,
                                                       float* __restrict__ y, int64_t ldy, bool accumulate) {
  constexpr int EPV = 16 / sizeof(T);  // elements per 16-byte vector
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (r >= rows) return;
  const T* wr = W + r * cols;
  for (int t0 = 0; t0 < n; t0 += kTokenChunk) {
    float acc[kTokenChunk];
#pragma unroll
    for (int t = 0; t < kTokenChunk; ++t) acc[t] = 0.0f;
    if constexpr (VEC) {
      const int64_t nv = cols / EPV;
      const uint4* wv = reinterpret_cast<const uint4*>(wr);
#pragma unroll 4
      for (int64_t v = lane; v < nv; v += 32) {
        float wf[EPV];
        Widen8<T>(__ldg(wv + v), wf);
#pragma unroll
        for (int t = 0; t < kTokenChunk; ++t) {
          if (t0 + t < n) {
            const float4* xv = reinterpret_cast<const float4*>(x + (t0 + t) * ldx + v * EPV);
#pragma unroll
            for (int k = 0; k < EPV / 4; ++k) {
              const float4 xx = xv[k];
              acc[t] += wf[4 * k] * xx.x + wf[4 * k + 1] * xx.y + wf[4 * k + 2] * xx.z + wf[4 * k + 3] * xx.w;
            }
          }
        }
      }
    } else {
      for (int64_t i = lane; i < cols; i += 32) {
        const float wf = ScalarToFloat<T>(wr[i]);
#pragma unroll
        for (int t = 0; t < kTokenChunk; ++t)
          if (t0 + t < n) acc[t] += wf * x[(t0 + t) * ldx + i];
      }
    }
#pragma unroll
    for (int t = 0; t < kTokenChunk; ++t) {
      if (t0 + t < n) {
        const float s = WarpSum(acc[t]);
        if (lane == 0) {
          float* out = y + (t0 + t) * ldy + r;
          *out = accumulate ? *out + s : s;
        }
      }
    }
  }
}

// Decode (one token), float weights, RPW rows per warp: each lane's slice of x is loaded once per
// 16-byte column chunk and used for all RPW rows; UNROLL chunks are in flight per row.
template <typename T, int RPW, int UNROLL>
__global__ void __launch_bounds__(256) GemvFloat1Kernel(const T* __restrict__ W, int64_t rows, int64_t cols,
                                                        const float* __restrict__ x, float* __restrict__ y,
                                                        bool accumulate) {
  constexpr int EPV = 16 / sizeof(T);
  const int lane = threadIdx.x & 31;
  const int64_t r0 = (static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5)) * RPW;
  if (r0 >= rows) return;
  const int64_t nv = cols / EPV;
  const uint4* wv[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) wv[r] = reinterpret_cast<const uint4*>(W + min(r0 + r, rows - 1) * cols);
  float acc[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) acc[r] = 0.0f;
  int64_t v = lane;
  for (; v + 32 * (UNROLL - 1) < nv; v += 32 * UNROLL) {
    uint4 wq[UNROLL][RPW];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int r = 0; r < RPW; ++r) wq[u][r] = __ldg(wv[r] + v + 32 * u);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      float xf[EPV];
      const float4* xv = reinterpret_cast<const float4*>(x + (v + 32 * u) * EPV);
#pragma unroll
      for (int k = 0; k < EPV / 4; ++k) {
        const float4 t = xv[k];
        xf[4 * k] = t.x;
        xf[4 * k + 1] = t.y;
        xf[4 * k + 2] = t.z;
        xf[4 * k + 3] = t.w;
      }
#pragma unroll
      for (int r = 0; r < RPW; ++r) {
        float wf[EPV];
        Widen8<T>(wq[u][r], wf);
#pragma unroll
        for (int e = 0; e < EPV; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
      }
    }
  }
  for (; v < nv; v += 32) {
    float xf[EPV];
    const float4* xv = reinterpret_cast<const float4*>(x + v * EPV);
#pragma unroll
    for (int k = 0; k < EPV / 4; ++k) {
      const float4 t = xv[k];
      xf[4 * k] = t.x;
      xf[4 * k + 1] = t.y;
      xf[4 * k + 2] = t.z;
      xf[4 * k + 3] = t.w;
    }
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      float wf[EPV];
      Widen8<T>(__ldg(wv[r] + v), wf);
#pragma unroll
      for (int e = 0; e < EPV; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
    const float sum = WarpSum(acc[r]);
    if (lane == 0 && r0 + r < rows) y[r0 + r] = accumulate ? y[r0 + r] + sum : sum;
  }
}

// Q8_0 weights: lane handles whole 32-element blocks (two 16-byte code loads).
__global__ void __launch_bounds__(256) GemvQ8Kernel(const int8_t* __restrict__ W, const __half* __restrict__ ws,
                                                    int64_t rows, int64_t cols, const int8_t* __restrict__ xq,
                                                    const __half* __restrict__ xs, int n, float* __restrict__ y,
                                                    int64_t ldy, bool accumulate) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int64_t nb = cols / 32;
  for (int t0 = 0; t0 < n; t0 += kTokenChunk) {
    float acc[kTokenChunk];
#pragma unroll
    for (int t = 0; t < kTokenChunk; ++t) acc[t] = 0.0f;
#pragma unroll 2
    for (int64_t b = lane; b < nb; b += 32) {
      const uint4* wp = reinterpret_cast<const uint4*>(W + r * cols + b * 32);
      const uint4 w0 = __ldg(wp), w1 = __ldg(wp + 1);
      const float dw = __half2float(ws[r * nb + b]);
#pragma unroll
      for (int t = 0; t < kTokenChunk; ++t) {
        if (t0 + t < n) {
          const uint4* xp = reinterpret_cast<const uint4*>(xq + (t0 + t) * cols + b * 32);
          const uint4 x0 = xp[0], x1 = xp[1];
          int s = 0;
          s = __dp4a(static_cast<int>(w0.x), static_cast<int>(x0.x), s);
          s = __dp4a(static_cast<int>(w0.y), static_cast<int>(x0.y), s);
          s = __dp4a(static_cast<int>(w0.z), static_cast<int>(x0.z), s);
          s = __dp4a(static_cast<int>(w0.w), static_cast<int>(x0.w), s);
          s = __dp4a(static_cast<int>(w1.x), static_cast<int>(x1.x), s);
          s = __dp4a(static_cast<int>(w1.y), static_cast<int>(x1.y), s);
          s = __dp4a(static_cast<int>(w1.z), static_cast<int>(x1.z), s);
          s = __dp4a(static_cast<int>(w1.w), static_cast<int>(x1.w), s);
          acc[t] += dw * __half2float(xs[(t0 + t) * nb + b]) * static_cast<float>(s);
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kTokenChunk; ++t) {
      if (t0 + t < n) {
        const float s = WarpSum(acc[t]);
        if (lane == 0) {
          float* out = y + (t0 + t) * ldy + r;
          *out = accumulate ? *out + s : s;
        }
      }
    }
  }
}

// Q4_0 weights: one 16-byte load per block; sum (q - 8) x = sum q x - 8 sum x.
__global__ void __launch_bounds__(256) GemvQ4Kernel(const uint8_t* __restrict__ W, const __half* __restrict__ ws,
                                                    int64_t rows, int64_t cols, const int8_t* __restrict__ xq,
                                                    const __half* __restrict__ xs, int n, float* __restrict__ y,
                                                    int64_t ldy, bool accumulate) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int64_t nb = cols / 32;
  for (int t0 = 0; t0 < n; t0 += kTokenChunk) {
    float acc[kTokenChunk];
#pragma unroll
    for (int t = 0; t < kTokenChunk; ++t) acc[t] = 0.0f;
#pragma unroll 2
    for (int64_t b = lane; b < nb; b += 32) {
      const uint4 w = __ldg(reinterpret_cast<const uint4*>(W + r * (cols / 2) + b * 16));
      const float dw = __half2float(ws[r * nb + b]);
      const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
      for (int t = 0; t < kTokenChunk; ++t) {
        if (t0 + t < n) {
          const uint4* xp = reinterpret_cast<const uint4*>(xq + (t0 + t) * cols + b * 32);
          const uint4 x0 = xp[0], x1 = xp[1];
          const uint32_t xlo[4] = {x0.x, x0.y, x0.z, x0.w}, xhi[4] = {x1.x, x1.y, x1.z, x1.w};
          int s = 0, sx = 0;
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            s = __dp4a(static_cast<int>(words[i] & 0x0F0F0F0Fu), static_cast<int>(xlo[i]), s);
            s = __dp4a(static_cast<int>((words[i] >> 4) & 0x0F0F0F0Fu), static_cast<int>(xhi[i]), s);
            sx = __dp4a(0x01010101, static_cast<int>(xlo[i]), sx);
            sx = __dp4a(0x01010101, static_cast<int>(xhi[i]), sx);
          }
          acc[t] += dw * __half2float(xs[(t0 + t) * nb + b]) * static_cast<float>(s - 8 * sx);
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kTokenChunk; ++t) {
      if (t0 + t < n) {
        const float s = WarpSum(acc[t]);
        if (lane == 0) {
          float* out = y + (t0 + t) * ldy + r;
          *out = accumulate ? *out + s : s;
        }
      }
    }
  }
}

// One warp per 32-element block: d = amax / 127 (f32), codes round(x / d) with the f32 d, the
// f16 d stored (QuantizeRowQ8_0).
__global__ void QuantizeQ8Kernel(const float* x, int64_t ldx, int64_t cols, int8_t* codes, __half* scales) {
  const int t = blockIdx.y;
  const int64_t nb = cols / 32;
  const int lane = threadIdx.x & 31;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (b >= nb) return;
  const float v = x[t * ldx + b * 32 + lane];
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFullMask, amax, o));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  codes[t * cols + b * 32 + lane] = static_cast<int8_t>(roundf(v * id));
  if (lane == 0) scales[t * nb + b] = __float2half_rn(d);
}

}  // namespace

cudaError_t LaunchQuantizeQ8(const float* x, int64_t ldx, int64_t cols, int n, int8_t* codes, __half* scales,
                             cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (cols % 32 != 0) return cudaErrorInvalidValue;
  const int64_t nb = cols / 32;
  QuantizeQ8Kernel<<<dim3(static_cast<unsigned>((nb + 7) / 8), n), 256, 0, s>>>(x, ldx, cols, codes, scales);
  return cudaGetLastError();
}

cudaError_t LaunchGemvFloat(const DevMatrix& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy,
                            bool accumulate, cudaStream_t s, int variant) {
  if (n <= 0 || w.rows <= 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>((w.rows + kRowsPerBlock - 1) / kRowsPerBlock);
  const int elem = w.type == GgmlType::F32 ? 4 : 2;
  const bool vec = (w.cols * elem) % 16 == 0 && ldx % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
  if (vec && n == 1 && variant >= 1 && variant <= 3) {
    const int rpw = variant == 1 ? 1 : (variant == 2 ? 2 : 4);
    const unsigned g1 = static_cast<unsigned>((w.rows + kRowsPerBlock * rpw - 1) / (kRowsPerBlock * rpw));
#define AKV_GEMV1(T)                                                                                             \
  if (rpw == 1) GemvFloat1Kernel<T, 1, 4><<<g1, 256, 0, s>>>(static_cast<const T*>(w.data), w.rows, w.cols, x, y, accumulate); \
  else if (rpw == 2) GemvFloat1Kernel<T, 2, 2><<<g1, 256, 0, s>>>(static_cast<const T*>(w.data), w.rows, w.cols, x, y, accumulate); \
  else GemvFloat1Kernel<T, 4, 1><<<g1, 256, 0, s>>>(static_cast<const T*>(w.data), w.rows, w.cols, x, y, accumulate);
    switch (w.type) {
      case GgmlType::F32: AKV_GEMV1(float) break;
      case GgmlType::F16: AKV_GEMV1(__half) break;
      case GgmlType::BF16: AKV_GEMV1(__nv_bfloat16) break;
      default: return cudaErrorInvalidValue;
    }
#undef AKV_GEMV1
    return cudaGetLastError();
  }
#define AKV_GEMV(T)                                                                                          \
  if (vec) {                                                                                                 \
    GemvFloatKernel<T, true><<<grid, 256, 0, s>>>(static_cast<const T*>(w.data), w.rows, w.cols, x, ldx, n, y, \
                                                  ldy, accumulate);                                         \
  } else {                                                                                                   \
    GemvFloatKernel<T, false><<<grid, 256, 0, s>>>(static_cast<const T*>(w.data), w.rows, w.cols, x, ldx, n,  \
                                                   y, ldy, accumulate);                                     \
  }
  switch (w.type) {
    case GgmlType::F32: AKV_GEMV(float) break;
    case GgmlType::F16: AKV_GEMV(__half) break;
    case GgmlType::BF16: AKV_GEMV(__nv_bfloat16) break;
    default: return cudaErrorInvalidValue;
  }
#undef AKV_GEMV
  return cudaGetLastError();
}

cudaError_t LaunchGemvQuant(const DevMatrix& w, const int8_t* xq, const __half* xs, int n, float* y, int64_t ldy,
                            bool accumulate, cudaStream_t s) {
  if (n <= 0 || w.rows <= 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>((w.rows + kRowsPerBlock - 1) / kRowsPerBlock);
  if (w.type == GgmlType::Q8_0) {
    GemvQ8Kernel<<<grid, 256, 0, s>>>(static_cast<const int8_t*>(w.data), w.scales, w.rows, w.cols, xq, xs, n, y,
                                      ldy, accumulate);
  } else if (w.type == GgmlType::Q4_0) {
    GemvQ4Kernel<<<grid, 256, 0, s>>>(static_cast<const uint8_t*>(w.data), w.scales, w.rows, w.cols, xq, xs, n, y,
                                      ldy, accumulate);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace akv::cuda
