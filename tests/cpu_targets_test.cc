// Runs the kernels on every SIMD target this CPU supports (not only the best one), by
// restricting Highway's dispatch, and compares them with the references.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/matmul.h"
#include "cpu/quants.h"
#include "cpu/vec_ops.h"

namespace akv {
namespace {

std::vector<float> RandomFloats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = dist(rng);
    if (x == 0.0f) x = 0.5f;
  }
  return v;
}

std::vector<uint8_t> MakeWeights(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  const size_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(rows));
  auto v = RandomFloats(rows * cols, seed);
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = v.data() + r * cols;
    uint8_t* dst = bytes.data() + static_cast<size_t>(r) * row_bytes;
    switch (type) {
      case GgmlType::F32: std::memcpy(dst, src, row_bytes); break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<f16_t*>(dst)[i] = F32ToF16(src[i]);
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<bf16_t*>(dst)[i] = F32ToBF16(src[i]);
        break;
      case GgmlType::Q8_0: QuantizeRowQ8_0(src, reinterpret_cast<BlockQ8_0*>(dst), cols); break;
      case GgmlType::Q4_0: QuantizeRowQ4_0(src, reinterpret_cast<BlockQ4_0*>(dst), cols); break;
      default: break;
    }
  }
  return bytes;
}

struct NamedTarget {
  int64_t bit;
  const char* name;
};

// The targets src/cpu compiles (see src/cpu/simd_targets.h) that this CPU can run.
std::vector<NamedTarget> RunnableTargets() {
  std::vector<NamedTarget> out;
  const int64_t supported = hwy::SupportedTargets();
  for (NamedTarget t : {NamedTarget{HWY_AVX3_DL, "AVX3_DL"}, NamedTarget{HWY_AVX3, "AVX3"},
                        NamedTarget{HWY_AVX2, "AVX2"}, NamedTarget{HWY_SCALAR, "SCALAR"}}) {
    if ((supported & t.bit) || t.bit == HWY_SCALAR) out.push_back(t);
  }
  return out;
}

class CpuTargetsTest : public testing::Test {
 protected:
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_F(CpuTargetsTest, MatMulOnEveryTarget) {
  ThreadPool pool(2);
  for (const NamedTarget& target : RunnableTargets()) {
    hwy::SetSupportedTargetsForTest(target.bit);
    ASSERT_EQ(std::string(CpuKernelTarget()), target.name);
    for (GgmlType type :
         {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
      const bool quant = type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 96}, {70, 416}}) {
        const int64_t c = quant ? cols : cols + 3;  // float types: a k tail too
        auto wb = MakeWeights(type, rows, c, uint32_t(rows + c));
        const WeightMatrix w{type, wb.data(), rows, c, RowBytes(type, c)};
        for (int64_t n_tokens : {1, 3, 13, 50}) {
          auto x = RandomFloats(n_tokens * c, 5);
          std::vector<float> y(static_cast<size_t>(n_tokens * rows));
          std::vector<float> ref(y.size());
          MatMul(w, x.data(), c, n_tokens, y.data(), rows, pool);
          MatMulReference(w, x.data(), c, n_tokens, ref.data(), rows);
          double ss = 0, mx = 0;
          for (size_t i = 0; i < y.size(); ++i) {
            ss += double(ref[i]) * ref[i];
            mx = std::max(mx, std::fabs(double(y[i]) - ref[i]));
          }
          EXPECT_LT(mx / std::sqrt(ss / double(y.size())), 2e-4)
              << target.name << " " << TypeName(type) << " " << rows << "x" << c
              << " n_tokens=" << n_tokens;
        }
      }
    }
  }
}

TEST_F(CpuTargetsTest, VecOpsOnEveryTarget) {
  const int64_t n = 1000;
  auto a = RandomFloats(n, 1), b = RandomFloats(n, 2);
  for (const NamedTarget& target : RunnableTargets()) {
    hwy::SetSupportedTargetsForTest(target.bit);
    SCOPED_TRACE(target.name);
    double dot = 0, norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      dot += double(a[i]) * b[i];
      norm += std::fabs(double(a[i]) * b[i]);
    }
    EXPECT_NEAR(Dot(a.data(), b.data(), n), dot, 1e-6 * norm);
    std::vector<float> out(static_cast<size_t>(n));
    SwiGlu(a.data(), b.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = a[i] / (1.0 + std::exp(-double(a[i]))) * b[i];
      ASSERT_NEAR(out[i], want, 2e-6 * (1 + std::fabs(want)));
    }
    auto s = a;
    Softmax(s.data(), n);
    double total = 0;
    for (float v : s) total += v;
    EXPECT_NEAR(total, 1.0, 1e-5);
    std::vector<f16_t> h(static_cast<size_t>(n));
    F32ToF16Row(a.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], F32ToF16(a[i]));
    F16ToF32Row(h.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], F16ToF32(h[i]));
  }
}

}  // namespace
}  // namespace akv
