// Rotary position embedding, llama.cpp-compatible (normal and NEOX pairings, linear and YaRN
// scaling, llama3-style per-frequency factors).
#pragma once

#include <cstdint>
#include <vector>

#include "model/hparams.h"

namespace akv {

class Rope {
 public:
  Rope(const RopeConfig& config, std::vector<float> freq_factors);

  // Fills the cos/sin table for `positions` ([n] -> [n, n_dims/2] each).
  void Prepare(const int32_t* positions, int64_t n);
  // Rotates x [n, n_heads, head_dim] in place, token t at positions[t] of the last Prepare().
  void Apply(float* x, int64_t n, int n_heads, int head_dim) const;

 private:
  RopeConfig c_;
  std::vector<float> inv_freq_;  // [n_dims/2] theta per unit position (freq factors applied)
  float corr_low_ = 0, corr_high_ = 0;
  std::vector<float> cos_, sin_;
};

}  // namespace akv
