// MatMul vs MatMulReference on random inputs, over shapes that are not multiples of the tile
// sizes, token counts on both sides of the GEMV/GEMM switch, every type and 1 or 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include <hwy/aligned_allocator.h>

#include "cpu/matmul.h"
#include "cpu/matmul_internal.h"
#include "cpu/quants.h"

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

// Row-major weight matrix of `type` holding random values.
struct TestWeights {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

TestWeights MakeWeights(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  TestWeights tw;
  const size_t row_bytes = RowBytes(type, cols);
  tw.bytes.resize(row_bytes * size_t(rows));
  auto values = RandomFloats(rows * cols, seed);
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = values.data() + r * cols;
    uint8_t* dst = tw.bytes.data() + size_t(r) * row_bytes;
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
      default: ADD_FAILURE() << "unexpected type";
    }
  }
  tw.w = WeightMatrix{type, tw.bytes.data(), rows, cols, row_bytes};
  return tw;
}

// max |y - ref| / (rms(ref) + eps) over all outputs.
double NormalisedError(const std::vector<float>& y, const std::vector<float>& ref) {
  double ss = 0, mx = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    ss += double(ref[i]) * ref[i];
    mx = std::max(mx, std::fabs(double(y[i]) - ref[i]));
  }
  return mx / (std::sqrt(ss / double(ref.size())) + 1e-12);
}

void CheckShape(GgmlType type, int64_t rows, int64_t cols, int64_t n_tokens, ThreadPool& pool,
                double tol) {
  SCOPED_TRACE(testing::Message() << TypeName(type) << " rows=" << rows << " cols=" << cols
                                  << " n_tokens=" << n_tokens << " threads=" << pool.size());
  TestWeights tw = MakeWeights(type, rows, cols, uint32_t(rows * 131 + cols * 7 + n_tokens));
  // Strided activations and outputs, to catch code that assumes ldx == cols or ldy == rows.
  const int64_t ldx = cols + 5, ldy = rows + 3;
  auto x = RandomFloats(n_tokens * ldx, uint32_t(n_tokens + 99));
  const float sentinel = 12345.0f;
  std::vector<float> y(size_t(n_tokens * ldy), sentinel), ref(size_t(n_tokens * ldy), sentinel);
  MatMul(tw.w, x.data(), ldx, n_tokens, y.data(), ldy, pool);
  MatMulReference(tw.w, x.data(), ldx, n_tokens, ref.data(), ldy);
  std::vector<float> yv, rv;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < ldy; ++r) {
      const size_t i = size_t(t * ldy + r);
      if (r >= rows) {
        ASSERT_EQ(y[i], sentinel) << "wrote past the row count at token " << t;
        continue;
      }
      ASSERT_TRUE(std::isfinite(y[i])) << "token " << t << " row " << r;
      yv.push_back(y[i]);
      rv.push_back(ref[i]);
    }
  }
  EXPECT_LT(NormalisedError(yv, rv), tol);

  // The same weights packed into panels once (as the model loader does, where this CPU has a
  // panel kernel): the GEMM (>= 4 tokens) is the same kernel on the same bytes, hence
  // bit-identical; the GEMV sums in another order and is held to the reference bound.
  const size_t panel_bytes = PanelBytes(tw.w);
  if (panel_bytes == 0) return;
  auto panels = hwy::AllocateAligned<uint8_t>(panel_bytes);
  PackPanels(tw.w, panels.get());
  WeightMatrix packed = tw.w;
  packed.panels = panels.get();
  std::vector<float> yp(size_t(n_tokens * ldy), sentinel);
  MatMul(packed, x.data(), ldx, n_tokens, yp.data(), ldy, pool);
  std::vector<float> ypv;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < ldy; ++r) {
      const size_t i = size_t(t * ldy + r);
      if (r >= rows) {
        ASSERT_EQ(yp[i], sentinel) << "panels: wrote past the row count at token " << t;
        continue;
      }
      ypv.push_back(yp[i]);
    }
  EXPECT_LT(NormalisedError(ypv, rv), tol) << "panels";
  if (n_tokens >= 4) EXPECT_EQ(ypv, yv) << "panels: GEMM differs from the repacking GEMM";
}

