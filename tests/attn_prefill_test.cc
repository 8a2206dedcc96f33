// Prefill attention (a block of queries, causal mask by position): the flash kernel equals the
// double-precision reference to 1e-5 on mixed segments with shuffled positions, query tiles of
// any size, GQA 1/4/8, head_dim 64/128, 1 and 2 threads; attention mass summed over queries.
#include <gtest/gtest.h>

#include <vector>

#include "attn_test_util.h"

namespace akv {
namespace {

using test::AttentionCase;
using test::CheckAgainstReference;
using test::SegmentSpec;

TEST(AttnPrefillTest, CausalBlockOverMixedSegments) {
  const std::vector<SegmentSpec> segments = {
      {CodecSpec::F16(), CodecSpec::F16(), 70},
      {CodecSpec::Quantized(4, 32), CodecSpec::Quantized(4, 32), 0},
      {CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(4, 32), 97},
      {CodecSpec::Kivi(2, 32), CodecSpec::Quantized(2, 32), 64},
      {CodecSpec::Kivi(2, 128, true), CodecSpec::Quantized(2, 64).Symmetric(), 128},
      {CodecSpec::BF16(), CodecSpec::Quantized(8, 32), 1}};
  int seed = 1;
  for (int dim : {64, 128})
    for (int group : {1, 4, 8})
      for (int threads : {1, 2}) {
        AttentionCase c;
        c.head_dim = dim;
        c.n_kv_heads = 2;
        c.group = group;
        c.segments = segments;
        c.n_queries = 37;
        c.causal = true;
        c.threads = threads;
        c.prefill_query_tile = 5;  // several tiles, the last one partial
        c.seed = ++seed;
        CheckAgainstReference(c);
      }
}

TEST(AttnPrefillTest, MassAsRunningScore) {
  for (int threads : {1, 2}) {
    AttentionCase c;
    c.head_dim = 64;
    c.n_kv_heads = 2;
    c.group = 3;
    c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 40},
                  {CodecSpec::Quantized(4, 64, true), CodecSpec::Quantized(2, 64), 150}};
    c.n_queries = 9;
    c.causal = true;
    c.threads = threads;
    c.mass_decay = 0.5f;
    c.mass_weight = 0.25f;
    c.seed = 90 + threads;
    CheckAgainstReference(c);
  }
}

TEST(AttnPrefillTest, PlainF16PrefillLikeTheFullCache) {
  // The model's plain cache: one f16 segment per KV head holding the prompt, all queries causal.
  for (int threads : {1, 2}) {
    AttentionCase c;
    c.n_kv_heads = 2;
    c.group = 4;
    c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 300}};
    c.n_queries = 300;
    c.causal = true;
    c.threads = threads;
    c.seed = 40 + threads;
    CheckAgainstReference(c);
  }
}

TEST(AttnPrefillTest, WithoutMaskAndWithoutMass) {
  AttentionCase c;
  c.n_kv_heads = 3;
  c.group = 2;
  c.segments = {{CodecSpec::Quantized(8, 32), CodecSpec::Quantized(8, 32), 129},
                {CodecSpec::Kivi(4, 64, true), CodecSpec::Quantized(4, 64), 128}};
  c.n_queries = 9;
  c.causal = false;
  c.want_mass = false;
  c.threads = 2;
  c.seed = 5;
  CheckAgainstReference(c);
}

TEST(AttnPrefillTest, QueryTileSizes) {
  for (int tile : {1, 3, 16, 64}) {
    AttentionCase c;
    c.n_kv_heads = 1;
    c.group = 4;
    c.segments = {{CodecSpec::F16(), CodecSpec::F16(), 90}, {CodecSpec::Quantized(2, 32), CodecSpec::Quantized(2, 32), 90}};
    c.n_queries = 20;
    c.causal = true;
    c.prefill_query_tile = tile;
    c.seed = 70 + tile;
    CheckAgainstReference(c);
  }
}

}  // namespace
}  // namespace akv
