// Decode attention (one query): the fused kernel equals "de-quantize everything, then attention
// in double" to 1e-5 for every codec, mixed segments of arbitrary (and empty) sizes, GQA 1/4/8,
// head_dim 64/128, 1 and 2 threads, split-K; plus the {m, d, o} merge rule itself.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attn/online_softmax.h"
#include "attn_test_util.h"

namespace akv {
namespace {

using test::AttentionCase;
using test::CheckAgainstReference;
using test::ForEachSimdTarget;
using test::SegmentSpec;

std::vector<CodecSpec> AllKeyCodecs() {
  return {CodecSpec::F16(),          CodecSpec::BF16(),          CodecSpec::Quantized(8, 32),
          CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(2, 32),
          CodecSpec::Quantized(2, 128), CodecSpec::Kivi(8, 32),   CodecSpec::Kivi(4, 64),
          CodecSpec::Kivi(2, 32, true)};
}
std::vector<CodecSpec> AllValueCodecs() {
  return {CodecSpec::F16(), CodecSpec::BF16(), CodecSpec::Quantized(8, 64), CodecSpec::Quantized(4, 32),
          CodecSpec::Quantized(2, 32), CodecSpec::Quantized(4, 64).Symmetric(), CodecSpec::Quantized(2, 32).Symmetric()};
}

TEST(AttnDecodeTest, MergeRuleMatchesOneSoftmax) {
  // Two halves of one key set merged == the whole set.
  const double logits[6] = {0.5, -1.0, 3.0, 2.5, -0.2, 1.0};
  const double values[6] = {1, 2, 3, 4, 5, 6};
  auto state = [&](int lo, int hi, float* o) {
    SoftmaxStats s;
    double m = -INFINITY;
    for (int i = lo; i < hi; ++i) m = std::max(m, logits[i]);
    double d = 0, acc = 0;
    for (int i = lo; i < hi; ++i) {
      d += std::exp(logits[i] - m);
      acc += std::exp(logits[i] - m) * values[i];
    }
    s.max_logit = float(m);
    s.sum_exp = float(d);
    *o = float(acc);
    return s;
  };
  float o_a, o_b, o_all, o_empty = 0;
  SoftmaxStats a = state(0, 2, &o_a), b = state(2, 6, &o_b), all = state(0, 6, &o_all);
  MergeSoftmaxState(a, &o_a, SoftmaxStats{}, &o_empty, 1);  // empty state: identity
  MergeSoftmaxState(a, &o_a, b, &o_b, 1);
  EXPECT_FLOAT_EQ(a.max_logit, all.max_logit);
  EXPECT_NEAR(a.sum_exp, all.sum_exp, 1e-6 * all.sum_exp);
  float out, expect;
  FinishSoftmaxState(a, &o_a, 1, &out);
  FinishSoftmaxState(all, &o_all, 1, &expect);
  EXPECT_NEAR(out, expect, 1e-6);
  SoftmaxStats empty;
  float zero = 0, finished = 1;
  FinishSoftmaxState(empty, &zero, 1, &finished);
  EXPECT_EQ(finished, 0.0f);
}

TEST(AttnDecodeTest, EveryKeyAndValueCodec) {
  for (int dim : {64, 128})
    for (const CodecSpec& k : AllKeyCodecs())
      for (const CodecSpec& v : AllValueCodecs()) {
        if (!ValidateKeyCodec(k, dim).ok() || !ValidateValueCodec(v, dim).ok()) continue;  // G > D
        AttentionCase c;
        c.head_dim = dim;
        c.n_kv_heads = 1;
        c.group = 4;
        c.segments = {{k, v, 77}};
        c.seed = dim + 3 * int(k.format) + 17 * int(v.format) + k.group_size;
        CheckAgainstReference(c);
      }
}

TEST(AttnDecodeTest, MixedTiersArbitrarySizesGqaAndThreads) {
  const std::vector<std::vector<SegmentSpec>> layouts = {
      // hot f16 + warm int4 + cold int2, with empty and one-slot segments
      {{CodecSpec::F16(), CodecSpec::F16(), 45},
       {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32), 0},
       {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32), 130},
       {CodecSpec::Quantized(2, 64, true), CodecSpec::Quantized(2, 32), 1},
       {CodecSpec::Quantized(2, 32), CodecSpec::Quantized(2, 64), 257}},
      // KIVI warm tier with its f16 residual
      {{CodecSpec::Kivi(4, 32), CodecSpec::Quantized(4, 32), 96},
       {CodecSpec::F16(), CodecSpec::F16(), 31},
       {CodecSpec::Kivi(2, 128, true), CodecSpec::Quantized(2, 32), 200}},
      // everything empty
      {{CodecSpec::F16(), CodecSpec::F16(), 0}, {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32), 0}},
      // akv:compact's tiers: f16, int4 staging with symmetric values, int2 keys per channel over 128.
      {{CodecSpec::F16(), CodecSpec::F16(), 20},
       {CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(4, 64).Symmetric(), 100},
       {CodecSpec::Kivi(2, 128, true), CodecSpec::Quantized(2, 64).Symmetric(), 256}},
  };
  int seed = 100;
  for (const auto& segments : layouts)
    for (int dim : {64, 128})
      for (int group : {1, 4, 8})
        for (int threads : {1, 2}) {
          AttentionCase c;
          c.head_dim = dim;
          c.n_kv_heads = 3;
          c.group = group;
          c.segments = segments;
          c.threads = threads;
          c.seed = ++seed;
          CheckAgainstReference(c);
        }
}

