// f32 <-> f16 / bf16 rows for the passthrough codecs (SIMD, runtime dispatch). Rounding is to
// nearest even, bit-identical to core/half.h.
#pragma once

#include <cstdint>

#include "core/half.h"
#include "core/status.h"

namespace akv {

// InvalidArgument when a value is NaN, infinite, or (for f16) would overflow to infinity.
Status F32RowToF16(const float* x, int n, f16_t* out);
Status F32RowToBF16(const float* x, int n, bf16_t* out);
void F16RowToF32(const f16_t* x, int n, float* out);
void BF16RowToF32(const bf16_t* x, int n, float* out);

// Widens per-element f16 bounds [lo, hi] to cover x[n]; a widened bound is x rounded outward
// (lo down, hi up) to f16, so lo <= x <= hi holds exactly. Bit-identical to the scalar
// ExtendKeySummary (attn/key_summary.h).
void ExtendF16Bounds(const float* x, int n, f16_t* lo, f16_t* hi);

}  // namespace akv
