// The grid an `akv eval` run covers: tasks x methods x budgets x contexts x depths x trials,
// and the translation of a memory budget into each method's cache spec.
//
// A budget is the KV memory a method may use, as a fraction of the f16 cache of the same
// context, written as "0.25" or "25%", as f16-equivalent tokens "1024t" (fraction = tokens /
// context) or as average bits per value "4b" (fraction = bits / 16). Per method family:
//   full                                  no budget: the f16 reference, run once per context
//   h2o snapkv window streamingllm        max_total = round(fraction x context) tokens (they keep
//   scissorhands pyramidkv                f16 tokens and evict the rest)
//   akcb:origin akcb:window               (AKCB's evicting modes, likewise max_total)
//   akv[:preset] akcb[:mix|:quant]        kv_budget_mb = fraction x f16 bytes of the context (the
//                                         tiers shrink until every page, metadata included, fits)
//   kivi uniform                          the largest bit width b with b + 1 <= 16 x fraction
//                                         (+1: the f16 scale and zero of each group of 32;
//                                         kivi: 4 or 2, uniform: 8, 4 or 2): "kivi:2" and
//                                         "uniform:int2" at 0.25, "kivi:4" at 0.35
// AKV cannot always reach a budget (the protected f16 tokens and the int4-key floor stay), and
// eviction methods add positions: every record keeps its measured fraction of the f16 bytes,
// and reports mark a run as within its budget only when that fraction is <= 1.05 x the budget.
// A method that already names its budget ("h2o,max_total=512", "kivi:2", "akv,kv_budget_mb=3")
// or that is not in the table runs as given. Every run records the bytes and bits per value it
// actually used, so equal memory is measured, not assumed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "akv/status.h"
#include "kv/kv_cache.h"

namespace akv {

struct Budget {
  enum class Kind { kNone, kFraction, kTokens, kBits };
  Kind kind = Kind::kNone;
  double value = 0;
  std::string label;  // as written

  static StatusOr<Budget> Parse(std::string_view text);
  // Fraction of the f16 cache for a context of n_ctx tokens (1 for kNone).
  double Fraction(int n_ctx) const;
};

// What the budget translation needs to know about the model.
struct KvGeometry {
  int n_layer = 0, n_head_kv = 0, head_dim = 0;
  // Bytes of the f16 cache holding n tokens (keys and values of every layer and KV head).
  int64_t F16Bytes(int64_t n_tokens) const {
    return n_tokens * KvShape{.n_layer = n_layer, .n_head_kv = n_head_kv, .head_dim = head_dim}.F16BytesPerToken();
  }
};

// A run's measured KV bytes are within its budget (5% slack for page and position metadata).
inline bool WithinBudget(double memory_fraction, double budget_fraction) {
  return memory_fraction <= 1.05 * budget_fraction + 1e-9;
}

struct ResolvedSpec {
  std::string spec;          // passed to SessionOptions::cache
  bool budgeted = false;     // the budget was applied (false: the method ran as given)
  std::string rule;          // how: "max_total", "kv_budget_mb", "bits", "as given", "reference"
};

// Method specs from comma lists: "full,akv:balanced,hot_budget=256,h2o" -> full |
// akv:balanced,hot_budget=256 | h2o (a piece with '=' is an option of the method before it).
std::vector<std::string> SplitMethodList(const std::vector<std::string>& args);

// The method's name: the spec up to the first ':' or ','.
std::string MethodName(std::string_view method);
ResolvedSpec ResolveCacheSpec(std::string_view method, const Budget& budget, int n_ctx, const KvGeometry& kv);

enum class EvalTask { kPerplexity, kRecall, kMultiFact, kMultiQuery, kPasskey };
const char* TaskName(EvalTask task);
StatusOr<EvalTask> ParseTask(std::string_view name);

struct GridSpec {
  std::vector<EvalTask> tasks = {EvalTask::kRecall};
  std::vector<std::string> methods = {"full"};
  std::vector<std::string> budgets;  // empty: methods run as given
  std::vector<int> contexts = {1024};
  std::vector<double> depths = {0.05, 0.25, 0.5, 0.75, 0.95};
  int trials = 3;
  uint64_t seed = 1;
};

struct GridItem {
  EvalTask task = EvalTask::kRecall;
  std::string method;        // as the user wrote it
  std::string budget;        // label ("0.25"); "" for the reference or when no budget applies
  double budget_fraction = 1;
  ResolvedSpec cache;
  int n_ctx = 0;
  double depth = -1;         // recall, multifact, passkey; -1 for ppl and multiquery (all depths)
  int trial = 0;             // recall tasks; ppl: 0
  uint64_t seed = 0;         // prompt seed: equal for every method (and depth) of a trial
};

// Expands the grid in run order: task, context, trial, depth, then methods, so the prompts
// of one (context, trial, depth) are built once and every method sees the same prompt.
// Methods that run as given (full, or an explicit budget) appear once per point, not once per budget.
StatusOr<std::vector<GridItem>> ExpandGrid(const GridSpec& grid, const KvGeometry& kv);

}  // namespace akv