TEST(AttnDecodeTest, SplitKMergesPartialStates) {
  // One KV head, long context, tiny splits: many partial states merged per row.
  for (int threads : {1, 2}) {
    AttentionCase c;
    c.n_kv_heads = 1;
    c.group = 8;
    c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 700},
                  {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32), 900},
                  {CodecSpec::Quantized(2, 32), CodecSpec::Quantized(2, 32), 1100}};
    c.threads = threads;
    c.min_split_slots = 64;
    c.seed = 7 + threads;
    CheckAgainstReference(c);
  }
}

// The scorer's update folded into the mass pass: mass = decay * old + weight * mass, over mixed
// tiers, split-K and threads (each slot written by exactly one split).
TEST(AttnDecodeTest, MassAsRunningScore) {
  for (int threads : {1, 2}) {
    AttentionCase c;
    c.n_kv_heads = 2;
    c.group = 3;
    c.head_dim = 64;
    c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 70},
                  {CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(4, 64), 0},
                  {CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(4, 64), 333},
                  {CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(2, 64), 401}};
    c.threads = threads;
    c.min_split_slots = 64;
    c.mass_decay = 0.9f;
    c.mass_weight = 2.0f;
    c.seed = 40 + threads;
    CheckAgainstReference(c);
  }
}

TEST(AttnDecodeTest, SharpAndFlatSoftmax) {
  // Logits spanning about +-25 (sharp) and +-0.1 (flat); much sharper than that, f32 rounding of
  // the logits alone (eps * sum |q_c k_c|) approaches the 1e-5 budget for any f32 kernel.
  for (float scale : {0.3f, 0.01f}) {
    AttentionCase c;
    c.n_kv_heads = 2;
    c.group = 4;
    c.scale = scale;
    c.segments = {{CodecSpec::F16(), CodecSpec::Quantized(8, 32), 300},
                  {CodecSpec::Quantized(4, 32, true), CodecSpec::Quantized(4, 32), 300}};
    c.seed = 55;
    CheckAgainstReference(c);
  }
}

TEST(AttnDecodeTest, CausalMaskForDecode) {
  // A decode query with a position sees only slots at or before it.
  AttentionCase c;
  c.n_kv_heads = 2;
  c.group = 4;
  c.causal = true;
  c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 100}, {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(2, 32), 150}};
  for (uint64_t seed = 1; seed <= 6; ++seed) {  // query positions vary with the seed (some see nothing)
    c.seed = seed;
    CheckAgainstReference(c);
  }
}

