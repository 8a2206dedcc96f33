// Element-wise and reduction kernels of the forward pass, f32, SIMD with runtime dispatch.
#pragma once

#include <cstdint>

#include "core/half.h"

namespace akv {

// out = x / rms(x) * weight, rms(x) = sqrt(mean(x^2) + eps). out may alias x.
void RmsNorm(const float* x, const float* weight, float eps, float* out, int64_t n);
// out[i] = silu(gate[i]) * up[i]. out may alias gate.
void SwiGlu(const float* gate, const float* up, float* out, int64_t n);
// y[i] += x[i]
void AddInPlace(float* y, const float* x, int64_t n);
// sum_i a[i] * b[i]
float Dot(const float* a, const float* b, int64_t n);
// In-place softmax; returns nothing. Works with -inf entries (at least one finite).
void Softmax(float* x, int64_t n);
// Conversions of whole rows.
void F16ToF32Row(const f16_t* src, float* dst, int64_t n);
void F32ToF16Row(const float* src, f16_t* dst, int64_t n);
void BF16ToF32Row(const bf16_t* src, float* dst, int64_t n);

}  // namespace akv
