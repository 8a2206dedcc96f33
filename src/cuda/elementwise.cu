// Element-wise kernels of the forward pass: embedding look-up, RMSNorm, SwiGLU, bias, RoPE,
// conversions, random fills. Memory-bound; one pass over their inputs each.
#include <cuda_bf16.h>

#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace akv::cuda {

namespace {

// Element i of row r of a DevMatrix as f32 (the CPU DequantizeRow formulas).
__device__ __forceinline__ float MatrixElement(const DevMatrix& w, int64_t r, int64_t i) {
  switch (w.type) {
    case GgmlType::F32: return static_cast<const float*>(w.data)[r * w.cols + i];
    case GgmlType::F16: return H2F(static_cast<const uint16_t*>(w.data)[r * w.cols + i]);
    case GgmlType::BF16:
      return __bfloat162float(__ushort_as_bfloat16(static_cast<const uint16_t*>(w.data)[r * w.cols + i]));
    case GgmlType::Q8_0: {
      const float d = __half2float(w.scales[r * (w.cols / 32) + i / 32]);
      return d * float(static_cast<const int8_t*>(w.data)[r * w.cols + i]);
    }
    case GgmlType::Q4_0: {
      const float d = __half2float(w.scales[r * (w.cols / 32) + i / 32]);
      const int j = static_cast<int>(i % 32);
      const uint8_t b = static_cast<const uint8_t*>(w.data)[r * (w.cols / 2) + (i / 32) * 16 + (j & 15)];
      const int q = j < 16 ? (b & 0x0F) : (b >> 4);
      return d * float(q - 8);
    }
    default: return 0.0f;
  }
}

__global__ void EmbedKernel(DevMatrix emb, const int32_t* tokens, float* x, int64_t ldx) {
  const int t = blockIdx.x;
  const int64_t r = tokens[t];
  for (int64_t i = threadIdx.x; i < emb.cols; i += blockDim.x) x[t * ldx + i] = MatrixElement(emb, r, i);
}

__global__ void RmsNormKernel(const float* x, float* out, int64_t group_stride, int per_group, int dim,
                              const float* w, float eps) {
  const int r = blockIdx.x;
  const int64_t off = (r / per_group) * group_stride + static_cast<int64_t>(r % per_group) * dim;
  const float* xr = x + off;
  float ss = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  __shared__ float partial[32];
  ss = WarpSum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.0f;
    v = WarpSum(v);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  const float scale = 1.0f / sqrtf(partial[0] / dim + eps);
  float* o = out + off;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

__global__ void SwiGluKernel(const float* gu, int64_t ldgu, int n_ff, float* out, int64_t ldo) {
  const int t = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n_ff; i += gridDim.x * blockDim.x) {
    const float g = gu[t * ldgu + i], u = gu[t * ldgu + n_ff + i];
    out[t * ldo + i] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void AddBiasKernel(float* y, int64_t ldy, const float* b, int dim) {
  const int t = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x) y[t * ldy + i] += b[i];
}

template <typename T>
__global__ void ConvertRowsKernel(const float* x, int64_t ldx, int cols, T* out) {
  const int t = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < cols; i += gridDim.x * blockDim.x) {
    if constexpr (sizeof(T) == 2 && std::is_same_v<T, __half>) {
      out[static_cast<int64_t>(t) * cols + i] = __float2half_rn(x[t * ldx + i]);
    } else {
      out[static_cast<int64_t>(t) * cols + i] = __float2bfloat16_rn(x[t * ldx + i]);
    }
  }
}

// One block per (token, head); thread i rotates pair i (model/rope.cc, same float operations).
__global__ void RopeKernel(float* x, int64_t ld, int head_dim, const StepParams* step, RopeParams p) {
  const int t = blockIdx.x, h = blockIdx.y;
  if (t >= step->n_new) return;
  const int half = p.n_dims / 2;
  const float pos = static_cast<float>(step->pos0 + t);
  float* v = x + t * ld + static_cast<int64_t>(h) * head_dim;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float theta_extrap = pos * p.inv_freq[i];
    float theta = p.scaled ? theta_extrap * p.freq_scale : theta_extrap;
    float mscale = 1.0f;
    if (p.yarn) {
      mscale = p.attn_factor;
      const float y = (i - p.corr_low) / fmaxf(0.001f, p.corr_high - p.corr_low);
      const float ramp = (1 - fminf(1.f, fmaxf(0.f, y))) * p.ext_factor;
      theta = __fadd_rn(__fmul_rn(theta, 1 - ramp), __fmul_rn(theta_extrap, ramp));  // no FMA: as the CPU rounds
      mscale *= 1.0f + 0.1f * logf(1.0f / p.freq_scale);
    }
    const float c = cosf(theta) * mscale, s = sinf(theta) * mscale;
    const int i0 = p.neox ? i : 2 * i, i1 = p.neox ? i + half : 2 * i + 1;
    const float a = v[i0], b = v[i1];
    v[i0] = a * c - b * s;
    v[i1] = a * s + b * c;
  }
}

