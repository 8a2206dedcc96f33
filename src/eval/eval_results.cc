#include "eval/eval_results.h"

#include <fstream>
#include <sstream>

namespace akv {

using nlohmann::json;

std::string EvalRecord::Label() const { return budget.empty() ? method : method + " @" + budget; }

int EvalRecord::correct() const {
  int n = 0;
  for (const auto& q : queries) n += q.correct;
  return n;
}

void EvalRecord::SetCache(const CacheStats& s, const KvGeometry& kv) {
  const int64_t per = std::max(1, s.n_layer * s.n_head_kv);
  bits_per_value = s.bits_per_value;
  bits_per_value_total = s.bits_per_value_total;
  kv_bytes = s.total_bytes();
  n_positions = s.n_positions;
  f16_bytes = kv.F16Bytes(s.n_positions);
  memory_fraction = f16_bytes > 0 ? static_cast<double>(kv_bytes) / static_cast<double>(f16_bytes) : 0;
  hot_tokens = s.hot.tokens / per;
  warm_tokens = s.warm.tokens / per;
  cold_tokens = s.cold.tokens / per;
  evicted = s.evicted / per;
}

json ToJson(const EvalRecord& r) {
  json j = {{"task", r.task},
            {"method", r.method},
            {"budget", r.budget},
            {"budget_fraction", r.budget_fraction},
            {"cache_spec", r.cache_spec},
            {"budget_rule", r.budget_rule},
            {"ctx", r.n_ctx},
            {"depth", r.depth},
            {"trial", r.trial},
            {"seed", r.seed},
            {"error", r.error},
            {"bits_per_value", r.bits_per_value},
            {"bits_per_value_total", r.bits_per_value_total},
            {"kv_bytes", r.kv_bytes},
            {"f16_bytes", r.f16_bytes},
            {"memory_fraction", r.memory_fraction},
            {"hot_tokens", r.hot_tokens},
            {"warm_tokens", r.warm_tokens},
            {"cold_tokens", r.cold_tokens},
            {"evicted", r.evicted},
            {"n_positions", r.n_positions},
            {"seconds", r.seconds}};
  if (r.task == "ppl") {
    j["ppl"] = r.ppl;
    j["nll_stderr"] = r.nll_stderr;
    j["reference_ppl"] = r.reference_ppl;
    j["mean_kl"] = r.mean_kl;
    j["top1_agreement"] = r.top1_agreement;
    j["chunks"] = r.ppl_chunks;
    j["scored"] = r.ppl_scored;
  } else {
    j["context_tokens"] = r.context_tokens;
    j["total_tokens"] = r.total_tokens;
    json qs = json::array();
    for (const auto& q : r.queries)
      qs.push_back({{"fact", q.fact},
                    {"template", q.template_id},
                    {"expected", q.expected},
                    {"generated", q.generated},
                    {"answer", q.answer},
                    {"correct", q.correct},
                    {"target_depth", q.target_depth},
                    {"depth", q.depth},
                    {"token_pos", q.token_pos}});
    j["queries"] = std::move(qs);
  }
  return j;
}

StatusOr<EvalRecord> RecordFromJson(const json& j) {
  try {
    EvalRecord r;
    r.task = j.at("task").get<std::string>();
    r.method = j.at("method").get<std::string>();
    r.budget = j.value("budget", "");
    r.budget_fraction = j.value("budget_fraction", 1.0);
    r.cache_spec = j.value("cache_spec", r.method);
    r.budget_rule = j.value("budget_rule", "");
    r.n_ctx = j.at("ctx").get<int>();
    r.depth = j.value("depth", -1.0);
    r.trial = j.value("trial", 0);
    r.seed = j.value("seed", uint64_t{0});
    r.error = j.value("error", "");
    r.bits_per_value = j.value("bits_per_value", 0.0);
    r.bits_per_value_total = j.value("bits_per_value_total", 0.0);
    r.kv_bytes = j.value("kv_bytes", int64_t{0});
    r.f16_bytes = j.value("f16_bytes", int64_t{0});
    r.memory_fraction = j.value("memory_fraction", 0.0);
    r.hot_tokens = j.value("hot_tokens", int64_t{0});
    r.warm_tokens = j.value("warm_tokens", int64_t{0});
    r.cold_tokens = j.value("cold_tokens", int64_t{0});
    r.evicted = j.value("evicted", int64_t{0});
    r.n_positions = j.value("n_positions", int64_t{0});
    r.seconds = j.value("seconds", 0.0);
    r.ppl = j.value("ppl", 0.0);
    r.nll_stderr = j.value("nll_stderr", 0.0);
    r.reference_ppl = j.value("reference_ppl", 0.0);
    r.mean_kl = j.value("mean_kl", 0.0);
    r.top1_agreement = j.value("top1_agreement", 0.0);
    r.ppl_chunks = j.value("chunks", 0);
    r.ppl_scored = j.value("scored", int64_t{0});
    r.context_tokens = j.value("context_tokens", int64_t{0});
    r.total_tokens = j.value("total_tokens", int64_t{0});
    if (j.contains("queries")) {
      for (const auto& q : j.at("queries")) {
        QueryOutcome o;
        o.fact = q.value("fact", 0);
        o.template_id = q.value("template", "");
        o.expected = q.at("expected").get<std::string>();
        o.generated = q.value("generated", "");
        o.answer = q.value("answer", "");
        o.correct = q.at("correct").get<bool>();
        o.target_depth = q.value("target_depth", 0.0);
        o.depth = q.value("depth", 0.0);
        o.token_pos = q.value("token_pos", int64_t{0});
        r.queries.push_back(std::move(o));
      }
    }
    return r;
  } catch (const json::exception& e) {
    return Corrupt(std::string("eval record: ") + e.what());
  }
}

json ToJson(const EvalRun& run) {
  json records = json::array();
  for (const auto& r : run.records) records.push_back(ToJson(r));
  return {{"meta", run.meta}, {"records", std::move(records)}};
}

StatusOr<EvalRun> RunFromJson(const json& j) {
  if (!j.is_object() || !j.contains("records") || !j.at("records").is_array())
    return Corrupt("eval results: expected an object with a \"records\" array");
  EvalRun run;
  run.meta = j.value("meta", json::object());
  size_t i = 0;
  for (const auto& rj : j.at("records")) {
    auto r = RecordFromJson(rj);
    if (!r.ok()) return Corrupt(r.status().message() + " (record " + std::to_string(i) + ")");
    run.records.push_back(std::move(*r));
    ++i;
  }
  return run;
}

Status WriteRunJson(const EvalRun& run, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) return IoError("cannot write '" + path + "'");
  out << ToJson(run).dump(1) << "\n";
  if (!out) return IoError("cannot write '" + path + "'");
  return Status::Ok();
}

StatusOr<EvalRun> ReadRunJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read '" + path + "'");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt("'" + path + "' is not valid JSON");
  auto run = RunFromJson(j);
  if (!run.ok()) return Corrupt("'" + path + "': " + run.status().message());
  return run;
}

}  // namespace akv
