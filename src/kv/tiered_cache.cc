#include "kv/tiered_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "attn/key_summary.h"
#include "kv/codecs/hadamard.h"
#include "kv/codecs/kivi.h"
#include "kv/codecs/slot_codec.h"

namespace akv {

namespace {
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
constexpr int kTiers = 3;
}  // namespace

// A page: up to layout.capacity slots of one (layer, KV head) in one tier, plus per-slot
// scorer state. The byte buffer is the PageLayout image the attention kernel reads in place.
struct TieredCache::Page {
  Tier tier = Tier::kHot;
  const PageLayout* layout = nullptr;
  // Creation order within its store: batch moves go page by page in this order, never in
  // address order (addresses differ between runs once several threads allocate pages).
  uint64_t id = 0;
  std::unique_ptr<uint8_t, FreeDeleter> buf;
  int n = 0;
  std::vector<float> score;    // importance (decayed attention mass)
  std::vector<float> mass;     // attention mass of the last observed queries (kernel output)
  std::vector<float> mass_sum, mass_sq;  // AKCB heavy-hitter statistics
  std::vector<int32_t> n_obs;
  std::vector<int64_t> pinned_until;  // promoted slots stay warm until attention has seen them

  explicit Page(Tier t, const PageLayout* l) : tier(t), layout(l) {
    const size_t bytes = (l->total_bytes + 63) / 64 * 64;
    buf.reset(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
    std::memset(buf.get(), 0, bytes);
    score.assign(l->capacity, 0.f);
    mass.assign(l->capacity, 0.f);
    mass_sum.assign(l->capacity, 0.f);
    mass_sq.assign(l->capacity, 0.f);
    n_obs.assign(l->capacity, 0);
    pinned_until.assign(l->capacity, -1);
    ResetKeySummary(l->head_dim, key_min(), key_max());
  }
  // Sections a codec does not have (scales of f16 data) are at offset 0 in the layout.
  template <typename T>
  T* At(size_t offset) { return offset ? reinterpret_cast<T*>(buf.get() + offset) : nullptr; }
  int32_t* positions() { return reinterpret_cast<int32_t*>(buf.get() + layout->positions_offset); }
  void* key_data() { return buf.get() + layout->key_data_offset; }
  f16_t* key_scales() { return At<f16_t>(layout->key_scales_offset); }
  f16_t* key_zeros() { return At<f16_t>(layout->key_zeros_offset); }
  void* value_data() { return buf.get() + layout->value_data_offset; }
  f16_t* value_scales() { return At<f16_t>(layout->value_scales_offset); }
  f16_t* value_zeros() { return At<f16_t>(layout->value_zeros_offset); }
  f16_t* key_min() { return At<f16_t>(layout->key_min_offset); }
  f16_t* key_max() { return At<f16_t>(layout->key_max_offset); }
};

struct TieredCache::HeadStore {
  std::vector<std::unique_ptr<Page>> pages[kTiers];
  int64_t count[kTiers] = {0, 0, 0};
  uint64_t next_page_id = 0;
  int64_t total() const { return count[0] + count[1] + count[2]; }
};

TieredCache::TieredCache(const CacheConfig& config, const KvShape& shape, int64_t capacity)
    : KvCache(shape), config_(config), capacity_(capacity) {}

TieredCache::~TieredCache() = default;

StatusOr<std::unique_ptr<TieredCache>> TieredCache::Create(const CacheConfig& config, const KvShape& shape,
                                                           int64_t capacity) {
  AKV_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<TieredCache> c(new TieredCache(config, shape, capacity));
  const int hd = shape.head_dim;
  CodecSpec hot = CodecSpec::F16();
  CodecSpec warm_k = config.kivi_keys ? CodecSpec::Kivi(config.warm_bits, config.group_size, config.hadamard)
                                      : CodecSpec::Quantized(config.warm_bits, config.group_size, config.hadamard);
  CodecSpec warm_v = CodecSpec::Quantized(config.warm_value_bits ? config.warm_value_bits : config.warm_bits, config.group_size);
  CodecSpec cold_k = config.kivi_keys        ? CodecSpec::Kivi(config.cold_bits, config.group_size, config.hadamard)
                     : config.cold_key_block ? CodecSpec::Kivi(config.cold_bits, config.cold_key_block, config.hadamard)
                                             : CodecSpec::Quantized(config.cold_bits, config.group_size, config.hadamard);
  CodecSpec cold_v = CodecSpec::Quantized(config.cold_value_bits ? config.cold_value_bits : config.cold_bits, config.group_size);
  if (config.symmetric_values) {
    warm_v = warm_v.Symmetric();
    cold_v = cold_v.Symmetric();
  }
  if (config.group_size > hd && !config.kivi_keys)
    return InvalidArgument("group_size " + std::to_string(config.group_size) + " exceeds the head dimension " +
                           std::to_string(hd));
  const int page = config.PageSizeFor(capacity, static_cast<double>(shape.F16BytesPerToken()));
  AKV_ASSIGN_OR_RETURN(c->layout_[0], PageLayout::Make(hot, hot, hd, page));
  AKV_ASSIGN_OR_RETURN(c->layout_[1], PageLayout::Make(warm_k, warm_v, hd, page));
  AKV_ASSIGN_OR_RETURN(c->layout_[2], PageLayout::Make(cold_k, cold_v, hd, page));
  c->stores_.resize(static_cast<size_t>(shape.n_layer) * shape.n_head_kv);
  c->workspaces_ = std::vector<AttentionWorkspace>(shape.n_layer);
  c->last_q_.assign(static_cast<size_t>(shape.n_layer) * shape.n_head_kv * shape.n_q_per_kv * hd, 0.f);
  c->layer_hot_scale_.assign(shape.n_layer, 1.0);
  c->layer_stats_sum_.assign(shape.n_layer, {});
  c->last_max_logit_.assign(static_cast<size_t>(shape.n_layer) * shape.n_head_kv, -INFINITY);
  if (!config.hot_budget_layers.empty()) {
    AKV_ASSIGN_OR_RETURN(c->layer_hot_budget_, config.LayerHotBudgets());
    if (static_cast<int>(c->layer_hot_budget_.size()) != shape.n_layer)
      return InvalidArgument("hot_budget_layers has " + std::to_string(c->layer_hot_budget_.size()) +
                             " entries but the model has " + std::to_string(shape.n_layer) + " layers");
  }
  return c;
}

void TieredCache::Clear() {
  for (HeadStore& hs : stores_) hs = HeadStore();
  n_positions_ = 0;
  steps_ = decode_steps_ = 0;
  last_n_q_ = 0;
  promotions_ = demotions_ = evictions_ = 0;
  max_position_ = -1;
  std::fill(layer_hot_scale_.begin(), layer_hot_scale_.end(), 1.0);
  std::fill(layer_stats_sum_.begin(), layer_stats_sum_.end(), LayerAttentionStats{});
  layer_stats_passes_ = 0;
  adaptive_hot_ = -1;
  byte_scale_ = 1.0;
}

TieredCache::Page* TieredCache::TailPage(HeadStore& hs, Tier tier) {
  auto& pages = hs.pages[static_cast<int>(tier)];
  if (pages.empty() || pages.back()->n == pages.back()->layout->capacity) {
    pages.push_back(std::make_unique<Page>(tier, &layout_[static_cast<int>(tier)]));
    pages.back()->id = hs.next_page_id++;
  }
  return pages.back().get();
}

Status TieredCache::Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) {
  const int hd = shape_.head_dim;
  HeadStore& first = stores_[static_cast<size_t>(layer) * shape_.n_head_kv];
  if (first.total() + n > capacity_)
    return OutOfRange("KV cache full: " + std::to_string(first.total()) + " + " + std::to_string(n) +
                      " tokens exceed the context of " + std::to_string(capacity_));
  const CodecSpec& codec = layout_[0].key;
  for (int h = 0; h < shape_.n_head_kv; ++h) {
    HeadStore& hs = stores_[static_cast<size_t>(layer) * shape_.n_head_kv + h];
    for (int64_t t = 0; t < n; ++t) {
      Page* p = TailPage(hs, Tier::kHot);
      const float* kt = k + (t * shape_.n_head_kv + h) * hd;
      const float* vt = v + (t * shape_.n_head_kv + h) * hd;
      const int s = p->n;
      AKV_RETURN_IF_ERROR(EncodeKeySlot(codec, hd, kt, s, p->key_data(), p->key_scales(), p->key_zeros()));
      AKV_RETURN_IF_ERROR(EncodeValueSlot(layout_[0].value, hd, vt, s, p->value_data(), p->value_scales(), p->value_zeros()));
      ExtendKeySummary(kt, hd, p->key_min(), p->key_max());
      p->positions()[s] = positions[t];
      p->score[s] = p->mass[s] = p->mass_sum[s] = p->mass_sq[s] = 0.f;
      p->n_obs[s] = 0;
      p->pinned_until[s] = -1;
      ++p->n;
      ++hs.count[0];
    }
  }
  if (layer == 0) {
    n_positions_ += n;
    for (int64_t t = 0; t < n; ++t) max_position_ = std::max(max_position_, positions[t]);
  }
  return Status::Ok();
}

Status TieredCache::Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out,
                           ThreadPool& pool) {
  const int n_kv = shape_.n_head_kv;
  const int hd = shape_.head_dim;
  AttentionShape shape;
  shape.n_kv_heads = n_kv;
  shape.n_q_per_kv = shape_.n_q_per_kv;
  shape.head_dim = hd;
  const float decay = static_cast<float>(config_.decay), w = static_cast<float>(config_.w_attn);
  const bool pivotal = config_.score_mode == "pivotal", akcb = config_.score_mode == "akcb";
  // A decode step in attn mode folds `score = decay * score + w * mass` into the kernel's mass
  // pass (no second sweep over every stored slot's score and mass). Prompt passes keep the mass:
  // the layer statistics read it.
  const bool fused_score = n_q == 1 && !pivotal && !akcb;
  std::vector<std::vector<KvSegment>> segs(n_kv);
  std::vector<std::vector<float*>> masses(n_kv), no_mass(n_kv);
  std::vector<std::vector<Page*>> attended(n_kv);
  for (int h = 0; h < n_kv; ++h) {
    HeadStore& hs = stores_[static_cast<size_t>(layer) * n_kv + h];
    for (int t = 0; t < kTiers; ++t) {
      for (auto& p : hs.pages[t]) {
        if (p->n == 0) continue;
        if (t == 2 && !config_.cold_attend_all) continue;
        segs[h].push_back(SegmentOfPage(layout_[t], p->buf.get(), p->n));
        masses[h].push_back(fused_score ? p->score.data() : p->mass.data());
        attended[h].push_back(p.get());
      }
    }
    no_mass[h].assign(segs[h].size(), nullptr);
  }
  AttentionOptions opts;
  opts.pool = &pool;
  opts.workspace = &workspaces_[layer];
  if (fused_score) {
    opts.mass_decay = decay;
    opts.mass_weight = w;
  }
  // Scores come from the last observation_window queries of the pass (all of a decode step):
  // attend the earlier queries without mass output, then the window with it.
  const int64_t n_obs = std::min<int64_t>(n_q, config_.observation_window);
  const int64_t n_head_total = shape.n_heads();
  if (n_q > n_obs) {
    std::vector<KvHeadSegments> heads(n_kv);
    for (int h = 0; h < n_kv; ++h) heads[h] = {segs[h], {}};
    AKV_RETURN_IF_ERROR(akv::Attend(shape, static_cast<int>(n_q - n_obs), q, positions, heads, out, nullptr, opts));
  }
  {
    std::vector<KvHeadSegments> heads(n_kv);
    for (int h = 0; h < n_kv; ++h) heads[h] = {segs[h], masses[h]};
    const int64_t off = (n_q - n_obs) * n_head_total * hd;
    std::vector<SoftmaxStats> stats(n_obs * n_head_total);
    // A decode query at or after every stored position sees every slot: no causal mask, so the
    // kernel need not read the slots' positions.
    const bool sees_all = n_q == 1 && positions && positions[0] >= max_position_;
    AKV_RETURN_IF_ERROR(akv::Attend(shape, static_cast<int>(n_obs), q + off,
                                    sees_all ? nullptr : positions + (n_q - n_obs), heads, out + off,
                                    stats.data(), opts));
    // The newest query's largest logit per KV head: a cold page whose bound cannot come near it
    // cannot draw attention worth promoting for.
    for (int h = 0; h < n_kv; ++h) {
      float m = -INFINITY;
      for (int g = 0; g < shape.n_q_per_kv; ++g)
        m = std::max(m, stats[(n_obs - 1) * n_head_total + h * shape.n_q_per_kv + g].max_logit);
      last_max_logit_[static_cast<size_t>(layer) * n_kv + h] = m;
    }
  }
  // The pass's last query drives promotion (the newest token asks what it needs).
  std::copy_n(q + (n_q - 1) * n_head_total * hd, n_head_total * hd, &last_q_[static_cast<size_t>(layer) * n_head_total * hd]);
  if (layer == 0) last_n_q_ = n_q;

  // Scores. attn: decayed attention mass; pivotal (ScissorHands): decayed count of the steps in
  // which the slot drew more than the average attention; akcb: mean + gamma * std of its mass.
  // One pass per page and only the statistics the mode reads (this runs every decode step over
  // every stored token), one task per KV head.
  const float gamma = static_cast<float>(config_.gamma);
  auto update_head = [&](int64_t h, int) {
    HeadStore& hs = stores_[static_cast<size_t>(layer) * n_kv + h];
    const std::vector<Page*>& seen = attended[static_cast<size_t>(h)];
    // Cold pages the kernel did not read (cold_attend_all=false) only decay; the attended ones
    // decay below, fused with their update.
    if (!akcb && !config_.cold_attend_all)
      for (auto& p : hs.pages[2])
        for (int s = 0; s < p->n; ++s) p->score[s] *= decay;
    if (akcb) {
      for (Page* p : seen) {
        float* __restrict sum = p->mass_sum.data();
        float* __restrict sq = p->mass_sq.data();
        int32_t* __restrict n_obs = p->n_obs.data();
        float* __restrict score = p->score.data();
        const float* __restrict mass = p->mass.data();
        for (int s = 0; s < p->n; ++s) {
          const float m = mass[s];
          sum[s] += m;
          sq[s] += m * m;
          const float count = static_cast<float>(++n_obs[s]);
          const float mean = sum[s] / count;
          const float var = std::max(0.f, sq[s] / count - mean * mean);
          score[s] = mean + gamma * std::sqrt(var);
        }
      }
    } else if (pivotal) {
      double mass_total = 0;
      int64_t n_seen = 0;
      for (Page* p : seen) {
        for (int s = 0; s < p->n; ++s) mass_total += p->mass[s];
        n_seen += p->n;
      }
      const float average = n_seen ? static_cast<float>(mass_total / n_seen) : 0.f;
      for (Page* p : seen) {
        float* __restrict score = p->score.data();
        const float* __restrict mass = p->mass.data();
        for (int s = 0; s < p->n; ++s) score[s] = score[s] * decay + (mass[s] > average ? 1.f : 0.f);
      }
    } else if (!fused_score) {
      for (Page* p : seen) {
        float* __restrict score = p->score.data();
        const float* __restrict mass = p->mass.data();
        for (int s = 0; s < p->n; ++s) score[s] = score[s] * decay + w * mass[s];
      }
    }
  };
  if (!(fused_score && config_.cold_attend_all)) pool.ParallelFor(n_kv, update_head);
  return Status::Ok();
}

