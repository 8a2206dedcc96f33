// Attention over tiers: one softmax over every segment of a KV head (f16 / bf16 / int8 / int4 /
// int2, per-token or KIVI keys, with or without Hadamard rotation), without ever writing a
// de-quantized K or V or a score matrix to memory. (One exception, and only when attention mass
// is requested at decode: each slot's per-head softmax weights are kept for the mass pass, see
// attention_decode.cc; prefill re-computes scores instead.)
//
// Shapes (row-major, f32):
//   q    [n_queries][n_kv_heads * n_q_per_kv][head_dim]   query head h uses KV head h / n_q_per_kv
//   out  same shape as q
//   query_positions [n_queries] (optional): a query at position p sees only slots whose position
//        is <= p (causal prefill). Null: every stored slot is visible (decode).
//   stats [n_queries][n_heads] (optional): the softmax statistics (m, d) of each output row, so a
//        caller can merge this result with attention over other keys (online_softmax.h).
//   mass (optional, per KV head and segment): mass[slot] = sum over the group's query heads and
//        over the queries of the normalized attention weight of that slot (the scorer's input).
//        Overwritten (masked slots get 0), or folded into a running score with
//        AttentionOptions::mass_decay / mass_weight.
//
// Strategy: one query (n_queries == 1, decode) is split over heads and, for long contexts, over KV tiles
// (split-K); the partial (m, d, o) states are merged. Several queries (prefill) are processed in
// query tiles x key tiles (flash attention), tiles entirely above the causal diagonal skipped.
// GQA: the query heads of a group share each K/V tile, which is read from memory once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "attn/online_softmax.h"
#include "attn/segment.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace akv {

struct AttentionShape {
  int n_kv_heads = 1;
  int n_q_per_kv = 1;  // query heads per KV head (GQA group size)
  int head_dim = 128;
  float scale = 0;     // logit = scale * q.k; 0 means 1 / sqrt(head_dim)

  int n_heads() const { return n_kv_heads * n_q_per_kv; }
  float logit_scale() const;
};

// The segments of one KV head and, optionally, where their attention mass goes.
struct KvHeadSegments {
  std::span<const KvSegment> segments;
  // Empty (no mass wanted) or one entry per segment: [n_slots] floats, or null to skip one.
  std::span<float* const> mass;
};

// Scratch reused across calls (partial states, prepared queries); keeps decode free of
// allocations after the first call of a given size. Not shared between concurrent calls.
class AttentionWorkspace {
 public:
  AttentionWorkspace();
  ~AttentionWorkspace();
  AttentionWorkspace(const AttentionWorkspace&) = delete;
  AttentionWorkspace& operator=(const AttentionWorkspace&) = delete;
  struct Buffers;
  Buffers& buffers() { return *buffers_; }

 private:
  std::unique_ptr<Buffers> buffers_;
};

struct AttentionOptions {
  ThreadPool* pool = nullptr;               // null: run on the calling thread
  AttentionWorkspace* workspace = nullptr;  // null: a temporary one
  // Decode split-K: a KV head's tiles are divided into splits of at least this many slots when
  // there are fewer heads than work items for the threads.
  int min_split_slots = 1024;
  // Prefill: queries per query tile (rows = queries x n_q_per_kv).
  int prefill_query_tile = 16;
  // Mass output as a running score: mass[slot] = mass_decay * mass[slot] + mass_weight * (this
  // call's mass). The defaults overwrite. Lets a scorer keep `decay * old + w * mass` without a
  // second pass over every slot.
  float mass_decay = 0.0f;
  float mass_weight = 1.0f;
};

Status Attend(const AttentionShape& shape, int n_queries, const float* q, const int32_t* query_positions,
              std::span<const KvHeadSegments> kv_heads, float* out, SoftmaxStats* stats = nullptr,
              const AttentionOptions& options = {});

// The SIMD target the kernel dispatches to on this CPU ("AVX3", "AVX2", ...), for reports.
const char* AttentionKernelTarget();

// The definition the kernel is tested against: every segment de-quantized with the scalar codec
// reference, then scores, softmax, output and mass in double precision. Same arguments.
Status AttendReference(const AttentionShape& shape, int n_queries, const float* q,
                       const int32_t* query_positions, std::span<const KvHeadSegments> kv_heads,
                       float* out, SoftmaxStats* stats = nullptr);

}  // namespace akv
