// Entry point: argument checks, query preparation (scale, Hadamard rotation, group sums), and
// the choice between the decode (split-K) and prefill (flash) strategies.
#include "attn/attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "attn/attention_internal.h"
#include "kv/codecs/hadamard.h"

namespace akv {

float AttentionShape::logit_scale() const {
  return scale != 0 ? scale : float(1.0 / std::sqrt(double(head_dim)));
}

AttentionWorkspace::AttentionWorkspace() : buffers_(std::make_unique<Buffers>()) {}
AttentionWorkspace::~AttentionWorkspace() = default;

namespace {
constexpr int kMaxHeadDim = 512;  // the kernel's stack buffers
}  // namespace

Status ValidateAttention(const AttentionShape& shape, int n_queries, const float* q,
                         std::span<const KvHeadSegments> kv_heads, const float* out) {
  if (shape.n_kv_heads <= 0 || shape.n_q_per_kv <= 0)
    return InvalidArgument("attention: " + std::to_string(shape.n_kv_heads) + " KV heads with " +
                           std::to_string(shape.n_q_per_kv) + " query heads each");
  if (shape.head_dim <= 0 || shape.head_dim % 16 != 0 || shape.head_dim > kMaxHeadDim)
    return InvalidArgument("attention: head_dim " + std::to_string(shape.head_dim) +
                           " must be a multiple of 16 in [16, 512]");
  if (!std::isfinite(shape.scale)) return InvalidArgument("attention: logit scale is not finite");
  if (n_queries < 0) return InvalidArgument("attention: negative query count");
  if (n_queries > 0 && (!q || !out)) return InvalidArgument("attention: q and out are required");
  if (kv_heads.size() != size_t(shape.n_kv_heads))
    return InvalidArgument("attention: " + std::to_string(kv_heads.size()) + " KV head segment lists for " +
                           std::to_string(shape.n_kv_heads) + " KV heads");
  for (size_t g = 0; g < kv_heads.size(); ++g) {
    const KvHeadSegments& head = kv_heads[g];
    if (!head.mass.empty() && head.mass.size() != head.segments.size())
      return InvalidArgument("attention: KV head " + std::to_string(g) + " has " +
                             std::to_string(head.mass.size()) + " mass outputs for " +
                             std::to_string(head.segments.size()) + " segments");
    for (size_t s = 0; s < head.segments.size(); ++s) {
      // Checked with a fixed name first (no string built per segment and step); an error is
      // re-reported naming the head and segment.
      if (ValidateSegment(head.segments[s], shape.head_dim, "attention").ok()) continue;
      return ValidateSegment(head.segments[s], shape.head_dim,
                             "attention: KV head " + std::to_string(g) + ", segment " + std::to_string(s));
    }
  }
  return Status::Ok();
}

Status PrepareQueries(const AttentionShape& shape, int n_queries, const float* q,
                      const int32_t* query_positions, std::span<const KvHeadSegments> kv_heads,
                      AttentionWorkspace::Buffers& buffers) {
  PreparedQueries* prepared = &buffers.prepared;
  const int dim = shape.head_dim, group = shape.n_q_per_kv, n_heads = shape.n_heads();
  const int rows = n_queries * group;
  const int chunks = dim / kUnitValues;
  const size_t per_variant = size_t(rows) * dim + size_t(rows) * chunks;
  std::vector<bool> needs_rotation(shape.n_kv_heads, false);
  size_t total = 0;
  for (int g = 0; g < shape.n_kv_heads; ++g) {
    for (const KvSegment& s : kv_heads[g].segments) needs_rotation[g] = needs_rotation[g] || s.key_codec.hadamard;
    total += per_variant * (needs_rotation[g] ? 2 : 1);
  }
  buffers.queries.resize(total);
  buffers.row_positions.clear();
  if (query_positions)
    for (int r = 0; r < rows; ++r) buffers.row_positions.push_back(query_positions[r / group]);

  const float scale = shape.logit_scale();
  prepared->groups.assign(shape.n_kv_heads, KernelRows{});
  float* at = buffers.queries.data();
  for (int g = 0; g < shape.n_kv_heads; ++g) {
    KernelRows& k = prepared->groups[g];
    k.n_rows = rows;
    k.head_dim = dim;
    k.positions = query_positions ? buffers.row_positions.data() : nullptr;
    float* plain = at;
    float* plain_sum = plain + size_t(rows) * dim;
    at += per_variant;
    for (int r = 0; r < rows; ++r) {
      const float* src = q + (size_t(r / group) * n_heads + size_t(g) * group + r % group) * dim;
      for (int c = 0; c < dim; ++c) plain[size_t(r) * dim + c] = src[c] * scale;
    }
    k.q = plain;
    k.qsum = plain_sum;
    float* rotated = nullptr;
    float* rotated_sum = nullptr;
    if (needs_rotation[g]) {
      rotated = at;
      rotated_sum = rotated + size_t(rows) * dim;
      at += per_variant;
      std::copy(plain, plain + size_t(rows) * dim, rotated);
      for (int r = 0; r < rows; ++r) AKV_RETURN_IF_ERROR(HadamardRotate(rotated + size_t(r) * dim, dim));
      k.q_rot = rotated;
      k.qsum_rot = rotated_sum;
    }
    for (int r = 0; r < rows; ++r)
      for (int u = 0; u < chunks; ++u) {
        float s = 0, sr = 0;
        for (int c = u * kUnitValues; c < (u + 1) * kUnitValues; ++c) {
          s += plain[size_t(r) * dim + c];
          if (rotated) sr += rotated[size_t(r) * dim + c];
        }
        plain_sum[size_t(r) * chunks + u] = s;
        if (rotated) rotated_sum[size_t(r) * chunks + u] = sr;
      }
  }
  return Status::Ok();
}

int64_t HeadTiles(const KvHeadSegments& head) {
  int64_t tiles = 0;
  for (const KvSegment& s : head.segments) tiles += SegmentTiles(s);
  return tiles;
}

void AppendTileSpans(const KvHeadSegments& head, int64_t begin, int64_t end, std::vector<TileSpan>* spans) {
  int64_t first = 0;  // first tile of the current segment in the concatenation
  for (size_t s = 0; s < head.segments.size() && first < end; ++s) {
    const int tiles = SegmentTiles(head.segments[s]);
    const int64_t lo = std::max(begin, first), hi = std::min(end, first + tiles);
    if (lo < hi) {
      TileSpan span;
      span.segment = &head.segments[s];
      span.tile_begin = int(lo - first);
      span.tile_end = int(hi - first);
      span.mass = head.mass.empty() ? nullptr : head.mass[s];
      spans->push_back(span);
    }
    first += tiles;
  }
}

bool WantsMass(std::span<const KvHeadSegments> kv_heads) {
  for (const KvHeadSegments& head : kv_heads)
    for (float* m : head.mass)
      if (m) return true;
  return false;
}

Status Attend(const AttentionShape& shape, int n_queries, const float* q, const int32_t* query_positions,
              std::span<const KvHeadSegments> kv_heads, float* out, SoftmaxStats* stats,
              const AttentionOptions& options) {
  AKV_RETURN_IF_ERROR(ValidateAttention(shape, n_queries, q, kv_heads, out));
  if (n_queries == 0) return Status::Ok();
  std::unique_ptr<AttentionWorkspace> local;
  AttentionWorkspace* ws = options.workspace;
  if (!ws) {
    local = std::make_unique<AttentionWorkspace>();
    ws = local.get();
  }
  AttentionWorkspace::Buffers& buffers = ws->buffers();
  AKV_RETURN_IF_ERROR(PrepareQueries(shape, n_queries, q, query_positions, kv_heads, buffers));
  if (n_queries == 1) {
    AttendDecode(shape, kv_heads, out, stats, options, buffers);
  } else {
    AttendPrefill(shape, n_queries, kv_heads, out, stats, options, buffers);
  }
  return Status::Ok();
}

}  // namespace akv
