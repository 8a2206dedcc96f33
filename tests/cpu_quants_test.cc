// Dequantizers vs an independent scalar derivation of ggml's layouts; quantizer round trips;
// dequantizing the real tensors of the Q4_0 test model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/quants.h"
#include "io/gguf.h"
#include "test_util.h"

namespace akv {
namespace {

std::vector<float> RandomFloats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = dist(rng);
    if (x == 0.0f) x = 1e-3f;
  }
  return v;
}

// Random bytes for a block, then plausible f16 scales written over the scale fields.
template <typename Block>
std::vector<Block> RandomBlocks(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Block> blocks(static_cast<size_t>(n));
  auto* bytes = reinterpret_cast<uint8_t*>(blocks.data());
  for (size_t i = 0; i < blocks.size() * sizeof(Block); ++i) bytes[i] = uint8_t(rng());
  std::uniform_real_distribution<float> d(0.001f, 0.05f);
  for (auto& b : blocks) {
    if constexpr (requires { b.dmin; }) b.dmin = F32ToF16(d(rng));
    if constexpr (requires { b.m; }) b.m = F32ToF16(-d(rng) * 8);
    b.d = F32ToF16(d(rng));
  }
  return blocks;
}

// Bit i of a byte array, LSB first.
int Bit(const uint8_t* p, int i) { return (p[i / 8] >> (i % 8)) & 1; }

// Independent derivations, element by element from the spec: element e of a block.
// Q4_K / Q5_K: sub-block s = e / 32; quant byte index 32 * (s / 2) + e % 32, nibble s % 2.
// 6-bit scale and min of sub-block s: for s < 4 low 6 bits of scales[s] and scales[s + 4];
// for s >= 4 the low nibble / high nibble of scales[s + 4] plus the top 2 bits of
// scales[s - 4] / scales[s].
void ScaleMin(const uint8_t* sc, int s, int* scale, int* min) {
  if (s < 4) {
    *scale = sc[s] & 0x3F;
    *min = sc[s + 4] & 0x3F;
  } else {
    *scale = (sc[s + 4] & 0xF) + 16 * (sc[s - 4] >> 6);
    *min = (sc[s + 4] >> 4) + 16 * (sc[s] >> 6);
  }
}

float SpecQ4K(const BlockQ4_K& b, int e) {
  const int s = e / 32;
  const uint8_t byte = b.qs[32 * (s / 2) + e % 32];
  const int q = (s % 2) ? byte >> 4 : byte & 0xF;
  int scale, min;
  ScaleMin(b.scales, s, &scale, &min);
  return F16ToF32(b.d) * scale * q - F16ToF32(b.dmin) * min;
}

// Q5_K: the high bit of element e is bit s of qh[e % 32].
float SpecQ5K(const BlockQ5_K& b, int e) {
  const int s = e / 32;
  const uint8_t byte = b.qs[32 * (s / 2) + e % 32];
  const int q = ((s % 2) ? byte >> 4 : byte & 0xF) + 16 * ((b.qh[e % 32] >> s) & 1);
  int scale, min;
  ScaleMin(b.scales, s, &scale, &min);
  return F16ToF32(b.d) * scale * q - F16ToF32(b.dmin) * min;
}

// Q6_K: half h = e / 128, within it group g = (e % 128) / 32, lane l = e % 32.
// Low 4 bits: ql[64h + l + 32 (g % 2)], nibble g / 2. High 2 bits: bits 2g, 2g+1 of qh[32h + l].
// Scale: scales[8h + 2g + l / 16] (one signed 8-bit scale per 16 elements).
float SpecQ6K(const BlockQ6_K& b, int e) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  const uint8_t lo = b.ql[64 * h + l + 32 * (g % 2)];
  const int low = (g / 2) ? lo >> 4 : lo & 0xF;
  const int high = (b.qh[32 * h + l] >> (2 * g)) & 3;
  return F16ToF32(b.d) * b.scales[8 * h + 2 * g + l / 16] * ((low | (high << 4)) - 32);
}

