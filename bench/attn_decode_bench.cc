// Decode attention over tiers: one query token, 8 KV heads x GQA 4:1 (32 query heads), head_dim
// 64 / 128, 4K / 16K / 64K stored tokens per KV head, in pages of 256 slots.
//
// Counters:
//   bytes_per_second  KV bytes read (codes + scales + zeros of K and V) per second
//   x_f16             speed-up over the f16 pages of the same shape (run first)
//   vs_ideal          mixed tiers only: time / byte-weighted ideal, where the ideal is the time the
//                     same tokens take in the pure f16, int4 and int2 runs of the same shape
//                     (sum over tiers of tokens x time per token)
// Run:  attn_decode_bench --benchmark_min_time=0.3 --benchmark_out=... --benchmark_out_format=json
//       (--benchmark_repetitions=N: x_f16 and vs_ideal from each configuration's fastest repetition)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "attn/attention.h"
#include "core/thread_pool.h"
#include "kv/page/kv_page.h"
#include "kv_test_util.h"

namespace akv {
namespace {

constexpr int kKvHeads = 8;
constexpr int kGroup = 4;
constexpr int kPageSlots = 256;

enum Codec { kF16 = 0, kInt8, kInt4, kInt2, kKivi4, kMixed, kF16Whole };
const char* kCodecNames[] = {"f16", "int8-g32", "int4-g32", "int2-g32", "int4-kivi64", "mixed", "f16-one-segment"};

// Tier shares of the mixed cache: hot f16 1/8 (sinks, recent window, heavy hitters), warm int4
// 3/8, cold int2 1/2.
struct Tier {
  Codec codec;
  double share;
};
const Tier kMixedTiers[] = {{kF16, 1.0 / 8}, {kInt4, 3.0 / 8}, {kInt2, 4.0 / 8}};

std::pair<CodecSpec, CodecSpec> SpecsOf(Codec c) {
  switch (c) {
    case kInt8: return {CodecSpec::Quantized(8, 32), CodecSpec::Quantized(8, 32)};
    case kInt4: return {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32)};
    case kInt2: return {CodecSpec::Quantized(2, 32), CodecSpec::Quantized(2, 32)};
    case kKivi4: return {CodecSpec::Kivi(4, 64), CodecSpec::Quantized(4, 32)};
    default: return {CodecSpec::F16(), CodecSpec::F16()};
  }
}

struct Cache {
  std::vector<std::vector<KvPage>> pages;  // [head][page]
  std::vector<std::vector<KvSegment>> segments;
  std::vector<KvHeadSegments> heads;
  double kv_bytes = 0;  // read per attention call
};

// Appends `tokens` tokens of codec c to every head, in pages of `page_slots`.
void Fill(Cache* cache, Codec c, int dim, int tokens, int page_slots, int first_position) {
  static std::map<int, std::vector<float>> data;  // a reusable block of random rows per head_dim
  std::vector<float>& block = data[dim];
  constexpr int kBlockRows = 4096;
  if (block.empty()) block = test::RandomKvRows(kBlockRows, dim, 1, 4);
  const auto [kc, vc] = SpecsOf(c);
  constexpr int kChunk = 256;
  std::vector<int32_t> pos(kChunk);
  for (int h = 0; h < kKvHeads; ++h)
    for (int t0 = 0; t0 < tokens; t0 += page_slots) {
      const int n = std::min(page_slots, tokens - t0);
      auto page = KvPage::Create(kc, vc, dim, (n + 127) / 128 * 128);
      if (!page.ok()) std::abort();
      for (int c0 = 0; c0 < n; c0 += kChunk) {
        const int m = std::min(kChunk, n - c0);
        const int row = (t0 + c0 + 977 * h) % (kBlockRows - kChunk - 1);
        for (int i = 0; i < m; ++i) pos[i] = first_position + t0 + c0 + i;
        if (!page->AppendBlock(block.data() + size_t(row) * dim, block.data() + size_t(row + 1) * dim, pos.data(), m).ok())
          std::abort();
      }
      cache->kv_bytes += n * (KeyBytesPerToken(kc, dim) + ValueBytesPerToken(vc, dim));
      cache->pages[h].push_back(std::move(*page));
    }
}

Cache* GetCache(int dim, int tokens, Codec codec) {
  static std::tuple<int, int, int> key{-1, -1, -1};
  static std::unique_ptr<Cache> cache;
  if (key == std::make_tuple(dim, tokens, int(codec))) return cache.get();
  cache.reset();  // free the previous configuration first
  cache = std::make_unique<Cache>();
  cache->pages.resize(kKvHeads);
  if (codec == kMixed) {
    int at = 0;
    for (const Tier& tier : kMixedTiers) {
      const int n = int(tokens * tier.share);
      Fill(cache.get(), tier.codec, dim, n, kPageSlots, at);
      at += n;
    }
  } else {
    Fill(cache.get(), codec, dim, tokens, codec == kF16Whole ? tokens : kPageSlots, 0);
  }
  cache->segments.resize(kKvHeads);
  for (int h = 0; h < kKvHeads; ++h) {
    for (const KvPage& p : cache->pages[h]) cache->segments[h].push_back(p.segment());
    cache->heads.push_back(KvHeadSegments{cache->segments[h], {}});
  }
  key = std::make_tuple(dim, tokens, int(codec));
  return cache.get();
}

// Seconds per call of the pure runs, for x_f16 and vs_ideal: [dim][tokens][codec].
std::map<std::tuple<int, int, int>, double>& PureTimes() {
  static std::map<std::tuple<int, int, int>, double> times;
  return times;
}

void BM_DecodeAttention(benchmark::State& state) {
  const int dim = int(state.range(0)), tokens = int(state.range(1));
  const Codec codec = Codec(state.range(2));
  const int threads = int(state.range(3));
  Cache* cache = GetCache(dim, tokens, codec);
  ThreadPool pool(threads);
  AttentionWorkspace workspace;
  AttentionOptions options;
  options.pool = threads > 1 ? &pool : nullptr;
  options.workspace = &workspace;
  AttentionShape shape;
  shape.n_kv_heads = kKvHeads;
  shape.n_q_per_kv = kGroup;
  shape.head_dim = dim;
  const std::vector<float> q = test::RandomKvRows(1, shape.n_heads() * dim, 3, 0);
  std::vector<float> out(size_t(shape.n_heads()) * dim);
  for (auto _ : state) {
    const Status st = Attend(shape, 1, q.data(), nullptr, cache->heads, out.data(), nullptr, options);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(cache->kv_bytes * state.iterations()));
  state.counters["bytes_per_token"] = cache->kv_bytes / (double(tokens) * kKvHeads);
  state.SetLabel(std::string(kCodecNames[codec]) + " " + AttentionKernelTarget());
}

// Second pass over the results: x_f16 and vs_ideal need the other runs' times, so a reporter
// computes them from the per-iteration real time.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> annotated = runs;
    for (Run& run : annotated) Annotate(run);
    ConsoleReporter::ReportRuns(annotated);
  }
  static void Annotate(benchmark::BenchmarkReporter::Run& run) {
    if (run.error_occurred || run.iterations == 0) return;
    // With --benchmark_repetitions, ratios come from the fastest repetition ("min" aggregate):
    // on a shared 2-core machine other processes only ever add time.
    if (run.repetitions > 1 && !(run.run_type == Run::RT_Aggregate && run.aggregate_name == "min")) return;
    // name: BM_DecodeAttention/dim/tokens/codec/threads/...
    int dim, tokens, codec, threads;
    if (std::sscanf(run.benchmark_name().c_str(), "BM_DecodeAttention/%d/%d/%d/%d", &dim, &tokens, &codec, &threads) != 4)
      return;
    const double seconds = run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
    if (run.run_type == Run::RT_Aggregate) {  // the min of a rate is not the rate of the min time
      const auto bpt = run.counters.find("bytes_per_token");
      if (bpt != run.counters.end())
        run.counters["bytes_per_second"] = benchmark::Counter(double(bpt->second) * tokens * kKvHeads / seconds);
    }
    auto& times = PureTimes();
    times[{dim * 100 + threads, tokens, codec}] = seconds;
    const auto f16 = times.find({dim * 100 + threads, tokens, int(kF16)});
    if (f16 != times.end()) run.counters["x_f16"] = f16->second / seconds;
    if (codec == kMixed) {
      double ideal = 0;
      bool complete = true;
      for (const Tier& tier : kMixedTiers) {
        const auto t = times.find({dim * 100 + threads, tokens, int(tier.codec)});
        if (t == times.end()) {
          complete = false;
          break;
        }
        ideal += tier.share * t->second;
      }
      if (complete) run.counters["vs_ideal"] = seconds / ideal;
    }
  }
};

