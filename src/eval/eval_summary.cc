#include "eval/eval_summary.h"

#include <algorithm>
#include <cmath>

namespace akv {

namespace {

template <typename T>
void AddUnique(std::vector<T>* v, const T& x) {
  if (std::find(v->begin(), v->end(), x) == v->end()) v->push_back(x);
}

size_t IndexOf(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), x) - v.begin());
}

}  // namespace

double DepthKey(double depth) { return std::round(depth * 1000.0) / 1000.0; }

bool IsEvictionMethod(const std::string& m) {
  const std::string name = MethodName(m);
  if (name == "akcb") return m.starts_with("akcb:origin") || m.starts_with("akcb:window");
  for (const char* e : {"h2o", "snapkv", "window", "streamingllm", "scissorhands", "pyramidkv"})
    if (name == e) return true;
  return false;
}

void CacheMeans::Add(const EvalRecord& r) {
  if (!r.error.empty()) return;
  bits_per_value += r.bits_per_value;
  bits_per_value_total += r.bits_per_value_total;
  kv_bytes += static_cast<double>(r.kv_bytes);
  f16_bytes += static_cast<double>(r.f16_bytes);
  ++n;
}

void CacheMeans::Finish() {
  if (n == 0) return;
  bits_per_value /= n;
  bits_per_value_total /= n;
  kv_bytes /= n;
  f16_bytes /= n;
  memory_fraction = f16_bytes > 0 ? kv_bytes / f16_bytes : 0;
}

const RecallRow* EvalSummary::FindRecall(const std::string& task, const std::string& label, int n_ctx) const {
  for (const auto& r : recall)
    if (r.task == task && r.label == label && r.n_ctx == n_ctx) return &r;
  return nullptr;
}

const PplRow* EvalSummary::FindPpl(const std::string& label, int n_ctx) const {
  for (const auto& r : ppl)
    if (r.label == label && r.n_ctx == n_ctx) return &r;
  return nullptr;
}

EvalSummary Summarize(const std::vector<EvalRecord>& records) {
  EvalSummary s;
  std::map<std::tuple<std::string, std::string, int>, RecallRow> recall;
  std::map<std::pair<std::string, int>, PplRow> ppl;
  for (const EvalRecord& r : records) {
    const std::string label = r.Label();
    AddUnique(&s.labels, label);
    AddUnique(&s.contexts, r.n_ctx);
    AddUnique(&s.budgets, r.budget);
    s.memory[label][r.n_ctx].Add(r);
    if (r.task == "ppl") {
      PplRow& row = ppl[{label, r.n_ctx}];
      row.label = label, row.method = r.method, row.budget = r.budget, row.n_ctx = r.n_ctx;
      row.budget_fraction = r.budget_fraction;
      if (!r.error.empty()) {
        if (row.error.empty()) row.error = r.error;
        continue;
      }
      row.ppl = r.ppl, row.nll_stderr = r.nll_stderr, row.reference_ppl = r.reference_ppl;
      row.mean_kl = r.mean_kl, row.top1 = r.top1_agreement;
      row.cache.Add(r);
      continue;
    }
    AddUnique(&s.tasks, r.task);
    RecallRow& row = recall[{r.task, label, r.n_ctx}];
    row.task = r.task, row.label = label, row.method = r.method, row.budget = r.budget, row.n_ctx = r.n_ctx;
    row.budget_fraction = r.budget_fraction;
    if (!r.error.empty()) {
      if (row.error.empty()) row.error = r.error;
      continue;
    }
    row.cache.Add(r);
    for (const QueryOutcome& q : r.queries) {
      AccuracyCell& c = row.by_depth[DepthKey(q.target_depth)];
      c.correct += q.correct, c.total += 1;
      row.all.correct += q.correct, row.all.total += 1;
    }
  }
  std::sort(s.contexts.begin(), s.contexts.end());
  for (auto& [k, row] : recall) {
    row.cache.Finish();
    s.recall.push_back(row);
  }
  for (auto& [k, row] : ppl) {
    row.cache.Finish();
    s.ppl.push_back(row);
  }
  for (auto& [label, by_ctx] : s.memory)
    for (auto& [ctx, m] : by_ctx) m.Finish();
  std::stable_sort(s.recall.begin(), s.recall.end(), [&](const RecallRow& a, const RecallRow& b) {
    return std::make_tuple(IndexOf(s.tasks, a.task), a.n_ctx, IndexOf(s.labels, a.label)) <
           std::make_tuple(IndexOf(s.tasks, b.task), b.n_ctx, IndexOf(s.labels, b.label));
  });
  std::stable_sort(s.ppl.begin(), s.ppl.end(), [&](const PplRow& a, const PplRow& b) {
    return std::make_pair(a.n_ctx, IndexOf(s.labels, a.label)) < std::make_pair(b.n_ctx, IndexOf(s.labels, b.label));
  });
  return s;
}