void TieredCache::RemoveSlot(Page& p, int slot) {
  const int last = p.n - 1;
  if (slot != last) {
    const PageLayout& L = *p.layout;
    CopyKeySlot(L.key, L.head_dim, p.key_data(), p.key_scales(), p.key_zeros(), last, slot);
    CopyValueSlot(L.value, L.head_dim, p.value_data(), p.value_scales(), p.value_zeros(), last, slot);
    p.positions()[slot] = p.positions()[last];
    p.score[slot] = p.score[last];
    p.mass[slot] = p.mass[last];
    p.mass_sum[slot] = p.mass_sum[last];
    p.mass_sq[slot] = p.mass_sq[last];
    p.n_obs[slot] = p.n_obs[last];
    p.pinned_until[slot] = p.pinned_until[last];
  }
  --p.n;
}

void TieredCache::MoveSlot(HeadStore& hs, Page& src, int slot, Tier to) {
  const int hd = shape_.head_dim;
  const PageLayout& S = *src.layout;
  float key[512], value[512];
  DecodeKeySlot(S.key, hd, src.key_data(), src.key_scales(), src.key_zeros(), slot, key);
  DecodeValueSlot(S.value, hd, src.value_data(), src.value_scales(), src.value_zeros(), slot, value);
  Page* dst = TailPage(hs, to);
  const PageLayout& D = *dst->layout;
  // Keys live in each codec's domain: rotate or un-rotate when the Hadamard setting differs.
  if (D.key.hadamard && !S.key.hadamard) (void)HadamardRotate(key, hd);
  if (!D.key.hadamard && S.key.hadamard) (void)HadamardRotateInverse(key, hd);
  const int d = dst->n;
  (void)EncodeKeySlot(D.key, hd, key, d, dst->key_data(), dst->key_scales(), dst->key_zeros());
  (void)EncodeValueSlot(D.value, hd, value, d, dst->value_data(), dst->value_scales(), dst->value_zeros());
  ExtendKeySummary(key, hd, dst->key_min(), dst->key_max());
  dst->positions()[d] = src.positions()[slot];
  dst->score[d] = src.score[slot];
  dst->mass[d] = src.mass[slot];
  dst->mass_sum[d] = src.mass_sum[slot];
  dst->mass_sq[d] = src.mass_sq[slot];
  dst->n_obs[d] = src.n_obs[slot];
  dst->pinned_until[d] = src.pinned_until[slot];
  ++dst->n;
  ++hs.count[static_cast<int>(to)];
  --hs.count[static_cast<int>(src.tier)];
  RemoveSlot(src, slot);
}

