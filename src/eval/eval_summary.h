// Aggregates of an eval run that the Markdown and HTML reports both show: recall accuracy per
// (task, method @ budget, context, depth), perplexity rows, memory per context, and the check
// of the AKV bar (recall within 2 points of full, ahead of the eviction baselines at the
// shallowest depth, lowest perplexity at the budget).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "eval/eval_results.h"

namespace akv {

struct AccuracyCell {
  int correct = 0, total = 0;
  double accuracy() const { return total ? static_cast<double>(correct) / total : 0; }
};

// Means over the records of one (task, label, context).
struct CacheMeans {
  double bits_per_value = 0, bits_per_value_total = 0, kv_bytes = 0, f16_bytes = 0, memory_fraction = 0;
  int n = 0;
  void Add(const EvalRecord& r);
  void Finish();
};

struct RecallRow {
  std::string task, label, method, budget;
  double budget_fraction = 1;
  int n_ctx = 0;
  std::map<double, AccuracyCell> by_depth;  // key: target depth rounded to 1e-3
  AccuracyCell all;
  CacheMeans cache;
  std::string error;  // the first error, if the method did not run
};

struct PplRow {
  std::string label, method, budget;
  double budget_fraction = 1;
  int n_ctx = 0;
  double ppl = 0, nll_stderr = 0, reference_ppl = 0, mean_kl = 0, top1 = 0;
  CacheMeans cache;
  std::string error;
};

struct EvalSummary {
  std::vector<std::string> labels;  // in order of first appearance
  std::vector<std::string> tasks;   // recall tasks present, in order
  std::vector<int> contexts;        // sorted
  std::vector<std::string> budgets; // budget labels present, in order ("" = none)
  std::vector<RecallRow> recall;    // sorted by task, context, label order
  std::vector<PplRow> ppl;
  // label -> context -> mean KV bytes (over every record of that label and context)
  std::map<std::string, std::map<int, CacheMeans>> memory;

  const RecallRow* FindRecall(const std::string& task, const std::string& label, int n_ctx) const;
  const PplRow* FindPpl(const std::string& label, int n_ctx) const;
};

EvalSummary Summarize(const std::vector<EvalRecord>& records);
double DepthKey(double depth);  // rounded to 1e-3 so 0.05 from JSON and from the grid agree

// The bar check: at context n_ctx and budget label `budget`, for each method label whose method
// name is "akv": its measured memory within the budget, accuracy vs full at every depth (within
// `tolerance` points), ahead of every eviction baseline at the shallowest depth, lowest
// perplexity among the methods run at that budget.
struct BarCheck {
  std::string label;  // the AKV label checked
  bool have_recall = false, have_ppl = false;
  bool fits = false;              // measured KV bytes within the budget (WithinBudget), every run
  double memory_fraction = 0;     // the largest measured fraction of f16 over its runs here
  bool recall_within = false;     // within tolerance of full at every depth
  double worst_gap_points = 0;    // full - akv, max over depths
  bool ahead_at_shallowest = false;
  std::vector<std::string> eviction_compared;  // labels compared at the shallowest depth
  bool lowest_ppl = false;
  std::vector<std::string> ppl_compared;
  std::vector<std::string> notes;  // why a part could not be checked
  bool passed() const { return fits && have_recall && have_ppl && recall_within && ahead_at_shallowest && lowest_ppl; }
};
std::vector<BarCheck> CheckBar(const EvalSummary& s, int n_ctx, const std::string& budget, double tolerance_points = 2);

bool IsEvictionMethod(const std::string& method);

}  // namespace akv
