// Builds random multi-segment KV heads (pages of any codec, arbitrary sizes, shuffled positions)
// and checks the kernel against AttendReference. Shared by the attn_* tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "attn/attention.h"
#include "core/thread_pool.h"
#include "kv/page/kv_page.h"
#include "kv_test_util.h"

namespace akv::test {

struct SegmentSpec {
  CodecSpec key = CodecSpec::F16();
  CodecSpec value = CodecSpec::F16();
  int n_slots = 0;
};

struct AttentionCase {
  int head_dim = 128;
  int n_kv_heads = 2;
  int group = 4;  // query heads per KV head
  std::vector<SegmentSpec> segments;  // the same list for every KV head (different data)
  int n_queries = 1;
  bool causal = false;  // query positions given
  bool want_mass = true;
  // Mass as a running score (AttentionOptions): the kernel's mass buffers start at a per-slot
  // pattern and must end at decay * pattern + weight * mass.
  float mass_decay = 0.0f;
  float mass_weight = 1.0f;
  float scale = 0;
  int threads = 1;
  int min_split_slots = 1024;
  int prefill_query_tile = 16;
  int key_outliers = 4;
  uint64_t seed = 1;

  std::string Describe() const {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on `" " + std::string`.
    std::string s = "D=" + std::to_string(head_dim);
    s.append(" kv=").append(std::to_string(n_kv_heads));
    s.append(" gqa=").append(std::to_string(group));
    s.append(" queries=").append(std::to_string(n_queries));
    s.append(" threads=").append(std::to_string(threads));
    s.append(causal ? " causal" : "").append(" segments:");
    for (const SegmentSpec& seg : segments) {
      s.append(" ").append(CodecName(seg.key)).append("/").append(CodecName(seg.value));
      s.append("x").append(std::to_string(seg.n_slots));
    }
    return s;
  }
};

// The pages behind one case, the segment views, mass buffers and queries.
struct AttentionFixture {
  std::vector<std::vector<KvPage>> pages;          // [kv head][segment]
  std::vector<std::vector<KvSegment>> segments;    // [kv head][segment]
  std::vector<std::vector<std::vector<float>>> mass, mass_ref;
  std::vector<std::vector<float*>> mass_ptrs, mass_ref_ptrs;
  std::vector<KvHeadSegments> heads, heads_ref;
  std::vector<float> q;
  std::vector<int32_t> query_positions;
  int total_slots_per_head = 0;
};

inline int RoundUp(int n, int m) { return (n + m - 1) / m * m; }

inline void BuildFixture(const AttentionCase& c, AttentionFixture* f) {
  std::mt19937_64 rng(c.seed);
  const int dim = c.head_dim;
  int total = 0;
  for (const SegmentSpec& s : c.segments) total += s.n_slots;
  f->total_slots_per_head = total;
  f->pages.resize(c.n_kv_heads);
  f->segments.resize(c.n_kv_heads);
  f->mass.resize(c.n_kv_heads);
  f->mass_ref.resize(c.n_kv_heads);
  f->mass_ptrs.resize(c.n_kv_heads);
  f->mass_ref_ptrs.resize(c.n_kv_heads);
  for (int g = 0; g < c.n_kv_heads; ++g) {
    // Positions 0..total-1, shuffled over the head's segments: segments are unordered sets.
    std::vector<int32_t> positions(total);
    std::iota(positions.begin(), positions.end(), 0);
    std::shuffle(positions.begin(), positions.end(), rng);
    int used = 0;
    for (size_t s = 0; s < c.segments.size(); ++s) {
      const SegmentSpec& spec = c.segments[s];
      const bool kivi = spec.key.grouping == KeyGrouping::kPerChannel;
      const int block = kivi ? spec.key.group_size : kTileSlots;
      // KIVI pages hold whole blocks: fill one more block than needed and view only n_slots.
      const int filled = kivi ? RoundUp(std::max(spec.n_slots, 1), block) : spec.n_slots;
      const int capacity = RoundUp(std::max(filled, 1), std::max(block, kTileSlots));
      auto page = KvPage::Create(spec.key, spec.value, dim, capacity);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      const uint64_t seed = c.seed * 1000 + g * 100 + s;
      const std::vector<float> keys = RandomKvRows(filled, dim, seed, c.key_outliers);
      const std::vector<float> values = RandomKvRows(filled, dim, seed + 50, 0);
      std::vector<int32_t> pos(filled);
      for (int i = 0; i < filled; ++i) pos[i] = i < spec.n_slots ? positions[used + i] : 1 << 30;
      if (filled > 0) {
        ASSERT_TRUE(page->AppendBlock(keys.data(), values.data(), pos.data(), filled).ok());
      }
      used += spec.n_slots;
      KvSegment view = page->segment();
      view.n_slots = spec.n_slots;
      f->pages[g].push_back(std::move(*page));
      f->segments[g].push_back(view);
      f->mass[g].emplace_back(std::max(spec.n_slots, 1), -1.0f);
      f->mass_ref[g].emplace_back(std::max(spec.n_slots, 1), -2.0f);
    }
    for (size_t s = 0; s < c.segments.size(); ++s) {
      f->mass_ptrs[g].push_back(f->mass[g][s].data());
      f->mass_ref_ptrs[g].push_back(f->mass_ref[g][s].data());
    }
  }
  for (int g = 0; g < c.n_kv_heads; ++g) {
    KvHeadSegments h, r;
    h.segments = f->segments[g];
    r.segments = f->segments[g];
    if (c.want_mass) {
      h.mass = f->mass_ptrs[g];
      r.mass = f->mass_ref_ptrs[g];
    }
    f->heads.push_back(h);
    f->heads_ref.push_back(r);
  }
  f->q = RandomKvRows(c.n_queries * c.n_kv_heads * c.group, dim, c.seed + 7, 0);
  if (c.causal) {
    // Mostly the last positions (a prefill block appended at the end), plus a few anywhere,
    // including before every stored slot (nothing visible).
    std::uniform_int_distribution<int> any(-3, std::max(total - 1, 0));
    for (int i = 0; i < c.n_queries; ++i)
      f->query_positions.push_back(i % 5 == 4 ? any(rng) : total - c.n_queries + i);
  }
}

// Max |a - b| over a row, relative to max |b| over it (b the reference).
inline double RowRelativeError(const float* a, const float* b, int n) {
  double err = 0, scale = 0;
  for (int i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? err / scale : err;
}

// Runs the kernel and the reference and checks outputs, statistics and mass to 1e-5.
inline void CheckAgainstReference(const AttentionCase& c, double tolerance = 1e-5) {
  SCOPED_TRACE(c.Describe());
  AttentionFixture f;
  BuildFixture(c, &f);
  if (::testing::Test::HasFatalFailure()) return;
  AttentionShape shape;
  shape.n_kv_heads = c.n_kv_heads;
  shape.n_q_per_kv = c.group;
  shape.head_dim = c.head_dim;
  shape.scale = c.scale;
  const int n_heads = shape.n_heads(), dim = c.head_dim;
  const size_t out_size = size_t(c.n_queries) * n_heads * dim;
  std::vector<float> out(out_size, NAN), ref(out_size, NAN);
  std::vector<SoftmaxStats> stats(size_t(c.n_queries) * n_heads), ref_stats(stats.size());
  const int32_t* qpos = c.causal ? f.query_positions.data() : nullptr;
  std::unique_ptr<ThreadPool> pool;
  AttentionOptions options;
  if (c.threads > 1) {
    pool = std::make_unique<ThreadPool>(c.threads);
    options.pool = pool.get();
  }
  options.min_split_slots = c.min_split_slots;
  options.prefill_query_tile = c.prefill_query_tile;
  options.mass_decay = c.mass_decay;
  options.mass_weight = c.mass_weight;
  const bool running = c.mass_decay != 0.0f || c.mass_weight != 1.0f;
  auto old_score = [](size_t i) { return 0.25f + 0.001f * static_cast<float>(i % 97); };
  if (running)
    for (auto& head : f.mass)
      for (size_t s = 0; s < head.size(); ++s)
        for (size_t i = 0; i < size_t(c.segments[s].n_slots); ++i) head[s][i] = old_score(i);
  AttentionWorkspace workspace;
  options.workspace = &workspace;
  ASSERT_TRUE(Attend(shape, c.n_queries, f.q.data(), qpos, f.heads, out.data(), stats.data(), options).ok());
  ASSERT_TRUE(AttendReference(shape, c.n_queries, f.q.data(), qpos, f.heads_ref, ref.data(), ref_stats.data()).ok());

  double worst = 0;
  for (size_t row = 0; row < size_t(c.n_queries) * n_heads; ++row) {
    const double e = RowRelativeError(out.data() + row * dim, ref.data() + row * dim, dim);
    worst = std::max(worst, e);
    ASSERT_LE(e, tolerance) << "output row " << row;
    const SoftmaxStats a = stats[row], b = ref_stats[row];
    if (std::isinf(b.max_logit)) {
      ASSERT_TRUE(std::isinf(a.max_logit) && a.sum_exp == 0) << "row " << row << " sees nothing";
      for (int i = 0; i < dim; ++i) ASSERT_EQ(out[row * dim + i], 0.0f);
      continue;
    }
    ASSERT_NEAR(a.max_logit, b.max_logit, tolerance * (1 + std::fabs(b.max_logit))) << "row " << row;
    ASSERT_NEAR(a.sum_exp, b.sum_exp, tolerance * b.sum_exp) << "row " << row;
  }
  if (!c.want_mass) return;
  for (int g = 0; g < c.n_kv_heads; ++g)
    for (size_t s = 0; s < c.segments.size(); ++s) {
      const std::vector<float>& m = f.mass[g][s];
      const std::vector<float>& r = f.mass_ref[g][s];
      for (int i = 0; i < c.segments[s].n_slots; ++i) {
        const float want = running ? c.mass_decay * old_score(size_t(i)) + c.mass_weight * r[i] : r[i];
        ASSERT_NEAR(m[i], want, tolerance * std::max(1.0f, std::fabs(want)))
            << "mass, kv head " << g << " segment " << s << " slot " << i;
      }
      if (c.segments[s].n_slots == 0) {
        ASSERT_EQ(m[0], -1.0f) << "an empty segment's mass is untouched";
      }
    }
}

}  // namespace akv::test
