#include "kv/full_cache.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kv/codecs/slot_codec.h"

namespace akv {

void FullCache::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

FullCache::FullCache(const KvShape& shape, int64_t capacity)
    : KvCache(shape), capacity_(capacity), padded_dim_((shape.head_dim + 15) / 16 * 16) {
  const int slots = static_cast<int>((capacity + kTileSlots - 1) / kTileSlots * kTileSlots);
  // f16 pages accept any head size that is a multiple of 16, which padded_dim_ is.
  auto layout = PageLayout::Make(CodecSpec::F16(), CodecSpec::F16(), padded_dim_, slots);
  layout_ = layout.ok() ? *layout : PageLayout{};
  const size_t bytes = (layout_.total_bytes + 63) / 64 * 64;
  for (int i = 0; i < shape.n_layer * shape.n_head_kv; ++i) {
    pages_.emplace_back(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
    std::memset(pages_.back().get(), 0, bytes);
  }
  n_tokens_.assign(shape.n_layer, 0);
  workspaces_ = std::vector<AttentionWorkspace>(shape.n_layer);
}

FullCache::~FullCache() = default;

void FullCache::Clear() { std::fill(n_tokens_.begin(), n_tokens_.end(), 0); }

Status FullCache::Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) {
  int64_t& used = n_tokens_[layer];
  if (used + n > capacity_)
    return OutOfRange("KV cache full: " + std::to_string(used) + " + " + std::to_string(n) +
                      " tokens exceed the context of " + std::to_string(capacity_));
  const int hd = shape_.head_dim, pd = padded_dim_;
  pad_row_.assign(2 * pd, 0.f);
  for (int h = 0; h < shape_.n_head_kv; ++h) {
    uint8_t* page = Page(layer, h);
    int32_t* pos = reinterpret_cast<int32_t*>(page + layout_.positions_offset);
    for (int64_t t = 0; t < n; ++t) {
      const size_t src = (static_cast<size_t>(t) * shape_.n_head_kv + h) * hd;
      const int slot = static_cast<int>(used + t);
      const float* kr = k + src;
      const float* vr = v + src;
      if (pd != hd) {
        std::copy_n(kr, hd, pad_row_.data());
        std::copy_n(vr, hd, pad_row_.data() + pd);
        kr = pad_row_.data();
        vr = pad_row_.data() + pd;
      }
      AKV_RETURN_IF_ERROR(EncodeKeySlot(layout_.key, pd, kr, slot, page + layout_.key_data_offset, nullptr, nullptr));
      AKV_RETURN_IF_ERROR(EncodeValueSlot(layout_.value, pd, vr, slot, page + layout_.value_data_offset, nullptr, nullptr));
      pos[slot] = positions[t];
    }
  }
  used += n;
  return Status::Ok();
}

Status FullCache::Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out,
                         ThreadPool& pool) {
  AttentionShape shape;
  shape.n_kv_heads = shape_.n_head_kv;
  shape.n_q_per_kv = shape_.n_q_per_kv;
  shape.head_dim = padded_dim_;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(shape_.head_dim));
  std::vector<KvSegment> segs(shape_.n_head_kv);
  std::vector<KvHeadSegments> heads(shape_.n_head_kv);
  for (int h = 0; h < shape_.n_head_kv; ++h) {
    segs[h] = SegmentOfPage(layout_, Page(layer, h), static_cast<int>(n_tokens_[layer]));
    heads[h] = {std::span<const KvSegment>(&segs[h], 1), {}};
  }
  AttentionOptions opts;
  opts.pool = &pool;
  opts.workspace = &workspaces_[layer];
  if (padded_dim_ == shape_.head_dim)
    return akv::Attend(shape, static_cast<int>(n_q), q, positions, heads, out, nullptr, opts);
  const int64_t rows = n_q * shape.n_heads();
  const int hd = shape_.head_dim, pd = padded_dim_;
  pad_q_.assign(rows * pd, 0.f);
  pad_out_.resize(rows * pd);
  for (int64_t r = 0; r < rows; ++r) std::copy_n(q + r * hd, hd, &pad_q_[r * pd]);
  AKV_RETURN_IF_ERROR(akv::Attend(shape, static_cast<int>(n_q), pad_q_.data(), positions, heads, pad_out_.data(), nullptr, opts));
  for (int64_t r = 0; r < rows; ++r) std::copy_n(&pad_out_[r * pd], hd, out + r * hd);
  return Status::Ok();
}

CacheStats FullCache::Stats() const {
  CacheStats st;
  const int64_t per_token = 2LL * shape_.head_dim * 2;  // K and V, f16
  st.hot_per_layer.resize(shape_.n_layer);
  st.warm_per_layer.resize(shape_.n_layer);
  st.cold_per_layer.resize(shape_.n_layer);
  for (int l = 0; l < shape_.n_layer; ++l) {
    TierCount& t = st.hot_per_layer[l];
    t.tokens = n_tokens_[l] * shape_.n_head_kv;
    t.bytes = t.tokens * per_token;
    st.hot.tokens += t.tokens;
    st.hot.bytes += t.bytes;
  }
  st.n_positions = n_positions();
  st.n_layer = shape_.n_layer;
  st.n_head_kv = shape_.n_head_kv;
  st.bits_per_value = 16.0;
  st.bits_per_value_total = 16.0;  // K/V bytes of the stored tokens (positions not counted)
  return st;
}

}  // namespace akv