class RatioJsonReporter : public benchmark::JSONReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> annotated = runs;
    for (Run& run : annotated) RatioReporter::Annotate(run);
    JSONReporter::ReportRuns(annotated);
  }
};

void Register() {
  for (int threads : {2, 1})
    for (int dim : {128, 64})
      for (int tokens : {512, 4096, 16384, 65536}) {
        if (threads == 1 && dim != 128 && tokens != 512) continue;  // one single-thread shape
        if (tokens == 512 && threads != 1) continue;  // in cache: the kernel's compute bound
        for (Codec c : {kF16, kF16Whole, kInt8, kInt4, kInt2, kKivi4, kMixed})
          benchmark::RegisterBenchmark("BM_DecodeAttention", BM_DecodeAttention)
              ->Args({dim, tokens, int(c), threads})
              ->UseRealTime()
              ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); })
              ->Unit(benchmark::kMicrosecond);
      }
}

}  // namespace
}  // namespace akv

int main(int argc, char** argv) {
  akv::Register();
  // With --benchmark_out, the file reporter gets the same annotations (looked for before
  // Initialize, which removes the flags it knows from argv).
  bool has_out = false;
  for (int i = 1; i < argc; ++i) has_out |= std::string(argv[i]).rfind("--benchmark_out=", 0) == 0;
  benchmark::Initialize(&argc, argv);
  akv::RatioReporter console;
  akv::RatioJsonReporter json;
  if (has_out) {
    benchmark::RunSpecifiedBenchmarks(&console, &json);
  } else {
    benchmark::RunSpecifiedBenchmarks(&console);
  }
  benchmark::Shutdown();
  return 0;
}
