// A segment: an unordered set of token slots of ONE KV head in one (key, value) codec, which the
// attention kernel reads in place. A page of the tiered cache is directly a segment
// (SegmentOfPage); a plain f16 cache can be one segment per KV head (or one per page).
//
// Storage contract (the sections of kv/codecs/page_layout.h, for slots [0, n_slots)):
//   positions     int32 [n_slots]                   original position of each slot (causal mask)
//   key_data      ceil(n_slots / 32) whole key tiles (channel-major, 32 slots each; the unused
//                 slots of the last tile may hold anything, they are never used)
//   key_scales/zeros  per-token groups: f16 [tiles][D / G][32]; per-channel: f16 [blocks][D];
//                 absent (null) for f16/bf16 keys
//   value_data    ceil(n_slots / 32) whole value tiles ([D / U][32 slots][unit], U = 16 channels
//                 of f16/bf16 or 32 of a quantized format); value scales/zeros f16 [n_slots][D / G]
//   key_min/max   optional per-channel summary f16 [D] (key_summary.h)
// Keys are stored after RoPE (and after the codec's Hadamard rotation, if any).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/half.h"
#include "core/status.h"
#include "kv/codecs/codec.h"
#include "kv/codecs/page_layout.h"

namespace akv {

struct KvSegment {
  int32_t n_slots = 0;
  const int32_t* positions = nullptr;

  CodecSpec key_codec;
  const void* key_data = nullptr;
  const f16_t* key_scales = nullptr;
  const f16_t* key_zeros = nullptr;

  CodecSpec value_codec;
  const void* value_data = nullptr;
  const f16_t* value_scales = nullptr;
  const f16_t* value_zeros = nullptr;

  const f16_t* key_min = nullptr;  // optional
  const f16_t* key_max = nullptr;
};

// The segment view of a page buffer laid out by `layout` whose first n_slots slots are in use.
KvSegment SegmentOfPage(const PageLayout& layout, const uint8_t* page, int n_slots);

// Codecs valid for head_dim, the pointers each codec needs present when n_slots > 0, and
// n_slots >= 0. `what` names the segment in the message ("kv head 3, segment 7").
Status ValidateSegment(const KvSegment& segment, int head_dim, std::string_view what);

// De-quantized key (stored domain) / value of one slot: the scalar reference path.
void DecodeSegmentKey(const KvSegment& segment, int head_dim, int slot, float* key);
void DecodeSegmentValue(const KvSegment& segment, int head_dim, int slot, float* value);

}  // namespace akv
