// Device-side helpers shared by the kernels (warp reductions, conversions, tier addressing).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/kernels.h"

namespace akv::cuda {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}
__device__ __forceinline__ float WarpMin(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// 5-bit bit reversal: after the transposing reduction (attention_decode.cu), lane l holds slot
// Brev5(l).
__device__ __forceinline__ int Brev5(int x) { return static_cast<int>(__brev(static_cast<unsigned>(x)) >> 27); }

__device__ __forceinline__ float H2F(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t F2H(float f) { return __half_as_ushort(__float2half_rn(f)); }

// Exact small unsigned integer (< 2^23) to float without the slow I2F path: 0x4B000000 | c is
// 2^23 + c.
__device__ __forceinline__ float CodeToFloat(uint32_t c) { return __uint_as_float(0x4B000000u | c) - 8388608.0f; }

// 16-byte asynchronous global -> shared copies (sm_80+), committed in groups.
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most n of this thread's committed groups are pending.
__device__ __forceinline__ void CpAsyncWait(int n) {
  switch (n) {
    case 0: asm volatile("cp.async.wait_group 0;\n" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;\n" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;\n" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 3;\n" ::: "memory"); break;
  }
}

// Start of page `p` of job `j`.
__device__ __forceinline__ uint8_t* PageOf(const DevTier& t, int job, int page) {
  return t.pool + static_cast<size_t>(t.page_table[static_cast<int64_t>(job) * t.max_pages + page]) * t.page_bytes;
}

// Element c of the key in slot j of 32-slot tile `tile` of a page, de-quantized as the CPU codecs
// do (fma(code, scale, zero)); f16 pages hold the value itself.
__device__ __forceinline__ float KeyElement(const DevPageLayout& L, const uint8_t* page, int tile, int c, int j) {
  if (L.bits == 16) {
    return H2F(reinterpret_cast<const uint16_t*>(page + L.key_data_offset)[(static_cast<size_t>(tile) * L.head_dim + c) * 32 + j]);
  }
  const int U = 4 * L.bits;
  const uint8_t* unit = page + L.key_data_offset + (static_cast<size_t>(tile) * L.head_dim + c) * U;
  const int code = (unit[j % U] >> (L.bits * (j / U))) & ((1 << L.bits) - 1);
  const size_t at = (static_cast<size_t>(tile) * (L.head_dim / L.key_group) + c / L.key_group) * 32 + j;
  return fmaf(static_cast<float>(code), H2F(reinterpret_cast<const uint16_t*>(page + L.key_scales_offset)[at]),
              H2F(reinterpret_cast<const uint16_t*>(page + L.key_zeros_offset)[at]));
}

// Element c of the value in slot sip of a page. Value tiles: [D / unit][32 slots][unit]; unit = 16
// f16 channels (32 bytes) or a packed unit of 32 quantized channels.
__device__ __forceinline__ float ValueElement(const DevPageLayout& L, const uint8_t* page, int sip, int c) {
  const uint8_t* vtile = page + L.value_data_offset + static_cast<size_t>(sip / 32) * (L.head_dim * 32 * L.bits / 8);
  if (L.bits == 16) return H2F(reinterpret_cast<const uint16_t*>(vtile + ((c / 16) * 32 + sip % 32) * 32)[c % 16]);
  const int U = 4 * L.bits;
  const int j = c % 32;
  const uint8_t* unit = vtile + ((c / 32) * 32 + sip % 32) * U;
  const int code = (unit[j % U] >> (L.bits * (j / U))) & ((1 << L.bits) - 1);
  const size_t at = static_cast<size_t>(sip) * (L.head_dim / L.value_group) + c / L.value_group;
  return fmaf(static_cast<float>(code), H2F(reinterpret_cast<const uint16_t*>(page + L.value_scales_offset)[at]),
              H2F(reinterpret_cast<const uint16_t*>(page + L.value_zeros_offset)[at]));
}

// ---- Tensor-core helpers (sm_80+): mma.sync m16n8k16 with f16 operands and f32 accumulators,
// ldmatrix loads of 8x8 f16 matrices (x2 / x4, optionally transposed), movmatrix.
__device__ __forceinline__ void Mma(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                    uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void LdsmX4T(uint32_t (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
}
__device__ __forceinline__ void LdsmX4(uint32_t (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
}
__device__ __forceinline__ void LdsmX2(uint32_t (&r)[2], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s) : "memory");
}
__device__ __forceinline__ void LdsmX2T(uint32_t (&r)[2], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s) : "memory");
}
__device__ __forceinline__ uint32_t MovT(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}
// Two floats as an f16 pair (lo in the low half).
__device__ __forceinline__ uint32_t Pack(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
// Two floats as a high f16 pair and the low pair of what it leaves (a = hi + lo to ~2^-22): the
// tensor-core kernels multiply both parts to keep f32 accuracy from f16 operands.
__device__ __forceinline__ void SplitPair(float a, float b, uint32_t* hi, uint32_t* lo) {
  *hi = Pack(a, b);
  const __half2 h = *reinterpret_cast<const __half2*>(hi);
  *lo = Pack(a - __low2float(h), b - __high2float(h));
}

}  // namespace akv::cuda
