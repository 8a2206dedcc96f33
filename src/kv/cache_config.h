// CacheConfig: every knob of the adaptive tiered cache (and of the baseline policies built on the
// same stores). One table of fields (cache_config.cc) drives parsing of the spec string, the
// validation messages and the help text, so `--cache akv:balanced,hot_budget=512` and the API
// agree by construction.
//
// Spec syntax:  METHOD[:PRESET][,key=value...]     e.g. "akv", "akv:aggressive,warm_bits=2"
// Budgets are token counts per sequence (per layer and KV head) when > 1, or a fraction of the
// tokens stored so far when in (0, 1]: hot_budget=0.1 keeps 10% of the tokens hot, warm_budget=1
// lets every non-hot token stay warm.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace akv {

struct CacheConfig {
  std::string method = "akv";  // akv, full, window, h2o, snapkv, ... (policies)
  std::string preset = "balanced";  // the defaults below are the balanced preset's

  // Tiers.
  double hot_budget = 0.04;    // f16 tokens (count, or fraction of stored tokens)
  double warm_budget = 0.5;    // warm tokens; the rest is cold
  double max_total = 0;        // > 0: evict beyond this many tokens (0: never evict)
  double kv_budget_mb = 0;     // > 0: byte budget per sequence (MiB); demotes further to meet it
  std::string hot_budget_layers;  // per-layer hot budgets "b0:b1:...", overriding hot_budget
  int warm_bits = 4;           // 8, 4 or 2
  int cold_bits = 4;           // 8, 4 or 2
  int warm_value_bits = 0;     // values of the warm tier, if different from keys (0: warm_bits)
  int cold_value_bits = 2;     // values of the cold tier (0: cold_bits)
  int group_size = 64;         // quantization group (32, 64, 128)
  bool kivi_keys = false;      // warm/cold keys quantized per channel over blocks of group_size tokens
  int cold_key_block = 0;      // > 0: cold keys per channel over blocks of this many tokens (32, 64, 128);
                               // warm keys stay per token, so warm stages tokens until a block fills
  bool symmetric_values = false;  // quantized values store a scale only (zero = -scale * qmax / 2)
  bool hadamard = true;        // rotate keys before quantization
  int page_size = 0;           // slots per page; 0: PageSizeFor(context) (see docs/CACHE.md)
  bool cold_attend_all = true; // attend every cold page (CPU: cheap), else only promoted pages

  // Protection zones (always hot).
  int n_anchors = 16;          // first tokens (attention sinks, BOS, system prompt)
  int protect_recent = 64;     // last tokens

  // Importance score: score = decay * score + w_attn * mass + w_recency * recency_bonus.
  double decay = 0.95;
  double w_attn = 1.0;
  double w_recency = 0.0;
  int observation_window = 32;  // prefill: last queries whose attention seeds the scores
  int pool_kernel = 7;          // prefill: max-pool width over positions (SnapKV), 1 = none
  double gamma = 1.0;           // AKCB heavy-hitter score = mean + gamma * std of attention

  // Per-layer adaptation from prefill attention statistics (AKCB/ARKV).
  // Per layer, the normalized entropy H, the variance V (as n^2 var = CV^2) and the Pearson
  // kurtosis K of the prompt's token-score distribution over the layer's slots (mean over KV
  // heads) set the layer's share of f16 tokens; its warm budget takes the complement, so hot +
  // warm per layer stays constant (full / quantized / cold-or-evicted ratios per layer).
  //   layer_stats=arkv (default): ARKV's preference H^(1/tau1) V^(1/tau2) K^(1/tau3) over the
  //     max of all layers (tau as temperature exponents); layer_stats=entropy: multiplier by
  //     threshold band of H (< tau1: 0.5, < tau2: 0.75, < tau3: 1, else 1.5). Both rescaled so
  //     the layers hold the total hot budget, protection zones included.
  bool layer_adaptive = true;
  std::string layer_stats = "arkv";
  double tau1 = 0.1, tau2 = 0.3, tau3 = 0.6;

  // Policy (what the baselines differ in; see docs/METHODS.md).
  std::string score_mode = "attn";  // attn: decayed mass; pivotal: ScissorHands counts; akcb: mean + gamma*std
  bool rank_by_recency = false;     // demote/evict the oldest first (StreamingLLM, KIVI) instead of by score
  bool evict_in_decode = true;      // false: eviction only while the prompt is processed (SnapKV)
  bool pyramid = false;             // PyramidKV: per-layer budgets from 1.5x (first layer) to 0.5x (last)

  // Migration.
  int migrate_interval = 16;   // apply the policy every N decode steps (and when over budget)
  int promote_k = 4;           // cold pages promoted per KV head per check
  int promote_interval = 8;    // steps between promotion checks
  int prefill_chunk = 64;      // most tokens one forward pass appends before the policy runs

  // Parses "METHOD[:PRESET][,key=value...]"; errors name the key and the allowed values.
  static StatusOr<CacheConfig> Parse(const std::string& spec);
  // Applies `method`'s preset (akv: quality, balanced, aggressive, compact; kivi: 2, 4; ...). Empty: the
  // method's default preset.
  Status ApplyPreset(const std::string& name);
  // Method names the parser knows, with one-line descriptions.
  static std::vector<std::pair<std::string, std::string>> Methods();
  // Checks ranges and consistency (tau order, bit widths, budgets).
  Status Validate() const;
  // Canonical spec string (method:preset,key=value for every non-default key).
  std::string ToString() const;
  // Help text listing every key with its default and meaning, and the presets.
  static std::string Help();
  // hot_budget_layers parsed (empty when unset).
  StatusOr<std::vector<double>> LayerHotBudgets() const;
  // Budget in tokens for `n_stored` tokens (count or fraction).
  static int64_t BudgetTokens(double budget, int64_t n_stored);

  // The page size used for a cache of `context` tokens: page_size, or when 0, context / 16 as a
  // power of two in [64, 256] (at least group_size with KIVI keys). Decode reads each page as
  // one segment, and per-segment work made 64-slot pages 25% slower than 256-slot ones at 4K
  // tokens; a partly filled page per tier and head costs memory, which dominates short contexts.
  // With max_total or kv_budget_mb, sized on the tokens the budget buys in f16 when fewer than
  // the context (f16_bytes_per_token: K and V of one token over every layer and KV head; 0
  // ignores kv_budget_mb), so those pages stay a small part of the budget.
  int PageSizeFor(int64_t context, double f16_bytes_per_token = 0) const;
  // kv_budget_mb in bytes (0: no byte budget).
  double KvBudgetBytes() const { return kv_budget_mb * 1024.0 * 1024.0; }
};

}  // namespace akv
