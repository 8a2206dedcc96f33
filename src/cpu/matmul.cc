// MatMul, first portable version: rows split over the pool; each row converted to f32 (float
// types) or kept as integer blocks (Q8_0/Q4_0 against Q8_0-quantized activations).
#include "cpu/matmul.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "cpu/quants.h"
#include "cpu/vec_ops.h"

namespace akv {
namespace {

float DotQ8Q8(const BlockQ8_0* w, const BlockQ8_0* x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t s = 0;
    for (int j = 0; j < kQK; ++j) s += int32_t(w[b].qs[j]) * int32_t(x[b].qs[j]);
    acc += F16ToF32(w[b].d) * F16ToF32(x[b].d) * float(s);
  }
  return acc;
}

float DotQ4Q8(const BlockQ4_0* w, const BlockQ8_0* x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += ((w[b].qs[j] & 0x0F) - 8) * int32_t(x[b].qs[j]);
      s += ((w[b].qs[j] >> 4) - 8) * int32_t(x[b].qs[j + kQK / 2]);
    }
    acc += F16ToF32(w[b].d) * F16ToF32(x[b].d) * float(s);
  }
  return acc;
}

constexpr int64_t kRowsPerTask = 16;

}  // namespace

void MatMul(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
            int64_t ldy, ThreadPool& pool) {
  assert(MatMulSupports(w.type));
  const int64_t k = w.cols;
  const int64_t n_tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  if (w.type == GgmlType::Q8_0 || w.type == GgmlType::Q4_0) {
    const int64_t nb = k / kQK;
    std::vector<BlockQ8_0> xq(static_cast<size_t>(n_tokens * nb));
    for (int64_t t = 0; t < n_tokens; ++t) QuantizeRowQ8_0(x + t * ldx, xq.data() + t * nb, k);
    pool.ParallelFor(n_tasks, [&](int64_t task, int) {
      const int64_t r1 = std::min(w.rows, (task + 1) * kRowsPerTask);
      for (int64_t r = task * kRowsPerTask; r < r1; ++r) {
        const void* row = w.data + r * w.row_bytes;
        for (int64_t t = 0; t < n_tokens; ++t) {
          y[t * ldy + r] = w.type == GgmlType::Q8_0
                               ? DotQ8Q8(static_cast<const BlockQ8_0*>(row), xq.data() + t * nb, nb)
                               : DotQ4Q8(static_cast<const BlockQ4_0*>(row), xq.data() + t * nb, nb);
        }
      }
    });
    return;
  }
  pool.ParallelFor(n_tasks, [&](int64_t task, int) {
    std::vector<float> row(static_cast<size_t>(k));
    const int64_t r1 = std::min(w.rows, (task + 1) * kRowsPerTask);
    for (int64_t r = task * kRowsPerTask; r < r1; ++r) {
      DequantizeRow(w.type, w.data + r * w.row_bytes, row.data(), k);
      for (int64_t t = 0; t < n_tokens; ++t) y[t * ldy + r] = Dot(row.data(), x + t * ldx, k);
    }
  });
}

}  // namespace akv