__device__ __forceinline__ uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void RandomFillKernel(void* out, GgmlType type, int64_t n, uint64_t seed, float amplitude) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t h = SplitMix64(seed * 0x100000001B3ull + static_cast<uint64_t>(i));
    const float u = (static_cast<float>(h >> 40) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;  // [-1, 1)
    const float v = u * amplitude;
    switch (type) {
      case GgmlType::F32: static_cast<float*>(out)[i] = v; break;
      case GgmlType::F16: static_cast<__half*>(out)[i] = __float2half_rn(v); break;
      case GgmlType::BF16: static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(v); break;
      default: break;
    }
  }
}

__global__ void FillF32Kernel(float* out, int64_t n, float value) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = value;
}

__global__ void CopyF32Kernel(const float* src, float* dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

__global__ void SetDecodeStepKernel(StepParams* step, int32_t* tokens, StepParams value, int32_t token) {
  *step = value;
  if (tokens) tokens[0] = token;
}

int GridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65535 ? (blocks < 1 ? 1 : blocks) : 65535);
}

}  // namespace

cudaError_t LaunchEmbed(const DevMatrix& emb, const int32_t* tokens, int n, float* x, int64_t ldx, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  EmbedKernel<<<n, 256, 0, s>>>(emb, tokens, x, ldx);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* x, float* out, int64_t group_stride, int per_group, int n_rows, int dim,
                          const float* w, float eps, cudaStream_t s) {
  if (n_rows <= 0) return cudaSuccess;
  const int threads = dim >= 1024 ? 256 : (dim >= 256 ? 128 : 32);
  RmsNormKernel<<<n_rows, threads, 0, s>>>(x, out, group_stride, per_group, dim, w, eps);
  return cudaGetLastError();
}

cudaError_t LaunchSwiGlu(const float* gu, int64_t ldgu, int n_ff, int n, float* out, int64_t ldo, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  SwiGluKernel<<<dim3(GridFor(n_ff, 256), n), 256, 0, s>>>(gu, ldgu, n_ff, out, ldo);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(float* y, int64_t ldy, const float* b, int dim, int n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  AddBiasKernel<<<dim3(GridFor(dim, 256), n), 256, 0, s>>>(y, ldy, b, dim);
  return cudaGetLastError();
}

cudaError_t LaunchConvertRows(const float* x, int64_t ldx, int cols, int n, void* out, GgmlType out_type,
                              cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  const dim3 grid(GridFor(cols, 256), n);
  if (out_type == GgmlType::F16) {
    ConvertRowsKernel<__half><<<grid, 256, 0, s>>>(x, ldx, cols, static_cast<__half*>(out));
  } else if (out_type == GgmlType::BF16) {
    ConvertRowsKernel<__nv_bfloat16><<<grid, 256, 0, s>>>(x, ldx, cols, static_cast<__nv_bfloat16*>(out));
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t LaunchRope(float* x, int64_t ld, int n_heads, int head_dim, int max_tokens, const StepParams* step,
                       const RopeParams& p, cudaStream_t s) {
  if (max_tokens <= 0 || n_heads <= 0) return cudaSuccess;
  const int threads = p.n_dims / 2 >= 64 ? 64 : 32;
  RopeKernel<<<dim3(max_tokens, n_heads), threads, 0, s>>>(x, ld, head_dim, step, p);
  return cudaGetLastError();
}

cudaError_t LaunchRandomFill(void* out, GgmlType type, int64_t n, uint64_t seed, float amplitude, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::BF16) return cudaErrorInvalidValue;
  RandomFillKernel<<<4096, 256, 0, s>>>(out, type, n, seed, amplitude);
  return cudaGetLastError();
}

cudaError_t LaunchCopyF32(const float* src, float* dst, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  CopyF32Kernel<<<GridFor(n, 256) < 1024 ? GridFor(n, 256) : 1024, 256, 0, s>>>(src, dst, n);
  return cudaGetLastError();
}

cudaError_t LaunchSetDecodeStep(StepParams* step, int32_t* tokens, const StepParams& value, int32_t token,
                                cudaStream_t s) {
  SetDecodeStepKernel<<<1, 1, 0, s>>>(step, tokens, value, token);
  return cudaGetLastError();
}

cudaError_t LaunchFillF32(float* out, int64_t n, float value, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  FillF32Kernel<<<GridFor(n, 256) < 4096 ? GridFor(n, 256) : 4096, 256, 0, s>>>(out, n, value);
  return cudaGetLastError();
}

}  // namespace akv::cuda

namespace akv::cuda {

// Whether this binary holds code the current device can run: cudaFuncGetAttributes fails with
// cudaErrorNoKernelImageForDevice (or InvalidDeviceFunction) when neither machine code for its
// architecture nor compatible PTX was embedded.
cudaError_t ProbeKernelImage(int* binary_version, int* ptx_version) {
  cudaFuncAttributes attr{};
  cudaError_t e = cudaFuncGetAttributes(&attr, FillF32Kernel);
  if (e != cudaSuccess) return e;
  *binary_version = attr.binaryVersion;
  *ptx_version = attr.ptxVersion;
  return cudaSuccess;
}

}  // namespace akv::cuda
