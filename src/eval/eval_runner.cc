#include "eval/eval_runner.h"

#include <chrono>
#include <map>
#include <memory>
#include <tuple>

#include "eval/perplexity.h"
#include "eval/recall_runner.h"

namespace akv {

KvGeometry GeometryOf(const Engine& engine) {
  const ModelInfo& i = engine.info();
  return {i.n_layer, i.n_head_kv, i.head_dim};
}

StatusOr<RecallPrompt> BuildItemPrompt(const Engine& engine, const GridItem& item, const GridSpec& grid,
                                       const EvalOptions& o) {
  RecallPromptOptions p;
  p.n_ctx = item.n_ctx;
  p.seed = item.seed;
  p.value_digits = o.value_digits;
  p.templates = o.templates;
  p.n_facts = o.n_facts;
  const TokenizeFn tokenize = [&engine](const std::string& s) { return engine.Tokenize(s, /*add_special=*/true); };
  if (item.task == EvalTask::kPasskey) {
    p.depths = {item.depth};
    return BuildPasskeyPrompt(tokenize, p);
  }
  if (!o.filler) return InvalidArgument("recall tasks need filler text");
  p.task = TaskName(item.task);
  p.depths = item.task == EvalTask::kMultiQuery ? grid.depths : std::vector<double>{item.depth};
  return BuildRecallPrompt(*o.filler, tokenize, p);
}

StatusOr<std::vector<EvalRecord>> RunGrid(Engine& engine, const GridSpec& grid, const std::vector<GridItem>& items,
                                          const EvalOptions& o) {
  const KvGeometry kv = GeometryOf(engine);
  std::vector<EvalRecord> out;
  // Sessions are kept per (spec, context) and reset between items; a spec that cannot be
  // created is remembered so its error is recorded once per item without retrying.
  std::map<std::pair<std::string, int>, std::unique_ptr<Session>> sessions;
  std::map<std::pair<std::string, int>, Status> failed;
  std::map<std::tuple<int, int, int, double>, RecallPrompt> prompts;
  for (size_t i = 0; i < items.size(); ++i) {
    const GridItem& it = items[i];
    EvalRecord r;
    r.task = TaskName(it.task);
    r.method = it.method;
    r.budget = it.budget;
    r.budget_fraction = it.budget_fraction;
    r.cache_spec = it.cache.spec;
    r.budget_rule = it.cache.rule;
    r.n_ctx = it.n_ctx;
    r.depth = it.depth;
    r.trial = it.trial;
    r.seed = it.seed;
    const auto t0 = std::chrono::steady_clock::now();
    if (it.task == EvalTask::kPerplexity) {
      PerplexityOptions po;
      po.n_ctx = it.n_ctx;
      po.n_chunks = o.ppl_chunks;
      po.cache = it.cache.spec;
      if (it.cache.spec != o.reference_cache) po.reference_cache = o.reference_cache;
      auto pr = ComputePerplexity(engine, o.ppl_text, po);
      if (!pr.ok()) {
        // A bad text or context is the user's error for every method; a bad spec is this method's.
        auto probe = engine.NewSession({.n_ctx = it.n_ctx, .cache = it.cache.spec});
        if (probe.ok()) return pr.status();
        r.error = probe.status().ToString();
      } else {
        r.ppl = pr->ppl;
        r.nll_stderr = pr->nll_stderr;
        r.ppl_chunks = pr->n_chunks;
        r.ppl_scored = pr->n_scored;
        if (po.reference_cache.empty()) {
          r.reference_ppl = pr->ppl;
          r.top1_agreement = 1;
        } else {
          r.reference_ppl = pr->reference_ppl;
          r.mean_kl = pr->mean_kl;
          r.top1_agreement = pr->top1_agreement;
        }
        r.SetCache(pr->cache, kv);
      }
    } else {
      const auto pkey = std::make_tuple(static_cast<int>(it.task), it.n_ctx, it.trial, it.depth);
      auto pit = prompts.find(pkey);
      if (pit == prompts.end()) {
        prompts.clear();  // items come ordered by point: earlier prompts are done with
        AKV_ASSIGN_OR_RETURN(RecallPrompt p, BuildItemPrompt(engine, it, grid, o));
        pit = prompts.emplace(pkey, std::move(p)).first;
      }
      const auto skey = std::make_pair(it.cache.spec, it.n_ctx);
      auto sit = sessions.find(skey);
      if (sit == sessions.end() && !failed.count(skey)) {
        auto s = engine.NewSession({.n_ctx = it.n_ctx, .cache = it.cache.spec});
        if (s.ok()) {
          sit = sessions.emplace(skey, std::move(*s)).first;
        } else {
          failed.emplace(skey, s.status());
        }
      }
      if (sit == sessions.end()) {
        r.error = failed.at(skey).ToString();
      } else {
        const bool query_in_prefill = it.task != EvalTask::kMultiQuery;
        AKV_ASSIGN_OR_RETURN(RecallOutcome ro, RunRecall(engine, *sit->second, pit->second, query_in_prefill));
        r.queries = std::move(ro.queries);
        r.context_tokens = ro.context_tokens;
        r.total_tokens = ro.total_tokens;
        r.SetCache(ro.cache, kv);
      }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(std::move(r));
    if (o.progress) o.progress(i + 1, items.size(), out.back());
  }
  return out;
}

}  // namespace akv
