#include "server/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace akv::server {

TokenLogprob ComputeLogprob(std::span<const float> logits, int32_t token, int n_top) {
  TokenLogprob r;
  r.chosen.token = token;
  if (logits.empty()) return r;
  const float max_l = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max_l));
  const float log_z = max_l + static_cast<float>(std::log(sum));
  r.chosen.logprob = token >= 0 && static_cast<size_t>(token) < logits.size() ? logits[token] - log_z
                                                                         : -std::numeric_limits<float>::infinity();
  const int n = std::min<int>(std::max(n_top, 0), static_cast<int>(logits.size()));
  if (n == 0) return r;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (int i = 0; i < n; ++i) r.top.push_back({ids[i], logits[ids[i]] - log_z, {}});
  return r;
}

}  // namespace akv::server
