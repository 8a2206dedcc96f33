#include "kv/full_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/vec_ops.h"

namespace akv {

namespace {
constexpr int64_t kQueryBlock = 16;  // queries per task (prefill)
constexpr int64_t kKeyTile = 64;     // keys converted to f32 at a time
}  // namespace

FullCache::FullCache(const KvShape& shape, int64_t capacity)
    : KvCache(shape), capacity_(capacity) {
  const size_t n = static_cast<size_t>(shape.n_layer) * shape.n_head_kv * capacity * shape.head_dim;
  k_.resize(n);
  v_.resize(n);
  positions_.assign(shape.n_layer, std::vector<int32_t>(capacity));
  n_tokens_.assign(shape.n_layer, 0);
}

void FullCache::Clear() { std::fill(n_tokens_.begin(), n_tokens_.end(), 0); }

Status FullCache::Append(int layer, const float* k, const float* v, const int32_t* positions, int64_t n) {
  int64_t& used = n_tokens_[layer];
  if (used + n > capacity_)
    return OutOfRange("KV cache full: " + std::to_string(used) + " + " + std::to_string(n) +
                      " tokens exceed the context of " + std::to_string(capacity_));
  const int hd = shape_.head_dim;
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < shape_.n_head_kv; ++h) {
      const size_t src = (static_cast<size_t>(t) * shape_.n_head_kv + h) * hd;
      F32ToF16Row(k + src, &k_[Offset(layer, h, used + t)], hd);
      F32ToF16Row(v + src, &v_[Offset(layer, h, used + t)], hd);
    }
    positions_[layer][used + t] = positions[t];
  }
  used += n;
  return Status::Ok();
}

Status FullCache::Attend(int layer, const float* q, const int32_t* positions, int64_t n_q, float* out,
                       ThreadPool& pool) {
  const int hd = shape_.head_dim;
  const int group = shape_.n_q_per_kv;
  const int n_head = shape_.n_head_kv * group;
  const int64_t n_kv = n_tokens_[layer];
  const int32_t* kv_pos = positions_[layer].data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t n_blocks = (n_q + kQueryBlock - 1) / kQueryBlock;

  // One task per (KV head, block of queries): the block's queries of every head in the group
  // share each converted key/value tile. Online softmax state {m, d, o} per (query, head).
  pool.ParallelFor(shape_.n_head_kv * n_blocks, [&](int64_t task, int) {
    const int kvh = static_cast<int>(task / n_blocks);
    const int64_t q0 = (task % n_blocks) * kQueryBlock;
    const int64_t nb = std::min(kQueryBlock, n_q - q0);
    thread_local std::vector<float> kt, vt, o, m, d, s;
    kt.resize(kKeyTile * hd);
    vt.resize(kKeyTile * hd);
    const int64_t n_rows = nb * group;
    o.assign(n_rows * hd, 0.f);
    m.assign(n_rows, -std::numeric_limits<float>::infinity());
    d.assign(n_rows, 0.f);
    s.resize(kKeyTile);
    int32_t max_pos = std::numeric_limits<int32_t>::min();
    for (int64_t i = 0; i < nb; ++i) max_pos = std::max(max_pos, positions[q0 + i]);
    const size_t base = Offset(layer, kvh, 0);
    for (int64_t j0 = 0; j0 < n_kv; j0 += kKeyTile) {
      const int64_t nt = std::min(kKeyTile, n_kv - j0);
      bool any = false;
      for (int64_t j = 0; j < nt; ++j) any |= kv_pos[j0 + j] <= max_pos;
      if (!any) continue;
      F16ToF32Row(&k_[base + j0 * hd], kt.data(), nt * hd);
      F16ToF32Row(&v_[base + j0 * hd], vt.data(), nt * hd);
      for (int64_t i = 0; i < nb; ++i) {
        const int32_t qp = positions[q0 + i];
        for (int g = 0; g < group; ++g) {
          const int64_t row = i * group + g;
          const float* qv = q + ((q0 + i) * n_head + kvh * group + g) * hd;
          float tile_max = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < nt; ++j) {
            s[j] = kv_pos[j0 + j] <= qp ? Dot(qv, &kt[j * hd], hd) * scale
                                        : -std::numeric_limits<float>::infinity();
            tile_max = std::max(tile_max, s[j]);
          }
          if (tile_max == -std::numeric_limits<float>::infinity()) continue;
          const float m_new = std::max(m[row], tile_max);
          const float corr = std::exp(m[row] - m_new);
          float* orow = &o[row * hd];
          if (corr != 1.f) {
            d[row] *= corr;
            for (int c = 0; c < hd; ++c) orow[c] *= corr;
          }
          for (int64_t j = 0; j < nt; ++j) {
            if (s[j] == -std::numeric_limits<float>::infinity()) continue;
            const float p = std::exp(s[j] - m_new);
            d[row] += p;
            const float* vr = &vt[j * hd];
            for (int c = 0; c < hd; ++c) orow[c] += p * vr[c];
          }
          m[row] = m_new;
        }
      }
    }
    for (int64_t i = 0; i < nb; ++i) {
      for (int g = 0; g < group; ++g) {
        const int64_t row = i * group + g;
        float* dst = out + ((q0 + i) * n_head + kvh * group + g) * hd;
        const float inv = d[row] > 0 ? 1.f / d[row] : 0.f;
        for (int c = 0; c < hd; ++c) dst[c] = o[row * hd + c] * inv;
      }
    }
  });
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
  st.bits_per_value_total = 16.0;  // positions are shared by the heads and not counted
  return st;
}

}  // namespace akv