class CpuMatMulTest : public testing::TestWithParam<GgmlType> {};

TEST_P(CpuMatMulTest, MatchesReference) {
  const GgmlType type = GetParam();
  const bool quant = type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
  // Quantized types compare integer sums against double sums of the same integers; only the
  // float rounding of block scales and partial sums differs.
  const double tol = quant ? 2e-4 : 1e-4;
  std::vector<int64_t> cols_list = {32, 96, 384, 1056};
  if (!quant) cols_list.insert(cols_list.end(), {1, 17, 67, 403});
  const int64_t rows_list[] = {1, 3, 16, 37, 130};
  const int64_t tokens_list[] = {1, 2, 3, 7, 16, 33, 100};
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (int64_t cols : cols_list)
      for (int64_t rows : rows_list)
        for (int64_t n_tokens : tokens_list) {
          if (rows * cols * n_tokens > 6'000'000) continue;  // keep the reference quick
          CheckShape(type, rows, cols, n_tokens, pool, tol);
        }
    // The model's shapes, at a few token counts.
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{384, 384}, {128, 384}, {1024, 384},
                              {384, 1024}})
      for (int64_t n_tokens : {1, 8, 67}) CheckShape(type, rows, cols, n_tokens, pool, tol);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CpuMatMulTest,
                         testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::BF16,
                                         GgmlType::Q8_0, GgmlType::Q4_0),
                         [](const testing::TestParamInfo<GgmlType>& info) {
                           return std::string(TypeName(info.param));
                         });

// Panels exist exactly for Q8_0 on CPUs with the VNNI kernel, sized 32-row panels x blocks x
// (1024 code bytes + 64 scale bytes).
TEST(CpuMatMul, PanelBytes) {
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0})
    EXPECT_EQ(PanelBytes(WeightMatrix{type, nullptr, 64, 64, RowBytes(type, 64)}), 0u);
  const WeightMatrix q8{GgmlType::Q8_0, nullptr, 33, 96, RowBytes(GgmlType::Q8_0, 96)};
  const size_t bytes = PanelBytes(q8);
  if (__builtin_cpu_supports("avx512vnni") && std::string(CpuKernelTarget()) == "AVX3_DL") {
    EXPECT_EQ(bytes, size_t(2 * 3 * 1088));
  } else {
    EXPECT_EQ(bytes, 0u) << CpuKernelTarget();
  }
}

// The integer kernels' activation quantizer must give QuantizeRowQ8_0's integers and scales.
TEST(CpuMatMul, ActivationQuantizationIsBitExact) {
  const int64_t cols = 32 * 5, n_tokens = 4;
  auto x = RandomFloats(n_tokens * cols, 77);
  // Token 1: d = 1 exactly (amax 127), with ties at .5 that roundf sends away from zero.
  for (int64_t i = 0; i < cols; ++i) x[cols + i] = float(i % 64) * 0.5f - 15.5f;
  for (int64_t b = 0; b < cols / 32; ++b) x[cols + b * 32] = 127.0f;
  // Token 3: values spread over many magnitudes.
  for (int64_t i = 0; i < cols; ++i) x[3 * cols + i] = std::ldexp(x[3 * cols + i], int(i % 40) - 20);
  // Token 2: one all-zero block.
  for (int64_t i = 0; i < 32; ++i) x[2 * cols + 64 + i] = 0.0f;
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    cpu_internal::QuantizedActivations xq;
    xq.Prepare(n_tokens, cols, type, /*pairs=*/true);
    cpu_internal::QuantizeActivations(x.data(), cols, 0, n_tokens, &xq);
    std::vector<BlockQ8_0> ref(static_cast<size_t>(cols / 32));
    for (int64_t t = 0; t < n_tokens; ++t) {
      QuantizeRowQ8_0(x.data() + t * cols, ref.data(), cols);
      for (int64_t b = 0; b < cols / 32; ++b) {
        ASSERT_EQ(xq.d(t)[b], F16ToF32(ref[b].d)) << "token " << t << " block " << b;
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) {
          ASSERT_EQ(xq.qs(t)[b * 32 + j], ref[b].qs[j]) << "token " << t << " element " << b * 32 + j;
          sum += ref[b].qs[j];
        }
        ASSERT_EQ(xq.corr(t)[b], -xq.bias * sum);
      }
    }
  }
}

