// A loaded decoder-only model: config, weights (mmapped), tokenizer, and the forward pass.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "kv/kv_cache.h"
#include "model/hparams.h"
#include "model/rope.h"
#include "model/tokenizer.h"
#include "model/weights.h"

namespace akv {

// Per-sequence work buffers of the forward pass (so sessions can run concurrently).
struct ForwardScratch {
  std::vector<float> x, h, q, k, v, attn, gate, up, logits_rows;
  std::unique_ptr<Rope> rope;
};

class Model {
 public:
  // Loads and validates everything; `log` (may be null) receives notes such as conversions.
  static StatusOr<std::unique_ptr<Model>> Load(const std::string& path, std::vector<std::string>* log = nullptr);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& gguf() const { return *gguf_; }
  const ModelWeights& weights() const { return *weights_; }
  KvShape kv_shape() const;

  // Runs n tokens (token t at positions[t]) through the decoder, appending their K/V to
  // `cache`. logits: [n, n_vocab] when all_logits, else the last token's [n_vocab]; may be
  // null to skip the output projection (e.g. all but the last prompt chunk).
  Status Forward(const int32_t* tokens, const int32_t* positions, int64_t n, KvCache& cache,
                 ThreadPool& pool, ForwardScratch& scratch, float* logits, bool all_logits) const;

  // One decode step for several sequences: token i (at positions[i]) belongs to the sequence
  // whose cache is caches[i]. The weight matmuls run once over all n rows (weights are read
  // once per step, not once per sequence); attention runs per sequence on its own cache.
  // logits: [n, n_vocab].
  Status ForwardMulti(const int32_t* tokens, const int32_t* positions, KvCache* const* caches, int64_t n,
                      ThreadPool& pool, ForwardScratch& scratch, float* logits) const;

  // Largest number of tokens Forward processes in one pass; longer inputs are split.
  static constexpr int64_t kMaxBatch = 512;

 private:
  // n tokens through the decoder; row t's K/V go to caches[t] (or all to caches[0] when
  // one_cache), and attention runs per run of consecutive rows sharing a cache.
  Status ForwardRows(const int32_t* tokens, const int32_t* positions, int64_t n, KvCache* const* caches,
                     bool one_cache, ThreadPool& pool, ForwardScratch& s, float* logits, bool all_logits) const;

  std::unique_ptr<GgufFile> gguf_;
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace akv
