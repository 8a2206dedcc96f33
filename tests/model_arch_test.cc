// Architecture variants built from the shared qwen2 model with the GGUF writer: a round trip
// through the writer reproduces the model exactly, and a qwen3 variant (no biases, per-head
// q/k RMSNorm) is invariant to scaling its q and k projections, which only holds if the
// per-head norms are applied.
#include <gtest/gtest.h>

#include <cmath>

#include "gguf_writer.h"
#include "kv/full_cache.h"
#include "model/model.h"
#include "test_util.h"

namespace akv {
namespace {

std::vector<float> LastLogits(const std::string& path, const std::vector<int32_t>& tokens) {
  auto m = Model::Load(path);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  ThreadPool pool(2);
  FullCache cache((*m)->kv_shape(), 64);
  ForwardScratch scratch;
  std::vector<int32_t> pos(tokens.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
  std::vector<float> logits((*m)->config().n_vocab);
  EXPECT_TRUE((*m)->Forward(tokens.data(), pos.data(), tokens.size(), cache, pool, scratch, logits.data(), false).ok());
  return logits;
}

double RelL2(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (a[i] - b[i]) * (a[i] - b[i]), n += b[i] * b[i];
  return std::sqrt(e / n);
}

class ArchVariants : public ::testing::Test {
 protected:
  void SetUp() override {
    AKV_REQUIRE_SHARED();
    auto g = GgufFile::Open(test::ModelPath("akv-tiny-qwen2-16m-f16.gguf"));
    ASSERT_TRUE(g.ok());
    src_ = std::move(*g);
    dir_ = ::testing::TempDir();
  }
  // A qwen3 model from the qwen2 one: biases dropped, unit q/k norms, weights of q and k scaled.
  std::string MakeQwen3(float qk_scale, const std::string& name) {
    test::GgufWriter w(*src_);
    w.SetString("general.architecture", "qwen3");
    w.RenameKeyPrefix("qwen2.", "qwen3.");
    for (int l = 0; l < 4; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      for (const char* b : {"attn_q.bias", "attn_k.bias", "attn_v.bias"}) w.RemoveTensor(p + b);
      w.AddF32(p + "attn_q_norm.weight", 64, 1.0f);
      w.AddF32(p + "attn_k_norm.weight", 64, 1.0f);
      w.ScaleF16(p + "attn_q.weight", qk_scale);
      w.ScaleF16(p + "attn_k.weight", qk_scale);
    }
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(w.Write(path));
    return path;
  }
  std::unique_ptr<GgufFile> src_;
  std::string dir_;
  const std::vector<int32_t> tokens_ = {12, 345, 678, 9012, 34, 5678, 90, 1234};
};

TEST_F(ArchVariants, WriterRoundTripIsExact) {
  test::GgufWriter w(*src_);
  const std::string path = dir_ + "/qwen2-copy.gguf";
  ASSERT_TRUE(w.Write(path));
  auto a = LastLogits(test::ModelPath("akv-tiny-qwen2-16m-f16.gguf"), tokens_);
  auto b = LastLogits(path, tokens_);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(RelL2(a, b), 0.0);
}

TEST_F(ArchVariants, Qwen3AppliesPerHeadQkNorm) {
  auto base = LastLogits(MakeQwen3(1.0f, "q3a.gguf"), tokens_);
  auto scaled = LastLogits(MakeQwen3(4.0f, "q3b.gguf"), tokens_);
  ASSERT_FALSE(base.empty());
  EXPECT_LT(RelL2(scaled, base), 2e-3);  // f16 rounding of the scaled weights only
  // Without the norms the same scaling changes everything: a qwen2 model with scaled q/k.
  test::GgufWriter w(*src_);
  for (int l = 0; l < 4; ++l) {
    w.ScaleF16("blk." + std::to_string(l) + ".attn_q.weight", 4.0f);
    w.ScaleF16("blk." + std::to_string(l) + ".attn_k.weight", 4.0f);
  }
  ASSERT_TRUE(w.Write(dir_ + "/q2scaled.gguf"));
  auto q2 = LastLogits(test::ModelPath("akv-tiny-qwen2-16m-f16.gguf"), tokens_);
  auto q2s = LastLogits(dir_ + "/q2scaled.gguf", tokens_);
  EXPECT_GT(RelL2(q2s, q2), 1e-2);
}

TEST_F(ArchVariants, Qwen3WithoutNormsIsAClearError) {
  test::GgufWriter w(*src_);
  w.SetString("general.architecture", "qwen3");
  w.RenameKeyPrefix("qwen2.", "qwen3.");
  ASSERT_TRUE(w.Write(dir_ + "/q3bad.gguf"));
  auto m = Model::Load(dir_ + "/q3bad.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("attn_q_norm.weight"), std::string::npos) << m.status().ToString();
}

}  // namespace
}  // namespace akv
