// The KV cache interface the model runs against. A cache stores, per layer and KV head, the
// keys (after RoPE) and values of past tokens, and computes attention over what it stores, so
// each implementation (full f16, tiered AKV, baselines) can use its own storage and kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "akv/cache_stats.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace akv {

struct KvShape {
  int n_layer = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_q_per_kv = 1;  // query heads per KV head (GQA)
  // Bytes one token takes in an f16 cache: keys and values of every layer and KV head.
  int64_t F16BytesPerToken() const { return 2LL * 2 * n_layer * n_head_kv * head_dim; }
};

class KvCache {
 public:
  virtual ~KvCache() = default;
  virtual std::string name() const = 0;
  const KvShape& shape() const { return shape_; }

  // Stores n new tokens of `layer`: k, v [n, n_head_kv, head_dim], keys already rotated;
  // token t has position positions[t]. Fails when the cache is full.
  virtual Status Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) = 0;

  // Causal attention of q [n_q, n_head_kv * n_q_per_kv, head_dim] (rotated; query t at
  // positions[t]) over the stored tokens of `layer` whose position is <= the query's, with
  // scale 1/sqrt(head_dim). Writes out [n_q, n_head, head_dim].
  virtual Status Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out,
                        ThreadPool& pool) = 0;

  // Called once after every layer of a forward step has appended and attended; policies that
  // move tokens between tiers do it here, on the step's threads.
  virtual void EndStep(ThreadPool& pool) { (void)pool; }

  // Most tokens one forward pass may append before the cache's policy runs (EndStep); the model
  // splits longer inputs, so no token attends to another at a precision the cache would not keep.
  virtual int64_t max_batch() const { return 1 << 30; }

  virtual int64_t n_positions() const = 0;  // tokens appended (per layer)
  virtual int64_t capacity() const = 0;     // most tokens that can be appended
  virtual void Clear() = 0;
  virtual CacheStats Stats() const = 0;

 protected:
  explicit KvCache(const KvShape& shape) : shape_(shape) {}
  KvShape shape_;
};

}  // namespace akv
