#include <gtest/gtest.h>

#include <map>

#include "engine/sampler.h"
#include "engine/utf8.h"

namespace akv {
namespace {

TEST(Sampler, GreedyAndTopKOneAreArgmax) {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler s(1);
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(s.Sample(logits, p, {}), 1);
  p.temperature = 5;
  p.top_k = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.Sample(logits, p, {}), 1);
}

TEST(Sampler, MinPAndTopPCutTheTail) {
  // probabilities at T=1: token 0 dominant, 1 medium, 2,3 tiny.
  std::vector<float> logits = {5.0f, 4.0f, -3.0f, -3.0f};
  SamplingParams p;
  p.temperature = 1;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0.1f;  // token 1 has p1/p0 = e^-1 = 0.37 > 0.1; tokens 2,3 ~ e^-8
  Sampler s(3);
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) counts[s.Sample(logits, p, {})]++;
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 300);  // expected 2000 * 0.27 = 538
  p.min_p = 0;
  p.top_p = 0.5f;  // token 0 alone holds 0.73 of the mass
  for (int i = 0; i < 200; ++i) EXPECT_EQ(s.Sample(logits, p, {}), 0);
}

TEST(Sampler, RepeatPenaltyDemotesRecentTokens) {
  std::vector<float> logits = {2.0f, 1.9f};
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 1.5f;
  Sampler s(1);
  std::vector<int32_t> recent = {0};
  EXPECT_EQ(s.Sample(logits, p, recent), 1);  // 2.0 / 1.5 < 1.9
}

TEST(Sampler, ValidateNamesTheParameter) {
  SamplingParams p;
  p.min_p = 2;
  EXPECT_NE(Sampler::Validate(p).message().find("min_p"), std::string::npos);
}

TEST(Utf8, HoldsBackIncompleteSequences) {
  const std::string euro = "\xE2\x82\xAC";  // U+20AC
  EXPECT_EQ(CompleteUtf8Prefix("ab" + euro), 5u);
  EXPECT_EQ(CompleteUtf8Prefix("ab" + euro.substr(0, 2)), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("ab" + euro.substr(0, 1)), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo" + euro));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
}

}  // namespace
}  // namespace akv
