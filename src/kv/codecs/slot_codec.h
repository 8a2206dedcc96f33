// Encoding and decoding of one slot (token) of a page, given the page's sections (page_layout.h).
// Keys are passed in the stored domain: already Hadamard-rotated when the codec says so.
#pragma once

#include <cstdint>

#include "core/half.h"
#include "core/status.h"
#include "kv/codecs/codec.h"

namespace akv {

// Writes key[head_dim] into slot `slot` of the tiled key data (f16, bf16 or per-token groups;
// per-channel keys are written a block at a time, see kivi.h). scales/zeros: the page's key
// scale and zero sections (unused for f16/bf16). stored (optional, [head_dim]) receives the key
// as stored, de-quantized: what DecodeKeySlot returns, without decoding.
Status EncodeKeySlot(const CodecSpec& codec, int head_dim, const float* key, int slot,
                     void* key_data, f16_t* key_scales, f16_t* key_zeros, float* stored = nullptr);
// Writes value[head_dim] into slot `slot` of the tiled value data (its units, see page_layout.h).
Status EncodeValueSlot(const CodecSpec& codec, int head_dim, const float* value, int slot,
                       void* value_data, f16_t* value_scales, f16_t* value_zeros);

// De-quantized key of slot `slot` in the stored domain (any key codec, per-channel included).
void DecodeKeySlot(const CodecSpec& codec, int head_dim, const void* key_data,
                   const f16_t* key_scales, const f16_t* key_zeros, int slot, float* key);
void DecodeValueSlot(const CodecSpec& codec, int head_dim, const void* value_data,
                     const f16_t* value_scales, const f16_t* value_zeros, int slot, float* value);

// Moves slot `from` onto slot `to` (both < capacity) without re-quantizing: the raw codes, scales
// and zeros. Not for per-channel keys, whose scales belong to a block.
void CopyKeySlot(const CodecSpec& codec, int head_dim, void* key_data, f16_t* key_scales,
                 f16_t* key_zeros, int from, int to);
void CopyValueSlot(const CodecSpec& codec, int head_dim, void* value_data, f16_t* value_scales,
                   f16_t* value_zeros, int from, int to);
// The same, from slot `from` of one page's sections to slot `to` of another page of the same
// codec (used to compact pages after slots leave them).
void CopyKeySlotBetween(const CodecSpec& codec, int head_dim, const void* src_data, const f16_t* src_scales,
                        const f16_t* src_zeros, int from, void* dst_data, f16_t* dst_scales, f16_t* dst_zeros,
                        int to);
void CopyValueSlotBetween(const CodecSpec& codec, int head_dim, const void* src_data, const f16_t* src_scales,
                          const f16_t* src_zeros, int from, void* dst_data, f16_t* dst_scales, f16_t* dst_zeros,
                          int to);

}  // namespace akv
