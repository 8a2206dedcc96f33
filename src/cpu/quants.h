// Block formats of the GGUF quantized types (bit-compatible with ggml) and row conversions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/ggml_types.h"
#include "core/half.h"

namespace akv {

constexpr int kQK = 32;     // block size of Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
constexpr int kQK_K = 256;  // super-block size of the K-quants

struct BlockQ8_0 { f16_t d; int8_t qs[kQK]; };
struct BlockQ4_0 { f16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { f16_t d, m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { f16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { f16_t d, m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ4_K { f16_t d, dmin; uint8_t scales[12]; uint8_t qs[kQK_K / 2]; };
struct BlockQ5_K { f16_t d, dmin; uint8_t scales[12]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; f16_t d; };
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// Converts `n` elements (a multiple of the type's block size) of a row to f32. Every type whose
// GetTypeTraits().supported is true is handled.
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// Quantizers with llama.cpp's rounding (reference implementations; used for activations and tests).
void QuantizeRowQ8_0(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeRowQ4_0(const float* x, BlockQ4_0* y, int64_t n);

}  // namespace akv
