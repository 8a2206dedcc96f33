// The plain cache: every token kept in f16, the reference every other cache is compared with.
#pragma once

#include <memory>

#include "core/half.h"
#include "kv/kv_cache.h"

namespace akv {

class FullCache : public KvCache {
 public:
  FullCache(const KvShape& shape, int64_t capacity);
  std::string name() const override { return "full"; }
  Status Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) override;
  Status Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out,
              ThreadPool& pool) override;
  int64_t n_positions() const override { return n_tokens_.empty() ? 0 : n_tokens_[0]; }
  int64_t capacity() const override { return capacity_; }
  void Clear() override;
  CacheStats Stats() const override;

 private:
  // Layout per layer: [n_head_kv][capacity][head_dim] f16 for K and V; positions [capacity].
  size_t Offset(int layer, int head, int64_t t) const {
    return ((static_cast<size_t>(layer) * shape_.n_head_kv + head) * capacity_ + t) * shape_.head_dim;
  }

  int64_t capacity_;
  std::vector<f16_t> k_, v_;
  std::vector<std::vector<int32_t>> positions_;  // [layer][token]
  std::vector<int64_t> n_tokens_;                // [layer]
};

}  // namespace akv
