// What a KV cache holds, per tier: returned by Session::cache_stats() and in generation results.
#pragma once

#include <cstdint>
#include <vector>

namespace akv {

// Token and byte counts, summed over layers and KV heads (one "token" is one token of one layer
// and KV head; divide by n_layer * n_head_kv for per-sequence counts).
struct TierCount {
  int64_t tokens = 0;
  int64_t bytes = 0;
};

struct CacheStats {
  TierCount hot, warm, cold;
  int64_t evicted = 0;
  int64_t promotions = 0;
  int64_t demotions = 0;
  int64_t n_positions = 0;  // tokens appended to the sequence so far
  int n_layer = 0, n_head_kv = 0;
  // Average bits per stored K/V element: codes plus their scales and zeros (the figure
  // llama.cpp quotes for its KV types: q4_0 = 4.5, q8_0 = 8.5, f16 = 16).
  double bits_per_value = 0;
  // The same over every byte the cache holds: positions, key summaries, unused page slots.
  double bits_per_value_total = 0;
  std::vector<TierCount> hot_per_layer, warm_per_layer, cold_per_layer;
  // Adaptive caches with layer_adaptive: the prompt's attention statistics per layer (mean over KV
  // heads, of the token-score distribution) and the f16-budget multiplier they chose. Empty otherwise.
  struct LayerPolicy {
    double entropy = 0;    // normalized, in [0, 1]
    double variance = 0;   // n^2 * variance (squared coefficient of variation)
    double kurtosis = 0;   // Pearson
    double hot_scale = 1;  // multiplier on the hot budget (the warm budget takes the complement)
  };
  std::vector<LayerPolicy> layer_policy;

  int64_t total_bytes() const { return hot.bytes + warm.bytes + cold.bytes; }
};

}  // namespace akv
