// akv bench: prefill and decode tokens/s (llama-bench's pp/tg), decode at context depths.
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "eval/speed_bench.h"
#ifdef AKV_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace akv::cli {

namespace {

struct BenchFlags {
  ModelFlags model;
  std::vector<int> prompt = {512};
  std::vector<int> gen = {128};
  std::vector<int> depth = {0};
  std::vector<std::string> caches = {"full"};
  int reps = 3;
  bool fill_once = false;
  std::string json;
};

int Run(const BenchFlags& f) {
#ifdef AKV_HAVE_CUDA
  if (f.model.device == "cuda") {  // the GPU backend's own loop (src/cuda/cuda_bench.cc)
    cuda::BenchOptions o;
    o.model_path = f.model.model;
    o.prompt = f.prompt;
    o.gen = f.gen;
    o.depth = f.depth;
    o.reps = f.reps;
    o.json = f.json;
    o.caches.clear();
    for (const std::string& c : f.caches) o.caches.push_back(c == "full" ? "f16" : c);
    return cuda::RunBench(o);
  }
#endif
  if (f.model.device != "cpu") {
#ifdef AKV_HAVE_CUDA
    return ReportError(InvalidArgument("akv bench: unknown device '" + f.model.device + "' (cpu or cuda)"));
#else
    return ReportError(Unsupported("akv bench: device '" + f.model.device +
                                   "': this build has no CUDA backend (configure with -DAKV_CUDA=ON)"));
#endif
  }
  auto engine = f.model.LoadEngine();
  if (!engine) return 1;
  const ModelInfo& mi = engine->info();
  std::printf("model: %s (%s, %s weights, %s), %d threads\n\n", mi.name.c_str(), mi.arch.c_str(),
              mi.weight_types.c_str(), HumanBytes(mi.weight_bytes).c_str(), engine->n_threads());
  std::printf("| %-8s | %-14s | %7s | %14s | %9s |\n", "test", "cache", "depth", "tokens/s", "KV bytes");
  std::printf("|----------|----------------|---------|----------------|-----------|\n");
  nlohmann::json out = nlohmann::json::array();
  std::vector<SpeedTest> tests;
  for (int p : f.prompt) if (p > 0) tests.push_back({"pp", p, 0});
  for (int d : f.depth)
    for (int n : f.gen) if (n > 0) tests.push_back({"tg", n, d, f.fill_once});
  for (const std::string& cache : f.caches) {
    for (const SpeedTest& t : tests) {
      auto r = RunSpeedTest(*engine, t, cache, f.reps, 42);
      if (!r.ok()) return ReportError(r.status());
      char name[32];
      std::snprintf(name, sizeof name, "%s%d", t.kind.c_str(), t.n_tokens);
      std::printf("| %-8s | %-14s | %7d | %8.1f ± %-4.0f | %9s |\n", name, cache.c_str(), t.depth, r->tokens_per_s_mean,
                  r->tokens_per_s_stddev, HumanBytes(r->cache_stats.total_bytes()).c_str());
      std::fflush(stdout);
      out.push_back({{"test", name}, {"kind", t.kind}, {"n_tokens", t.n_tokens}, {"depth", t.depth},
                     {"fill_once", t.fill_once}, {"cache", cache}, {"threads", engine->n_threads()}, {"model", mi.name},
                     {"weights", mi.weight_types}, {"tokens_per_s", r->tokens_per_s_mean},
                     {"stddev", r->tokens_per_s_stddev}, {"samples", r->samples},
                     {"kv_bytes", r->cache_stats.total_bytes()}, {"bits_per_value", r->cache_stats.bits_per_value}});
    }
  }
  if (!f.json.empty()) {
    std::ofstream o(f.json);
    o << out.dump(2) << "\n";
    if (!o) return ReportError(IoError("cannot write '" + f.json + "'"));
  }
  return 0;
}

}  // namespace

void RegisterBench(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* sub = app.add_subcommand("bench", "Prefill and decode speed (tokens/s) at chosen prompt lengths and depths");
  f->model.AddTo(sub, /*with_ctx=*/false, /*with_cache=*/false);
  sub->add_option("-p,--n-prompt", f->prompt, "Prompt lengths for prefill tests (comma-separated)")->delimiter(',')->capture_default_str();
  sub->add_option("-n,--n-gen", f->gen, "Tokens to decode in decode tests")->delimiter(',')->capture_default_str();
  sub->add_option("-d,--depth", f->depth, "Context depths before the decode tests, e.g. 0,512,2048,4096")->delimiter(',')->capture_default_str();
  sub->add_option("--cache", f->caches, "KV cache spec (repeat the flag to compare several), e.g. --cache full --cache akv:balanced")
      ->capture_default_str();
  sub->add_option("-r,--repetitions", f->reps, "Timed repetitions per test")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_flag("--fill-once", f->fill_once,
               "Decode tests: prefill the depth once; the warm-up and the repetitions continue the same sequence "
               "(repetition k decodes after depth + (k+1)*n tokens) instead of re-prefilling before each");
  sub->add_option("--json", f->json, "Write the results as JSON to this file");
  sub->callback([f] {
    int rc = Run(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace akv::cli
