#include "kv/codecs/page_layout.h"

#include <string>

namespace akv {

namespace {
size_t AlignUp(size_t n) { return (n + 63) & ~size_t(63); }
}  // namespace

size_t KeyTileBytes(const CodecSpec& key, int head_dim) {
  return size_t(head_dim) * kTileSlots * BitsPerValue(key.format) / 8;
}

int ValueUnitChannels(const CodecSpec& value) { return IsQuantized(value.format) ? kUnitValues : 16; }

size_t ValueUnitBytes(const CodecSpec& value) {
  return size_t(ValueUnitChannels(value)) * BitsPerValue(value.format) / 8;
}

size_t ValueTileBytes(const CodecSpec& value, int head_dim) {
  return size_t(head_dim) * kTileSlots * BitsPerValue(value.format) / 8;
}

StatusOr<PageLayout> PageLayout::Make(const CodecSpec& key, const CodecSpec& value, int head_dim,
                                      int capacity) {
  AKV_RETURN_IF_ERROR(ValidateKeyCodec(key, head_dim));
  AKV_RETURN_IF_ERROR(ValidateValueCodec(value, head_dim));
  if (capacity <= 0 || capacity % kTileSlots != 0)
    return InvalidArgument("page capacity " + std::to_string(capacity) + " is not a positive multiple of " +
                           std::to_string(kTileSlots));
  PageLayout l;
  l.key = key;
  l.value = value;
  l.head_dim = head_dim;
  l.capacity = capacity;
  if (l.per_channel_keys() && capacity % key.group_size != 0)
    return InvalidArgument("page capacity " + std::to_string(capacity) + " is not a multiple of the " +
                           CodecName(key) + " key block");
  l.key_bits = BitsPerValue(key.format);
  l.value_bits = BitsPerValue(value.format);
  l.key_groups = IsQuantized(key.format) && !l.per_channel_keys() ? head_dim / key.group_size : 0;
  l.value_groups = IsQuantized(value.format) ? head_dim / value.group_size : 0;
  l.key_tile_bytes = KeyTileBytes(key, head_dim);
  l.value_tile_bytes = ValueTileBytes(value, head_dim);

  size_t at = 0;
  auto section = [&at](size_t bytes) {
    const size_t offset = at;
    at = AlignUp(at + bytes);
    return offset;
  };
  l.positions_offset = section(sizeof(int32_t) * capacity);
  l.key_data_offset = section(l.key_tile_bytes * l.tiles());
  if (IsQuantized(key.format)) {
    const size_t count = l.per_channel_keys() ? size_t(capacity / key.group_size) * head_dim
                                              : size_t(capacity) * l.key_groups;
    l.key_scales_offset = section(sizeof(uint16_t) * count);
    l.key_zeros_offset = section(sizeof(uint16_t) * count);
  }
  l.value_data_offset = section(l.value_tile_bytes * l.tiles());
  if (IsQuantized(value.format)) {
    l.value_scales_offset = section(sizeof(uint16_t) * capacity * l.value_groups);
    if (!value.symmetric) l.value_zeros_offset = section(sizeof(uint16_t) * capacity * l.value_groups);
  }
  l.key_min_offset = section(sizeof(uint16_t) * head_dim);
  l.key_max_offset = section(sizeof(uint16_t) * head_dim);
  l.total_bytes = at;
  return l;
}

}  // namespace akv
