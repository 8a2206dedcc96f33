// MatMulReference: dequantize each weight row to f32, accumulate in double. For Q8_0/Q4_0 the
// activations are first quantized to Q8_0 and dequantized back, which is exactly what the
// integer kernels compute (up to float rounding of the per-block scale products).
#include <vector>

#include "cpu/matmul.h"
#include "cpu/quants.h"

namespace akv {

bool MatMulSupports(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
      return true;
    default:
      return false;
  }
}

void MatMulReference(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                     float* y, int64_t ldy) {
  const int64_t k = w.cols;
  const bool quantize_x = w.type == GgmlType::Q8_0 || w.type == GgmlType::Q4_0;
  // Activations as the kernel sees them: f32, or Q8_0 round-tripped.
  std::vector<float> xs(static_cast<size_t>(n_tokens * k));
  std::vector<BlockQ8_0> q(static_cast<size_t>(k / kQK + 1));
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* dst = xs.data() + t * k;
    if (quantize_x) {
      QuantizeRowQ8_0(x + t * ldx, q.data(), k);
      DequantizeRow(GgmlType::Q8_0, q.data(), dst, k);
    } else {
      for (int64_t i = 0; i < k; ++i) dst[i] = x[t * ldx + i];
    }
  }
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < w.rows; ++r) {
    DequantizeRow(w.type, w.data + r * w.row_bytes, row.data(), k);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = xs.data() + t * k;
      double acc = 0.0;
      for (int64_t i = 0; i < k; ++i) acc += double(row[i]) * double(xt[i]);
      y[t * ldy + r] = float(acc);
    }
  }
}

}  // namespace akv
