#include "kv/codecs/slot_codec.h"

#include <cstring>

#include "kv/codecs/group_quant.h"
#include "kv/codecs/half_rows.h"
#include "kv/codecs/pack.h"
#include "kv/codecs/page_layout.h"

namespace akv {

namespace {

uint8_t* KeyTile(const CodecSpec& c, int head_dim, void* key_data, int slot) {
  return static_cast<uint8_t*>(key_data) + KeyTileBytes(c, head_dim) * (slot / kTileSlots);
}
const uint8_t* KeyTile(const CodecSpec& c, int head_dim, const void* key_data, int slot) {
  return static_cast<const uint8_t*>(key_data) + KeyTileBytes(c, head_dim) * (slot / kTileSlots);
}

// Index of the (scale, zero) of channel c of slot `slot` in a per-token key scale section
// [tiles][D / G][32], or in a per-channel one [blocks][D].
size_t KeyScaleIndex(const CodecSpec& c, int head_dim, int slot, int channel) {
  if (c.grouping == KeyGrouping::kPerChannel) return size_t(slot / c.group_size) * head_dim + channel;
  const int groups = head_dim / c.group_size;
  return (size_t(slot / kTileSlots) * groups + channel / c.group_size) * kTileSlots + slot % kTileSlots;
}

}  // namespace

Status EncodeKeySlot(const CodecSpec& codec, int head_dim, const float* key, int slot,
                     void* key_data, f16_t* key_scales, f16_t* key_zeros, float* stored) {
  if (head_dim > 1024) return InvalidArgument("key slot encoding: head_dim above 1024");
  uint8_t* tile = KeyTile(codec, head_dim, key_data, slot);
  const int j = slot % kTileSlots;
  if (!IsQuantized(codec.format)) {
    uint16_t row[1024];
    if (codec.format == KvFormat::kF16) {
      AKV_RETURN_IF_ERROR(F32RowToF16(key, head_dim, row));
      if (stored) F16RowToF32(row, head_dim, stored);
    } else {
      AKV_RETURN_IF_ERROR(F32RowToBF16(key, head_dim, row));
      if (stored) BF16RowToF32(row, head_dim, stored);
    }
    uint16_t* t = reinterpret_cast<uint16_t*>(tile);
    for (int c = 0; c < head_dim; ++c) t[c * kTileSlots + j] = row[c];
    return Status::Ok();
  }
  if (codec.grouping == KeyGrouping::kPerChannel)
    return InvalidArgument("key slot encoding: " + CodecName(codec) + " keys are encoded a block at a time");
  const int bits = BitsPerValue(codec.format);
  uint8_t codes[1024];
  f16_t scales[32], zeros[32];
  AKV_RETURN_IF_ERROR(QuantizeToCodes(key, head_dim, bits, codec.group_size, codes, scales, zeros));
  const int unit_bytes = UnitBytes(bits);
  for (int c = 0; c < head_dim; ++c) SetPackedCode(tile + c * unit_bytes, bits, j, codes[c]);
  for (int g = 0; g < head_dim / codec.group_size; ++g) {
    const size_t at = KeyScaleIndex(codec, head_dim, slot, g * codec.group_size);
    key_scales[at] = scales[g];
    key_zeros[at] = zeros[g];
  }
  if (stored) DequantizeCodes(codes, scales, zeros, head_dim, codec.group_size, stored);
  return Status::Ok();
}

Status EncodeValueSlot(const CodecSpec& codec, int head_dim, const float* value, int slot,
                       void* value_data, f16_t* value_scales, f16_t* value_zeros) {
  if (head_dim > 1024) return InvalidArgument("value slot encoding: head_dim above 1024");
  uint8_t row[2048];  // the slot's units back to back, then scattered into the tile
  switch (codec.format) {
    case KvFormat::kF16: AKV_RETURN_IF_ERROR(F32RowToF16(value, head_dim, reinterpret_cast<f16_t*>(row))); break;
    case KvFormat::kBF16: AKV_RETURN_IF_ERROR(F32RowToBF16(value, head_dim, reinterpret_cast<bf16_t*>(row))); break;
    default: {
      const int groups = head_dim / codec.group_size;
      if (codec.symmetric)
        AKV_RETURN_IF_ERROR(QuantizeRowSymmetric(value, head_dim, BitsPerValue(codec.format), codec.group_size, row,
                                                 value_scales + size_t(slot) * groups));
      else
        AKV_RETURN_IF_ERROR(QuantizeRow(value, head_dim, BitsPerValue(codec.format), codec.group_size, row,
                                        value_scales + size_t(slot) * groups, value_zeros + size_t(slot) * groups));
    }
  }
  const size_t unit_bytes = ValueUnitBytes(codec);
  uint8_t* base = static_cast<uint8_t*>(value_data);
  for (int u = 0; u < head_dim / ValueUnitChannels(codec); ++u)
    std::memcpy(base + ValueUnitOffset(codec, head_dim, slot, u), row + u * unit_bytes, unit_bytes);
  return Status::Ok();
}

void DecodeKeySlot(const CodecSpec& codec, int head_dim, const void* key_data,
                   const f16_t* key_scales, const f16_t* key_zeros, int slot, float* key) {
  const uint8_t* tile = KeyTile(codec, head_dim, key_data, slot);
  const int j = slot % kTileSlots;
  if (!IsQuantized(codec.format)) {
    const uint16_t* t = reinterpret_cast<const uint16_t*>(tile);
    for (int c = 0; c < head_dim; ++c)
      key[c] = codec.format == KvFormat::kF16 ? F16ToF32(t[c * kTileSlots + j]) : BF16ToF32(t[c * kTileSlots + j]);
    return;
  }
  const int bits = BitsPerValue(codec.format);
  const int unit_bytes = UnitBytes(bits);
  for (int c = 0; c < head_dim; ++c) {
    const size_t at = KeyScaleIndex(codec, head_dim, slot, c);
    key[c] = DequantizeValue(GetPackedCode(tile + c * unit_bytes, bits, j), F16ToF32(key_scales[at]),
                             F16ToF32(key_zeros[at]));
  }
}

void DecodeValueSlot(const CodecSpec& codec, int head_dim, const void* value_data,
                     const f16_t* value_scales, const f16_t* value_zeros, int slot, float* value) {
  const int unit_channels = ValueUnitChannels(codec);
  const uint8_t* base = static_cast<const uint8_t*>(value_data);
  for (int u = 0; u < head_dim / unit_channels; ++u) {
    const uint8_t* unit = base + ValueUnitOffset(codec, head_dim, slot, u);
    float* out = value + u * unit_channels;
    if (codec.format == KvFormat::kF16) {
      for (int c = 0; c < unit_channels; ++c) out[c] = F16ToF32(reinterpret_cast<const f16_t*>(unit)[c]);
    } else if (codec.format == KvFormat::kBF16) {
      for (int c = 0; c < unit_channels; ++c) out[c] = BF16ToF32(reinterpret_cast<const bf16_t*>(unit)[c]);
    } else {
      const int bits = BitsPerValue(codec.format);
      for (int c = 0; c < unit_channels; ++c) {
        const int g = (u * unit_channels + c) / codec.group_size;
        const size_t at = size_t(slot) * (head_dim / codec.group_size) + g;
        const float scale = F16ToF32(value_scales[at]);
        const float zero = codec.symmetric ? SymmetricZero(scale, bits) : F16ToF32(value_zeros[at]);
        out[c] = DequantizeValue(GetPackedCode(unit, bits, c), scale, zero);
      }
    }
  }
}

void CopyKeySlot(const CodecSpec& codec, int head_dim, void* key_data, f16_t* key_scales,
                 f16_t* key_zeros, int from, int to) {
  CopyKeySlotBetween(codec, head_dim, key_data, key_scales, key_zeros, from, key_data, key_scales, key_zeros, to);
}

void CopyKeySlotBetween(const CodecSpec& codec, int head_dim, const void* src_data, const f16_t* src_scales,
                        const f16_t* src_zeros, int from, void* dst_data, f16_t* dst_scales, f16_t* dst_zeros,
                        int to) {
  const uint8_t* src = KeyTile(codec, head_dim, const_cast<void*>(src_data), from);
  uint8_t* dst = KeyTile(codec, head_dim, dst_data, to);
  const int jf = from % kTileSlots, jt = to % kTileSlots;
  if (!IsQuantized(codec.format)) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    for (int c = 0; c < head_dim; ++c) d[c * kTileSlots + jt] = s[c * kTileSlots + jf];
    return;
  }
  const int bits = BitsPerValue(codec.format);
  const int unit_bytes = UnitBytes(bits);
  for (int c = 0; c < head_dim; ++c)
    SetPackedCode(dst + c * unit_bytes, bits, jt, GetPackedCode(src + c * unit_bytes, bits, jf));
  for (int g = 0; g < head_dim / codec.group_size; ++g) {
    const size_t a = KeyScaleIndex(codec, head_dim, from, g * codec.group_size);
    const size_t b = KeyScaleIndex(codec, head_dim, to, g * codec.group_size);
    dst_scales[b] = src_scales[a];
    dst_zeros[b] = src_zeros[a];
  }
}