// 32-element types: element e; Q4/Q5 nibble: byte e % 16, high nibble when e >= 16;
// Q5 high bit: bit e of the 32-bit little-endian qh.
float SpecQ4_0(const BlockQ4_0& b, int e) {
  const int q = e < 16 ? b.qs[e] & 0xF : b.qs[e - 16] >> 4;
  return F16ToF32(b.d) * (q - 8);
}
float SpecQ4_1(const BlockQ4_1& b, int e) {
  const int q = e < 16 ? b.qs[e] & 0xF : b.qs[e - 16] >> 4;
  return F16ToF32(b.d) * q + F16ToF32(b.m);
}
float SpecQ5_0(const BlockQ5_0& b, int e) {
  const int q = (e < 16 ? b.qs[e] & 0xF : b.qs[e - 16] >> 4) + 16 * Bit(b.qh, e);
  return F16ToF32(b.d) * (q - 16);
}
float SpecQ5_1(const BlockQ5_1& b, int e) {
  const int q = (e < 16 ? b.qs[e] & 0xF : b.qs[e - 16] >> 4) + 16 * Bit(b.qh, e);
  return F16ToF32(b.d) * q + F16ToF32(b.m);
}
float SpecQ8_0(const BlockQ8_0& b, int e) { return F16ToF32(b.d) * b.qs[e]; }

template <typename Block, typename Spec>
void CheckAgainstSpec(GgmlType type, int block_elems, Spec spec) {
  const int n_blocks = 7;
  auto blocks = RandomBlocks<Block>(n_blocks, 1234 + int(type));
  std::vector<float> out(static_cast<size_t>(n_blocks * block_elems));
  DequantizeRow(type, blocks.data(), out.data(), int64_t(out.size()));
  for (int b = 0; b < n_blocks; ++b) {
    for (int e = 0; e < block_elems; ++e) {
      const float want = spec(blocks[size_t(b)], e);
      ASSERT_NEAR(out[size_t(b * block_elems + e)], want, 1e-6f * (1.0f + std::fabs(want)))
          << TypeName(type) << " block " << b << " element " << e;
    }
  }
}

TEST(CpuQuants, DequantizeMatchesSpec) {
  CheckAgainstSpec<BlockQ4_0>(GgmlType::Q4_0, kQK, SpecQ4_0);
  CheckAgainstSpec<BlockQ4_1>(GgmlType::Q4_1, kQK, SpecQ4_1);
  CheckAgainstSpec<BlockQ5_0>(GgmlType::Q5_0, kQK, SpecQ5_0);
  CheckAgainstSpec<BlockQ5_1>(GgmlType::Q5_1, kQK, SpecQ5_1);
  CheckAgainstSpec<BlockQ8_0>(GgmlType::Q8_0, kQK, SpecQ8_0);
  CheckAgainstSpec<BlockQ4_K>(GgmlType::Q4_K, kQK_K, SpecQ4K);
  CheckAgainstSpec<BlockQ5_K>(GgmlType::Q5_K, kQK_K, SpecQ5K);
  CheckAgainstSpec<BlockQ6_K>(GgmlType::Q6_K, kQK_K, SpecQ6K);
}

TEST(CpuQuants, FloatRows) {
  const int64_t n = 133;
  auto x = RandomFloats(n, 7);
  std::vector<f16_t> h(static_cast<size_t>(n));
  std::vector<bf16_t> bf(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    h[size_t(i)] = F32ToF16(x[size_t(i)]);
    bf[size_t(i)] = F32ToBF16(x[size_t(i)]);
  }
  std::vector<float> out(static_cast<size_t>(n));
  DequantizeRow(GgmlType::F32, x.data(), out.data(), n);
  EXPECT_EQ(out, x);
  DequantizeRow(GgmlType::F16, h.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(out[size_t(i)], F16ToF32(h[size_t(i)]));
  DequantizeRow(GgmlType::BF16, bf.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(out[size_t(i)], BF16ToF32(bf[size_t(i)]));
}

TEST(CpuQuants, Q8_0RoundTrip) {
  const int64_t n = 32 * 12;
  auto x = RandomFloats(n, 11, 3.0f);
  std::vector<BlockQ8_0> q(static_cast<size_t>(n / kQK));
  QuantizeRowQ8_0(x.data(), q.data(), n);
  std::vector<float> back(static_cast<size_t>(n));
  DequantizeRow(GgmlType::Q8_0, q.data(), back.data(), n);
  for (int64_t b = 0; b < n / kQK; ++b) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[size_t(b * kQK + j)]));
    // Half a step of amax / 127, plus f16 rounding of d (relative 2^-11 on up to 127 steps).
    const float tol = amax / 127.0f * (0.5f + 127.0f / 2048.0f) + 1e-7f;
    int max_q = 0;
    for (int j = 0; j < kQK; ++j) {
      EXPECT_NEAR(back[size_t(b * kQK + j)], x[size_t(b * kQK + j)], tol);
      max_q = std::max(max_q, std::abs(int(q[size_t(b)].qs[j])));
    }
    EXPECT_EQ(max_q, 127);  // the largest magnitude maps to +-127
  }
}

