// Decode-attention kernel benchmark on the GPU: time per call (attention kernels + merge) and
// achieved bandwidth on the bytes the kernels read, against a device-to-device copy measured in
// the same process. The issue's anchor shape: batch 8, 32 heads x 128, contexts 4K .. 64K.
//
//   build-cuda/cuda_attention [--json out.json] [--quick] [--only SUBSTRING] [--contexts 16384,32768]
//                             [--no-gemv]
// Also times the one-token GEMV variants on the Llama-2-7B projection shapes.
// Never asserts on time.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_testing.h"

using akv::cuda::AttnBenchConfig;

int main(int argc, char** argv) {
  std::string json_path, only;
  bool quick = false, gemv = true;
  std::vector<int> contexts_arg;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--no-gemv")) gemv = false;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--contexts") && i + 1 < argc) {
      for (char* tok = std::strtok(argv[++i], ","); tok; tok = std::strtok(nullptr, ",")) contexts_arg.push_back(std::atoi(tok));
    }
  }
  auto dev = akv::cuda::QueryDevice(0);
  if (!dev.ok()) {
    std::fprintf(stderr, "cuda_attention: %s\n", dev.status().ToString().c_str());
    return 1;
  }
  auto copy = akv::cuda::BenchDeviceCopyGBps(size_t(2) << 30, 20);
  if (!copy.ok()) {
    std::fprintf(stderr, "cuda_attention: %s\n", copy.status().ToString().c_str());
    return 1;
  }
  std::printf("device: %s, %d SMs; device-to-device copy %.0f GB/s (read + write)\n\n", dev->name.c_str(),
              dev->sm_count, *copy);
  struct Case {
    std::string name;
    AttnBenchConfig c;
  };
  std::vector<Case> cases;
  std::vector<int> contexts = quick ? std::vector<int>{16384} : std::vector<int>{4096, 16384, 32768, 65536};
  if (!contexts_arg.empty()) contexts = contexts_arg;
  for (int ctx : contexts) {
    auto add = [&](const std::string& name, int bits, int group, int hot, bool mass = false) {
      AttnBenchConfig c;
      c.context = ctx;
      c.bits = bits;
      c.group = group;
      c.hot_tokens = hot;
      c.mass = mass;
      cases.push_back({name, c});
    };
    add("f16", 16, 32, 0);
    add("int8-g32", 8, 32, 0);
    add("int4-g32", 4, 32, 0);
    add("int4-g128", 4, 128, 0);
    add("int2-g32", 2, 32, 0);
    add("int2-g128", 2, 128, 0);
    add("balanced(512 f16 + int4-g32)", 4, 32, 512);
    add("int4-g32 + mass", 4, 32, 0, true);
  }
  // GQA shapes (8 KV heads, 4 or 8 query heads each).
  for (int R : {4, 8}) {
    for (int bits : {16, 4, 2}) {
      AttnBenchConfig c;
      c.n_kv = 8;
      c.R = R;
      c.context = 32768;
      c.bits = bits;
      cases.push_back({"gqa" + std::to_string(R) + (bits == 16 ? " f16" : bits == 4 ? " int4-g32" : " int2-g32"), c});
    }
  }
  std::printf("| %-30s | %7s | %3s | %9s | %9s | %8s | %7s | %8s |\n", "codec (batch 8)", "context", "R", "ms",
              "KV MB", "GB/s", "% copy", "vs f16");
  std::printf("|--------------------------------|---------|-----|-----------|-----------|----------|---------|----------|\n");
  nlohmann::json out = nlohmann::json::array();
  double f16_ms = 0;
  for (const Case& k : cases) {
    if (!only.empty() && k.name.find(only) == std::string::npos) continue;
    auto r = akv::cuda::BenchDecodeAttention(k.c, quick ? 10 : 30);
    if (!r.ok()) {
      std::fprintf(stderr, "cuda_attention: %s: %s\n", k.name.c_str(), r.status().ToString().c_str());
      return 1;
    }
    if (k.name == "f16" || (k.c.R > 1 && k.c.bits == 16)) f16_ms = r->ms_median;
    std::printf("| %-30s | %7d | %3d | %9.4f | %9.1f | %8.0f | %6.1f%% | %7.2fx |\n", k.name.c_str(), k.c.context, k.c.R,
                r->ms_median, r->kv_bytes / 1e6, r->gbps, 100.0 * r->gbps / *copy, f16_ms / r->ms_median);
    std::fflush(stdout);
    out.push_back({{"codec", k.name}, {"batch", k.c.batch}, {"n_kv_heads", k.c.n_kv}, {"R", k.c.R},
                   {"head_dim", k.c.head_dim}, {"context", k.c.context}, {"bits", k.c.bits}, {"group", k.c.group},
                   {"hot_tokens", k.c.hot_tokens}, {"mass", k.c.mass}, {"ms_median", r->ms_median},
                   {"ms_min", r->ms_min}, {"kv_bytes", r->kv_bytes}, {"other_bytes", r->other_bytes},
                   {"gbps", r->gbps}, {"copy_gbps", *copy}, {"fraction_of_copy", r->gbps / *copy},
                   {"speedup_vs_f16", f16_ms / r->ms_median}, {"splits", r->splits}, {"device", dev->name}});
  }
  if (gemv) {  // also: cold-page promotion overlapped with attention
    for (int pages : {4, 16}) {
      auto r = akv::cuda::BenchColdPromotion(8, 32, 128, 32768, pages, 256, 10);
      if (!r.ok()) {
        std::fprintf(stderr, "cuda_attention: cold promotion: %s\n", r.status().ToString().c_str());
        return 1;
      }
      std::printf("\ncold promotion (batch 8 x 32 heads, %d int2 pages of 256 slots each): %.1f MB host->device in "
                  "%.3f ms (%.1f GB/s); f16 attention at 32K alone %.3f ms; both at once %.3f ms (overlap hides "
                  "%.0f%% of the copy)\n",
                  pages, r->promoted_bytes / 1e6, r->copy_ms, r->copy_gbps, r->attention_ms, r->both_ms,
                  100.0 * (r->copy_ms + r->attention_ms - r->both_ms) / std::min(r->copy_ms, r->attention_ms));
      out.push_back({{"cold_promotion_pages_per_job", pages}, {"promoted_bytes", r->promoted_bytes},
                     {"copy_ms", r->copy_ms}, {"copy_gbps", r->copy_gbps}, {"attention_ms", r->attention_ms},
                     {"both_ms", r->both_ms}, {"device", dev->name}});
    }

    std::printf("\n| %-24s | %-5s | %7s | %7s | %7s | %7s |\n", "GEMV (one token, f16)", "", "v0 GB/s", "v1", "v2", "v3");
    std::printf("|--------------------------|-------|---------|---------|---------|---------|\n");
    struct Shape {
      const char* name;
      int64_t rows, cols;
    };
    for (Shape sh : {Shape{"qkv 12288x4096", 12288, 4096}, Shape{"wo 4096x4096", 4096, 4096},
                     Shape{"gate|up 22016x4096", 22016, 4096}, Shape{"down 4096x11008", 4096, 11008},
                     Shape{"output 32000x4096", 32000, 4096}}) {
      double g[4];
      for (int v = 0; v < 4; ++v) {
        auto r = akv::cuda::BenchGemv(sh.rows, sh.cols, akv::GgmlType::F16, v, 20);
        if (!r.ok()) {
          std::fprintf(stderr, "cuda_attention: gemv: %s\n", r.status().ToString().c_str());
          return 1;
        }
        g[v] = *r;
      }
      std::printf("| %-24s | %-5s | %7.0f | %7.0f | %7.0f | %7.0f |\n", sh.name, "", g[0], g[1], g[2], g[3]);
      out.push_back({{"gemv", sh.name}, {"rows", sh.rows}, {"cols", sh.cols}, {"gbps_variant", {g[0], g[1], g[2], g[3]}},
                     {"copy_gbps", *copy}, {"device", dev->name}});
    }
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
  }
  return 0;
}
