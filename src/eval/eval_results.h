// Raw results of an `akv eval` run: one record per grid item, written to results.json with
// everything needed to rebuild the tables and charts (reports are generated from records only,
// so a committed results.json regenerates docs/RESULTS.md exactly).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "akv/cache_stats.h"
#include "akv/status.h"
#include "eval/eval_grid.h"
#include "eval/recall_runner.h"

namespace akv {

struct EvalRecord {
  std::string task;       // ppl, recall, multifact, multiquery, passkey
  std::string method;     // as given on the command line
  std::string budget;     // budget label ("0.25"), "" when none applies
  double budget_fraction = 1;
  std::string cache_spec;  // the spec the session ran with
  std::string budget_rule;
  int n_ctx = 0;
  double depth = -1;
  int trial = 0;
  uint64_t seed = 0;
  std::string error;       // non-empty: the item did not run (e.g. a cache not available yet)

  // Recall tasks.
  std::vector<QueryOutcome> queries;
  int64_t context_tokens = 0;
  int64_t total_tokens = 0;
  // Perplexity.
  double ppl = 0, nll_stderr = 0, reference_ppl = 0, mean_kl = 0, top1_agreement = 0;
  int ppl_chunks = 0;
  int64_t ppl_scored = 0;

  // Cache, measured (recall: when the first query was answered; ppl: end of the last chunk).
  double bits_per_value = 0, bits_per_value_total = 0;
  int64_t kv_bytes = 0;
  int64_t f16_bytes = 0;       // f16 cache of the same stored positions
  double memory_fraction = 0;  // kv_bytes / f16_bytes
  int64_t hot_tokens = 0, warm_tokens = 0, cold_tokens = 0, evicted = 0;  // per sequence
  int64_t n_positions = 0;
  double seconds = 0;

  // Label of the (method, budget) pair: "akv:balanced @0.25", or the method alone.
  std::string Label() const;
  int correct() const;
  void SetCache(const CacheStats& stats, const KvGeometry& kv);
};

struct EvalRun {
  nlohmann::json meta;  // model, grid, options, versions
  std::vector<EvalRecord> records;
};

nlohmann::json ToJson(const EvalRecord& r);
StatusOr<EvalRecord> RecordFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const EvalRun& run);
StatusOr<EvalRun> RunFromJson(const nlohmann::json& j);
Status WriteRunJson(const EvalRun& run, const std::string& path);
StatusOr<EvalRun> ReadRunJson(const std::string& path);

}  // namespace akv
