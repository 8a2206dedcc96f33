// Prefill attention: a prompt of N tokens attends causally to itself, 8 KV heads x GQA 4:1,
// head_dim 128, the keys in one f16 segment per KV head (the model's plain cache) or in int4
// pages. Counters: GMAC/s (multiply-adds of QK^T and PV actually required under the causal mask)
// and queries per second.
#include <benchmark/benchmark.h>

#include <numeric>
#include <string>
#include <vector>

#include "attn/attention.h"
#include "core/thread_pool.h"
#include "kv/page/kv_page.h"
#include "kv_test_util.h"

namespace akv {
namespace {

constexpr int kKvHeads = 8, kGroup = 4, kDim = 128;

void BM_PrefillAttention(benchmark::State& state) {
  const int tokens = int(state.range(0));
  const bool int4 = state.range(1) != 0;
  const int threads = int(state.range(2));
  const CodecSpec codec = int4 ? CodecSpec::Quantized(4, 32) : CodecSpec::F16();
  const int page_slots = int4 ? 256 : tokens;
  const std::vector<float> keys = test::RandomKvRows(tokens, kDim, 1, 4), values = test::RandomKvRows(tokens, kDim, 2, 0);
  std::vector<int32_t> positions(tokens);
  std::iota(positions.begin(), positions.end(), 0);
  std::vector<std::vector<KvPage>> pages(kKvHeads);
  std::vector<std::vector<KvSegment>> segments(kKvHeads);
  std::vector<KvHeadSegments> heads;
  for (int h = 0; h < kKvHeads; ++h) {
    for (int t0 = 0; t0 < tokens; t0 += page_slots) {
      const int n = std::min(page_slots, tokens - t0);
      auto page = KvPage::Create(codec, codec, kDim, n);
      if (!page.ok() || !page->AppendBlock(keys.data() + size_t(t0) * kDim, values.data() + size_t(t0) * kDim,
                                           positions.data() + t0, n).ok()) {
        state.SkipWithError("page setup failed");
        return;
      }
      pages[h].push_back(std::move(*page));
    }
    for (const KvPage& p : pages[h]) segments[h].push_back(p.segment());
    heads.push_back(KvHeadSegments{segments[h], {}});
  }
  AttentionShape shape;
  shape.n_kv_heads = kKvHeads;
  shape.n_q_per_kv = kGroup;
  shape.head_dim = kDim;
  const std::vector<float> q = test::RandomKvRows(tokens, shape.n_heads() * kDim, 3, 0);
  std::vector<float> out(q.size());
  ThreadPool pool(threads);
  AttentionWorkspace workspace;
  AttentionOptions options;
  options.pool = threads > 1 ? &pool : nullptr;
  options.workspace = &workspace;
  for (auto _ : state) {
    const Status st = Attend(shape, tokens, q.data(), positions.data(), heads, out.data(), nullptr, options);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  // Causal: query i sees i + 1 keys; QK^T and PV each take head_dim MACs per (query head, key).
  const double macs = double(tokens) * (tokens + 1) / 2 * shape.n_heads() * kDim * 2;
  state.counters["GMACps"] = benchmark::Counter(macs * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["queries_per_s"] = benchmark::Counter(double(tokens) * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(int4 ? "int4-g32 pages" : "f16 one segment") + " " + AttentionKernelTarget());
}

BENCHMARK(BM_PrefillAttention)
    ->ArgsProduct({{512, 2048}, {0, 1}, {2, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace akv
