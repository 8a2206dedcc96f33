// The adaptive three-tier cache. Per layer and KV head, token slots live in pages of one tier:
//   hot  f16             sinks (first n_anchors), the recent window, heavy hitters
//   warm int{8,4,2}      group-wise asymmetric, keys Hadamard-rotated
//   cold int{4,2}        everything else; attended (cold_attend_all) or promoted on demand
// Keys are stored after RoPE, so a tier is an unordered set of slots tagged with positions and
// migration never reorders anything else.
//
// Each forward step: Append writes new tokens to hot pages; Attend runs one online-softmax pass
// over every attended page (attn/attention.h) and gets back each slot's attention mass (summed
// over the query heads of the group), which feeds the importance scores; EndStep applies the
// policy: demote the lowest-scoring unprotected slots when a tier is over budget (re-quantizing
// f16 -> warm -> cold), promote cold pages whose key-summary bound q.k ranks in the top
// promote_k, evict beyond max_total. Nothing is dropped unless max_total says so.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "attn/attention.h"
#include "kv/cache_config.h"
#include "kv/codecs/page_layout.h"
#include "kv/kv_cache.h"

namespace akv {

enum class Tier : int { kHot = 0, kWarm = 1, kCold = 2 };

class TieredCache : public KvCache {
 public:
  static StatusOr<std::unique_ptr<TieredCache>> Create(const CacheConfig& config, const KvShape& shape,
                                                       int64_t capacity);
  ~TieredCache() override;

  std::string name() const override { return config_.ToString(); }
  Status Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) override;
  Status Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out, ThreadPool& pool) override;
  void EndStep(ThreadPool& pool) override;
  int64_t n_positions() const override { return n_positions_; }
  int64_t capacity() const override { return capacity_; }
  int64_t max_batch() const override { return config_.prefill_chunk; }
  void Clear() override;
  CacheStats Stats() const override;

  const CacheConfig& config() const { return config_; }
  // Tier of the slot holding `position` in (layer, head), or -1 if absent (evicted). For tests.
  int TierOf(int layer, int head, int32_t position) const;
  // Checks the bookkeeping: every appended position is stored exactly once per (layer, head)
  // unless evicted, tier counts match the pages, pages are within capacity. Error names the break.
  Status CheckInvariants() const;
  // Per-layer hot-budget multipliers chosen from prefill statistics (1 when not adaptive).
  const std::vector<double>& layer_hot_scale() const { return layer_hot_scale_; }
  // Attention statistics of one layer (mean over KV heads) behind those multipliers.
  struct LayerAttentionStats {
    double entropy = 0;   // normalized entropy of the token-score distribution, in [0, 1]
    double variance = 0;  // n^2 * variance of the distribution (its squared coefficient of variation)
    double kurtosis = 0;  // Pearson kurtosis of the distribution's values (normal: 3)
  };
  // Statistics of one distribution of non-negative weights (need not sum to 1); none for fewer
  // than two weights or a zero total (nothing attended).
  static std::optional<LayerAttentionStats> DistributionStats(const std::vector<double>& weights);
  // The hot-budget multipliers the configured rule gives for these statistics. For tests.
  static std::vector<double> LayerHotScales(const CacheConfig& config, const std::vector<LayerAttentionStats>& stats);

 private:
  struct Page;
  struct HeadStore;
  TieredCache(const CacheConfig& config, const KvShape& shape, int64_t capacity);

  Page* TailPage(HeadStore& hs, Tier tier);
  // Moves slot `slot` of `page` into `to` (re-encoding), leaving a hole filled by the page's last slot.
  void MoveSlot(HeadStore& hs, Page& page, int slot, Tier to);
  void RemoveSlot(Page& page, int slot);
  // Moves slots from the tier's last pages into holes of earlier ones and frees empty pages.
  void Compact(HeadStore& hs, int tier);
  struct SlotRef {
    float score;  // ranking score (position when ranking by recency)
    Page* page;
    int slot;
    int32_t position;
  };
  void Migrate(int layer, int head, bool decode);
  // Moves whole blocks of slots (lowest ranked, then oldest first) into per-channel-key pages of
  // tier `to`: KIVI (hot -> warm, blocks of group_size) and cold_key_block (warm -> cold).
  void DemoteBlocks(HeadStore& hs, std::vector<SlotRef> slots, Tier to);
  double LayerBudgetScale(int layer) const;
  void Promote(int layer, int head);
  void ComputeLayerStats();
  int64_t HotBudget(int layer, int64_t n_stored) const;
  int64_t WarmBudget(int layer, int64_t n_stored) const;
  // layer_adaptive: the layer's f16 tokens for a hot budget of `hot` per layer.
  double AdaptiveHotTokens(int layer, double hot, double protected_slots, double n_stored) const;
  double ProtectedSlots(int64_t n_stored) const;
  // The layers' statistics averaged over the prompt passes so far (zeros before the first).
  std::vector<LayerAttentionStats> MeanLayerStats() const;
  int64_t TotalBytes() const;

  CacheConfig config_;
  int64_t capacity_;
  PageLayout layout_[3];
  std::vector<HeadStore> stores_;  // [layer * n_head_kv + head]
  std::vector<AttentionWorkspace> workspaces_;
  std::vector<float> last_q_;      // [n_layer][n_heads * head_dim]: last decode query (promotion)
  std::vector<float> last_max_logit_;  // [layer * n_head_kv + head]: newest query's largest logit
  std::vector<double> layer_hot_scale_;
  std::vector<LayerAttentionStats> layer_stats_sum_;  // sums over the prompt passes so far
  int64_t layer_stats_passes_ = 0;
  // AdaptiveHotTokens' last solve; the policy of the KV heads runs in parallel, hence the lock.
  mutable std::mutex adaptive_mu_;
  mutable double adaptive_hot_ = -1, adaptive_protected_ = -1, adaptive_stored_ = -1, adaptive_c_ = 1;
  std::vector<double> layer_hot_budget_;  // hot_budget_layers, when given
  double byte_scale_ = 1.0;               // < 1 while kv_budget_mb forces smaller tier budgets
  int64_t n_positions_ = 0;
  int64_t steps_ = 0;              // EndStep calls
  int64_t decode_steps_ = 0;
  int64_t last_n_q_ = 0;          // queries of the last pass (1: decode)
  std::atomic<int64_t> promotions_{0}, demotions_{0}, evictions_{0};  // updated by parallel Migrate / Promote
  int32_t max_position_ = -1;
};

}  // namespace akv
