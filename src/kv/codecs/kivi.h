// KIVI key quantization: per-channel groups over a block of G tokens (G = codec.group_size).
// Keys have a few outlier channels with large, persistent magnitude; grouping along tokens gives
// each channel its own scale, so outliers do not widen everyone else's. The newest tokens of a
// sequence stay in f16 until a whole block is available (kv/page/kivi_appender.h).
#pragma once

#include "core/half.h"
#include "core/status.h"
#include "kv/codecs/codec.h"

namespace akv {

// Quantizes keys[G][head_dim] (stored domain, row-major) into slots [first_slot, first_slot + G)
// of a page's tiled key data; first_slot is a multiple of G. Writes the block's D scales and D
// zeros at block first_slot / G of key_scales / key_zeros ([blocks][D]).
Status EncodeKeyBlockPerChannel(const CodecSpec& codec, int head_dim, const float* keys,
                                int first_slot, void* key_data, f16_t* key_scales, f16_t* key_zeros);
// Scalar reference: bit-identical output.
Status EncodeKeyBlockPerChannelReference(const CodecSpec& codec, int head_dim, const float* keys,
                                         int first_slot, void* key_data, f16_t* key_scales,
                                         f16_t* key_zeros);

// The argument checks both paths share: a valid per-channel key codec, first_slot block-aligned.
Status CheckKiviBlockArgs(const CodecSpec& codec, int head_dim, int first_slot);

}  // namespace akv
