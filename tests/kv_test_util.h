// Shared helpers of the kv_* and attn_* tests: random KV-like data with outlier channels, SNR,
// and a loop over every SIMD target this CPU supports (so the SSE4/AVX2/scalar paths are tested
// on an AVX-512 machine too).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"

namespace akv::test {

// rows x dim values ~ N(mean_c, 1), with `outliers` channels (the first ones after a fixed
// shuffle) scaled by outlier_scale and offset: the shape of real keys after RoPE. Never zero.
inline std::vector<float> RandomKvRows(int rows, int dim, uint64_t seed, int outliers = 0,
                                       float outlier_scale = 12.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> channel_scale(dim, 1.0f), channel_mean(dim);
  for (int c = 0; c < dim; ++c) channel_mean[c] = 0.3f * normal(rng);
  for (int i = 0; i < outliers; ++i) {
    const int c = int((uint64_t(i) * 2654435761u + seed) % uint64_t(dim));
    channel_scale[c] = outlier_scale;
    channel_mean[c] = outlier_scale * 0.8f;
  }
  std::vector<float> x(size_t(rows) * dim);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < dim; ++c) {
      float v = channel_mean[c] + channel_scale[c] * normal(rng);
      if (v == 0.0f) v = 1e-3f;
      x[size_t(r) * dim + c] = v;
    }
  return x;
}

// 10 log10(sum x^2 / sum (x - y)^2).
inline double SnrDb(const std::vector<float>& x, const std::vector<float>& y) {
  double signal = 0, noise = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    signal += double(x[i]) * x[i];
    noise += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  }
  return 10.0 * std::log10(signal / std::max(noise, 1e-300));
}

// Runs fn() once per SIMD target the CPU supports, with runtime dispatch pinned to it.
template <class Fn>
void ForEachSimdTarget(const Fn& fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace akv::test