void CopyValueSlot(const CodecSpec& codec, int head_dim, void* value_data, f16_t* value_scales,
                   f16_t* value_zeros, int from, int to) {
  CopyValueSlotBetween(codec, head_dim, value_data, value_scales, value_zeros, from, value_data, value_scales,
                       value_zeros, to);
}

void CopyValueSlotBetween(const CodecSpec& codec, int head_dim, const void* src_data, const f16_t* src_scales,
                          const f16_t* src_zeros, int from, void* dst_data, f16_t* dst_scales, f16_t* dst_zeros,
                          int to) {
  const size_t unit_bytes = ValueUnitBytes(codec);
  const uint8_t* src = static_cast<const uint8_t*>(src_data);
  uint8_t* dst = static_cast<uint8_t*>(dst_data);
  for (int u = 0; u < head_dim / ValueUnitChannels(codec); ++u)
    std::memmove(dst + ValueUnitOffset(codec, head_dim, to, u), src + ValueUnitOffset(codec, head_dim, from, u),
                 unit_bytes);
  if (IsQuantized(codec.format)) {
    const int groups = head_dim / codec.group_size;
    for (int g = 0; g < groups; ++g) {
      dst_scales[size_t(to) * groups + g] = src_scales[size_t(from) * groups + g];
      if (!codec.symmetric) dst_zeros[size_t(to) * groups + g] = src_zeros[size_t(from) * groups + g];
    }
  }
}

}  // namespace akv