void TieredCache::Compact(HeadStore& hs, int tier) {
  auto& pages = hs.pages[tier];
  const int cap = layout_[tier].capacity;
  const size_t needed = static_cast<size_t>((hs.count[tier] + cap - 1) / cap);
  if (pages.size() <= needed) return;
  const int hd = shape_.head_dim;
  const PageLayout& L = layout_[tier];
  size_t i = 0;
  while (i + 1 < pages.size()) {
    Page& dst = *pages[i];
    Page& src = *pages.back();
    if (dst.n == cap) {
      ++i;
      continue;
    }
    if (src.n == 0) {
      pages.pop_back();
      continue;
    }
    // Raw copy of the source page's last slot into the hole: no re-quantization. The
    // destination's key summary widens to the source page's (still a valid bound).
    const int from = src.n - 1, to = dst.n;
    CopyKeySlotBetween(L.key, hd, src.key_data(), src.key_scales(), src.key_zeros(), from, dst.key_data(),
                       dst.key_scales(), dst.key_zeros(), to);
    CopyValueSlotBetween(L.value, hd, src.value_data(), src.value_scales(), src.value_zeros(), from, dst.value_data(),
                         dst.value_scales(), dst.value_zeros(), to);
    for (int c = 0; c < hd; ++c) {
      if (F16ToF32(src.key_min()[c]) < F16ToF32(dst.key_min()[c])) dst.key_min()[c] = src.key_min()[c];
      if (F16ToF32(src.key_max()[c]) > F16ToF32(dst.key_max()[c])) dst.key_max()[c] = src.key_max()[c];
    }
    dst.positions()[to] = src.positions()[from];
    dst.score[to] = src.score[from];
    dst.mass[to] = src.mass[from];
    dst.mass_sum[to] = src.mass_sum[from];
    dst.mass_sq[to] = src.mass_sq[from];
    dst.n_obs[to] = src.n_obs[from];
    dst.pinned_until[to] = src.pinned_until[from];
    ++dst.n;
    --src.n;
  }
  while (!pages.empty() && pages.back()->n == 0) pages.pop_back();
}