TEST(AttnDecodeTest, EverySimdTarget) {
  // The loop really moves the runtime dispatch: one kernel target per CPU-supported target.
  std::vector<std::string> seen;
  ForEachSimdTarget([&] { seen.push_back(AttentionKernelTarget()); });
  EXPECT_EQ(seen.size(), hwy::SupportedAndGeneratedTargets().size());
  if (seen.size() > 1) {
    EXPECT_NE(seen.front(), seen.back()) << "dispatch did not follow SetSupportedTargetsForTest";
  }
  ForEachSimdTarget([] {
    AttentionCase c;
    c.n_kv_heads = 2;
    c.group = 4;
    c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 40},
                  {CodecSpec::Quantized(4, 32, true), CodecSpec::Quantized(4, 32), 70},
                  {CodecSpec::Kivi(2, 32), CodecSpec::Quantized(2, 64), 64},
                  {CodecSpec::BF16(), CodecSpec::Quantized(8, 32), 33}};
    c.seed = 99;
    CheckAgainstReference(c);
  });
}

TEST(AttnDecodeTest, OtherHeadDims) {
  // 80 (f16 only: quantized formats need multiples of 32), 96 = 64 + 32 Hadamard blocks, 256.
  for (int dim : {80, 96, 256}) {
    AttentionCase c;
    c.head_dim = dim;
    c.n_kv_heads = 2;
    c.group = 4;
    c.segments = {{CodecSpec::F16(), CodecSpec::BF16(), 50}};
    if (dim % 32 == 0) {
      c.segments.push_back({CodecSpec::Quantized(4, 32, true), CodecSpec::Quantized(2, 32), 70});
      c.segments.push_back({CodecSpec::Kivi(4, 32), CodecSpec::Quantized(8, 32), 64});
    }
    c.seed = dim;
    CheckAgainstReference(c);
    c.n_queries = 9;
    c.causal = true;
    CheckAgainstReference(c);
  }
}

TEST(AttnDecodeTest, BadArgumentsAreStatuses) {
  AttentionShape shape;
  shape.head_dim = 128;
  std::vector<float> q(128, 0.5f), out(128);
  KvSegment seg;  // n_slots 1 but no data
  seg.n_slots = 1;
  KvHeadSegments head{std::span<const KvSegment>(&seg, 1), {}};
  Status st = Attend(shape, 1, q.data(), nullptr, std::span<const KvHeadSegments>(&head, 1), out.data());
  ASSERT_FALSE(st.ok());
  // The message names the head and segment (built only once validation failed).
  EXPECT_NE(st.message().find("attention: KV head 0, segment 0: positions, key data and value data are required"),
            std::string::npos) << st.message();
  seg.n_slots = 0;
  EXPECT_TRUE(Attend(shape, 1, q.data(), nullptr, std::span<const KvHeadSegments>(&head, 1), out.data()).ok());
  EXPECT_EQ(out[5], 0.0f);  // nothing to attend to
  shape.head_dim = 100;
  EXPECT_FALSE(Attend(shape, 1, q.data(), nullptr, std::span<const KvHeadSegments>(&head, 1), out.data()).ok());
  shape.head_dim = 128;
  shape.n_kv_heads = 2;  // one list for two heads
  EXPECT_FALSE(Attend(shape, 1, q.data(), nullptr, std::span<const KvHeadSegments>(&head, 1), out.data()).ok());
  shape.n_kv_heads = 1;
  seg.key_codec = CodecSpec::Quantized(3, 32);
  st = Attend(shape, 1, q.data(), nullptr, std::span<const KvHeadSegments>(&head, 1), out.data());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("attention: KV head 0, segment 0: key codec"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unknown format or bit width"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace akv
