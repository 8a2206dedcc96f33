// The oracle: our forward pass against llama.cpp's outputs in shared/reference/ for every model.
// Bars (from shared/reference/README.md): top-1 equal at >= 99% of positions, |Δ mean NLL|
// <= 0.01 per prompt, last-position logits relative L2 error <= 1e-2, first 16 greedy tokens equal.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "akv/akv.hpp"
#include "eval/perplexity.h"
#include "test_util.h"

namespace akv {
namespace {

using nlohmann::json;

std::vector<json> ReadJsonl(const std::string& path) {
  std::vector<json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(json::parse(line));
  return rows;
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (test::SharedDir().empty()) GTEST_SKIP() << "shared fixtures not found (set AKV_SHARED)";
    auto e = Engine::Load({.model_path = test::ModelPath(GetParam() + ".gguf"), .n_threads = 2});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  std::string Ref(const std::string& suffix) const { return test::SharedDir() + "/reference/" + GetParam() + suffix; }
  std::unique_ptr<Engine> engine_;
};

TEST_P(ReferenceTest, LogitsMatchLlamaCpp) {
  const int n_vocab = engine_->info().n_vocab;
  for (const json& row : ReadJsonl(Ref(".logits.jsonl"))) {
    std::vector<int32_t> tokens = row["tokens"].get<std::vector<int32_t>>();
    const int n = static_cast<int>(tokens.size());
    auto session = engine_->NewSession({.n_ctx = std::max(n, 64)});
    ASSERT_TRUE(session.ok());
    std::vector<float> logits(static_cast<size_t>(n) * n_vocab);
    ASSERT_TRUE((*session)->Prefill(tokens, logits.data()).ok());

    int top1_equal = 0;
    double nll_sum = 0;
    std::vector<float> lp;
    for (int i = 0; i < n; ++i) {
      std::span<const float> li(&logits[static_cast<size_t>(i) * n_vocab], n_vocab);
      const int ours = static_cast<int>(std::max_element(li.begin(), li.end()) - li.begin());
      if (ours == row["positions"][i]["top"][0][0].get<int>()) ++top1_equal;
      if (i + 1 < n) {
        LogSoftmax(li, &lp);
        nll_sum -= lp[tokens[i + 1]];
      }
    }
    const double mean_nll = nll_sum / (n - 1);
    EXPECT_GE(top1_equal, 0.99 * n) << row["prompt"].get<std::string>().substr(0, 40);
    EXPECT_NEAR(mean_nll, row["mean_nll"].get<double>(), 0.01) << "prompt of " << n << " tokens";

    std::vector<uint8_t> raw = test::ReadFileBytes(test::SharedDir() + "/reference/" + row["last_logits_file"].get<std::string>());
    ASSERT_EQ(raw.size(), static_cast<size_t>(n_vocab) * 4);
    const float* ref = reinterpret_cast<const float*>(raw.data());
    const float* last = &logits[static_cast<size_t>(n - 1) * n_vocab];
    double err = 0, norm = 0;
    for (int v = 0; v < n_vocab; ++v) {
      err += (last[v] - ref[v]) * (last[v] - ref[v]);
      norm += ref[v] * ref[v];
    }
    EXPECT_LE(std::sqrt(err / norm), 1e-2) << "last-position logits, prompt of " << n << " tokens";
    std::printf("  %-24s %5d tokens: top-1 %.4f  dNLL %+.5f  logits rel-L2 %.5f\n", GetParam().c_str(), n,
                double(top1_equal) / n, mean_nll - row["mean_nll"].get<double>(), std::sqrt(err / norm));
  }
}

TEST_P(ReferenceTest, GreedyMatchesLlamaCpp) {
  for (const json& row : ReadJsonl(Ref(".greedy.jsonl"))) {
    std::vector<int32_t> tokens = row["tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> want = row["greedy"].get<std::vector<int32_t>>();
    auto session = engine_->NewSession({.n_ctx = 256});
    ASSERT_TRUE(session.ok());
    ASSERT_TRUE((*session)->Prefill(tokens).ok());
    SamplingParams greedy;
    greedy.temperature = 0;
    std::vector<int32_t> got;
    for (int i = 0; i < 16; ++i) {
      auto t = (*session)->Sample(greedy);
      ASSERT_TRUE(t.ok());
      got.push_back(*t);
      ASSERT_TRUE((*session)->Decode(*t).ok());
    }
    EXPECT_EQ(got, std::vector<int32_t>(want.begin(), want.begin() + 16)) << row["prompt"];
  }
}

TEST_P(ReferenceTest, TokenizerMatchesLlamaCpp) {
  for (const json& row : ReadJsonl(Ref(".tokenize.jsonl")))
    EXPECT_EQ(engine_->Tokenize(row["prompt"].get<std::string>()), row["tokens"].get<std::vector<int32_t>>())
        << row["prompt"];
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceTest,
                         ::testing::Values("akv-tiny-llama-25m-f16", "akv-tiny-llama-25m-q8_0", "akv-tiny-qwen2-16m-f16",
                                           "stories260K"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

}  // namespace
}  // namespace akv
