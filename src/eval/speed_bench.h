// End-to-end speed: prefill tokens/s for a prompt length, decode tokens/s after a context
// depth (llama-bench's pp / tg, plus tg at depth). Random token ids, as llama-bench uses.
#pragma once

#include <string>
#include <vector>

#include "akv/akv.hpp"

namespace akv {

struct SpeedTest {
  std::string kind;  // "pp" (prefill n_tokens) or "tg" (decode n_tokens after depth)
  int n_tokens = 0;
  int depth = 0;
  // tg only: prefill the depth once and let the warm-up and the repetitions continue the same
  // sequence (repetition k then decodes after depth + (k + 1) * n_tokens tokens). The default
  // re-prefills the depth before every repetition, as llama-bench does.
  bool fill_once = false;
};

struct SpeedResult {
  SpeedTest test;
  std::string cache;
  int repetitions = 0;
  double tokens_per_s_mean = 0, tokens_per_s_stddev = 0;
  std::vector<double> samples;  // tokens/s of each repetition
  CacheStats cache_stats;       // at the end of the last repetition
};

StatusOr<SpeedResult> RunSpeedTest(Engine& engine, const SpeedTest& test, const std::string& cache, int repetitions,
                                   uint64_t seed);

}  // namespace akv
