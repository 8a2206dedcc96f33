// MatMul throughput on the shapes of akv-tiny-llama-25m (d_model 384, 2 kv heads x 64, ffn 1024,
// vocab 32000), for F16, Q8_0 (repacked per call, and packed once into panels) and Q4_0 weights, decode (1 token) and prefill (512 tokens).
//
//   BM_MatMul/<type>/<rows>/<cols>/<n_tokens>/<threads>: one matrix, reused (so it stays in
//     cache when it fits: an upper bound for decode).
//   BM_Layers/<type>/<n_tokens>/<threads>/<grouped>: every matmul of one forward pass over
//     distinct weights (8 layers x {q,k,v,o,gate,up,down}, plus the 32000 x 384 output for the
//     last token), as the model runs them: decode is then bound by streaming 26-50 MB of
//     weights. grouped: q,k,v and gate,up through MatMulMany.
//
// Reports GFLOP/s (2 flops per multiply-add) and, for BM_Layers, tokens/s, from the mean time,
// and the same from the fastest single iteration ("best_*"). The machine this was tuned on is
// shared by several builds: the best iteration is the one that ran undisturbed, and it is
// what the tables in docs/KERNELS.md quote.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include <hwy/aligned_allocator.h>

#include "core/thread_pool.h"
#include "cpu/matmul.h"
#include "cpu/quants.h"