double TieredCache::AdaptiveHotTokens(int layer, double hot, double protected_slots, double n_stored) const {
  // hot * c * scale_l per layer, floored at the protection zones (always hot) and capped at the
  // stored tokens, with c chosen so the layers still hold hot tokens in all:
  // sum_l clamp(hot c scale_l, protected, n_stored) = L hot.
  const int L = shape_.n_layer;
  auto share = [&](int l, double c) { return std::min(std::max(hot * c * layer_hot_scale_[l], protected_slots), n_stored); };
  if (hot >= n_stored) return n_stored;
  std::lock_guard<std::mutex> lock(adaptive_mu_);
  // Protection alone fills the budget: no layer gets more (the zones are hot anyway).
  if (hot <= protected_slots) return std::min(protected_slots, n_stored);
  if (hot != adaptive_hot_ || protected_slots != adaptive_protected_ || n_stored != adaptive_stored_) {
    auto total = [&](double c) {
      double t = 0;
      for (int l = 0; l < L; ++l) t += share(l, c);
      return t;
    };
    double lo = 0, hi = 1;
    while (total(hi) < L * hot && hi < 1e9) hi *= 2;
    for (int it = 0; it < 60; ++it) {
      const double mid = 0.5 * (lo + hi);
      (total(mid) < L * hot ? lo : hi) = mid;
    }
    adaptive_hot_ = hot;
    adaptive_protected_ = protected_slots;
    adaptive_stored_ = n_stored;
    adaptive_c_ = hi;
  }
  return share(layer, adaptive_c_);
}

int64_t TieredCache::HotBudget(int layer, int64_t n_stored) const {
  double b;
  if (!layer_hot_budget_.empty()) {
    b = static_cast<double>(CacheConfig::BudgetTokens(layer_hot_budget_[layer], n_stored));
  } else {
    // PyramidKV's per-layer scale goes on max_total when there is one, else on the hot budget.
    const double hot = static_cast<double>(CacheConfig::BudgetTokens(config_.hot_budget, n_stored));
    b = config_.layer_adaptive ? AdaptiveHotTokens(layer, hot, ProtectedSlots(n_stored), static_cast<double>(n_stored)) : hot;
    b *= config_.max_total > 0 ? 1.0 : LayerBudgetScale(layer);
  }
  return static_cast<int64_t>(std::llround(b * byte_scale_));
}

