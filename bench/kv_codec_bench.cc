// Quantize-on-append: the cost of storing one token (key and value of one KV head) into a page,
// per codec: encoding, Hadamard rotation, key summary update. KIVI keys are appended a block at
// a time (the residual flush); their cost is per token of the block.
//
// Counters: items_per_second = tokens per second (one KV head); ns_per_token.
// Run:  kv_codec_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "kv/codecs/codec.h"
#include "kv/codecs/group_quant.h"
#include "kv/page/kv_page.h"
#include "kv_test_util.h"

namespace akv {
namespace {

struct NamedCodec {
  const char* name;
  CodecSpec key;
  CodecSpec value;
};

const NamedCodec kCodecs[] = {
    {"f16", CodecSpec::F16(), CodecSpec::F16()},
    {"bf16", CodecSpec::BF16(), CodecSpec::BF16()},
    {"int8-g32", CodecSpec::Quantized(8, 32), CodecSpec::Quantized(8, 32)},
    {"int4-g32", CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32)},
    {"int4-g128", CodecSpec::Quantized(4, 128), CodecSpec::Quantized(4, 128)},
    {"int2-g32", CodecSpec::Quantized(2, 32), CodecSpec::Quantized(2, 32)},
    {"int4-g32+hadamard", CodecSpec::Quantized(4, 32, true), CodecSpec::Quantized(4, 32)},
    {"int4-kivi64", CodecSpec::Kivi(4, 64), CodecSpec::Quantized(4, 32)},
    {"int2-kivi128+hadamard", CodecSpec::Kivi(2, 128, true), CodecSpec::Quantized(2, 32)},
};

void BM_AppendToken(benchmark::State& state) {
  const NamedCodec& codec = kCodecs[state.range(0)];
  const int dim = int(state.range(1));
  constexpr int kCapacity = 256, kRows = 1024;
  const std::vector<float> keys = test::RandomKvRows(kRows, dim, 1, 4), values = test::RandomKvRows(kRows, dim, 2, 0);
  auto page = KvPage::Create(codec.key, codec.value, dim, kCapacity);
  if (!page.ok()) {
    state.SkipWithError(page.status().ToString().c_str());
    return;
  }
  const bool kivi = codec.key.grouping == KeyGrouping::kPerChannel;
  const int block = kivi ? codec.key.group_size : 1;
  std::vector<int32_t> positions(block);
  int row = 0;
  int64_t tokens = 0;
  for (auto _ : state) {
    if (page->free_slots() < block) page->Clear();
    for (int i = 0; i < block; ++i) positions[i] = int32_t(tokens + i);
    const Status st = kivi ? page->AppendBlock(keys.data() + size_t(row) * dim, values.data() + size_t(row) * dim,
                                               positions.data(), block)
                           : page->Append(keys.data() + size_t(row) * dim, values.data() + size_t(row) * dim,
                                          positions[0]);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    row = (row + block) % (kRows - block);
    tokens += block;
  }
  state.SetItemsProcessed(tokens);
  state.counters["ns_per_token"] = benchmark::Counter(double(tokens) * 1e-9,
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetLabel(std::string(codec.name) + " D=" + std::to_string(dim));
}

// The value-row quantizer alone (SIMD), one row of D values.
void BM_QuantizeRow(benchmark::State& state) {
  const int bits = int(state.range(0)), group = int(state.range(1)), dim = 128;
  const std::vector<float> x = test::RandomKvRows(64, dim, 3, 0);
  std::vector<uint8_t> packed(dim);
  std::vector<f16_t> scales(dim / group), zeros(dim / group);
  int row = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(QuantizeRow(x.data() + row * dim, dim, bits, group, packed.data(), scales.data(), zeros.data()));
    row = (row + 1) & 63;
  }
  state.SetItemsProcessed(state.iterations());
}

void Register() {
  for (int dim : {128, 64})
    for (int c = 0; c < int(std::size(kCodecs)); ++c)
      benchmark::RegisterBenchmark("BM_AppendToken", BM_AppendToken)->Args({c, dim});
  for (int bits : {8, 4, 2})
    for (int group : {32, 128}) benchmark::RegisterBenchmark("BM_QuantizeRow", BM_QuantizeRow)->Args({bits, group});
}

}  // namespace
}  // namespace akv

int main(int argc, char** argv) {
  akv::Register();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
