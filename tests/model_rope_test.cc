#include "model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace akv {
namespace {

std::vector<float> RandomHeads(int n_heads, int hd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> x(n_heads * hd);
  for (float& v : x) v = nd(rng);
  return x;
}

std::vector<float> Rotate(const RopeConfig& c, std::vector<float> x, int32_t pos, int n_heads, int hd,
                          std::vector<float> factors = {}) {
  Rope r(c, std::move(factors));
  r.Prepare(&pos, 1);
  r.Apply(x.data(), 1, n_heads, hd);
  return x;
}

TEST(Rope, MatchesTheDefinitionForBothPairings) {
  const int hd = 16;
  for (RopeStyle style : {RopeStyle::kNorm, RopeStyle::kNeox}) {
    RopeConfig c;
    c.style = style;
    c.n_dims = hd;
    c.freq_base = 10000.f;
    auto x = RandomHeads(1, hd, 1);
    auto y = Rotate(c, x, 7, 1, hd);
    for (int i = 0; i < hd / 2; ++i) {
      const double theta = 7.0 * std::pow(10000.0, -2.0 * i / hd);
      const int a = style == RopeStyle::kNorm ? 2 * i : i, b = style == RopeStyle::kNorm ? 2 * i + 1 : i + hd / 2;
      EXPECT_NEAR(y[a], x[a] * std::cos(theta) - x[b] * std::sin(theta), 1e-4);
      EXPECT_NEAR(y[b], x[a] * std::sin(theta) + x[b] * std::cos(theta), 1e-4);
    }
  }
}

TEST(Rope, PartialRotationLeavesTheRestAlone) {
  RopeConfig c;
  c.n_dims = 8;
  auto x = RandomHeads(2, 16, 2);
  auto y = Rotate(c, x, 100, 2, 16);
  for (int h = 0; h < 2; ++h)
    for (int i = 8; i < 16; ++i) EXPECT_EQ(y[h * 16 + i], x[h * 16 + i]);
}

TEST(Rope, LinearScalingIsAPositionScale) {
  RopeConfig plain;
  plain.n_dims = 32;
  RopeConfig scaled = plain;
  scaled.scaling = RopeScaling::kLinear;
  scaled.freq_scale = 0.25f;
  auto x = RandomHeads(3, 32, 3);
  auto a = Rotate(scaled, x, 40, 3, 32), b = Rotate(plain, x, 10, 3, 32);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4);
}

TEST(Rope, FrequencyFactorsDivideTheAngle) {
  RopeConfig c;
  c.n_dims = 16;
  auto x = RandomHeads(1, 16, 4);
  std::vector<float> factors(8, 1.0f);
  factors[3] = 4.0f;
  auto a = Rotate(c, x, 20, 1, 16, factors);
  auto b = Rotate(c, x, 5, 1, 16);  // pair 3 at a quarter of the angle
  EXPECT_NEAR(a[6], b[6], 1e-4);
  EXPECT_NEAR(a[7], b[7], 1e-4);
}

TEST(Rope, YarnKeepsNormsScaledByItsAttentionFactor) {
  RopeConfig c;
  c.n_dims = 64;
  c.freq_base = 10000.f;
  c.scaling = RopeScaling::kYarn;
  c.freq_scale = 0.25f;
  c.n_ctx_orig = 4096;
  c.yarn_ext_factor = 1.0f;
  auto x = RandomHeads(1, 64, 5);
  auto y = Rotate(c, x, 12345, 1, 64);
  const double mscale = 1.0 + 0.1 * std::log(4.0);
  double nx = 0, ny = 0;
  for (int i = 0; i < 64; ++i) nx += x[i] * x[i], ny += y[i] * y[i];
  EXPECT_NEAR(std::sqrt(ny / nx), mscale, 1e-4);
  // High-frequency pairs (small i) are extrapolated: they rotate like the unscaled RoPE.
  RopeConfig plain = c;
  plain.scaling = RopeScaling::kNone;
  auto z = Rotate(plain, x, 12345, 1, 64);
  EXPECT_NEAR(y[0] / mscale, z[0], 1e-3);
  EXPECT_NEAR(y[1] / mscale, z[1], 1e-3);
}

}  // namespace
}  // namespace akv