double TieredCache::ProtectedSlots(int64_t n_stored) const {
  return static_cast<double>(std::min<int64_t>(n_stored, config_.n_anchors + config_.protect_recent));
}

int64_t TieredCache::WarmBudget(int layer, int64_t n_stored) const {
  double b = static_cast<double>(CacheConfig::BudgetTokens(config_.warm_budget, n_stored));
  // A layer given more (fewer) f16 tokens than the hot budget quantizes as many fewer (more):
  // hot + warm per layer stays what the budgets say.
  if (config_.layer_adaptive && layer_hot_budget_.empty() && b > 0) {
    const double hot = static_cast<double>(CacheConfig::BudgetTokens(config_.hot_budget, n_stored));
    b = std::max(0.0, b + hot - AdaptiveHotTokens(layer, hot, ProtectedSlots(n_stored), static_cast<double>(n_stored)));
  }
  return static_cast<int64_t>(std::llround(b * byte_scale_));
}

int64_t TieredCache::TotalBytes() const {
  int64_t bytes = 0;
  for (const HeadStore& hs : stores_)
    for (int t = 0; t < kTiers; ++t) bytes += static_cast<int64_t>(hs.pages[t].size() * layout_[t].total_bytes);
  return bytes;
}

double TieredCache::LayerBudgetScale(int layer) const {
  if (!config_.pyramid || shape_.n_layer < 2) return 1.0;
  return 1.5 - static_cast<double>(layer) / (shape_.n_layer - 1);  // 1.5x first layer .. 0.5x last
}

void TieredCache::Migrate(int layer, int head, bool decode) {
  HeadStore& hs = stores_[static_cast<size_t>(layer) * shape_.n_head_kv + head];
  const int64_t total = hs.total();
  if (total == 0) return;
  // Ranking score per position: the slot's score, max-pooled over neighbouring positions
  // (SnapKV's pooling keeps the context of a heavy hitter with it), or its recency.
  const int32_t max_pos = max_position_;
  std::vector<float> by_pos;
  if (!config_.rank_by_recency) {
    by_pos.assign(static_cast<size_t>(max_pos) + 1, -1.f);
    for (int t = 0; t < kTiers; ++t)
      for (auto& p : hs.pages[t])
        for (int s = 0; s < p->n; ++s) {
          const int32_t pos = p->positions()[s];
          if (pos >= 0 && pos <= max_pos) by_pos[pos] = p->score[s];
        }
  }
  const int r = config_.pool_kernel / 2;
  auto rank_score = [&](int32_t pos) {
    if (config_.rank_by_recency) return static_cast<float>(pos);
    float best = by_pos[pos];
    for (int32_t j = std::max(0, pos - r); j <= std::min(max_pos, pos + r); ++j) best = std::max(best, by_pos[j]);
    return best;
  };
  auto is_protected = [&](int32_t pos) { return pos < config_.n_anchors || pos > max_pos - config_.protect_recent; };

  using Candidate = SlotRef;
  // The `excess` lowest-ranked unprotected slots of the given tiers.
  auto lowest = [&](std::initializer_list<int> tiers, int64_t excess) {
    std::vector<Candidate> c;
    if (excess <= 0) return c;
    for (int t : tiers)
      for (auto& p : hs.pages[t])
        for (int s = 0; s < p->n; ++s) {
          const int32_t pos = p->positions()[s];
          if (is_protected(pos) || p->pinned_until[s] > decode_steps_) continue;
          c.push_back({rank_score(pos), p.get(), s, pos});
        }
    excess = std::min<int64_t>(excess, c.size());
    // Ties (equal scores are common: never-attended slots) break by position, oldest first, so
    // the choice never depends on where pages happen to sit in memory.
    std::nth_element(c.begin(), c.begin() + excess, c.end(), [](const Candidate& a, const Candidate& b) {
      return a.score != b.score ? a.score < b.score : a.position < b.position;
    });
    c.resize(excess);
    // Page by page, descending slot order: the swap-with-last removal never disturbs a slot
    // still to be moved.
    std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
      return a.page != b.page ? a.page->id < b.page->id : a.slot > b.slot;
    });
    return c;
  };

  // Eviction first (only with max_total), across all tiers, so nothing is re-quantized just
  // before it is dropped.
  if (config_.max_total > 0 && (config_.evict_in_decode || !decode)) {
    const int64_t cap = static_cast<int64_t>(std::llround(
        static_cast<double>(CacheConfig::BudgetTokens(config_.max_total, total)) * LayerBudgetScale(layer)));
    for (const Candidate& x : lowest({0, 1, 2}, total - cap)) {
      const int t = static_cast<int>(x.page->tier);
      RemoveSlot(*x.page, x.slot);
      --hs.count[t];
      ++evictions_;
    }
  }
  const int64_t stored = hs.total();
  // Demotion hot -> warm -> cold.
  int64_t hot_excess = hs.count[0] - HotBudget(layer, stored);
  if (layout_[1].per_channel_keys()) {
    // KIVI keys are quantized a block of group_size tokens at a time.
    hot_excess = hot_excess / config_.group_size * config_.group_size;
    DemoteBlocks(hs, lowest({0}, hot_excess), Tier::kWarm);
  } else {
    for (const Candidate& x : lowest({0}, hot_excess)) {
      MoveSlot(hs, *x.page, x.slot, Tier::kWarm);
      ++demotions_;
    }
    int64_t warm_excess = hs.count[1] - WarmBudget(layer, stored);
    if (layout_[2].per_channel_keys()) {
      // cold_key_block: the warm tier stages tokens per token until a whole block can go cold.
      const int block = layout_[2].key.group_size;
      DemoteBlocks(hs, lowest({1}, warm_excess / block * block), Tier::kCold);
    } else {
      for (const Candidate& x : lowest({1}, warm_excess)) {
        MoveSlot(hs, *x.page, x.slot, Tier::kCold);
        ++demotions_;
      }
    }
  }
  for (int t = 0; t < kTiers; ++t) Compact(hs, t);
}

