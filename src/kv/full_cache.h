// The plain cache: every token kept in f16, the reference every other cache is compared with.
// Per layer and KV head, one page of n_ctx slots in the attention kernel's layout
// (kv/codecs/page_layout.h), read in place as a single f16 segment.
#pragma once

#include <memory>
#include <vector>

#include "attn/attention.h"
#include "kv/codecs/page_layout.h"
#include "kv/kv_cache.h"

namespace akv {

class FullCache : public KvCache {
 public:
  FullCache(const KvShape& shape, int64_t capacity);
  ~FullCache() override;
  std::string name() const override { return "full"; }
  Status Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) override;
  Status Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out,
                ThreadPool& pool) override;
  int64_t n_positions() const override { return n_tokens_.empty() ? 0 : n_tokens_[0]; }
  int64_t capacity() const override { return capacity_; }
  void Clear() override;
  CacheStats Stats() const override;

 private:
  uint8_t* Page(int layer, int head) { return pages_[static_cast<size_t>(layer) * shape_.n_head_kv + head].get(); }

  int64_t capacity_;
  // The kernel's layouts need head_dim % 16 == 0; smaller or odd head sizes (stories260K has 8)
  // are stored zero-padded to padded_dim, which leaves q.k and the output unchanged.
  int padded_dim_;
  std::vector<float> pad_q_, pad_out_, pad_row_;
  PageLayout layout_;
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> pages_;  // [layer * n_head_kv + head]
  std::vector<int64_t> n_tokens_;                             // [layer]
  std::vector<AttentionWorkspace> workspaces_;                // [layer]
};

}  // namespace akv