TEST(CpuMatMul, Supports) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0})
    EXPECT_TRUE(MatMulSupports(t)) << TypeName(t);
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K})
    EXPECT_FALSE(MatMulSupports(t)) << TypeName(t);
}

}  // namespace
}  // namespace akv

namespace akv {
namespace {

// Many random rows (including ties after scaling) through the vectorised quantizer.
TEST(CpuMatMul, ActivationQuantizationManyRows) {
  const int64_t cols = 32 * 7, n_tokens = 300;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(cols * n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float scale = std::ldexp(1.0f, int(t % 30) - 15);
    for (int64_t i = 0; i < cols; ++i) {
      float v = u(rng) * scale;
      if (t % 3 == 0) v = std::round(v * 254.0f / scale) / 2.0f;  // many exact .5 ties
      x[size_t(t * cols + i)] = v;
    }
  }
  cpu_internal::QuantizedActivations xq;
  xq.Prepare(n_tokens, cols, GgmlType::Q8_0, /*pairs=*/false);
  cpu_internal::QuantizeActivations(x.data(), cols, 0, n_tokens, &xq);
  std::vector<BlockQ8_0> ref(static_cast<size_t>(cols / 32));
  for (int64_t t = 0; t < n_tokens; ++t) {
    QuantizeRowQ8_0(x.data() + t * cols, ref.data(), cols);
    for (int64_t b = 0; b < cols / 32; ++b) {
      ASSERT_EQ(xq.d(t)[b], F16ToF32(ref[size_t(b)].d)) << "token " << t << " block " << b;
      for (int j = 0; j < 32; ++j)
        ASSERT_EQ(xq.qs(t)[b * 32 + j], ref[size_t(b)].qs[j]) << "token " << t << " block " << b;
    }
  }
}

}  // namespace
}  // namespace akv

namespace akv {
namespace {

// MatMulMany gives each matrix exactly MatMul's result (same kernels, same split of each
// matrix's rows), also when types differ (falls back to one call each).
TEST(CpuMatMul, ManyMatchesSingle) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (GgmlType type : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
      for (int64_t n_tokens : {1, 2, 5, 40}) {
        const int64_t cols = 96;
        TestWeights a = MakeWeights(type, 70, cols, 1), b = MakeWeights(type, 33, cols, 2);
        TestWeights c = MakeWeights(GgmlType::F32, 17, cols, 3);  // another type
        auto x = RandomFloats(n_tokens * cols, 4);
        for (bool mixed : {false, true}) {
          std::vector<WeightMatrix> ws = {a.w, b.w};
          if (mixed) ws.push_back(c.w);
          std::vector<std::vector<float>> ys, refs;
          std::vector<MatMulOutput> outs;
          for (const auto& w : ws) {
            ys.emplace_back(static_cast<size_t>(n_tokens * (w.rows + 1)), -1.0f);
            refs.emplace_back(static_cast<size_t>(n_tokens * (w.rows + 1)), -1.0f);
          }
          for (size_t i = 0; i < ws.size(); ++i) outs.push_back({ys[i].data(), ws[i].rows + 1});
          MatMulMany(ws.data(), outs.data(), int(ws.size()), x.data(), cols, n_tokens, pool);
          for (size_t i = 0; i < ws.size(); ++i) {
            MatMul(ws[i], x.data(), cols, n_tokens, refs[i].data(), ws[i].rows + 1, pool);
            EXPECT_EQ(ys[i], refs[i]) << TypeName(type) << " matrix " << i << " n_tokens "
                                      << n_tokens << " threads " << threads;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace akv
