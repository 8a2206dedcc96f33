// The reference: de-quantize every slot with the scalar codec path, undo the Hadamard rotation
// of keys (in double), then plain softmax attention in double precision.
#include <cmath>
#include <limits>
#include <vector>

#include "attn/attention.h"
#include "attn/attention_internal.h"
#include "kv/codecs/hadamard.h"

namespace akv {

namespace {

// x <- R^T x for the rotation of hadamard.h, in double.
void InverseRotateDouble(double* x, int n) {
  int offset = 0;
  for (int len = 1 << 30; len >= 1; len >>= 1) {
    if (n - offset < len) continue;
    double* b = x + offset;
    for (int h = 1; h < len; h *= 2)
      for (int i = 0; i < len; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const double a = b[j], c = b[j + h];
          b[j] = a + c;
          b[j + h] = a - c;
        }
    const double norm = 1.0 / std::sqrt(double(len));
    for (int j = 0; j < len; ++j) b[j] *= norm;
    offset += len;
  }
  for (int c = 0; c < n; ++c) x[c] *= HadamardSign(c);
}

}  // namespace

Status AttendReference(const AttentionShape& shape, int n_queries, const float* q,
                       const int32_t* query_positions, std::span<const KvHeadSegments> kv_heads,
                       float* out, SoftmaxStats* stats) {
  AKV_RETURN_IF_ERROR(ValidateAttention(shape, n_queries, q, kv_heads, out));
  const int dim = shape.head_dim, group = shape.n_q_per_kv, n_heads = shape.n_heads();
  const double scale = shape.scale != 0 ? double(shape.scale) : 1.0 / std::sqrt(double(dim));
  std::vector<float> row(dim);
  for (int g = 0; g < shape.n_kv_heads; ++g) {
    const KvHeadSegments& head = kv_heads[g];
    // All slots of the head: keys in the original domain, values, positions, mass outputs.
    std::vector<double> keys, values;
    std::vector<int32_t> positions;
    std::vector<float*> mass_out;
    for (size_t s = 0; s < head.segments.size(); ++s) {
      const KvSegment& seg = head.segments[s];
      for (int slot = 0; slot < seg.n_slots; ++slot) {
        DecodeSegmentKey(seg, dim, slot, row.data());
        std::vector<double> k(row.begin(), row.end());
        if (seg.key_codec.hadamard) InverseRotateDouble(k.data(), dim);
        keys.insert(keys.end(), k.begin(), k.end());
        DecodeSegmentValue(seg, dim, slot, row.data());
        values.insert(values.end(), row.begin(), row.end());
        positions.push_back(seg.positions[slot]);
        mass_out.push_back(head.mass.empty() || !head.mass[s] ? nullptr : head.mass[s] + slot);
      }
    }
    const size_t n = positions.size();
    std::vector<double> mass(n, 0.0), logits(n), o(dim);
    for (int i = 0; i < n_queries; ++i) {
      for (int h = 0; h < group; ++h) {
        const int qh = g * group + h;
        const float* qv = q + (size_t(i) * n_heads + qh) * dim;
        double m = -std::numeric_limits<double>::infinity();
        for (size_t t = 0; t < n; ++t) {
          if (query_positions && positions[t] > query_positions[i]) {
            logits[t] = -std::numeric_limits<double>::infinity();
            continue;
          }
          double dot = 0;
          for (int c = 0; c < dim; ++c) dot += double(qv[c]) * keys[t * dim + c];
          logits[t] = scale * dot;
          m = std::max(m, logits[t]);
        }
        double d = 0;
        std::fill(o.begin(), o.end(), 0.0);
        if (m != -std::numeric_limits<double>::infinity()) {
          for (size_t t = 0; t < n; ++t) {
            const double w = std::exp(logits[t] - m);
            d += w;
            for (int c = 0; c < dim; ++c) o[c] += w * values[t * dim + c];
          }
          for (size_t t = 0; t < n; ++t) mass[t] += std::exp(logits[t] - m) / d;
        }
        float* dst = out + (size_t(i) * n_heads + qh) * dim;
        for (int c = 0; c < dim; ++c) dst[c] = d > 0 ? float(o[c] / d) : 0.0f;
        if (stats) stats[size_t(i) * n_heads + qh] = SoftmaxStats{float(m), float(d)};
      }
    }
    for (size_t t = 0; t < n; ++t)
      if (mass_out[t]) *mass_out[t] = float(mass[t]);
  }
  return Status::Ok();
}

}  // namespace akv
