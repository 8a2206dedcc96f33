// GPU kernels against their CPU references (src/cuda vs src/cpu, src/kv, src/attn, src/model):
// matmul (GEMV / cuBLAS, every weight type), RMSNorm, SwiGLU, RoPE, the quantize-on-append
// kernels (pages byte-identical to KvPage's), and decode / prefill attention over f16 / int8 /
// int4 / int2 tiers on a grid of head_dim {64, 128}, GQA ratio {1, 3, 4, 8}, context 1 .. 128K.
// Without a CUDA device (or in a build without CUDA) every test skips with a message.
#include <gtest/gtest.h>

#ifndef AKV_HAVE_CUDA
TEST(Cuda, Kernels) { GTEST_SKIP() << "built without the CUDA backend (AKV_CUDA=OFF or no nvcc)"; }
#else

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "attn/attention.h"
#include "attn/key_summary.h"
#include "cpu/matmul.h"
#include "cpu/quants.h"
#include "cpu/vec_ops.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_testing.h"
#include "kv/page/kv_page.h"
#include "model/rope.h"
#include "test_util.h"

namespace akv {
namespace {

#define AKV_REQUIRE_GPU()                                                                  \
  do {                                                                                     \
    if (cuda::DeviceCount() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel tests skipped"; \
    auto dev = cuda::QueryDevice(0);                                                       \
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();                                      \
  } while (0)

std::vector<float> Normal(size_t n, uint64_t seed, float sigma = 1.0f, float mean = 0.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(mean, sigma);
  std::vector<float> v(n);
  for (float& x : v) {
    x = d(rng);
    if (x == 0.0f) x = 1e-3f;
  }
  return v;
}

using test::RelL2;
double RelL2(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return RelL2(a.data(), b.data(), std::min(a.size(), b.size()));
}
bool AllFinite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

// ---- Matmul ------------------------------------------------------------------------------------

struct HostWeights {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

HostWeights MakeWeights(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  HostWeights hw;
  const size_t rb = RowBytes(type, cols);
  hw.bytes.resize(rb * rows);
  auto v = Normal(static_cast<size_t>(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = v.data() + r * cols;
    uint8_t* d = hw.bytes.data() + r * rb;
    switch (type) {
      case GgmlType::F32: std::memcpy(d, s, rb); break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<f16_t*>(d)[i] = F32ToF16(s[i]);
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) reinterpret_cast<bf16_t*>(d)[i] = F32ToBF16(s[i]);
        break;
      case GgmlType::Q8_0: QuantizeRowQ8_0(s, reinterpret_cast<BlockQ8_0*>(d), cols); break;
      case GgmlType::Q4_0: QuantizeRowQ4_0(s, reinterpret_cast<BlockQ4_0*>(d), cols); break;
      default: break;
    }
  }
  hw.w = WeightMatrix{type, hw.bytes.data(), rows, cols, rb};
  return hw;
}

TEST(CudaMatMul, EveryTypeMatchesCpuReference) {
  AKV_REQUIRE_GPU();
  struct Shape {
    int64_t rows, cols;
  };
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    for (Shape s : {Shape{67, 64}, Shape{256, 384}, Shape{100, 4096}}) {
      for (int n : {1, 3, 9, 40}) {
        for (int gemv_max : {4, 64}) {
          SCOPED_TRACE(std::string(TypeName(type)) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
                       " n=" + std::to_string(n) + " gemv<=" + std::to_string(gemv_max));
          HostWeights hw = MakeWeights(type, s.rows, s.cols, 7 + s.rows + n);
          auto x = Normal(static_cast<size_t>(n * s.cols), 100 + n);
          std::vector<float> ref(static_cast<size_t>(n * s.rows));
          MatMulReference(hw.w, x.data(), s.cols, n, ref.data(), s.rows);
          auto y = cuda::GpuMatMul(hw.w, x.data(), n, gemv_max);
          ASSERT_TRUE(y.ok()) << y.status().ToString();
          ASSERT_TRUE(AllFinite(*y));
          // cuBLAS rounds f16/bf16 activations (2^-11 / 2^-8 relative); everything else is f32.
          const bool cublas = n > gemv_max && (type == GgmlType::F16 || type == GgmlType::BF16);
          const double bound = cublas ? (type == GgmlType::BF16 ? 8e-3 : 1e-3) : 2e-5;
          EXPECT_LE(RelL2(*y, ref), bound);
        }
      }
    }
  }
}

// ---- Element-wise ------------------------------------------------------------------------------

TEST(CudaElementwise, RmsNormSwiGluRopeMatchCpu) {
  AKV_REQUIRE_GPU();
  for (int dim : {64, 384, 4096}) {
    const int rows = 5;
    auto x = Normal(static_cast<size_t>(rows) * dim, dim, 3.0f);
    auto w = Normal(dim, dim + 1);
    std::vector<float> ref(x.size());
    for (int r = 0; r < rows; ++r) RmsNorm(&x[r * dim], w.data(), 1e-5f, &ref[r * dim], dim);
    auto y = cuda::GpuRmsNorm(x.data(), w.data(), 1e-5f, rows, dim);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_LE(RelL2(*y, ref), 1e-5) << "rmsnorm dim " << dim;
  }
  {
    const int n = 11008;
    auto g = Normal(n, 1, 4.0f), u = Normal(n, 2);
    std::vector<float> ref(n);
    SwiGlu(g.data(), u.data(), ref.data(), n);
    auto y = cuda::GpuSwiGlu(g.data(), u.data(), n);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_LE(RelL2(*y, ref), 1e-5);
  }
  struct RopeCase {
    RopeStyle style;
    RopeScaling scaling;
    int n_dims;
    float base;
  };
  for (RopeCase rc : {RopeCase{RopeStyle::kNorm, RopeScaling::kNone, 128, 10000.f},
                      RopeCase{RopeStyle::kNeox, RopeScaling::kNone, 64, 1e6f},
                      RopeCase{RopeStyle::kNorm, RopeScaling::kLinear, 128, 10000.f},
                      RopeCase{RopeStyle::kNeox, RopeScaling::kYarn, 64, 10000.f}}) {
    RopeConfig c;
    c.style = rc.style;
    c.scaling = rc.scaling;
    c.n_dims = rc.n_dims;
    c.freq_base = rc.base;
    if (rc.scaling != RopeScaling::kNone) c.freq_scale = 0.25f;
    if (rc.scaling == RopeScaling::kYarn) {
      c.n_ctx_orig = 4096;
      c.yarn_ext_factor = 1.0f;
    }
    const int head_dim = rc.n_dims == 64 ? 128 : 128, heads = 3, n = 7, pos0 = 30000;
    auto x = Normal(static_cast<size_t>(n) * heads * head_dim, 5);
    std::vector<float> ref = x;
    std::vector<int32_t> pos(n);
    std::iota(pos.begin(), pos.end(), pos0);
    Rope rope(c, {});
    rope.Prepare(pos.data(), n);
    rope.Apply(ref.data(), n, heads, head_dim);
    auto y = cuda::GpuRope(c, {}, x.data(), n, heads, head_dim, pos0);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_LE(RelL2(*y, ref), 1e-5) << "rope n_dims " << rc.n_dims;
  }
}

// ---- Quantize on append ------------------------------------------------------------------------

CodecSpec TierCodec(int bits, int group) { return bits == 16 ? CodecSpec::F16() : CodecSpec::Quantized(bits, group); }

TEST(CudaKvAppend, PagesAreByteIdenticalToCpuPages) {
  AKV_REQUIRE_GPU();
  for (int dim : {64, 128}) {
    for (int bits : {16, 8, 4, 2}) {
      for (int group : {32, 64, 128}) {
        if (group > dim || (bits == 16 && group != 32)) continue;
        SCOPED_TRACE("D=" + std::to_string(dim) + " bits=" + std::to_string(bits) + " G=" + std::to_string(group));
        const int cap = 96, n = 77;
        auto keys = Normal(static_cast<size_t>(n) * dim, bits * 10 + dim, 2.0f, 0.5f);
        auto values = Normal(static_cast<size_t>(n) * dim, bits * 10 + dim + 1);
        for (int i = 0; i < n; ++i) keys[static_cast<size_t>(i) * dim + 3] *= 15.0f;  // an outlier channel
        auto page = KvPage::Create(TierCodec(bits, group), TierCodec(bits, group), dim, cap);
        ASSERT_TRUE(page.ok()) << page.status().ToString();
        for (int i = 0; i < n; ++i)
          ASSERT_TRUE(page->Append(&keys[static_cast<size_t>(i) * dim], &values[static_cast<size_t>(i) * dim], 1000 + i).ok());
        // The GPU gets the tokens in a shuffled order: tokens sharing a key tile are written
        // concurrently (packed codes of neighbouring slots share bytes).
        std::vector<int32_t> order(n), slots(n), positions(n);
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), std::mt19937(bits + dim));
        std::vector<float> k2(keys.size()), v2(values.size());
        for (int i = 0; i < n; ++i) {
          const int t = order[i];
          slots[i] = t;
          positions[i] = 1000 + t;
          std::memcpy(&k2[static_cast<size_t>(i) * dim], &keys[static_cast<size_t>(t) * dim], dim * 4);
          std::memcpy(&v2[static_cast<size_t>(i) * dim], &values[static_cast<size_t>(t) * dim], dim * 4);
        }
        auto gpu = cuda::GpuWritePage(bits, group, dim, cap, k2.data(), v2.data(), slots, positions);
        ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
        const PageLayout& L = page->layout();
        ASSERT_EQ(gpu->size(), L.total_bytes);
        // Every section but the key summary (the GPU tiers do not maintain it): positions, codes,
        // scales, zeros. Only the n used slots are compared (unused ones are zero on both).
        size_t mismatches = 0, first = 0;
        for (size_t i = 0; i < L.key_min_offset; ++i)
          if ((*gpu)[i] != page->data()[i] && mismatches++ == 0) first = i;
        EXPECT_EQ(mismatches, 0u) << "first differing byte at offset " << first;
      }
    }
  }
}

// The cold tier's demotion (LaunchKvConvertPage): a page re-encoded on the GPU equals the CPU's
// "de-quantize every slot, append it to a page of the new codec", byte for byte, key summary
// included (the GPU computes it from the new codes as KvPage::Append does from the stored keys).
TEST(CudaKvConvert, PagesEqualCpuReencoding) {
  AKV_REQUIRE_GPU();
  for (int dim : {64, 128}) {
    for (auto [src_bits, dst_bits] : {std::pair{4, 2}, {16, 2}, {16, 4}, {8, 4}, {2, 2}}) {
      for (int group : {32, 64}) {
        SCOPED_TRACE("D=" + std::to_string(dim) + " " + std::to_string(src_bits) + "->" + std::to_string(dst_bits) +
                     " bits, G=" + std::to_string(group));
        const int cap = 128;
        // A full page and a partial one, with an outlier channel.
        std::vector<KvPage> src;
        for (int n : {cap, 77}) {
          auto keys = Normal(static_cast<size_t>(n) * dim, dim + src_bits + n, 1.5f, 0.3f);
          auto values = Normal(static_cast<size_t>(n) * dim, dim + src_bits + n + 1);
          for (int i = 0; i < n; ++i) keys[static_cast<size_t>(i) * dim + 5] *= 12.0f;
          auto page = KvPage::Create(TierCodec(src_bits, group), TierCodec(src_bits, group), dim, cap);
          ASSERT_TRUE(page.ok()) << page.status().ToString();
          for (int i = 0; i < n; ++i)
            ASSERT_TRUE(page->Append(&keys[static_cast<size_t>(i) * dim], &values[static_cast<size_t>(i) * dim], 300 + 7 * i).ok());
          src.push_back(std::move(*page));
        }
        auto gpu = cuda::GpuConvertPages({&src[0], &src[1]}, dst_bits, group);
        ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
        for (size_t p = 0; p < src.size(); ++p) {
          auto want = KvPage::Create(TierCodec(dst_bits, group), TierCodec(dst_bits, group), dim, cap);
          ASSERT_TRUE(want.ok());
          std::vector<float> k(dim), v(dim);
          for (int i = 0; i < src[p].n_slots(); ++i) {
            ASSERT_TRUE(src[p].ReadSlot(i, k.data(), v.data()).ok());
            ASSERT_TRUE(want->Append(k.data(), v.data(), src[p].position(i)).ok());
          }
          const std::vector<uint8_t>& got = (*gpu)[p];
          ASSERT_EQ(got.size(), want->layout().total_bytes);
          size_t mismatches = 0, first = 0;
          for (size_t i = 0; i < got.size(); ++i)
            if (got[i] != want->data()[i] && mismatches++ == 0) first = i;
          EXPECT_EQ(mismatches, 0u) << "page " << p << ": first differing byte at offset " << first << " (key summary at "
                                    << want->layout().key_min_offset << ")";
        }
      }
    }
  }
}

// ---- Attention ---------------------------------------------------------------------------------

// Pages of one codec holding `n` random tokens (positions from `pos0`), `cap` slots per page.
std::vector<KvPage> MakePages(int bits, int group, int dim, int cap, int n, int pos0, uint64_t seed) {
  std::vector<KvPage> pages;
  auto keys = Normal(static_cast<size_t>(std::max(n, 1)) * dim, seed, 1.5f, 0.2f);
  auto values = Normal(static_cast<size_t>(std::max(n, 1)) * dim, seed + 1);
  for (int i = 0; i < n; ++i) {
    if (i % cap == 0) {
      auto p = KvPage::Create(TierCodec(bits, group), TierCodec(bits, group), dim, cap);
      EXPECT_TRUE(p.ok());
      pages.push_back(std::move(*p));
    }
    EXPECT_TRUE(pages.back().Append(&keys[static_cast<size_t>(i) * dim], &values[static_cast<size_t>(i) * dim], pos0 + i).ok());
  }
  return pages;
}

struct TierSpec {
  int bits, group, n;
};

struct AttentionCase {
  int dim, R, n_kv;
  std::vector<TierSpec> tiers;
  int splits;
  std::string Name() const {
    std::string s = "D=" + std::to_string(dim) + " R=" + std::to_string(R) + " kv=" + std::to_string(n_kv);
    for (const TierSpec& t : tiers) s += " [" + std::to_string(t.bits) + "b g" + std::to_string(t.group) + " n=" + std::to_string(t.n) + "]";
    return s + " splits=" + std::to_string(splits);
  }
};

// Builds the pages of every (tier, KV head), runs the GPU and the CPU reference (double) and
// compares outputs, softmax statistics and (decode) per-token mass.
void CheckAttention(const AttentionCase& c, int n_q) {
  SCOPED_TRACE(c.Name() + " queries=" + std::to_string(n_q));
  const int cap = 256;
  // pages[tier][job]
  std::vector<std::vector<std::vector<KvPage>>> pages(c.tiers.size());
  int pos = 0;
  for (size_t t = 0; t < c.tiers.size(); ++t) {
    for (int g = 0; g < c.n_kv; ++g)
      pages[t].push_back(MakePages(c.tiers[t].bits, c.tiers[t].group, c.dim, cap, c.tiers[t].n, pos, 1000 * t + 17 * g + c.dim));
    pos += c.tiers[t].n;
  }
  const int total = pos;
  std::vector<cuda::GpuTierInput> in(c.tiers.size());
  for (size_t t = 0; t < c.tiers.size(); ++t) {
    in[t].pages.resize(c.n_kv);
    for (int g = 0; g < c.n_kv; ++g)
      for (const KvPage& p : pages[t][g]) in[t].pages[g].push_back(&p);
  }
  const int n_heads = c.n_kv * c.R;
  auto q = Normal(static_cast<size_t>(n_q) * n_heads * c.dim, 42 + c.dim + c.R, 1.0f);

  // CPU reference: per KV head, every tier's pages as segments.
  std::vector<std::vector<KvSegment>> segs(c.n_kv);
  std::vector<std::vector<std::vector<float>>> mass(c.n_kv);
  std::vector<std::vector<float*>> mass_ptr(c.n_kv);
  for (int g = 0; g < c.n_kv; ++g) {
    for (size_t t = 0; t < c.tiers.size(); ++t)
      for (const KvPage& p : pages[t][g]) {
        segs[g].push_back(p.segment());
        mass[g].emplace_back(p.n_slots(), -1.0f);
      }
    for (auto& m : mass[g]) mass_ptr[g].push_back(m.data());
  }
  std::vector<KvHeadSegments> heads(c.n_kv);
  for (int g = 0; g < c.n_kv; ++g) {
    heads[g].segments = segs[g];
    if (n_q == 1) heads[g].mass = mass_ptr[g];
  }
  AttentionShape shape;
  shape.n_kv_heads = c.n_kv;
  shape.n_q_per_kv = c.R;
  shape.head_dim = c.dim;
  std::vector<float> ref(q.size());
  std::vector<SoftmaxStats> ref_stats(static_cast<size_t>(n_q) * n_heads);
  std::vector<int32_t> qpos(n_q);
  for (int i = 0; i < n_q; ++i) qpos[i] = total - n_q + i;
  ASSERT_TRUE(AttendReference(shape, n_q, q.data(), n_q == 1 ? nullptr : qpos.data(), heads, ref.data(), ref_stats.data()).ok());

  if (n_q == 1) {
    // f16 tiers: f32 arithmetic. Quantized tiers: exact codes, but 4-channel partial products and
    // one tile's (p * scale) * code sums in f16 pairs (kernel comment): ~1e-3 relative.
    bool quantized = false;
    for (const TierSpec& t : c.tiers) quantized |= t.bits != 16;
    const double tol = quantized ? 3e-3 : 1e-4;
    auto r = cuda::GpuDecodeAttention(c.dim, c.R, q.data(), in, /*want_mass=*/true, c.splits);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(AllFinite(r->out));
    EXPECT_LE(RelL2(r->out, ref), tol);
    // Logit error bound of the f16 products: ~3 * 2^-11 relative to sum_c |q_c| * max |k_c| (the
    // code term of an asymmetric key can be twice |k|), times the logit scale.
    std::vector<double> bound(n_heads, 0.0);
    if (quantized) {
      std::vector<float> row(c.dim);
      for (int g = 0; g < c.n_kv; ++g) {
        std::vector<double> kmax(c.dim, 0.0);
        for (const KvSegment& seg : segs[g])
          for (int slot = 0; slot < seg.n_slots; ++slot) {
            DecodeSegmentKey(seg, c.dim, slot, row.data());
            for (int ch = 0; ch < c.dim; ++ch) kmax[ch] = std::max(kmax[ch], double(std::fabs(row[ch])));
          }
        for (int h = 0; h < c.R; ++h) {
          double b = 0;
          for (int ch = 0; ch < c.dim; ++ch) b += std::fabs(q[size_t(g * c.R + h) * c.dim + ch]) * kmax[ch];
          bound[g * c.R + h] = 3e-3 * b / std::sqrt(double(c.dim));
        }
      }
    }
    for (int i = 0; i < n_heads; ++i) {
      const double m_tol = 1e-4 * (1 + std::fabs(ref_stats[i].max_logit)) + bound[i];
      EXPECT_NEAR(r->stats[i].max_logit, ref_stats[i].max_logit, m_tol) << "head " << i;
      EXPECT_NEAR(r->stats[i].sum_exp, ref_stats[i].sum_exp, (2e-4 + 2 * bound[i]) * ref_stats[i].sum_exp) << "head " << i;
    }
    // Mass: GPU [tier][job][slot] vs reference per (job, page).
    double max_err = 0, sum = 0;
    for (size_t t = 0; t < c.tiers.size(); ++t) {
      size_t at = 0;
      for (int g = 0; g < c.n_kv; ++g) {
        size_t seg0 = 0;
        for (size_t tt = 0; tt < t; ++tt) seg0 += pages[tt][g].size();
        for (size_t p = 0; p < pages[t][g].size(); ++p)
          for (int s = 0; s < pages[t][g][p].n_slots(); ++s) {
            const float gpu = r->mass[t][at++];
            const float cpu = mass[g][seg0 + p][s];
            max_err = std::max(max_err, std::fabs(double(gpu) - cpu));
            sum += gpu;
          }
      }
    }
    EXPECT_LE(max_err, quantized ? 2e-3 : 1e-5);
    if (total > 0) EXPECT_NEAR(sum, double(n_heads), 1e-3 * n_heads) << "mass sums to one per query head";
  } else {
    auto r = cuda::GpuPrefillAttention(c.dim, c.R, q.data(), n_q, total - n_q, in);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(AllFinite(*r));
    EXPECT_LE(RelL2(*r, ref), 1e-4);
  }
}

TEST(CudaDecodeAttention, GridMatchesCpuReference) {
  AKV_REQUIRE_GPU();
  for (int dim : {64, 128}) {
    for (int R : {1, 2, 3, 4, 8}) {  // R <= 2 and R > 2 take different value paths (kRawV)
      for (int n : {1, 31, 33, 300, 4113}) {
        for (TierSpec t : {TierSpec{16, 32, n}, TierSpec{8, 32, n}, TierSpec{4, 32, n}, TierSpec{4, dim, n},
                           TierSpec{2, 32, n}, TierSpec{2, 64, n}}) {
          CheckAttention({dim, R, 2, {t}, 0}, 1);
          if (HasFailure()) return;
        }
      }
      // Mixed tiers (hot f16 + warm int4 + promoted int2), and more splits than tiles (empty splits).
      CheckAttention({dim, R, 2, {{16, 32, 40}, {4, 32, 700}, {2, 32, 300}}, 0}, 1);
      CheckAttention({dim, R, 2, {{16, 32, 5}, {4, 64, 37}}, 9}, 1);
      if (HasFailure()) return;
    }
  }
}

TEST(CudaDecodeAttention, LongContexts) {
  AKV_REQUIRE_GPU();
  CheckAttention({128, 1, 1, {{16, 32, 32768}}, 0}, 1);
  CheckAttention({128, 4, 1, {{16, 32, 512}, {4, 32, 131072 - 512}}, 0}, 1);
  CheckAttention({64, 8, 1, {{2, 32, 65536}}, 0}, 1);
}

// Cold int2 pages live in pinned host memory in the CPU page layout: the CPU picks the pages to
// promote from their key summaries (an upper bound of q.k per page, attn/key_summary.h), the copy
// engine promotes them while the hot tier is attended, and the merged result equals attention
// over hot + promoted pages.
TEST(CudaColdTier, PromotedPagesAttendLikeTheCpu) {
  AKV_REQUIRE_GPU();
  const int dim = 128, R = 4, n_kv = 2, cap = 256, hot_n = 300, cold_n = 4 * cap + 100;
  std::vector<std::vector<KvPage>> hot(n_kv), cold(n_kv);
  for (int g = 0; g < n_kv; ++g) {
    hot[g] = MakePages(16, 32, dim, cap, hot_n, 0, 500 + g);
    cold[g] = MakePages(2, 32, dim, cap, cold_n, hot_n, 900 + g);
  }
  auto q = Normal(static_cast<size_t>(n_kv) * R * dim, 77);
  cuda::GpuTierInput hot_in;
  hot_in.pages.resize(n_kv);
  std::vector<std::vector<const KvPage*>> cold_in(n_kv);
  std::vector<std::vector<int>> promote(n_kv);
  for (int g = 0; g < n_kv; ++g) {
    for (const KvPage& p : hot[g]) hot_in.pages[g].push_back(&p);
    std::vector<std::pair<double, int>> bounds;
    for (size_t p = 0; p < cold[g].size(); ++p) {
      cold_in[g].push_back(&cold[g][p]);
      const KvSegment seg = cold[g][p].segment();
      double b = -INFINITY;
      for (int h = 0; h < R; ++h) b = std::max(b, QkUpperBound(&q[size_t(g * R + h) * dim], seg.key_min, seg.key_max, dim));
      bounds.push_back({b, static_cast<int>(p)});
    }
    std::sort(bounds.rbegin(), bounds.rend());
    promote[g] = {bounds[0].second, bounds[1].second};
  }
  auto gpu = cuda::GpuColdPromotionAttention(dim, R, q.data(), hot_in, cold_in, promote);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  std::vector<std::vector<KvSegment>> segs(n_kv);
  std::vector<KvHeadSegments> heads(n_kv);
  for (int g = 0; g < n_kv; ++g) {
    for (const KvPage& p : hot[g]) segs[g].push_back(p.segment());
    for (int p : promote[g]) segs[g].push_back(cold[g][p].segment());
    heads[g].segments = segs[g];
  }
  AttentionShape shape;
  shape.n_kv_heads = n_kv;
  shape.n_q_per_kv = R;
  shape.head_dim = dim;
  std::vector<float> ref(q.size());
  ASSERT_TRUE(AttendReference(shape, 1, q.data(), nullptr, heads, ref.data()).ok());
  EXPECT_LE(RelL2(*gpu, ref), 3e-3);
}

// The cold pages' promotion ranking on the GPU: the bound of every (layer, KV head, page) equals
// GroupQkUpperBound (double, CPU) to f32 rounding, for the summaries of real pages.
TEST(CudaPageBounds, MatchGroupQkUpperBound) {
  AKV_REQUIRE_GPU();
  for (int D : {64, 128}) {
    for (int R : {1, 4}) {
      const int n_layer = 2, n_kv = 3, max_pages = 5, n_pages = 4, cap = 32;
      std::vector<uint16_t> summaries(static_cast<size_t>(n_layer) * n_kv * max_pages * 2 * D, 0);
      for (int j = 0; j < n_layer * n_kv; ++j)
        for (int p = 0; p < n_pages; ++p) {
          std::vector<KvPage> page = MakePages(2, 32, D, cap, cap, 0, 1000 * D + 10 * j + p);
          const KvSegment seg = page[0].segment();
          uint16_t* at = &summaries[(static_cast<size_t>(j) * max_pages + p) * 2 * D];
          std::memcpy(at, seg.key_min, D * 2);
          std::memcpy(at + D, seg.key_max, D * 2);
        }
      const auto q = Normal(static_cast<size_t>(n_layer) * n_kv * R * D, 31 + D + R);
      auto gpu = cuda::GpuPageBounds(q, summaries, n_layer, n_kv, R, D, max_pages, n_pages);
      ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
      for (int j = 0; j < n_layer * n_kv; ++j)
        for (int p = 0; p < max_pages; ++p) {
          const float got = (*gpu)[static_cast<size_t>(j) * max_pages + p];
          if (p >= n_pages) {
            EXPECT_EQ(got, 0.0f);
            continue;
          }
          const uint16_t* at = &summaries[(static_cast<size_t>(j) * max_pages + p) * 2 * D];
          const double want = GroupQkUpperBound(&q[static_cast<size_t>(j) * R * D], R, at, at + D, D);
          double scale = 0;
          for (int c = 0; c < D; ++c) scale += std::fabs(q[static_cast<size_t>(j) * R * D + c]) * 8;
          EXPECT_NEAR(got, want, 1e-5 * scale) << "job " << j << " page " << p;
        }
    }
  }
}

TEST(CudaPrefillAttention, GridMatchesCpuReference) {
  AKV_REQUIRE_GPU();
  for (int dim : {64, 128}) {
    for (int R : {1, 2, 3, 4, 8, 16}) {  // 64 / R queries per block: 64 .. 4, and 21 rows of 3 (one row unused)
      CheckAttention({dim, R, 2, {{16, 32, 100}}, 0}, 37);
      CheckAttention({dim, R, 2, {{16, 32, 40}, {4, 32, 500}, {2, 64, 70}}, 0}, 64);
      if (HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace akv

#endif  // AKV_HAVE_CUDA
