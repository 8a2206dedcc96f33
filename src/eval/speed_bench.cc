#include "eval/speed_bench.h"

#include <chrono>
#include <cmath>
#include <random>

namespace akv {

StatusOr<SpeedResult> RunSpeedTest(Engine& engine, const SpeedTest& t, const std::string& cache, int reps,
                                   uint64_t seed) {
  if (t.n_tokens <= 0 || t.depth < 0 || reps <= 0) return InvalidArgument("bench: token counts and repetitions must be positive");
  if (t.kind != "pp" && t.kind != "tg") return InvalidArgument("bench: unknown test kind '" + t.kind + "'");
  const bool fill_once = t.fill_once && t.kind == "tg";
  const int n_ctx = t.depth + t.n_tokens * (fill_once ? reps + 1 : 1);
  AKV_ASSIGN_OR_RETURN(auto session, engine.NewSession({.n_ctx = n_ctx, .cache = cache}));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, engine.info().n_vocab - 1);
  SpeedResult r;
  r.test = t;
  r.cache = cache;
  r.repetitions = reps;
  // One untimed warm-up repetition (page faults on the mmapped weights, thread start-up).
  for (int rep = -1; rep < reps; ++rep) {
    if (!fill_once || rep == -1) {
      session->Reset();
      std::vector<int32_t> depth_tokens(t.depth);
      for (auto& x : depth_tokens) x = tok(rng);
      if (t.depth > 0) AKV_RETURN_IF_ERROR(session->Prefill(depth_tokens));
    }
    std::vector<int32_t> tokens(t.n_tokens);
    for (auto& x : tokens) x = tok(rng);
    const auto t0 = std::chrono::steady_clock::now();
    if (t.kind == "pp") {
      AKV_RETURN_IF_ERROR(session->Prefill(tokens));
    } else {
      for (int32_t x : tokens) AKV_RETURN_IF_ERROR(session->Decode(x));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep >= 0) r.samples.push_back(t.n_tokens / s);
  }
  double sum = 0, sq = 0;
  for (double x : r.samples) sum += x;
  r.tokens_per_s_mean = sum / reps;
  for (double x : r.samples) sq += (x - r.tokens_per_s_mean) * (x - r.tokens_per_s_mean);
  r.tokens_per_s_stddev = reps > 1 ? std::sqrt(sq / (reps - 1)) : 0;
  r.cache_stats = session->cache_stats();
  return r;
}

}  // namespace akv
