// Vector ops vs straightforward double-precision scalar versions, on lengths around the vector
// widths (tails) and on the model's sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/vec_ops.h"

namespace akv {
namespace {

std::vector<float> RandomFloats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = dist(rng);
    if (x == 0.0f) x = 0.25f;
  }
  return v;
}

const int64_t kLengths[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 384, 1024, 4099};

TEST(CpuVecOps, RmsNorm) {
  for (int64_t n : kLengths) {
    auto x = RandomFloats(n, 1, 3.0f), w = RandomFloats(n, 2);
    std::vector<float> out(static_cast<size_t>(n));
    RmsNorm(x.data(), w.data(), 1e-5f, out.data(), n);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double scale = 1.0 / std::sqrt(ss / double(n) + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      const double want = x[size_t(i)] * scale * w[size_t(i)];
      ASSERT_NEAR(out[size_t(i)], want, 1e-5 * (1 + std::fabs(want))) << "n=" << n << " i=" << i;
    }
    RmsNorm(x.data(), w.data(), 1e-5f, x.data(), n);  // in place
    EXPECT_EQ(x, out) << "n=" << n;
  }
}

TEST(CpuVecOps, SwiGlu) {
  for (int64_t n : kLengths) {
    auto g = RandomFloats(n, 3, 4.0f), u = RandomFloats(n, 4);
    g[0] = -90.0f;  // exp overflow side: silu -> -0
    if (n > 1) g[1] = 90.0f;
    std::vector<float> out(static_cast<size_t>(n));
    SwiGlu(g.data(), u.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double gi = g[size_t(i)];
      const double want = gi / (1.0 + std::exp(-gi)) * u[size_t(i)];
      ASSERT_NEAR(out[size_t(i)], want, 2e-6 * (1 + std::fabs(want))) << "n=" << n << " i=" << i;
    }
    SwiGlu(g.data(), u.data(), g.data(), n);  // in place
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(g[size_t(i)], out[size_t(i)]);
  }
}

TEST(CpuVecOps, AddAndDot) {
  for (int64_t n : kLengths) {
    auto a = RandomFloats(n, 5), b = RandomFloats(n, 6);
    double want = 0, norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += double(a[size_t(i)]) * b[size_t(i)];
      norm += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
    }
    EXPECT_NEAR(Dot(a.data(), b.data(), n), want, 1e-6 * norm + 1e-7) << "n=" << n;
    auto y = a;
    AddInPlace(y.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[size_t(i)], a[size_t(i)] + b[size_t(i)]);
  }
}

TEST(CpuVecOps, Softmax) {
  for (int64_t n : kLengths) {
    auto x = RandomFloats(n, 7, 5.0f);
    if (n > 2) x[1] = -INFINITY;  // masked entry
    std::vector<double> want(static_cast<size_t>(n));
    double mx = -INFINITY, sum = 0;
    for (float v : x) mx = std::max(mx, double(v));
    for (int64_t i = 0; i < n; ++i) sum += want[size_t(i)] = std::exp(x[size_t(i)] - mx);
    Softmax(x.data(), n);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(x[size_t(i)], want[size_t(i)] / sum, 2e-6 * (want[size_t(i)] / sum) + 1e-9)
          << "n=" << n << " i=" << i;
      total += x[size_t(i)];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
    if (n > 2) {
      EXPECT_EQ(x[1], 0.0f);
    }
  }
}

TEST(CpuVecOps, HalfConversions) {
  for (int64_t n : kLengths) {
    auto x = RandomFloats(n, 8, 100.0f);
    x[0] = 1e-6f;  // f16 subnormal
    if (n > 1) x[1] = 70000.0f;  // overflows to inf
    std::vector<f16_t> h(static_cast<size_t>(n));
    F32ToF16Row(x.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[size_t(i)], F32ToF16(x[size_t(i)])) << i;
    std::vector<float> back(static_cast<size_t>(n));
    F16ToF32Row(h.data(), back.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back[size_t(i)], F16ToF32(h[size_t(i)])) << i;
    std::vector<bf16_t> b(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) b[size_t(i)] = F32ToBF16(x[size_t(i)]);
    BF16ToF32Row(b.data(), back.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back[size_t(i)], BF16ToF32(b[size_t(i)])) << i;
  }
}

}  // namespace
}  // namespace akv