TEST(CpuQuants, Q4_0RoundTrip) {
  const int64_t n = 32 * 12;
  auto x = RandomFloats(n, 13, 2.0f);
  std::vector<BlockQ4_0> q(static_cast<size_t>(n / kQK));
  QuantizeRowQ4_0(x.data(), q.data(), n);
  std::vector<float> back(static_cast<size_t>(n));
  DequantizeRow(GgmlType::Q4_0, q.data(), back.data(), n);
  for (int64_t b = 0; b < n / kQK; ++b) {
    float amax = 0;
    int arg = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[size_t(b * kQK + j)]) > amax) {
        amax = std::fabs(x[size_t(b * kQK + j)]);
        arg = j;
      }
    }
    // The extreme value maps to q = 0 (x = -8 d) exactly, up to f16 rounding of d.
    EXPECT_NEAR(back[size_t(b * kQK + arg)], x[size_t(b * kQK + arg)], amax * 1e-3f);
    // Half a step everywhere, except that values of the opposite sign to the extreme one
    // beyond 7 steps clamp to q = 15 (the grid is -8..7 steps).
    const float step = amax / 8.0f;
    const float extreme = x[size_t(b * kQK + arg)];
    for (int j = 0; j < kQK; ++j) {
      const float v = x[size_t(b * kQK + j)];
      float tol = step * 0.51f + amax * 1e-3f;
      if (v * extreme < 0 && std::fabs(v) > 7 * step) tol += std::fabs(v) - 7 * step;
      EXPECT_NEAR(back[size_t(b * kQK + j)], v, tol);
    }
  }
}

// Known integers: llama.cpp rounds half away from zero (roundf) for Q8_0.
TEST(CpuQuants, Q8_0Rounding) {
  std::vector<float> x(kQK, 0.0f);
  x[0] = 127.0f;  // d = 1
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.49f;
  BlockQ8_0 q;
  QuantizeRowQ8_0(x.data(), &q, kQK);
  EXPECT_EQ(F16ToF32(q.d), 1.0f);
  EXPECT_EQ(q.qs[0], 127);
  EXPECT_EQ(q.qs[1], 3);
  EXPECT_EQ(q.qs[2], -3);
  EXPECT_EQ(q.qs[3], 0);
}

TEST(CpuQuants, RealModelTensorsAreSane) {
  AKV_REQUIRE_SHARED();
  auto file = GgufFile::Open(test::ModelPath("akv-tiny-llama-25m-q4_0.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().message();
  int n_q4 = 0, n_q8 = 0;
  for (const GgufTensor& t : (*file)->tensors()) {
    if (t.type == GgmlType::Q4_0) ++n_q4;
    if (t.type == GgmlType::Q8_0) ++n_q8;
    if (!GetTypeTraits(t.type).supported) continue;
    const int64_t cols = t.dims[0], rows = t.rows();
    const size_t row_bytes = RowBytes(t.type, cols);
    ASSERT_GT(row_bytes, 0u) << t.name;
    std::vector<float> row(static_cast<size_t>(cols));
    double ss = 0;
    float amax = 0;
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(t.type, t.data + r * row_bytes, row.data(), cols);
      for (float v : row) {
        ASSERT_TRUE(std::isfinite(v)) << t.name << " row " << r;
        ss += double(v) * v;
        amax = std::fmax(amax, std::fabs(v));
      }
    }
    const double rms = std::sqrt(ss / double(rows * cols));
    EXPECT_GT(rms, 1e-4) << t.name;
    EXPECT_LT(rms, 10.0) << t.name;
    EXPECT_LT(amax, 100.0f) << t.name;
  }
  EXPECT_GT(n_q4, 0);
  EXPECT_GT(n_q8, 0);
}

}  // namespace
}  // namespace akv
