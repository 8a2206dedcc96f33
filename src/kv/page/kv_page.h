// One page: up to `capacity` slots of one KV head in one (key, value) codec, in a single aligned
// buffer laid out by PageLayout, with positions and an up-to-date key summary. segment() is the
// view the attention kernel reads in place.
//
// Keys are given after RoPE in the model's domain; the page applies its codec's Hadamard rotation
// before storing and undoes it in ReadSlot. Slots are unordered: RemoveSlot moves the last slot
// into the hole.
#pragma once

#include <cstdint>

#include "attn/segment.h"
#include "core/status.h"
#include "hwy/aligned_allocator.h"
#include "kv/codecs/codec.h"
#include "kv/codecs/page_layout.h"

namespace akv {

constexpr int kMaxPageHeadDim = 1024;

class KvPage {
 public:
  static StatusOr<KvPage> Create(const CodecSpec& key, const CodecSpec& value, int head_dim, int capacity);

  KvPage(KvPage&&) = default;
  KvPage& operator=(KvPage&&) = default;

  const PageLayout& layout() const { return layout_; }
  int head_dim() const { return layout_.head_dim; }
  int capacity() const { return layout_.capacity; }
  int n_slots() const { return n_slots_; }
  int free_slots() const { return layout_.capacity - n_slots_; }
  // Exact memory of the page (every section, padding included).
  size_t bytes() const { return layout_.total_bytes; }

  // One token: key[D] (after RoPE), value[D]. Per-token key codecs only (KIVI keys arrive a block
  // at a time, see AppendBlock and kivi_appender.h). Bad values (NaN, beyond f16 range) or a full
  // page: an error, and the page is unchanged.
  Status Append(const float* key, const float* value, int32_t position);
  // n tokens: keys[n][D], values[n][D], positions[n]. With per-channel keys, n and the current
  // slot count must be multiples of the block.
  Status AppendBlock(const float* keys, const float* values, const int32_t* positions, int n);

  // De-quantized key (model domain, rotation undone) and value of a slot; either may be null.
  Status ReadSlot(int slot, float* key, float* value) const;
  int32_t position(int slot) const { return positions()[slot]; }
  const int32_t* positions() const { return reinterpret_cast<const int32_t*>(data() + layout_.positions_offset); }

  // Moves the last slot into `slot`. Unsupported for per-channel keys (a block shares scales).
  // The key summary stays valid (it may become loose); RecomputeKeySummary tightens it.
  Status RemoveSlot(int slot);
  void Clear();
  void RecomputeKeySummary();

  KvSegment segment() const { return SegmentOfPage(layout_, data(), n_slots_); }
  const uint8_t* data() const { return buffer_.get(); }

 private:
  KvPage(const PageLayout& layout, hwy::AlignedFreeUniquePtr<uint8_t[]> buffer)
      : layout_(layout), buffer_(std::move(buffer)) {}
  uint8_t* mutable_data() { return buffer_.get(); }
  int32_t* mutable_positions() { return reinterpret_cast<int32_t*>(mutable_data() + layout_.positions_offset); }
  // An optional section (offset 0 means absent: positions, the only section at 0, has its own accessor).
  template <typename T>
  T* section(size_t offset) { return offset ? reinterpret_cast<T*>(mutable_data() + offset) : nullptr; }
  Status AppendKeyValue(const float* key, const float* value, int32_t position);

  PageLayout layout_;
  hwy::AlignedFreeUniquePtr<uint8_t[]> buffer_;
  int n_slots_ = 0;
};

}  // namespace akv
