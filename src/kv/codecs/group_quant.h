// Group-wise asymmetric quantization: x ~= code * scale + zero, one f16 (scale, zero) per group.
//
// Rounding contract (shared bit-for-bit by the scalar reference and the SIMD paths):
//   zero  = largest f16 <= min(group)
//   scale = smallest f16 with fma(2^bits - 1, scale, zero) >= max(group)   (0 if max == zero)
//   code  = clamp(nearbyint((x - zero) * (1 / scale)), 0, 2^bits - 1)      (f32, ties to even)
//   x^    = fma(code, scale, zero)
// so every value lies inside [zero, zero + qmax * scale] and |x^ - x| <= scale / 2 plus f32
// rounding: "within one step". Inputs must be finite and inside the f16 range (|x| <= 65504), as
// KV activations of f16 models are; anything else is reported as InvalidArgument.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "core/status.h"

namespace akv {

struct GroupParams {
  f16_t scale = 0;
  f16_t zero = 0;
};

// The (scale, zero) of a group whose values span [lo, hi]; lo <= hi, both finite, |.| <= 65504.
GroupParams ChooseGroupParams(float lo, float hi, int bits);

// 1 / scale, or 0 for a zero scale (a constant group: every code is 0, x^ = zero).
inline float InverseScale(float scale) { return scale > 0 ? 1.0f / scale : 0.0f; }

inline uint8_t QuantizeValue(float x, float zero, float inv_scale, int max_code) {
  const float t = std::nearbyint((x - zero) * inv_scale);
  return static_cast<uint8_t>(t < 0 ? 0 : (t > float(max_code) ? max_code : int(t)));
}

inline float DequantizeValue(int code, float scale, float zero) {
  return std::fma(float(code), scale, zero);
}

// Bad bit width, group size or length: InvalidArgument naming the problem.
Status CheckGroupQuantArgs(int n, int bits, int group_size);
// Values outside the f16 range or NaN: InvalidArgument.
Status CheckQuantizableRange(float lo, float hi);

// ---- Rows (per-token groups): x[n] -> codes packed in n/32 units, scales/zeros [n / group].

// Scalar references (the contract above, one value at a time).
Status QuantizeRowReference(const float* x, int n, int bits, int group_size, uint8_t* packed,
                            f16_t* scales, f16_t* zeros);
void DequantizeRowReference(const uint8_t* packed, const f16_t* scales, const f16_t* zeros, int n,
                            int bits, int group_size, float* out);

// SIMD (Highway, runtime dispatch); bit-identical codes, scales and zeros.
Status QuantizeRow(const float* x, int n, int bits, int group_size, uint8_t* packed, f16_t* scales,
                   f16_t* zeros);
void DequantizeRow(const uint8_t* packed, const f16_t* scales, const f16_t* zeros, int n, int bits,
                   int group_size, float* out);

// Symmetric variant (values of a `symmetric` codec): per group only a scale, the smallest f16 with
// SymmetricZero(scale) <= min(group) and fma(2^bits - 1, scale, zero) >= max(group), i.e. the
// grid [-s * q / 2, s * q / 2] covers the group; codes as above with that implied zero. Scalar
// (it runs once per appended token and group). Same errors as QuantizeRow.
Status QuantizeRowSymmetric(const float* x, int n, int bits, int group_size, uint8_t* packed, f16_t* scales);

// Unpacked variant for scattering into key tiles: one code byte per value.
Status QuantizeToCodesReference(const float* x, int n, int bits, int group_size, uint8_t* codes,
                                f16_t* scales, f16_t* zeros);
Status QuantizeToCodes(const float* x, int n, int bits, int group_size, uint8_t* codes,
                       f16_t* scales, f16_t* zeros);

// De-quantizes unpacked codes[n] (one byte each) with per-group scales/zeros [n / group_size]:
// out[i] = fma(code, scale, zero), as DequantizeValue. SIMD.
void DequantizeCodes(const uint8_t* codes, const f16_t* scales, const f16_t* zeros, int n, int group_size,
                     float* out);

}  // namespace akv
