// Log-probabilities of sampled tokens under the model's distribution (softmax of the raw
// logits at temperature 1, as OpenAI reports them), with the top alternatives.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace akv::server {

struct LogprobEntry {
  int32_t token = 0;
  float logprob = 0;
  std::string text;  // the token's bytes (filled in by the caller, which has the tokenizer)
};

struct TokenLogprob {
  LogprobEntry chosen;
  std::vector<LogprobEntry> top;  // best first
};

TokenLogprob ComputeLogprob(std::span<const float> logits, int32_t token, int n_top);

}  // namespace akv::server
