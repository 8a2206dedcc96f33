#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

namespace akv {

void LogSoftmax(std::span<const float> logits, std::vector<float>* out) {
  float mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double lse = mx + std::log(sum);
  out->resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) (*out)[i] = static_cast<float>(logits[i] - lse);
}

StatusOr<PerplexityResult> ComputePerplexity(Engine& engine, const std::string& text, const PerplexityOptions& o) {
  if (o.n_ctx < 16) return InvalidArgument("perplexity context must be at least 16 tokens, got " + std::to_string(o.n_ctx));
  const std::vector<int32_t> tokens = engine.Tokenize(text, /*add_special=*/true);
  const int max_chunks = static_cast<int>(tokens.size() / o.n_ctx);
  if (max_chunks == 0)
    return InvalidArgument("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                           std::to_string(o.n_ctx) + " (lower --ctx)");
  const int n_chunks = o.n_chunks < 0 ? max_chunks : std::min(o.n_chunks, max_chunks);
  if (n_chunks == 0) return InvalidArgument("--chunks must be positive");

  AKV_ASSIGN_OR_RETURN(auto session, engine.NewSession({.n_ctx = o.n_ctx, .cache = o.cache}));
  std::unique_ptr<Session> ref_session;
  if (!o.reference_cache.empty()) {
    AKV_ASSIGN_OR_RETURN(ref_session, engine.NewSession({.n_ctx = o.n_ctx, .cache = o.reference_cache}));
  }
  const int n_vocab = engine.info().n_vocab;
  const bool add_bos = engine.adds_bos();
  const int32_t bos = engine.bos_token();
  std::vector<float> logits(static_cast<size_t>(o.n_ctx) * n_vocab);
  std::vector<float> logprobs, ref_logits, ref_logprobs;
  if (ref_session) ref_logits.resize(logits.size());
  PerplexityResult r;
  double sum = 0, sum_sq = 0, ref_sum = 0, kl_sum = 0;
  int64_t agree = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int first = o.n_ctx / 2;
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + static_cast<int64_t>(c) * o.n_ctx,
                               tokens.begin() + static_cast<int64_t>(c + 1) * o.n_ctx);
    if (add_bos) chunk[0] = bos;
    session->Reset();
    AKV_RETURN_IF_ERROR(session->Prefill(chunk, logits.data()));
    if (ref_session) {
      ref_session->Reset();
      AKV_RETURN_IF_ERROR(ref_session->Prefill(chunk, ref_logits.data()));
    }
    double chunk_nll = 0;
    for (int j = first; j < o.n_ctx - 1; ++j) {
      LogSoftmax(std::span<const float>(&logits[static_cast<size_t>(j) * n_vocab], n_vocab), &logprobs);
      const double nll = -logprobs[tokens[static_cast<size_t>(c) * o.n_ctx + j + 1]];
      chunk_nll += nll;
      sum += nll;
      sum_sq += nll * nll;
      ++r.n_scored;
      if (o.on_logprobs) o.on_logprobs(c, j, logprobs);
      if (ref_session) {
        std::span<const float> ref_row(&ref_logits[static_cast<size_t>(j) * n_vocab], n_vocab);
        LogSoftmax(ref_row, &ref_logprobs);
        ref_sum -= ref_logprobs[tokens[static_cast<size_t>(c) * o.n_ctx + j + 1]];
        double kl = 0;
        for (int v = 0; v < n_vocab; ++v) kl += std::exp(double(ref_logprobs[v])) * (double(ref_logprobs[v]) - logprobs[v]);
        kl_sum += std::max(0.0, kl);
        const auto amax = [](const std::vector<float>& x) { return std::max_element(x.begin(), x.end()) - x.begin(); };
        agree += amax(ref_logprobs) == amax(logprobs);
      }
    }
    r.chunk_ppl.push_back(std::exp(chunk_nll / (o.n_ctx - 1 - first)));
    r.n_chunks = c + 1;
    if (o.progress) o.progress(c + 1, n_chunks, std::exp(sum / r.n_scored));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.mean_nll = sum / r.n_scored;
  r.ppl = std::exp(r.mean_nll);
  const double var = sum_sq / r.n_scored - r.mean_nll * r.mean_nll;
  r.nll_stderr = r.n_scored > 1 ? std::sqrt(std::max(0.0, var) / (r.n_scored - 1)) : 0;
  r.tokens_per_s = r.seconds > 0 ? static_cast<double>(n_chunks) * o.n_ctx / r.seconds : 0;
  r.cache = session->cache_stats();
  if (ref_session) {
    r.reference_ppl = std::exp(ref_sum / r.n_scored);
    r.mean_kl = kl_sum / r.n_scored;
    r.top1_agreement = static_cast<double>(agree) / r.n_scored;
  }
  return r;
}

}  // namespace akv