namespace akv {
namespace {

// Type codes: 0 f16, 1 q8_0 (repacked per call), 2 q4_0, 3 f32, 4 bf16, 5 q8_0 packed into
// panels once, as the model loader does where the CPU has the VNNI panel kernel.
const GgmlType kTypes[] = {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F32,
                           GgmlType::BF16, GgmlType::Q8_0};
constexpr int kPackedQ8 = 5;

struct OwnedWeights {
  std::vector<uint8_t> bytes;
  hwy::AlignedFreeUniquePtr<uint8_t[]> panels;
  WeightMatrix w;
};

OwnedWeights MakeWeights(int type_code, int64_t rows, int64_t cols, uint32_t seed) {
  const GgmlType type = kTypes[type_code];
  OwnedWeights o;
  const size_t row_bytes = RowBytes(type, cols);
  o.bytes.resize(row_bytes * size_t(rows));
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = dist(rng);
    uint8_t* dst = o.bytes.data() + size_t(r) * row_bytes;
    switch (type) {
      case GgmlType::F32: std::memcpy(dst, row.data(), row_bytes); break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<f16_t*>(dst)[i] = F32ToF16(row[i]);
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<bf16_t*>(dst)[i] = F32ToBF16(row[i]);
        break;
      case GgmlType::Q8_0: QuantizeRowQ8_0(row.data(), reinterpret_cast<BlockQ8_0*>(dst), cols); break;
      case GgmlType::Q4_0: QuantizeRowQ4_0(row.data(), reinterpret_cast<BlockQ4_0*>(dst), cols); break;
      default: break;
    }
  }
  o.w = WeightMatrix{type, o.bytes.data(), rows, cols, row_bytes};
  if (type_code == kPackedQ8 && PanelBytes(o.w) > 0) {
    o.panels = hwy::AllocateAligned<uint8_t>(PanelBytes(o.w));
    PackPanels(o.w, o.panels.get());
    o.w.panels = o.panels.get();
  }
  return o;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<float> RandomActivations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

void BM_MatMul(benchmark::State& state) {
  const GgmlType type = kTypes[state.range(0)];
  const int64_t rows = state.range(1), cols = state.range(2), n_tokens = state.range(3);
  ThreadPool pool(static_cast<int>(state.range(4)));
  OwnedWeights ow = MakeWeights(static_cast<int>(state.range(0)), rows, cols, 1);
  auto x = RandomActivations(n_tokens * cols, 2);
  std::vector<float> y(static_cast<size_t>(n_tokens * rows));
  double best = 1e30;
  for (auto _ : state) {
    const double t0 = NowSeconds();
    MatMul(ow.w, x.data(), cols, n_tokens, y.data(), rows, pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    best = std::min(best, NowSeconds() - t0);
  }
  const double flops = 2.0 * double(rows * cols * n_tokens);
  state.SetLabel(state.range(0) == kPackedQ8 ? "q8_0 panels" : TypeName(type));
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["best_us"] = best * 1e6;
  state.counters["best_GFLOP/s"] = flops * 1e-9 / best;
}

void MatMulArgs(benchmark::internal::Benchmark* b) {
  const std::pair<int64_t, int64_t> shapes[] = {{384, 384}, {128, 384}, {1024, 384}, {384, 1024},
                                                {32000, 384}};
  for (int type : {0, 1, kPackedQ8, 2})
    for (auto [rows, cols] : shapes)
      for (int64_t n_tokens : {1, 512})
        for (int threads : {1, 2}) {
          if (rows == 32000 && n_tokens != 1) continue;  // the vocab projection runs on 1 token
          b->Args({type, rows, cols, n_tokens, threads});
        }
  b->ArgNames({"type", "rows", "cols", "tokens", "threads"});
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_MatMul)->Apply(MatMulArgs)->UseRealTime();

// Small batches, where GEMV and packed GEMM cross over (kFloatGemmMinTokens,
// kQuantGemmMinTokens in src/cpu/matmul.cc).
void TokenSweepArgs(benchmark::internal::Benchmark* b) {
  for (int type : {0, 1, kPackedQ8, 2})
    for (int64_t rows : {384, 1024})
      for (int64_t n_tokens : {2, 3, 4, 6, 8, 12, 16, 24, 32, 64})
        b->Args({type, rows, 384, n_tokens, 1});
  b->ArgNames({"type", "rows", "cols", "tokens", "threads"});
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_MatMul)->Name("BM_TokenSweep")->Apply(TokenSweepArgs)->UseRealTime();

// One forward pass worth of matmuls over distinct weights. grouped = 1 runs q,k,v and gate,up
// as one MatMulMany each (5 dispatches per layer instead of 7).
void BM_Layers(benchmark::State& state) {
  const GgmlType type = kTypes[state.range(0)];
  const int64_t n_tokens = state.range(1);
  ThreadPool pool(static_cast<int>(state.range(2)));
  const bool grouped = state.range(3) != 0;
  constexpr int kLayers = 8;
  const int64_t d = 384, kv = 128, ffn = 1024, vocab = 32000;
  std::vector<OwnedWeights> ws;  // per layer: q, k, v, o, gate, up, down
  uint32_t seed = 10;
  for (int l = 0; l < kLayers; ++l) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{d, d}, {kv, d}, {kv, d}, {d, d},
                              {ffn, d}, {ffn, d}, {d, ffn}})
      ws.push_back(MakeWeights(static_cast<int>(state.range(0)), rows, cols, seed++));
  }
  OwnedWeights out = MakeWeights(static_cast<int>(state.range(0)), vocab, d, seed++);
  auto x = RandomActivations(n_tokens * ffn, 3);
  // Separate outputs per matrix of a layer (q, k, v, o, gate, up, down).
  std::vector<std::vector<float>> ys(7, std::vector<float>(static_cast<size_t>(n_tokens * ffn)));
  std::vector<float> logits(static_cast<size_t>(vocab));
  double macs = 0;
  for (const auto& o : ws) macs += double(o.w.rows * o.w.cols);
  macs = macs * double(n_tokens) + double(vocab * d);
  auto run_layer = [&](int l) {
    const OwnedWeights* m = &ws[static_cast<size_t>(l * 7)];
    auto one = [&](int i) {
      MatMul(m[i].w, x.data(), m[i].w.cols, n_tokens, ys[i].data(), m[i].w.rows, pool);
    };
    if (grouped) {
      const WeightMatrix qkv[3] = {m[0].w, m[1].w, m[2].w};
      const MatMulOutput qkv_out[3] = {{ys[0].data(), d}, {ys[1].data(), kv}, {ys[2].data(), kv}};
      MatMulMany(qkv, qkv_out, 3, x.data(), d, n_tokens, pool);
      one(3);
      const WeightMatrix gu[2] = {m[4].w, m[5].w};
      const MatMulOutput gu_out[2] = {{ys[4].data(), ffn}, {ys[5].data(), ffn}};
      MatMulMany(gu, gu_out, 2, x.data(), d, n_tokens, pool);
      one(6);
    } else {
      for (int i = 0; i < 7; ++i) one(i);
    }
  };
  double best = 1e30;
  for (auto _ : state) {
    const double t0 = NowSeconds();
    for (int l = 0; l < kLayers; ++l) run_layer(l);
    MatMul(out.w, x.data() + (n_tokens - 1) * d, d, 1, logits.data(), vocab, pool);
    benchmark::DoNotOptimize(logits.data());
    benchmark::ClobberMemory();
    best = std::min(best, NowSeconds() - t0);
  }
  state.SetLabel(state.range(0) == kPackedQ8 ? "q8_0 panels" : TypeName(type));
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tok/s"] =
      benchmark::Counter(double(n_tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["best_ms"] = best * 1e3;
  state.counters["best_GFLOP/s"] = 2.0 * macs * 1e-9 / best;
  state.counters["best_tok/s"] = double(n_tokens) / best;
}
BENCHMARK(BM_Layers)
    ->ArgsProduct({{0, 1, kPackedQ8, 2}, {1, 512}, {1, 2}, {0, 1}})
    ->ArgNames({"type", "tokens", "threads", "grouped"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace akv
