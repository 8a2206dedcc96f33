// Prefill: a block of queries, flash-attention style. Work items are (KV head, query tile); an
// item streams every key tile of the head once for its rows (queries x query heads), skipping
// tiles entirely above the causal diagonal, and keeps its (m, d, o) in per-thread scratch. The
// optional mass pass reruns scores per (KV head, range of key tiles) for all rows with the final
// statistics, so each slot's mass is summed by one item and no score matrix is stored.
#include <algorithm>

#include "attn/attention_internal.h"

namespace akv {

void AttendPrefill(const AttentionShape& shape, int n_queries, std::span<const KvHeadSegments> kv_heads,
                   float* out, SoftmaxStats* stats, const AttentionOptions& options,
                   AttentionWorkspace::Buffers& buffers) {
  const int dim = shape.head_dim, group = shape.n_q_per_kv, n_groups = shape.n_kv_heads;
  const int n_heads = shape.n_heads();
  const int chunks = dim / kUnitValues;
  const int query_tile = std::max(1, options.prefill_query_tile);
  const int n_query_tiles = (n_queries + query_tile - 1) / query_tile;
  const int threads = options.pool ? options.pool->size() : 1;
  const int group_rows = n_queries * group;

  // One span per segment: an item reads all of its head's tiles.
  std::vector<size_t> span_begin(n_groups + 1);
  buffers.spans.clear();
  for (int g = 0; g < n_groups; ++g) {
    span_begin[g] = buffers.spans.size();
    AppendTileSpans(kv_heads[g], 0, HeadTiles(kv_heads[g]), &buffers.spans);
  }
  span_begin[n_groups] = buffers.spans.size();

  const size_t state_floats = CacheLineFloats(size_t(query_tile) * group * (dim + 2));
  buffers.states.resize(size_t(threads) * state_floats + 16);
  float* states = AlignedStart(buffers.states);
  // m and 1/d of every row [group][row], for the mass pass.
  buffers.final_stats.resize(size_t(2) * n_groups * group_rows);
  float* final_m = buffers.final_stats.data();
  float* final_inv_d = final_m + size_t(n_groups) * group_rows;
  const std::vector<KernelRows>& prepared = buffers.prepared.groups;

  // Later query tiles see more keys under a causal mask: schedule them first.
  auto run_item = [&](int64_t i, int thread) {
    const int g = int(i % n_groups);
    const int qt = n_query_tiles - 1 - int(i / n_groups);
    const int q0 = qt * query_tile, nq = std::min(query_tile, n_queries - q0);
    const int row0 = q0 * group, n_rows = nq * group;
    const KernelRows& all = prepared[g];
    AttentionTask task;
    task.rows = all;
    task.rows.n_rows = n_rows;
    task.rows.q = all.q + size_t(row0) * dim;
    task.rows.qsum = all.qsum + size_t(row0) * chunks;
    if (all.q_rot) {
      task.rows.q_rot = all.q_rot + size_t(row0) * dim;
      task.rows.qsum_rot = all.qsum_rot + size_t(row0) * chunks;
    }
    if (all.positions) task.rows.positions = all.positions + row0;
    task.spans = std::span<const TileSpan>(buffers.spans.data() + span_begin[g], span_begin[g + 1] - span_begin[g]);
    task.m = states + size_t(thread) * state_floats;
    task.d = task.m + n_rows;
    task.o = task.d + n_rows;
    RunAttentionTask(task);
    for (int r = 0; r < n_rows; ++r) {
      const int query = q0 + r / group, head = g * group + r % group;
      const SoftmaxStats s{task.m[r], task.d[r]};
      FinishSoftmaxState(s, task.o + size_t(r) * dim, dim, out + (size_t(query) * n_heads + head) * dim);
      if (stats) stats[size_t(query) * n_heads + head] = s;
      final_m[size_t(g) * group_rows + row0 + r] = s.max_logit;
      final_inv_d[size_t(g) * group_rows + row0 + r] = s.sum_exp > 0 ? 1.0f / s.sum_exp : 0.0f;
    }
  };
  const int64_t n_items = int64_t(n_groups) * n_query_tiles;
  if (options.pool) {
    options.pool->ParallelFor(n_items, run_item);
  } else {
    for (int64_t i = 0; i < n_items; ++i) run_item(i, 0);
  }

  if (!WantsMass(kv_heads)) return;
  // Mass: (KV head, range of key tiles) items over all rows of the head.
  struct MassItem {
    int group;
    size_t span_begin, span_count;
  };
  std::vector<MassItem> mass_items;
  const int64_t splits_wanted = threads > 1 ? (4 * threads + n_groups - 1) / n_groups : 1;
  for (int g = 0; g < n_groups; ++g) {
    const int64_t tiles = HeadTiles(kv_heads[g]);
    const int64_t splits = std::clamp<int64_t>(splits_wanted, 1, std::max<int64_t>(tiles, 1));
    for (int64_t s = 0; s < splits; ++s) {
      const size_t begin = buffers.spans.size();
      AppendTileSpans(kv_heads[g], tiles * s / splits, tiles * (s + 1) / splits, &buffers.spans);
      mass_items.push_back({g, begin, buffers.spans.size() - begin});
    }
  }
  auto run_mass = [&](int64_t i, int /*thread*/) {
    const MassItem& item = mass_items[i];
    MassTask task;
    task.rows = prepared[item.group];
    task.spans = std::span<const TileSpan>(buffers.spans.data() + item.span_begin, item.span_count);
    task.m = final_m + size_t(item.group) * group_rows;
    task.inv_d = final_inv_d + size_t(item.group) * group_rows;
    task.update = {options.mass_decay, options.mass_weight};
    RunMassTask(task);
  };
  if (options.pool) {
    options.pool->ParallelFor(int64_t(mass_items.size()), run_mass);
  } else {
    for (size_t i = 0; i < mass_items.size(); ++i) run_mass(int64_t(i), 0);
  }
}

}  // namespace akv