std::vector<BarCheck> CheckBar(const EvalSummary& s, int n_ctx, const std::string& budget, double tol) {
  std::vector<BarCheck> out;
  const RecallRow* full = s.FindRecall("recall", "full", n_ctx);
  for (const std::string& label : s.labels) {
    const std::string method = label.substr(0, label.find(" @"));
    if (MethodName(method) != "akv" || label != method + " @" + budget) continue;
    BarCheck b;
    b.label = label;
    // Memory: the worst of its runs at this context (recall or perplexity), against the budget.
    double budget_fraction = 0;
    for (const RecallRow& r : s.recall)
      if (r.label == label && r.n_ctx == n_ctx && r.cache.n > 0)
        b.memory_fraction = std::max(b.memory_fraction, r.cache.memory_fraction), budget_fraction = r.budget_fraction;
    for (const PplRow& r : s.ppl)
      if (r.label == label && r.n_ctx == n_ctx && r.cache.n > 0)
        b.memory_fraction = std::max(b.memory_fraction, r.cache.memory_fraction), budget_fraction = r.budget_fraction;
    b.fits = budget_fraction > 0 && WithinBudget(b.memory_fraction, budget_fraction);
    if (!b.fits && budget_fraction > 0)
      b.notes.push_back("measured KV memory " + std::to_string(static_cast<int>(100 * b.memory_fraction + 0.5)) +
                        "% of f16 is over the budget of " + std::to_string(static_cast<int>(100 * budget_fraction + 0.5)) + "%");
    const RecallRow* akv = s.FindRecall("recall", label, n_ctx);
    if (!akv || !akv->error.empty() || akv->all.total == 0) {
      b.notes.push_back("no recall results for " + label + " at " + std::to_string(n_ctx));
    } else if (!full || full->all.total == 0) {
      b.notes.push_back("no full-cache recall results at " + std::to_string(n_ctx));
    } else {
      b.have_recall = true;
      b.recall_within = true;
      for (const auto& [depth, cell] : full->by_depth) {
        auto it = akv->by_depth.find(depth);
        const double gap = 100.0 * (cell.accuracy() - (it == akv->by_depth.end() ? 0.0 : it->second.accuracy()));
        b.worst_gap_points = std::max(b.worst_gap_points, gap);
        if (gap > tol + 1e-9) b.recall_within = false;
      }
      const double shallow = akv->by_depth.begin()->first;
      const double mine = akv->by_depth.begin()->second.accuracy();
      b.ahead_at_shallowest = true;
      for (const RecallRow& r : s.recall) {
        if (r.task != "recall" || r.n_ctx != n_ctx || r.budget != budget || !IsEvictionMethod(r.method)) continue;
        if (!r.error.empty() || r.all.total == 0) continue;
        auto it = r.by_depth.find(shallow);
        if (it == r.by_depth.end()) continue;
        b.eviction_compared.push_back(r.label);
        if (!(mine > it->second.accuracy())) b.ahead_at_shallowest = false;
      }
      if (b.eviction_compared.empty()) {
        b.ahead_at_shallowest = false;
        b.notes.push_back("no eviction baseline (h2o, snapkv, window, ...) ran at budget " + budget);
      }
    }
    const PplRow* mine = s.FindPpl(label, n_ctx);
    if (!mine || !mine->error.empty() || mine->ppl <= 0) {
      b.notes.push_back("no perplexity for " + label + " at " + std::to_string(n_ctx));
    } else {
      b.have_ppl = true;
      b.lowest_ppl = true;
      for (const PplRow& r : s.ppl) {
        if (r.n_ctx != n_ctx || r.budget != budget || r.label == label || !r.error.empty() || r.ppl <= 0) continue;
        b.ppl_compared.push_back(r.label);
        if (r.ppl <= mine->ppl) b.lowest_ppl = false;
      }
      if (b.ppl_compared.empty()) b.notes.push_back("no other method's perplexity at budget " + budget);
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace akv
