// The byte layout of one page: up to `capacity` slots of one KV head in one (key, value) codec,
// with their positions and the key summary, in one buffer. A page is directly an attention segment
// (attn/segment.h points into these sections). Every section starts on a 64-byte boundary.
//
//   positions     int32 [capacity]                        original token position of each slot
//   key data      [capacity / 32 tiles] of one key tile:
//                   f16/bf16: u16 [D][32]                 channel-major: row c holds 32 slots
//                   intB:     u8  [D][32 * B / 8]         row c = one packed unit of 32 slots
//   key scales    per-token groups: f16 [tiles][D / G][32]   (slot j of a tile in lane j)
//                 per-channel (KIVI): f16 [capacity / G blocks][D]
//   key zeros     same shape as key scales
//   value data    [capacity / 32 tiles] of one value tile: [D / U units][32 slots][unit bytes],
//                 U = 16 channels of f16/bf16 (32 bytes) or one packed unit of 32 channels (intB)
//   value scales  f16 [capacity][D / G]
//   value zeros   same shape (absent for symmetric values: zero = SymmetricZero(scale))
//   key min, max  f16 [D] each: per-channel bounds of the stored (de-quantized, rotated) keys,
//                 rounded outward, so q.k over the page is bounded without reading it
//
// Keys are channel-major per tile so the attention kernel computes 16 slots' scores per vector
// with no horizontal sums; values are token-major within a unit of channels, so a slot's unit
// updates a chunk of the output directly, and the kernel's pass over one chunk of channels of a
// tile reads one contiguous run of bytes (both tiles stream sequentially from memory).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "kv/codecs/codec.h"

namespace akv {

struct PageLayout {
  CodecSpec key;
  CodecSpec value;
  int head_dim = 0;
  int capacity = 0;  // slots; a multiple of kTileSlots and of a KIVI key block

  // Derived sizes.
  int key_bits = 16;
  int value_bits = 16;
  int key_groups = 0;            // per-token quantized keys: D / G scales per slot; else 0
  int value_groups = 0;          // quantized values: D / G scales per slot; else 0
  size_t key_tile_bytes = 0;     // one tile of key data
  size_t value_tile_bytes = 0;   // one tile of value data

  // Section offsets from the start of the page buffer (0 for absent sections) and the total.
  size_t positions_offset = 0;
  size_t key_data_offset = 0;
  size_t key_scales_offset = 0;
  size_t key_zeros_offset = 0;
  size_t value_data_offset = 0;
  size_t value_scales_offset = 0;
  size_t value_zeros_offset = 0;
  size_t key_min_offset = 0;
  size_t key_max_offset = 0;
  size_t total_bytes = 0;

  // Validates the codecs and the capacity.
  static StatusOr<PageLayout> Make(const CodecSpec& key, const CodecSpec& value, int head_dim,
                                   int capacity);

  int tiles() const { return capacity / kTileSlots; }
  bool per_channel_keys() const { return key.grouping == KeyGrouping::kPerChannel && IsQuantized(key.format); }
  // Exact storage per slot when the page is full: everything, positions and summary included.
  double BytesPerSlot() const { return double(total_bytes) / capacity; }
};

// Bytes of one key tile of `head_dim` channels: 32 slots.
size_t KeyTileBytes(const CodecSpec& key, int head_dim);
// Value tiles: channels per unit (16 for f16/bf16, 32 for quantized), bytes of one slot's unit,
// bytes of a tile of 32 slots.
int ValueUnitChannels(const CodecSpec& value);
size_t ValueUnitBytes(const CodecSpec& value);
size_t ValueTileBytes(const CodecSpec& value, int head_dim);
// Bytes of the unit `unit` of slot `slot` from the start of the value data.
inline size_t ValueUnitOffset(const CodecSpec& value, int head_dim, int slot, int unit) {
  return ValueTileBytes(value, head_dim) * (slot / kTileSlots) +
         (size_t(unit) * kTileSlots + slot % kTileSlots) * ValueUnitBytes(value);
}

}  // namespace akv