void TieredCache::DemoteBlocks(HeadStore& hs, std::vector<SlotRef> slots, Tier to) {
  const PageLayout& W = layout_[static_cast<int>(to)];
  const int G = W.key.group_size, hd = shape_.head_dim;
  const int64_t n = static_cast<int64_t>(slots.size()) / G * G;
  if (n == 0) return;
  // Lowest ranked first, ties (and rank_by_recency) oldest first, so KIVI's blocks hold
  // consecutive tokens.
  std::vector<SlotRef> order(slots.begin(), slots.end());
  std::sort(order.begin(), order.end(), [](const SlotRef& a, const SlotRef& b) {
    return a.score != b.score ? a.score < b.score : a.position < b.position;
  });
  order.resize(n);
  std::vector<float> keys(static_cast<size_t>(G) * hd), value(hd);
  for (int64_t b = 0; b < n; b += G) {
    Page* dst = TailPage(hs, to);  // capacity is a multiple of G and blocks fill it whole
    const int first = dst->n;
    for (int i = 0; i < G; ++i) {
      const SlotRef& x = order[b + i];
      const PageLayout& S = *x.page->layout;
      DecodeKeySlot(S.key, hd, x.page->key_data(), x.page->key_scales(), x.page->key_zeros(), x.slot, &keys[i * hd]);
      if (W.key.hadamard && !S.key.hadamard) (void)HadamardRotate(&keys[i * hd], hd);
      if (!W.key.hadamard && S.key.hadamard) (void)HadamardRotateInverse(&keys[i * hd], hd);
      --hs.count[static_cast<int>(x.page->tier)];
      DecodeValueSlot(S.value, hd, x.page->value_data(), x.page->value_scales(), x.page->value_zeros(), x.slot, value.data());
      (void)EncodeValueSlot(W.value, hd, value.data(), first + i, dst->value_data(), dst->value_scales(), dst->value_zeros());
      ExtendKeySummary(&keys[i * hd], hd, dst->key_min(), dst->key_max());
      dst->positions()[first + i] = x.page->positions()[x.slot];
      dst->score[first + i] = x.page->score[x.slot];
      dst->mass[first + i] = x.page->mass[x.slot];
      dst->mass_sum[first + i] = x.page->mass_sum[x.slot];
      dst->mass_sq[first + i] = x.page->mass_sq[x.slot];
      dst->n_obs[first + i] = x.page->n_obs[x.slot];
      dst->pinned_until[first + i] = -1;
    }
    (void)EncodeKeyBlockPerChannel(W.key, hd, keys.data(), first, dst->key_data(), dst->key_scales(), dst->key_zeros());
    dst->n += G;
    hs.count[static_cast<int>(to)] += G;
    demotions_ += G;
  }
  // Remove the moved slots from their hot pages, page by page in descending slot order.
  std::sort(order.begin(), order.end(), [](const SlotRef& a, const SlotRef& b) {
    return a.page != b.page ? a.page->id < b.page->id : a.slot > b.slot;
  });
  for (const SlotRef& x : order) RemoveSlot(*x.page, x.slot);
}

void TieredCache::Promote(int layer, int head) {
  HeadStore& hs = stores_[static_cast<size_t>(layer) * shape_.n_head_kv + head];
  auto& cold = hs.pages[2];
  if (cold.empty() || config_.promote_k == 0) return;
  const int hd = shape_.head_dim, g = shape_.n_q_per_kv;
  const float* q = &last_q_[(static_cast<size_t>(layer) * shape_.n_head_kv * g + static_cast<size_t>(head) * g) * hd];
  std::vector<float> qd(static_cast<size_t>(g) * hd);
  for (int i = 0; i < g; ++i) (void)QueryInKeyDomain(layout_[2].key, q + i * hd, hd, &qd[i * hd]);
  std::vector<std::pair<double, Page*>> bound;
  for (auto& p : cold) {
    if (p->n == 0) continue;
    bound.push_back({GroupQkUpperBound(qd.data(), g, p->key_min(), p->key_max(), hd), p.get()});
  }
  const size_t k = std::min<size_t>(config_.promote_k, bound.size());
  std::partial_sort(bound.begin(), bound.begin() + k, bound.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second->positions()[0] < b.second->positions()[0];
  });
  // Promote a page only if its logit bound comes within kPromoteMargin of the newest query's
  // largest logit, i.e. if it could hold at least e^-kPromoteMargin (1%) of that key's weight.
  constexpr double kPromoteMargin = 4.6;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const double floor_logit = last_max_logit_[static_cast<size_t>(layer) * shape_.n_head_kv + head] - kPromoteMargin;
  for (size_t i = 0; i < k; ++i) {
    if (bound[i].first * scale < floor_logit) break;
    Page* p = bound[i].second;
    while (p->n > 0) {
      // Pinned in warm until attention has looked at it; its real attention mass decides after.
      p->pinned_until[p->n - 1] = decode_steps_ + config_.promote_interval;
      MoveSlot(hs, *p, p->n - 1, Tier::kWarm);
      ++promotions_;
    }
  }
  cold.erase(std::remove_if(cold.begin(), cold.end(), [](const auto& p) { return p->n == 0; }), cold.end());
  Compact(hs, 1);
}

