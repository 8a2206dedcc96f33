// Perplexity in llama.cpp's convention: the text is tokenized once (with BOS), cut into chunks
// of n_ctx tokens, each chunk evaluated from an empty cache with its first token replaced by
// BOS, and only the second half of each chunk scored.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "akv/akv.hpp"

namespace akv {

struct PerplexityOptions {
  int n_ctx = 2048;
  int n_chunks = -1;           // -1: every whole chunk in the text
  std::string cache = "full";  // KV cache spec
  // Called after each chunk with (chunks done, total, running perplexity).
  std::function<void(int, int, double)> progress;
  // When set, every chunk is also evaluated with this cache (e.g. "full") and the result reports
  // the KL divergence KL(reference || cache) of the next-token distributions and top-1 agreement.
  std::string reference_cache;
  // When set, receives each scored position's log-probabilities over the vocabulary
  // (for KL divergence between caches): called with (chunk, position in chunk, logprobs).
  std::function<void(int, int, std::span<const float>)> on_logprobs;
};

struct PerplexityResult {
  double ppl = 0;
  double mean_nll = 0;
  double nll_stderr = 0;  // standard error of the mean NLL
  int n_chunks = 0;
  int64_t n_scored = 0;
  std::vector<double> chunk_ppl;
  double seconds = 0;
  double tokens_per_s = 0;  // evaluated tokens (whole chunks) per second
  CacheStats cache;         // cache state at the end of the last chunk
  // With reference_cache: its perplexity, mean KL(reference || cache) per scored token (nats),
  // and the fraction of scored positions where both caches give the same top token.
  double reference_ppl = 0;
  double mean_kl = 0;
  double top1_agreement = 0;
};

StatusOr<PerplexityResult> ComputePerplexity(Engine& engine, const std::string& text, const PerplexityOptions& options);

// log-softmax of one logit row, in double precision: out[i] = logits[i] - logsumexp(logits).
void LogSoftmax(std::span<const float> logits, std::vector<float>* out);

}  // namespace akv
