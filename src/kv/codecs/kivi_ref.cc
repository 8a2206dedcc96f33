// Scalar reference of KIVI per-channel key quantization.
#include <algorithm>
#include <string>
#include <vector>

#include "kv/codecs/group_quant.h"
#include "kv/codecs/kivi.h"
#include "kv/codecs/pack.h"
#include "kv/codecs/page_layout.h"

namespace akv {

Status CheckKiviBlockArgs(const CodecSpec& codec, int head_dim, int first_slot) {
  AKV_RETURN_IF_ERROR(ValidateKeyCodec(codec, head_dim));
  if (codec.grouping != KeyGrouping::kPerChannel)
    return InvalidArgument("KIVI block encoding: key codec " + CodecName(codec) + " is not per-channel");
  if (first_slot < 0 || first_slot % codec.group_size != 0)
    return InvalidArgument("KIVI block encoding: first slot " + std::to_string(first_slot) +
                           " is not a multiple of the block size " + std::to_string(codec.group_size));
  return Status::Ok();
}

Status EncodeKeyBlockPerChannelReference(const CodecSpec& codec, int head_dim, const float* keys,
                                         int first_slot, void* key_data, f16_t* key_scales,
                                         f16_t* key_zeros) {
  AKV_RETURN_IF_ERROR(CheckKiviBlockArgs(codec, head_dim, first_slot));
  const int block = codec.group_size, bits = BitsPerValue(codec.format);
  const size_t scale_at = size_t(first_slot / block) * head_dim;
  std::vector<uint8_t> codes(size_t(block) * head_dim);  // [token][channel]
  for (int c = 0; c < head_dim; ++c) {
    float lo = keys[c], hi = keys[c];
    for (int t = 0; t < block; ++t) {
      const float x = keys[size_t(t) * head_dim + c];
      if (x != x) return InvalidArgument("KIVI block encoding: NaN in channel " + std::to_string(c));
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    AKV_RETURN_IF_ERROR(CheckQuantizableRange(lo, hi));
    const GroupParams p = ChooseGroupParams(lo, hi, bits);
    key_scales[scale_at + c] = p.scale;
    key_zeros[scale_at + c] = p.zero;
    const float zero = F16ToF32(p.zero), inv_scale = InverseScale(F16ToF32(p.scale));
    for (int t = 0; t < block; ++t)
      codes[size_t(t) * head_dim + c] = QuantizeValue(keys[size_t(t) * head_dim + c], zero, inv_scale, MaxCode(bits));
  }
  const size_t tile_bytes = KeyTileBytes(codec, head_dim);
  const int unit_bytes = UnitBytes(bits);
  for (int t0 = 0; t0 < block; t0 += kTileSlots) {
    uint8_t* tile = static_cast<uint8_t*>(key_data) + tile_bytes * ((first_slot + t0) / kTileSlots);
    uint8_t unit_codes[kUnitValues];
    for (int c = 0; c < head_dim; ++c) {
      for (int j = 0; j < kUnitValues; ++j) unit_codes[j] = codes[size_t(t0 + j) * head_dim + c];
      PackUnit(unit_codes, bits, tile + c * unit_bytes);
    }
  }
  return Status::Ok();
}

}  // namespace akv
