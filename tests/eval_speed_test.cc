// RunSpeedTest (akv bench): sample counts, the context each repetition decodes at, bad input.
#include <gtest/gtest.h>

#include "eval/speed_bench.h"
#include "tiny_engine_fixture.h"

namespace akv {
namespace {

using SpeedTestRun = test::TinyEngineTest;

TEST_F(SpeedTestRun, RefillsTheDepthBeforeEveryRepetitionByDefault) {
  for (const char* cache : {"full", "akv:balanced"}) {
    auto r = RunSpeedTest(*engine_, {"tg", 8, 96}, cache, 3, 42);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->samples.size(), 3u);
    for (double s : r->samples) EXPECT_GT(s, 0.0);
    // The last repetition's sequence: the depth, then its own 8 tokens.
    EXPECT_EQ(r->cache_stats.n_positions, 96 + 8) << cache;
  }
}

TEST_F(SpeedTestRun, FillOnceContinuesOneSequence) {
  for (const char* cache : {"full", "akv:balanced"}) {
    SpeedTest t{"tg", 8, 96};
    t.fill_once = true;
    auto r = RunSpeedTest(*engine_, t, cache, 3, 42);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->samples.size(), 3u);
    // One prefill of the depth, then the warm-up and three repetitions of 8 tokens each.
    EXPECT_EQ(r->cache_stats.n_positions, 96 + 4 * 8) << cache;
    EXPECT_EQ(r->cache_stats.hot.tokens + r->cache_stats.warm.tokens + r->cache_stats.cold.tokens +
                  r->cache_stats.evicted,
              2 * 8 * (96 + 4 * 8))
        << cache << ": every position of every (layer, KV head) stored once";
  }
}

TEST_F(SpeedTestRun, FillOnceDoesNotChangePrefillTests) {
  SpeedTest t{"pp", 16, 0};
  t.fill_once = true;
  auto r = RunSpeedTest(*engine_, t, "full", 2, 42);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cache_stats.n_positions, 16);
}

TEST_F(SpeedTestRun, RejectsBadTests) {
  EXPECT_FALSE(RunSpeedTest(*engine_, {"tg", 0, 0}, "full", 1, 42).ok());
  EXPECT_FALSE(RunSpeedTest(*engine_, {"tg", 4, 0}, "full", 0, 42).ok());
  EXPECT_FALSE(RunSpeedTest(*engine_, {"xx", 4, 0}, "full", 1, 42).ok());
  EXPECT_FALSE(RunSpeedTest(*engine_, {"tg", 4, 0}, "no-such-cache", 1, 42).ok());
}

}  // namespace
}  // namespace akv
