#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace akv {

int32_t ArgMax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Status Sampler::Validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    return InvalidArgument("temperature must be >= 0, got " + std::to_string(p.temperature));
  if (!(p.top_p > 0 && p.top_p <= 1)) return InvalidArgument("top_p must be in (0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0 && p.min_p <= 1)) return InvalidArgument("min_p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!(p.repeat_penalty > 0) || !std::isfinite(p.repeat_penalty))
    return InvalidArgument("repeat_penalty must be > 0, got " + std::to_string(p.repeat_penalty));
  if (p.repeat_last_n < 0) return InvalidArgument("repeat_last_n must be >= 0");
  return Status::Ok();
}

int32_t Sampler::Sample(std::span<const float> logits, const SamplingParams& p, std::span<const int32_t> recent) {
  const int32_t n_vocab = static_cast<int32_t>(logits.size());
  cand_.resize(n_vocab);
  for (int32_t i = 0; i < n_vocab; ++i) cand_[i] = {logits[i], i};
  if (p.repeat_penalty != 1.0f && p.repeat_last_n > 0) {
    const size_t n = std::min<size_t>(recent.size(), p.repeat_last_n);
    std::unordered_set<int32_t> seen(recent.end() - n, recent.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= n_vocab) continue;
      float& l = cand_[t].first;
      l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  if (p.temperature <= 0) {
    return std::max_element(cand_.begin(), cand_.end(), [](const auto& a, const auto& b) { return a.first < b.first; })->second;
  }
  size_t n = cand_.size();
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p.top_k, cand_.end(), by_logit);
    n = p.top_k;
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax at temperature over the kept candidates (sorted, best first).
  const float max_l = cand_[0].first;
  std::vector<float> prob(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    prob[i] = std::exp((cand_[i].first - max_l) / p.temperature);
    sum += prob[i];
  }
  for (float& x : prob) x = static_cast<float>(x / sum);
  // min-p: drop tokens below min_p * best probability.
  if (p.min_p > 0) {
    size_t keep = 1;
    while (keep < n && prob[keep] >= p.min_p * prob[0]) ++keep;
    n = keep;
  }
  // top-p: smallest prefix whose mass reaches top_p.
  if (p.top_p < 1) {
    double cum = 0;
    size_t keep = 0;
    while (keep < n) {
      cum += prob[keep++];
      if (cum >= p.top_p) break;
    }
    n = std::max<size_t>(1, keep);
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += prob[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= prob[i];
    if (r <= 0) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace akv
