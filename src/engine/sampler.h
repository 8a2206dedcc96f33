// Token sampling: repeat penalty, temperature, top-k, top-p, min-p (llama.cpp's order), seeded.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "akv/akv.hpp"

namespace akv {

class Sampler {
 public:
  explicit Sampler(uint64_t seed) : rng_(seed) {}
  // `recent`: the sequence's last tokens, for the repeat penalty.
  int32_t Sample(std::span<const float> logits, const SamplingParams& p, std::span<const int32_t> recent);

  // Checks ranges; error names the parameter.
  static Status Validate(const SamplingParams& p);

 private:
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

int32_t ArgMax(std::span<const float> logits);

}  // namespace akv
