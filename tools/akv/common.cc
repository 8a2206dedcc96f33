#include "common.h"

#include <cstdio>
#include <cstdlib>

namespace akv::cli {

void ModelFlags::AddTo(CLI::App* app, bool with_ctx, bool with_cache) {
  const char* env = std::getenv("AKV_MODEL");
  if (env) model = env;
  auto* m = app->add_option("-m,--model", model, "GGUF model file (default: $AKV_MODEL)");
  if (!env) m->required();
  app->add_option("-t,--threads", threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
  if (with_ctx) app->add_option("-c,--ctx", ctx, "Context size in tokens (default: the model's)")->check(CLI::NonNegativeNumber);
  if (with_cache)
    app->add_option("--cache", cache, "KV cache: full, or akv[:quality|balanced|aggressive][,key=value...] (see `akv cache-help`)")
        ->capture_default_str();
  app->add_option("--device", device, "cpu, or cuda / cuda:N: the model and its KV cache on the GPU (builds with AKV_CUDA)")
      ->capture_default_str();
  app->add_flag("--no-pin", no_pin, "Let the OS place the threads (default: thread i pinned to CPU i)");
  app->add_flag("-v,--verbose", verbose, "Print load notes");
}

std::unique_ptr<Engine> ModelFlags::LoadEngine() const {
  auto e = Engine::Load({.model_path = model, .n_threads = threads, .pin_threads = !no_pin, .device = device});
  if (!e.ok()) {
    ReportError(e.status());
    return nullptr;
  }
  if (verbose)
    for (const auto& line : (*e)->load_log()) std::fprintf(stderr, "akv: %s\n", line.c_str());
  return std::move(*e);
}

int ReportError(const Status& status) {
  std::fprintf(stderr, "akv: error: %s\n", status.ToString().c_str());
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange: return 2;
    default: return 1;
  }
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string TierSummary(const CacheStats& s) {
  const int64_t per = std::max(1, s.n_layer * s.n_head_kv);
  char buf[200];
  std::snprintf(buf, sizeof buf, "[hot=%lld warm=%lld cold=%lld | %.2f bits/value, %.2f with metadata]",
                static_cast<long long>(s.hot.tokens / per), static_cast<long long>(s.warm.tokens / per),
                static_cast<long long>(s.cold.tokens / per), s.bits_per_value, s.bits_per_value_total);
  return buf;
}

}  // namespace akv::cli
