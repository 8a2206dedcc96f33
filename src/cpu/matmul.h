// Matrix multiplication of GGUF weight matrices with f32 activations, multi-threaded.
//
//   y[t * ldy + r] = sum_i W[r, i] * x[t * ldx + i]    for t < n_tokens, r < w.rows
//
// W is row-major in its GGUF type (one row = w.cols elements = w.row_bytes bytes); this is
// ggml's layout for a weight with dims [cols, rows]. Decode (n_tokens == 1) is a GEMV bound by
// weight bandwidth; prefill is a blocked GEMM. Q8_0/Q4_0 follow llama.cpp: activations are
// quantized to Q8_0 blocks and multiplied with integer dot products.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/ggml_types.h"
#include "core/thread_pool.h"

namespace akv {

struct WeightMatrix {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
  size_t row_bytes = 0;
  // Optional: the same weights in 32-row panels (PackPanels), read by the kernels instead of
  // `data` where this CPU has a panel kernel. `data` stays valid and is what everything else
  // (references, other backends, embedding look-ups) reads.
  const uint8_t* panels = nullptr;
};

// Q8_0 weights on CPUs with AVX-512 VNNI are multiplied in panels of 32 rows whose lanes run
// along rows (codes as w + 128 in 4-byte groups, f16 scales beside them; see
// matmul_quant.cc). The prefill GEMM repacks each panel per call; a copy packed once at load
// saves that and makes the one-token GEMV a register-tiled kernel without horizontal sums.
// PanelBytes: the size of that copy, 0 when this CPU/type has no panel kernel.
// PackPanels: writes it to `out` (PanelBytes(w) bytes, 64-byte aligned).
size_t PanelBytes(const WeightMatrix& w);
void PackPanels(const WeightMatrix& w, uint8_t* out);

// Types MatMul computes on directly: F32, F16, BF16, Q8_0, Q4_0.
bool MatMulSupports(GgmlType type);

void MatMul(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
            int64_t ldy, ThreadPool& pool);

// Several matrices applied to the same input (q, k, v; gate, up): the activations are quantized
// once (Q8_0/Q4_0) and the rows of all matrices are shared out in one thread-pool dispatch,
// instead of one dispatch (a barrier) per matrix: decode issues ~57 matmuls per token, so this
// matters there. outs[i] receives ws[i] * x exactly as MatMul(ws[i], ...) would. Matrices of
// different types or column counts are run one MatMul at a time.
struct MatMulOutput {
  float* y;
  int64_t ldy;
};
void MatMulMany(const WeightMatrix* ws, const MatMulOutput* outs, int n, const float* x,
                int64_t ldx, int64_t n_tokens, ThreadPool& pool);

// Slow, obviously correct reference (dequantize the row, double accumulation; Q8_0/Q4_0 also
// quantize x to Q8_0 first, as MatMul does). For tests.
void MatMulReference(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                     float* y, int64_t ldy);

// Name of the Highway target ("AVX3_DL", "AVX2", "SCALAR", ...) that the CPU kernels dispatch
// to on this machine, for logs, benchmarks and tests.
const char* CpuKernelTarget();

}  // namespace akv
