// Decode: one query token. Work items are (KV head, split of its tiles); a KV head is split
// (split-K) only when there are fewer heads than the threads need to stay busy and its context
// is long. Each item runs the online softmax over its tiles for all query heads of the group;
// the items' (m, d, o) states are merged per row. Attention mass needs every head's final max
// and sum, known only after the last tile: with mass requested, each item also writes its tiles'
// softmax weights p = exp(logit - m_tile) and the running max m_tile of each row (one float per
// query head and slot, ~16 B per slot at GQA 4:1, against the 80+ bytes of K and V it reads), and
// a last pass rescales them into mass (p * exp(m_tile - m) / d: one multiply per slot and head;
// storing logits instead costs an exponential each). Re-running the scores instead (as prefill
// does, where the weights would be queries x heads x slots) costs +50%.
#include <algorithm>
#include <limits>

#include "attn/attention_internal.h"

namespace akv {

namespace {

struct DecodeItem {
  int group = 0;
  size_t span_begin = 0;
  size_t span_count = 0;
  size_t state_offset = 0;   // m [rows], d [rows], o [rows][D]
  size_t weights_offset = 0;   // with mass: [tiles][rows][32] softmax weights
  size_t tile_max_offset = 0;  // with mass: then [tiles][rows] running maxima
};

}  // namespace

void AttendDecode(const AttentionShape& shape, std::span<const KvHeadSegments> kv_heads, float* out,
                  SoftmaxStats* stats, const AttentionOptions& options, AttentionWorkspace::Buffers& buffers) {
  const int dim = shape.head_dim, rows = shape.n_q_per_kv, n_groups = shape.n_kv_heads;
  const int threads = options.pool ? options.pool->size() : 1;
  const int64_t min_split_tiles = std::max<int64_t>(1, options.min_split_slots / kTileSlots);
  // Enough items for the dynamic scheduler to balance uneven heads.
  const int64_t splits_wanted = threads > 1 ? (4 * threads + n_groups - 1) / n_groups : 1;

  std::vector<DecodeItem> items;
  buffers.spans.clear();
  const size_t state_floats = CacheLineFloats(size_t(rows) * (dim + 2));
  const bool want_mass = WantsMass(kv_heads);
  size_t weights_floats = 0;
  for (int g = 0; g < n_groups; ++g) {
    const int64_t tiles = HeadTiles(kv_heads[g]);
    const int64_t splits = std::clamp<int64_t>(std::min(splits_wanted, tiles / min_split_tiles), 1, std::max<int64_t>(tiles, 1));
    for (int64_t s = 0; s < splits; ++s) {
      DecodeItem item;
      item.group = g;
      item.span_begin = buffers.spans.size();
      AppendTileSpans(kv_heads[g], tiles * s / splits, tiles * (s + 1) / splits, &buffers.spans);
      item.span_count = buffers.spans.size() - item.span_begin;
      item.state_offset = items.size() * state_floats;
      const size_t item_tiles = size_t(tiles * (s + 1) / splits - tiles * s / splits);
      item.weights_offset = weights_floats;
      item.tile_max_offset = weights_floats + item_tiles * rows * kTileSlots;
      // Whole cache lines per item: the kernel's softmax stores its weights there aligned.
      if (want_mass) weights_floats += CacheLineFloats(item_tiles * rows * (kTileSlots + 1));
      items.push_back(item);
    }
  }
  buffers.states.resize(items.size() * state_floats + 16);
  float* states = AlignedStart(buffers.states);
  buffers.weights.resize(weights_floats + 16);
  float* weights = AlignedStart(buffers.weights);
  const std::vector<KernelRows>& group_rows = buffers.prepared.groups;

  auto run_item = [&](int64_t i, int /*thread*/) {
    const DecodeItem& item = items[i];
    AttentionTask task;
    task.rows = group_rows[item.group];
    task.spans = std::span<const TileSpan>(buffers.spans.data() + item.span_begin, item.span_count);
    task.m = states + item.state_offset;
    task.d = task.m + rows;
    task.o = task.d + rows;
    if (want_mass) {
      task.weights = weights + item.weights_offset;
      task.tile_max = weights + item.tile_max_offset;
    }
    RunAttentionTask(task);
  };
  if (options.pool) {
    options.pool->ParallelFor(int64_t(items.size()), run_item);
  } else {
    for (size_t i = 0; i < items.size(); ++i) run_item(int64_t(i), 0);
  }

  // Merge the splits of each group into the first one, then normalize into out.
  for (size_t i = 0; i < items.size();) {
    const DecodeItem& first = items[i];
    float* m = states + first.state_offset;
    float* d = m + rows;
    float* o = d + rows;
    size_t j = i + 1;
    for (; j < items.size() && items[j].group == first.group; ++j) {
      const float* m2 = states + items[j].state_offset;
      for (int r = 0; r < rows; ++r) {
        SoftmaxStats a{m[r], d[r]};
        MergeSoftmaxState(a, o + size_t(r) * dim, SoftmaxStats{m2[r], m2[rows + r]},
                          m2 + 2 * rows + size_t(r) * dim, dim);
        m[r] = a.max_logit;
        d[r] = a.sum_exp;
      }
    }
    for (int r = 0; r < rows; ++r) {
      const int head = first.group * rows + r;
      FinishSoftmaxState(SoftmaxStats{m[r], d[r]}, o + size_t(r) * dim, dim, out + size_t(head) * dim);
      if (stats) stats[head] = SoftmaxStats{m[r], d[r]};
      d[r] = d[r] > 0 ? 1.0f / d[r] : 0.0f;  // inverse, for the mass pass
    }
    for (size_t k = i + 1; k < j; ++k) {  // the mass pass of every split uses the merged stats
      std::copy(m, m + 2 * rows, states + items[k].state_offset);
    }
    i = j;
  }

  if (!want_mass) return;
  auto run_mass = [&](int64_t i, int /*thread*/) {
    const DecodeItem& item = items[i];
    MassFromWeightsTask task;
    task.n_rows = rows;
    task.spans = std::span<const TileSpan>(buffers.spans.data() + item.span_begin, item.span_count);
    task.weights = weights + item.weights_offset;
    task.tile_max = weights + item.tile_max_offset;
    task.m = states + item.state_offset;
    task.inv_d = task.m + rows;
    task.update = {options.mass_decay, options.mass_weight};
    RunMassFromWeights(task);
  };
  if (options.pool) {
    options.pool->ParallelFor(int64_t(items.size()), run_mass);
  } else {
    for (size_t i = 0; i < items.size(); ++i) run_mass(int64_t(i), 0);
  }
}

}  // namespace akv
