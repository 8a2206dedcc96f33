// `akv bench --device cuda`: end-to-end prefill / decode speed and device memory on the GPU.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "cuda/cuda_backend.h"
#include "model/model.h"

namespace akv::cuda {

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void MeanStd(const std::vector<double>& v, double* mean, double* sd) {
  *mean = 0;
  for (double x : v) *mean += x;
  *mean /= std::max<size_t>(1, v.size());
  double ss = 0;
  for (double x : v) ss += (x - *mean) * (x - *mean);
  *sd = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "akv: error: %s\n", s.ToString().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

double GiB(double b) { return b / (1024.0 * 1024.0 * 1024.0); }

}  // namespace

int RunBench(const BenchOptions& o) {
  auto dev = QueryDevice(0);
  if (!dev.ok()) return Fail(dev.status());
  auto base_in_use = DeviceBytesInUse(0);
  std::unique_ptr<Model> cpu_model;
  StatusOr<std::unique_ptr<CudaModel>> model = Status(StatusCode::kInternal, "unset");
  if (o.model_path.rfind("random:", 0) == 0) {
    if (o.model_path != "random:llama-2-7b")
      return Fail(InvalidArgument("unknown random model '" + o.model_path + "' (random:llama-2-7b)"));
    model = CudaModel::Random(Llama2_7BConfig(), GgmlType::F16, 1234);
  } else {
    auto m = Model::Load(o.model_path);
    if (!m.ok()) return Fail(m.status());
    cpu_model = std::move(*m);
    model = CudaModel::Upload(*cpu_model);
  }
  if (!model.ok()) return Fail(model.status());
  CudaModel& gm = **model;
  const ModelConfig& c = gm.config();
  std::printf("device: %s (sm_%d%d, %d SMs, %.1f GiB), CUDA runtime %s, driver %s, build %s\n", dev->name.c_str(),
              dev->cc_major, dev->cc_minor, dev->sm_count, GiB(dev->total_bytes), dev->runtime_version.c_str(),
              dev->driver_version.c_str(), BuiltArchitectures().c_str());
  std::printf("model: %s (%s, %d layers, %d x %d heads (%d kv), %s weights, %.2f GiB)\n\n", c.name.c_str(),
              c.arch.c_str(), c.n_layer, c.n_head, c.head_dim, c.n_head_kv, gm.weight_types().c_str(),
              GiB(gm.weight_bytes()));
  // KV GiB: device memory of the cache; host GiB: the cold tier's pinned host pages (akv-cold).
  std::printf("| %-5s | %-14s | %6s | %15s | %10s | %10s | %12s |\n", "test", "cache", "depth", "tokens/s", "KV GiB",
              "host GiB", "device GiB");
  std::printf("|-------|----------------|--------|-----------------|------------|------------|--------------|\n");
  nlohmann::json out = nlohmann::json::array();
  std::mt19937 rng(42);
  auto random_tokens = [&](int n) {
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = static_cast<int32_t>(rng() % c.n_vocab);
    return t;
  };
  for (const std::string& cache : o.caches) {
    auto preset = KvPresetByName(cache);
    if (!preset.ok()) return Fail(preset.status());
    auto emit = [&](const char* kind, int n, int depth, const std::vector<double>& tps, const KvMemory& kv,
                    int64_t in_use, int n_ctx) {
      double mean, sd;
      MeanStd(tps, &mean, &sd);
      char name[32];
      std::snprintf(name, sizeof name, "%s%d", kind, n);
      std::printf("| %-5s | %-14s | %6d | %8.1f ± %-4.1f | %10.3f | %10.3f | %12.2f |\n", name, cache.c_str(), depth,
                  mean, sd, GiB(kv.total_bytes()), GiB(kv.cold_host_bytes), GiB(in_use));
      std::fflush(stdout);
      out.push_back({{"test", name}, {"kind", kind}, {"n_tokens", n}, {"depth", depth}, {"cache", cache},
                     {"n_ctx", n_ctx}, {"device", dev->name}, {"model", c.name}, {"weights", gm.weight_types()},
                     {"tokens_per_s", mean}, {"stddev", sd}, {"samples", tps}, {"kv_bytes", kv.total_bytes()},
                     {"kv_hot_bytes", kv.hot_bytes}, {"kv_warm_bytes", kv.warm_bytes},
                     {"kv_promoted_bytes", kv.promoted_bytes}, {"kv_cold_host_bytes", kv.cold_host_bytes},
                     {"cold_tokens", kv.cold_tokens}, {"promoted_pages", kv.promotions},
                     {"kv_bytes_per_token", kv.bytes_per_token}, {"device_bytes_in_use", in_use},
                     {"weight_bytes", gm.weight_bytes()}, {"attention_mass", o.attention_mass},
                     {"depth_fill", o.real_prefill ? "prefill" : "synthetic K/V (FillRandom)"}});
    };
    for (int p : o.prompt) {
      if (p <= 0) continue;
      SessionOptions so;
      so.n_ctx = p;
      so.cache = *preset;
      std::vector<double> tps;
      KvMemory kv;
      int64_t in_use = 0;
      for (int r = 0; r < o.reps + 1; ++r) {
        auto s = gm.NewSession(so);
        if (!s.ok()) return Fail(s.status());
        auto toks = random_tokens(p);
        const double t0 = Now();
        Status st = (*s)->Prefill(toks);
        const double t1 = Now();
        if (!st.ok()) return Fail(st);
        if (r > 0) tps.push_back(p / (t1 - t0));  // the first run warms up cuBLAS and the kernels
        kv = (*s)->kv_memory();
        in_use = DeviceBytesInUse(0).ok() ? *DeviceBytesInUse(0) : 0;
      }
      emit("pp", p, 0, tps, kv, in_use, p);
    }
    for (int depth : o.depth) {
      for (int n : o.gen) {
        if (n <= 0) continue;
        SessionOptions so;
        so.n_ctx = depth + (o.reps + 1) * n + 8;
        so.cache = *preset;
        so.attention_mass = o.attention_mass;
        auto s = gm.NewSession(so);
        if (!s.ok()) return Fail(s.status());
        Status st = o.real_prefill ? (*s)->Prefill(random_tokens(depth)) : (*s)->FillRandom(depth, 99);
        if (!st.ok()) return Fail(st);
        std::vector<double> tps;
        auto toks = random_tokens((o.reps + 1) * n);
        for (int r = 0; r < o.reps + 1; ++r) {
          const double t0 = Now();
          for (int i = 0; i < n; ++i) {
            st = (*s)->Decode(toks[r * n + i]);
            if (!st.ok()) return Fail(st);
          }
          const double t1 = Now();
          if (r > 0) tps.push_back(n / (t1 - t0));  // the first run captures the graph
        }
        auto in_use = DeviceBytesInUse(0);
        emit("tg", n, depth, tps, (*s)->kv_memory(), in_use.ok() ? *in_use : 0, so.n_ctx);
      }
    }
  }
  (void)base_in_use;
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << out.dump(2) << "\n";
    if (!f) return Fail(IoError("cannot write '" + o.json + "'"));
  }
  return 0;
}

}  // namespace akv::cuda
