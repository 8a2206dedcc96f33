#include "kv/page/kv_page.h"

#include <cstring>
#include <string>
#include <vector>

#include "attn/key_summary.h"
#include "kv/codecs/hadamard.h"
#include "kv/codecs/kivi.h"
#include "kv/codecs/slot_codec.h"

namespace akv {

StatusOr<KvPage> KvPage::Create(const CodecSpec& key, const CodecSpec& value, int head_dim, int capacity) {
  AKV_ASSIGN_OR_RETURN(PageLayout layout, PageLayout::Make(key, value, head_dim, capacity));
  if (head_dim > kMaxPageHeadDim)
    return InvalidArgument("KV page: head_dim " + std::to_string(head_dim) + " above " + std::to_string(kMaxPageHeadDim));
  auto buffer = hwy::AllocateAligned<uint8_t>(layout.total_bytes);
  if (!buffer) return Status(StatusCode::kResourceExhausted, "KV page: cannot allocate " +
                                                                  std::to_string(layout.total_bytes) + " bytes");
  // Zeroed: unused tile slots decode to finite values.
  std::memset(buffer.get(), 0, layout.total_bytes);
  KvPage page(layout, std::move(buffer));
  page.Clear();
  return page;
}

void KvPage::Clear() {
  n_slots_ = 0;
  ResetKeySummary(layout_.head_dim, section<f16_t>(layout_.key_min_offset), section<f16_t>(layout_.key_max_offset));
}

Status KvPage::AppendKeyValue(const float* key, const float* value, int32_t position) {
  const int dim = layout_.head_dim, slot = n_slots_;
  float rotated[kMaxPageHeadDim], stored[kMaxPageHeadDim];
  if (layout_.key.hadamard) {
    std::memcpy(rotated, key, sizeof(float) * dim);
    AKV_RETURN_IF_ERROR(HadamardRotate(rotated, dim));
    key = rotated;
  }
  AKV_RETURN_IF_ERROR(EncodeKeySlot(layout_.key, dim, key, slot, mutable_data() + layout_.key_data_offset,
                                    section<f16_t>(layout_.key_scales_offset), section<f16_t>(layout_.key_zeros_offset),
                                    stored));
  AKV_RETURN_IF_ERROR(EncodeValueSlot(layout_.value, dim, value, slot, mutable_data() + layout_.value_data_offset,
                                      section<f16_t>(layout_.value_scales_offset),
                                      section<f16_t>(layout_.value_zeros_offset)));
  mutable_positions()[slot] = position;
  ExtendKeySummary(stored, dim, section<f16_t>(layout_.key_min_offset), section<f16_t>(layout_.key_max_offset));
  ++n_slots_;
  return Status::Ok();
}

Status KvPage::Append(const float* key, const float* value, int32_t position) {
  if (layout_.per_channel_keys())
    return InvalidArgument("KV page: " + CodecName(layout_.key) + " keys are appended a block at a time");
  if (n_slots_ >= layout_.capacity) return OutOfRange("KV page: full (" + std::to_string(layout_.capacity) + " slots)");
  return AppendKeyValue(key, value, position);
}

Status KvPage::AppendBlock(const float* keys, const float* values, const int32_t* positions, int n) {
  const int dim = layout_.head_dim;
  if (n < 0 || n > free_slots())
    return OutOfRange("KV page: " + std::to_string(n) + " tokens do not fit in " + std::to_string(free_slots()) +
                      " free slots");
  if (!layout_.per_channel_keys()) {
    const int before = n_slots_;
    for (int i = 0; i < n; ++i) {
      Status st = AppendKeyValue(keys + size_t(i) * dim, values + size_t(i) * dim, positions[i]);
      if (!st.ok()) {
        n_slots_ = before;  // all or nothing
        return st;
      }
    }
    return Status::Ok();
  }
  const int block = layout_.key.group_size;
  if (n % block != 0 || n_slots_ % block != 0)
    return InvalidArgument("KV page: " + CodecName(layout_.key) + " keys need whole blocks of " +
                           std::to_string(block) + " tokens (got " + std::to_string(n) + " at slot " +
                           std::to_string(n_slots_) + ")");
  std::vector<float> stored(keys, keys + size_t(n) * dim);
  if (layout_.key.hadamard)
    for (int i = 0; i < n; ++i) AKV_RETURN_IF_ERROR(HadamardRotate(stored.data() + size_t(i) * dim, dim));
  for (int b = 0; b < n; b += block)
    AKV_RETURN_IF_ERROR(EncodeKeyBlockPerChannel(layout_.key, dim, stored.data() + size_t(b) * dim, n_slots_ + b,
                                                 mutable_data() + layout_.key_data_offset,
                                                 section<f16_t>(layout_.key_scales_offset),
                                                 section<f16_t>(layout_.key_zeros_offset)));
  for (int i = 0; i < n; ++i)
    AKV_RETURN_IF_ERROR(EncodeValueSlot(layout_.value, dim, values + size_t(i) * dim, n_slots_ + i,
                                        mutable_data() + layout_.value_data_offset,
                                        section<f16_t>(layout_.value_scales_offset),
                                        section<f16_t>(layout_.value_zeros_offset)));
  for (int i = 0; i < n; ++i) {
    mutable_positions()[n_slots_ + i] = positions[i];
    DecodeKeySlot(layout_.key, dim, data() + layout_.key_data_offset, section<f16_t>(layout_.key_scales_offset),
                  section<f16_t>(layout_.key_zeros_offset), n_slots_ + i, stored.data());
    ExtendKeySummary(stored.data(), dim, section<f16_t>(layout_.key_min_offset), section<f16_t>(layout_.key_max_offset));
  }
  n_slots_ += n;
  return Status::Ok();
}

Status KvPage::ReadSlot(int slot, float* key, float* value) const {
  if (slot < 0 || slot >= n_slots_)
    return OutOfRange("KV page: slot " + std::to_string(slot) + " of " + std::to_string(n_slots_));
  const KvSegment seg = segment();
  if (key) {
    DecodeSegmentKey(seg, layout_.head_dim, slot, key);
    if (layout_.key.hadamard) AKV_RETURN_IF_ERROR(HadamardRotateInverse(key, layout_.head_dim));
  }
  if (value) DecodeSegmentValue(seg, layout_.head_dim, slot, value);
  return Status::Ok();
}

Status KvPage::RemoveSlot(int slot) {
  if (slot < 0 || slot >= n_slots_)
    return OutOfRange("KV page: slot " + std::to_string(slot) + " of " + std::to_string(n_slots_));
  if (layout_.per_channel_keys())
    return Unsupported("KV page: single slots cannot be removed from " + CodecName(layout_.key) + " key blocks");
  const int last = n_slots_ - 1;
  if (slot != last) {
    CopyKeySlot(layout_.key, layout_.head_dim, mutable_data() + layout_.key_data_offset,
                section<f16_t>(layout_.key_scales_offset), section<f16_t>(layout_.key_zeros_offset), last, slot);
    CopyValueSlot(layout_.value, layout_.head_dim, mutable_data() + layout_.value_data_offset,
                  section<f16_t>(layout_.value_scales_offset), section<f16_t>(layout_.value_zeros_offset), last, slot);
    int32_t* pos = mutable_positions();
    pos[slot] = pos[last];
  }
  --n_slots_;
  return Status::Ok();
}

void KvPage::RecomputeKeySummary() {
  // Cannot fail: the page's own segment is valid by construction.
  (void)ComputeKeySummary(segment(), layout_.head_dim, section<f16_t>(layout_.key_min_offset),
                          section<f16_t>(layout_.key_max_offset));
}

}  // namespace akv
