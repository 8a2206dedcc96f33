// Private to src/attn: argument checks, the work items the SIMD kernel executes, and the
// workspace buffers. Shapes are in the comments; D = head_dim.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "attn/attention.h"

namespace akv {

Status ValidateAttention(const AttentionShape& shape, int n_queries, const float* q,
                         std::span<const KvHeadSegments> kv_heads, const float* out);

// Query rows of one KV group as the kernel sees them: row r = (query r / n_q_per_kv, head
// r % n_q_per_kv of the group), already multiplied by the logit scale.
struct KernelRows {
  int n_rows = 0;
  int head_dim = 0;
  const float* q = nullptr;         // [n_rows][D] plain key domain
  const float* q_rot = nullptr;     // [n_rows][D] Hadamard-rotated, or null if no segment needs it
  const float* qsum = nullptr;      // [n_rows][D / 32] sums of q over 32-channel chunks
  const float* qsum_rot = nullptr;  // same for q_rot
  const int32_t* positions = nullptr;  // [n_rows] position of each row's query, or null (no mask)
};

// Tiles [tile_begin, tile_end) of one segment (tile = 32 slots).
struct TileSpan {
  const KvSegment* segment = nullptr;
  int tile_begin = 0;
  int tile_end = 0;
  float* mass = nullptr;  // the segment's mass output (mass pass only), or null
};

// Online softmax of `rows` over `spans`; writes the un-normalized state m[n_rows], d[n_rows],
// o[n_rows][D] (initialized by the kernel).
struct AttentionTask {
  KernelRows rows;
  std::span<const TileSpan> spans;
  float* m = nullptr;
  float* d = nullptr;
  float* o = nullptr;
  // Optional, for MassFromWeights: every tile's softmax weights p = exp(logit - m_tile)
  // [tile of the spans, in order][n_rows][32] (0 where a row does not see a slot) and the running
  // max they are relative to, tile_max [tile][n_rows] (-inf while a row has seen nothing).
  float* weights = nullptr;
  float* tile_max = nullptr;
};

// How a mass pass stores its result: mass[slot] = decay * mass[slot] + weight * (the call's
// mass); (0, 1) overwrites (AttentionOptions::mass_decay / mass_weight).
struct MassUpdate {
  float decay = 0.0f;
  float weight = 1.0f;
};

// Attention mass of `spans` given the rows' final statistics: mass[slot] = sum over rows of
// exp(logit - m[row]) * inv_d[row] (rows with an empty state contribute 0).
struct MassTask {
  KernelRows rows;
  std::span<const TileSpan> spans;
  const float* m = nullptr;
  const float* inv_d = nullptr;
  MassUpdate update;
};

// Attention mass from an AttentionTask's stored weights (same rows and spans) and the final
// statistics, mass[slot] = sum_r p[r][slot] exp(m_tile[r] - m[r]) inv_d[r]: the decode path's
// alternative to re-running the scores (one multiply per row and slot, no exponential).
struct MassFromWeightsTask {
  int n_rows = 0;
  std::span<const TileSpan> spans;
  const float* weights = nullptr;
  const float* tile_max = nullptr;
  const float* m = nullptr;
  const float* inv_d = nullptr;
  MassUpdate update;
};

void RunAttentionTask(const AttentionTask& task);  // attention_kernel.cc (runtime dispatch)
void RunMassTask(const MassTask& task);
void RunMassFromWeights(const MassFromWeightsTask& task);

using AlignedFloats = std::vector<float>;  // the kernel loads these unaligned

// The rows of every KV group, ready for the kernel.
struct PreparedQueries {
  std::vector<KernelRows> groups;  // [n_kv_heads]
};

struct AttentionWorkspace::Buffers {
  AlignedFloats queries;   // prepared q, q_rot and chunk sums of all KV groups
  AlignedFloats states;    // partial (m, d, o) per work item or per thread
  AlignedFloats final_stats;  // prefill: m and 1/d of every row, for the mass pass
  AlignedFloats weights;      // decode with mass: each item's softmax weights and tile maxima
  std::vector<int32_t> row_positions;
  std::vector<TileSpan> spans;
  PreparedQueries prepared;
};

// Scales (and rotates) the queries of every KV group into buffers.queries and fills
// buffers.prepared.
Status PrepareQueries(const AttentionShape& shape, int n_queries, const float* q,
                      const int32_t* query_positions, std::span<const KvHeadSegments> kv_heads,
                      AttentionWorkspace::Buffers& buffers);

// Tiles of a KV head's segments, concatenated in segment order.
int64_t HeadTiles(const KvHeadSegments& head);
// Appends the spans covering tiles [begin, end) of that concatenation (mass pointers included).
void AppendTileSpans(const KvHeadSegments& head, int64_t begin, int64_t end, std::vector<TileSpan>* spans);
bool WantsMass(std::span<const KvHeadSegments> kv_heads);

// Strategies (attention_decode.cc, attention_prefill.cc).
void AttendDecode(const AttentionShape& shape, std::span<const KvHeadSegments> kv_heads, float* out,
                  SoftmaxStats* stats, const AttentionOptions& options, AttentionWorkspace::Buffers& buffers);
void AttendPrefill(const AttentionShape& shape, int n_queries, std::span<const KvHeadSegments> kv_heads,
                   float* out, SoftmaxStats* stats, const AttentionOptions& options,
                   AttentionWorkspace::Buffers& buffers);

// Floats per work item's state rounded to whole cache lines, and a buffer's first 64-byte
// aligned float: items written by different threads never share a line.
inline size_t CacheLineFloats(size_t n) { return (n + 15) / 16 * 16; }
inline float* AlignedStart(AlignedFloats& v) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((64 - p % 64) % 64) / sizeof(float);
}

// Number of 32-slot tiles of a segment.
inline int SegmentTiles(const KvSegment& s) { return (s.n_slots + 31) / 32; }

}  // namespace akv