std::optional<TieredCache::LayerAttentionStats> TieredCache::DistributionStats(const std::vector<double>& weights) {
  LayerAttentionStats st;
  const int64_t n = static_cast<int64_t>(weights.size());
  double total = 0;
  for (double w : weights) total += w;
  if (n < 2 || !(total > 0)) return std::nullopt;
  const double mean = 1.0 / static_cast<double>(n);
  double ent = 0, m2 = 0, m4 = 0;
  for (double w : weights) {
    const double p = w / total, d = p - mean;
    if (p > 0) ent -= p * std::log(p);
    m2 += d * d;
    m4 += d * d * d * d;
  }
  m2 /= static_cast<double>(n);
  m4 /= static_cast<double>(n);
  st.entropy = ent / std::log(static_cast<double>(n));
  st.variance = m2 / (mean * mean);
  st.kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0;
  return st;
}

std::vector<double> TieredCache::LayerHotScales(const CacheConfig& config, const std::vector<LayerAttentionStats>& stats) {
  const size_t L = stats.size();
  std::vector<double> scale(L, 1.0);
  if (L == 0) return scale;
  if (config.layer_stats == "arkv") {
    // ARKV's per-layer preference, normalized by the largest: a layer's f16 share.
    double top = 0;
    for (size_t l = 0; l < L; ++l) {
      const LayerAttentionStats& s = stats[l];
      scale[l] = std::pow(s.entropy, 1.0 / config.tau1) * std::pow(s.variance, 1.0 / config.tau2) *
                 std::pow(s.kurtosis, 1.0 / config.tau3);
      if (!std::isfinite(scale[l])) scale[l] = 0;
      top = std::max(top, scale[l]);
    }
    for (double& x : scale) x = top > 0 ? x / top : 1.0;
  } else {
    // A layer whose attention is spread out (high normalized entropy) needs more f16 tokens than
    // one that attends to a few heavy hitters.
    for (size_t l = 0; l < L; ++l) {
      const double h = stats[l].entropy;
      scale[l] = h < config.tau1 ? 0.5 : h < config.tau2 ? 0.75 : h < config.tau3 ? 1.0 : 1.5;
    }
  }
  // Renormalized so the total hot budget is unchanged.
  const double mean = std::accumulate(scale.begin(), scale.end(), 0.0) / static_cast<double>(L);
  for (double& x : scale) x = mean > 0 ? x / mean : 1.0;
  return scale;
}

std::vector<TieredCache::LayerAttentionStats> TieredCache::MeanLayerStats() const {
  std::vector<LayerAttentionStats> mean(layer_stats_sum_.size());
  if (layer_stats_passes_ == 0) return mean;
  const double n = static_cast<double>(layer_stats_passes_);
  for (size_t l = 0; l < mean.size(); ++l)
    mean[l] = {layer_stats_sum_[l].entropy / n, layer_stats_sum_[l].variance / n, layer_stats_sum_[l].kurtosis / n};
  return mean;
}

void TieredCache::ComputeLayerStats() {
  // AKCB/ARKV: entropy, variance and kurtosis of the attention each prompt pass's observation
  // window gave the layer's slots (the kernel's mass, summed over the window's queries and the
  // group's heads; mean over KV heads), averaged over the passes, pick the layer's f16 share
  // (LayerHotScales). The pass's mass, not the accumulated score: summed over many passes, even
  // sharp attention that moves from key to key looks spread out.
  const int L = shape_.n_layer;
  std::vector<double> w;
  std::vector<LayerAttentionStats> pass(L);
  for (int l = 0; l < L; ++l) {
    LayerAttentionStats sum;
    int heads = 0;
    for (int h = 0; h < shape_.n_head_kv; ++h) {
      HeadStore& hs = stores_[static_cast<size_t>(l) * shape_.n_head_kv + h];
      w.clear();
      for (int t = 0; t < kTiers; ++t) {
        if (t == 2 && !config_.cold_attend_all) continue;  // not attended: no fresh mass
        for (auto& p : hs.pages[t])
          for (int s = 0; s < p->n; ++s) w.push_back(p->mass[s]);
      }
      const std::optional<LayerAttentionStats> st = DistributionStats(w);
      if (!st) continue;
      sum.entropy += st->entropy;
      sum.variance += st->variance;
      sum.kurtosis += st->kurtosis;
      ++heads;
    }
    if (heads == 0) return;  // nothing attended yet (e.g. a pass of one token)
    pass[l] = {sum.entropy / heads, sum.variance / heads, sum.kurtosis / heads};
  }
  for (int l = 0; l < L; ++l) {
    layer_stats_sum_[l].entropy += pass[l].entropy;
    layer_stats_sum_[l].variance += pass[l].variance;
    layer_stats_sum_[l].kurtosis += pass[l].kurtosis;
  }
  ++layer_stats_passes_;
  layer_hot_scale_ = LayerHotScales(config_, MeanLayerStats());
  adaptive_hot_ = -1;  // the scales changed: AdaptiveHotTokens solves for c again
}

