// How many concurrent long sessions fit in a fixed KV memory budget, per cache spec: fills
// one session per spec to --tokens tokens (prefill, then --decode decode steps so decode-time
// policies run), reads Session::cache_stats() (exact bytes per tier) and the process RSS
// growth, and divides the budget by the per-session bytes.
//
//   build-server/bench/server_capacity_bench -m ../shared/models/akv-tiny-llama-25m-f16.gguf
//       --tokens 4096 --budget-mib 1024 --caches full,akv:quality,akv:balanced,akv:aggressive
//       --text ../shared/data/treasure_island.txt --json bench/results/server_capacity.json
#include <chrono>
#include <cstdio>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "akv/akv.hpp"

namespace {

int64_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, text_path, caches = "full,akv:quality,akv:balanced,akv:aggressive", json_out;
  int tokens = 4096, decode = 64, threads = 0;
  double budget_mib = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "-m") model = next();
    else if (a == "--text") text_path = next();
    else if (a == "--caches") caches = next();
    else if (a == "--tokens") tokens = std::stoi(next());
    else if (a == "--decode") decode = std::stoi(next());
    else if (a == "--budget-mib") budget_mib = std::stod(next());
    else if (a == "-t") threads = std::stoi(next());
    else if (a == "--json") json_out = next();
    else {
      std::fprintf(stderr, "usage: server_capacity_bench -m MODEL --text FILE [--tokens N] [--decode N] [--budget-mib M]\n"
                           "                             [--caches a,b,...] [-t N] [--json OUT]\n");
      return 2;
    }
  }
  auto engine = akv::Engine::Load({.model_path = model, .n_threads = threads});
  if (!engine.ok()) {
    std::fprintf(stderr, "error: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  std::ifstream in(text_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<int32_t> ids = (*engine)->Tokenize(ss.str());
  const int n_prompt = tokens - decode;
  if (n_prompt <= 0 || static_cast<int>(ids.size()) < n_prompt) {
    std::fprintf(stderr, "error: need %d prompt tokens, the text has %zu\n", n_prompt, ids.size());
    return 1;
  }
  ids.resize(n_prompt);
  {
    // Touch the weights first (they are mmapped), so RSS growth below is the session's own.
    auto warm = (*engine)->NewSession({.n_ctx = 256, .cache = "full"});
    if (warm.ok()) (void)(*warm)->Prefill(std::span<const int32_t>(ids).first(std::min<size_t>(ids.size(), 128)));
  }
  const double budget = budget_mib * 1024 * 1024;
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-26s %12s %12s %12s %12s %10s %14s\n", "cache", "KV bytes", "hot+warm", "RSS growth", "bits/value",
              "fill s", "sessions/budget");
  for (const std::string& spec : Split(caches, ',')) {
    // "akv:balanced" contains no ',' but specs with options use ';' on this command line.
    std::string cache = spec;
    for (char& c : cache) if (c == ';') c = ',';
    const int64_t rss0 = RssBytes();
    const auto t0 = std::chrono::steady_clock::now();
    auto session = (*engine)->NewSession({.n_ctx = tokens, .cache = cache});
    if (!session.ok()) {
      std::fprintf(stderr, "%s: %s\n", cache.c_str(), session.status().ToString().c_str());
      continue;
    }
    akv::Status st = (*session)->Prefill(ids);
    akv::SamplingParams greedy;
    greedy.temperature = 0;
    for (int i = 0; st.ok() && i < decode; ++i) {
      auto tok = (*session)->Sample(greedy);
      if (!tok.ok()) break;
      st = (*session)->Decode(*tok);
    }
    if (!st.ok()) {
      std::fprintf(stderr, "%s: %s\n", cache.c_str(), st.ToString().c_str());
      continue;
    }
    const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const akv::CacheStats s = (*session)->cache_stats();
    const int64_t rss_growth = RssBytes() - rss0;
    const int64_t bytes = s.total_bytes();
    const int64_t device = s.hot.bytes + s.warm.bytes;
    const int64_t per = std::max(1, s.n_layer * s.n_head_kv);
    const int64_t fits = bytes > 0 ? static_cast<int64_t>(budget / bytes) : 0;
    std::printf("%-26s %12lld %12lld %12lld %12.2f %10.1f %14lld\n", cache.c_str(), static_cast<long long>(bytes),
                static_cast<long long>(device), static_cast<long long>(rss_growth), s.bits_per_value_total, fill_s,
                static_cast<long long>(fits));
    rows.push_back({{"cache", cache},
                    {"tokens", s.n_positions},
                    {"kv_bytes", bytes},
                    {"hot", {{"tokens", s.hot.tokens / per}, {"bytes", s.hot.bytes}}},
                    {"warm", {{"tokens", s.warm.tokens / per}, {"bytes", s.warm.bytes}}},
                    {"cold", {{"tokens", s.cold.tokens / per}, {"bytes", s.cold.bytes}}},
                    {"evicted_tokens", s.evicted / per},
                    {"bits_per_value", s.bits_per_value},
                    {"bits_per_value_total", s.bits_per_value_total},
                    {"rss_growth_bytes", rss_growth},
                    {"fill_seconds", fill_s},
                    {"sessions_in_budget", fits},
                    {"sessions_in_budget_hot_warm_only", device > 0 ? static_cast<int64_t>(budget / device) : 0}});
  }
  nlohmann::json out = {{"model", model}, {"tokens_per_session", tokens}, {"decode_steps", decode},
                        {"budget_mib", budget_mib}, {"rows", rows}};
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  return 0;
}
