// Kernels behind MatMul (matmul.cc splits rows over threads and picks one of these).
// Each computes the output rows [r0, r1) for every token; y[t * ldy + r].
#pragma once

#include <cstddef>
#include <cstdint>

#include <hwy/aligned_allocator.h>

#include "cpu/matmul.h"

namespace akv::cpu_internal {

// Float weights (F32, F16, BF16).
// GEMV: streams each weight row once per group of up to 4 tokens (lanes along k, f16/bf16
// widened in registers). For decode and small batches.
void FloatGemvRows(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                   float* y, int64_t ldy, int64_t r0, int64_t r1);
// GEMM: converts a panel of rows to f32, transposed to [k][panel] (lanes along rows), then a
// register-tiled FMA micro-kernel over tokens with x broadcast from memory.
void FloatGemmRows(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                   float* y, int64_t ldy, int64_t r0, int64_t r1);

// Q8_0 / Q4_0 GEMM panel (and the packed-at-load layout of WeightMatrix::panels): 32 rows; per
// block of 32 columns a record of 32 x 32 code bytes then the 32 rows' f16 scales.
constexpr int64_t kQuantPanelRows = 32;
constexpr int64_t kQuantPanelCodeBytes = kQuantPanelRows * 32;
constexpr int64_t kQuantPanelBlockBytes = kQuantPanelCodeBytes + kQuantPanelRows * 2;

// An aligned array that only grows (kernels reuse one per thread or per call site).
template <typename T>
class GrowBuffer {
 public:
  T* Get(size_t n) {
    if (n > capacity_) {
      buf_ = hwy::AllocateAligned<T>(n);
      capacity_ = n;
    }
    return buf_.get();
  }
  T* data() const { return buf_.get(); }

 private:
  hwy::AlignedFreeUniquePtr<T[]> buf_;
  size_t capacity_ = 0;
};

// Activations quantized to Q8_0 once per MatMul call, unpacked for the integer kernels.
// Blocks are padded to an even count (zeros) so kernels can work on pairs of blocks: one
// 64-byte vector. The integer kernels take the weights as unsigned bytes (Q8_0: w + 128,
// Q4_0: the raw nibble, i.e. w + 8), so every block dot product carries a correction
// -bias * sum(x_block), precomputed here as `corr`.
struct QuantizedActivations {
  int64_t n_tokens = 0;
  int64_t n_blocks = 0;  // real 32-element blocks per token
  int64_t n_pairs = 0;   // ceil(n_blocks / 2)
  int32_t bias = 0;      // 128 for Q8_0 weights, 8 for Q4_0
  bool with_pairs = false;  // dpair / cpair filled (the multi-token GEMV uses them)
  GrowBuffer<int8_t> qs_buf;       // [n_tokens][2 * n_pairs * 32]
  GrowBuffer<float> d_buf;         // [n_tokens][2 * n_pairs]: the f16-rounded block scale
  GrowBuffer<int32_t> corr_buf;    // [n_tokens][2 * n_pairs]: -bias * sum(qs of the block)
  // Per block pair, spread over 16 lanes (lanes 0-7 block 2p, 8-15 block 2p+1), for the
  // GEMV kernel that keeps one pair of blocks in a 512-bit vector: the scale, and the
  // correction divided by 8 (8 lanes sum to it; bias is a multiple of 8).
  GrowBuffer<float> dpair_buf;     // [n_tokens][n_pairs][16]
  GrowBuffer<int32_t> cpair_buf;   // [n_tokens][n_pairs][16]

  int64_t padded_blocks() const { return 2 * n_pairs; }
  void Prepare(int64_t tokens, int64_t cols, GgmlType weight_type, bool pairs);
  const int8_t* qs(int64_t t) const { return qs_buf.data() + t * padded_blocks() * 32; }
  const float* d(int64_t t) const { return d_buf.data() + t * padded_blocks(); }
  const int32_t* corr(int64_t t) const { return corr_buf.data() + t * padded_blocks(); }
  const float* dpair(int64_t t) const { return dpair_buf.data() + t * n_pairs * 16; }
  const int32_t* cpair(int64_t t) const { return cpair_buf.data() + t * n_pairs * 16; }
};

// Quantizes tokens [t0, t1) of x into xq (after Prepare); the integers and scales are
// bit-identical to QuantizeRowQ8_0.
void QuantizeActivations(const float* x, int64_t ldx, int64_t t0, int64_t t1,
                         QuantizedActivations* xq);

// Q8_0 / Q4_0 weights against quantized activations.
// GEMV: lanes along k, integer dot products per block pair.
void QuantGemvRows(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                   int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1);
// GEMM: repacks a panel of rows so that lanes run along rows, then a register-tiled
// integer micro-kernel (vpdpbusd where available).
void QuantGemmRows(const WeightMatrix& w, const QuantizedActivations& xq, int64_t t0,
                   int64_t t1, float* y, int64_t ldy, int64_t r0, int64_t r1);

}  // namespace akv::cpu_internal
