#include "attn/key_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kv/codecs/hadamard.h"
#include "kv/codecs/half_rows.h"

namespace akv {

namespace {

constexpr f16_t kF16PlusInf = 0x7c00, kF16MinusInf = 0xfc00;

// f16 rounding of x toward -inf / +inf (finite x; |x| beyond the f16 range gives an infinity).
f16_t F16RoundDown(float x) {
  f16_t h = F32ToF16(x);
  if (F16ToF32(h) <= x) return h;
  if ((h & 0x7fff) == 0) return 0x8001;
  return (h & 0x8000) ? f16_t(h + 1) : f16_t(h - 1);
}
f16_t F16RoundUp(float x) {
  f16_t h = F32ToF16(x);
  if (F16ToF32(h) >= x) return h;
  if ((h & 0x7fff) == 0) return 0x0001;
  return (h & 0x8000) ? f16_t(h - 1) : f16_t(h + 1);
}

}  // namespace

void ResetKeySummary(int head_dim, f16_t* key_min, f16_t* key_max) {
  for (int c = 0; c < head_dim; ++c) {
    key_min[c] = kF16PlusInf;
    key_max[c] = kF16MinusInf;
  }
}

void ExtendKeySummary(const float* key, int head_dim, f16_t* key_min, f16_t* key_max) {
  ExtendF16Bounds(key, head_dim, key_min, key_max);
}

void ExtendKeySummaryReference(const float* key, int head_dim, f16_t* key_min, f16_t* key_max) {
  for (int c = 0; c < head_dim; ++c) {
    if (key[c] < F16ToF32(key_min[c])) key_min[c] = F16RoundDown(key[c]);
    if (key[c] > F16ToF32(key_max[c])) key_max[c] = F16RoundUp(key[c]);
  }
}

Status ComputeKeySummary(const KvSegment& segment, int head_dim, f16_t* key_min, f16_t* key_max) {
  AKV_RETURN_IF_ERROR(ValidateSegment(segment, head_dim, "key summary"));
  ResetKeySummary(head_dim, key_min, key_max);
  std::vector<float> key(head_dim);
  for (int slot = 0; slot < segment.n_slots; ++slot) {
    DecodeSegmentKey(segment, head_dim, slot, key.data());
    ExtendKeySummary(key.data(), head_dim, key_min, key_max);
  }
  return Status::Ok();
}

Status QueryInKeyDomain(const CodecSpec& key_codec, const float* q, int head_dim, float* out) {
  for (int c = 0; c < head_dim; ++c) out[c] = q[c];
  if (key_codec.hadamard) return HadamardRotate(out, head_dim);
  return Status::Ok();
}

double QkUpperBound(const float* q, const f16_t* key_min, const f16_t* key_max, int head_dim) {
  double bound = 0;
  for (int c = 0; c < head_dim; ++c) {
    const double lo = F16ToF32(key_min[c]), hi = F16ToF32(key_max[c]);
    if (lo > hi) return -std::numeric_limits<double>::infinity();  // empty
    if (q[c] == 0) continue;
    bound += q[c] > 0 ? double(q[c]) * hi : double(q[c]) * lo;
  }
  return bound;
}

double GroupQkUpperBound(const float* q, int n_q, const f16_t* key_min, const f16_t* key_max, int head_dim) {
  double b = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n_q; ++i)
    b = std::max(b, QkUpperBound(q + static_cast<size_t>(i) * head_dim, key_min, key_max, head_dim));
  return b;
}

}  // namespace akv