void TieredCache::EndStep(ThreadPool& pool) {
  ++steps_;
  const bool decode = last_n_q_ == 1;
  if (decode) ++decode_steps_;
  // Layer statistics are taken over the prompt (every prefill pass) and frozen at the first
  // decode step.
  if (config_.layer_adaptive && !decode) ComputeLayerStats();
  // Promotion answers what a generated token's query needs; prompt passes rank tokens by the
  // attention they actually draw.
  // Each (layer, KV head) store is independent: the policy runs on the step's threads (shared
  // state: the atomic counters and AdaptiveHotTokens' locked cache).
  const int64_t n_stores = static_cast<int64_t>(shape_.n_layer) * shape_.n_head_kv;
  const int H = shape_.n_head_kv;
  if (decode && !config_.cold_attend_all && decode_steps_ % config_.promote_interval == 0)
    pool.ParallelFor(n_stores, [&](int64_t i, int) { Promote(static_cast<int>(i / H), static_cast<int>(i % H)); });
  auto migrate_all = [&] {
    pool.ParallelFor(n_stores, [&](int64_t i, int) { Migrate(static_cast<int>(i / H), static_cast<int>(i % H), decode); });
  };
  if (!decode || decode_steps_ % config_.migrate_interval == 0) migrate_all();
  // Byte budget: shrink the hot and warm budgets together until the pages fit, relax them again
  // (for tokens still to come) when well under.
  if (config_.kv_budget_mb > 0) {
    const double budget = config_.KvBudgetBytes();
    for (int iter = 0; iter < 40 && TotalBytes() > budget && byte_scale_ > 1e-3; ++iter) {
      byte_scale_ *= 0.85;
      migrate_all();
    }
    if (TotalBytes() < 0.9 * budget) byte_scale_ = std::min(1.0, byte_scale_ * 1.05);
  }
}

CacheStats TieredCache::Stats() const {
  CacheStats st;
  st.n_layer = shape_.n_layer;
  st.n_head_kv = shape_.n_head_kv;
  st.n_positions = n_positions_;
  if (config_.layer_adaptive && layer_hot_budget_.empty()) {
    const std::vector<LayerAttentionStats> stats = MeanLayerStats();
    for (int l = 0; l < shape_.n_layer; ++l)
      st.layer_policy.push_back({stats[l].entropy, stats[l].variance, stats[l].kurtosis, layer_hot_scale_[l]});
  }
  st.promotions = promotions_.load();
  st.demotions = demotions_.load();
  st.evicted = evictions_.load();
  st.hot_per_layer.resize(shape_.n_layer);
  st.warm_per_layer.resize(shape_.n_layer);
  st.cold_per_layer.resize(shape_.n_layer);
  int64_t slots = 0;
  double payload_bytes = 0;
  double per_token[kTiers];
  for (int t = 0; t < kTiers; ++t)
    per_token[t] = KeyBytesPerToken(layout_[t].key, shape_.head_dim) + ValueBytesPerToken(layout_[t].value, shape_.head_dim);
  for (int l = 0; l < shape_.n_layer; ++l) {
    for (int h = 0; h < shape_.n_head_kv; ++h) {
      const HeadStore& hs = stores_[static_cast<size_t>(l) * shape_.n_head_kv + h];
      std::vector<TierCount>* per_layer[kTiers] = {&st.hot_per_layer, &st.warm_per_layer, &st.cold_per_layer};
      TierCount* tier[kTiers] = {&st.hot, &st.warm, &st.cold};
      for (int t = 0; t < kTiers; ++t) {
        const int64_t bytes = static_cast<int64_t>(hs.pages[t].size() * layout_[t].total_bytes);
        (*per_layer[t])[l].tokens += hs.count[t];
        (*per_layer[t])[l].bytes += bytes;
        tier[t]->tokens += hs.count[t];
        tier[t]->bytes += bytes;
        payload_bytes += per_token[t] * hs.count[t];
      }
      slots += hs.total();
    }
  }
  const double values = static_cast<double>(slots) * 2 * shape_.head_dim;
  st.bits_per_value = slots ? 8.0 * payload_bytes / values : 0;
  st.bits_per_value_total = slots ? 8.0 * st.total_bytes() / values : 0;
  return st;
}

Status TieredCache::CheckInvariants() const {
  int64_t evicted_seen = 0;
  for (int l = 0; l < shape_.n_layer; ++l) {
    for (int h = 0; h < shape_.n_head_kv; ++h) {
      const HeadStore& hs = stores_[static_cast<size_t>(l) * shape_.n_head_kv + h];
      std::vector<int> seen(static_cast<size_t>(std::max<int32_t>(max_position_ + 1, 0)), 0);
      for (int t = 0; t < kTiers; ++t) {
        int64_t n = 0;
        for (const auto& p : hs.pages[t]) {
          if (p->n < 0 || p->n > p->layout->capacity) return Internal("page over capacity");
          if (p->tier != static_cast<Tier>(t)) return Internal("page filed under the wrong tier");
          for (int s = 0; s < p->n; ++s) {
            const int32_t pos = p->positions()[s];
            if (pos < 0 || pos > max_position_) return Internal("slot with unknown position " + std::to_string(pos));
            if (++seen[pos] > 1)
              return Internal("position " + std::to_string(pos) + " stored twice in layer " + std::to_string(l) +
                              " head " + std::to_string(h));
          }
          n += p->n;
        }
        if (n != hs.count[t]) return Internal("tier count mismatch in layer " + std::to_string(l));
      }
      for (int v : seen) evicted_seen += v == 0;
    }
  }
  if (evicted_seen != evictions_)
    return Internal(std::to_string(evicted_seen) + " positions missing but " + std::to_string(evictions_.load()) + " evicted");
  return Status::Ok();
}

int TieredCache::TierOf(int layer, int head, int32_t position) const {
  const HeadStore& hs = stores_[static_cast<size_t>(layer) * shape_.n_head_kv + head];
  for (int t = 0; t < kTiers; ++t)
    for (const auto& p : hs.pages[t])
      for (int s = 0; s < p->n; ++s)
        if (p->positions()[s] == position) return t;
  return -1;
}

}  // namespace akv
