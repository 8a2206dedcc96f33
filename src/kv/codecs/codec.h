// How one KV head's keys or values are stored: the codec of a segment (a page of slots).
//
// Formats: f16 / bf16 passthrough, or group-wise asymmetric quantization at 8, 4 or 2 bits:
//   x ~= code * scale + zero,  code in [0, 2^bits - 1],  scale and zero stored as f16,
// one (scale, zero) per group of `group_size` values. Values may instead be quantized
// symmetrically about 0: only the scale is stored and zero = -scale * (2^bits - 1) / 2
// (SymmetricZero), which saves 16 bits per group (int2 at groups of 64: 2.25 instead of 2.5 bits). Values are always grouped per token
// (G consecutive channels of one token). Keys may instead be grouped per channel over a block
// of G tokens (KIVI), and may be rotated by an orthogonal Hadamard transform before quantization
// (queries are rotated the same way, so q.k is unchanged).
//
// Packed code layout (shared by every quantized format): codes are stored in units of 32 values
// of U = 32 * bits / 8 bytes; value j of a unit lives in byte (j % U) at bit offset bits * (j / U).
//   8 bits: byte j = value j            (U = 32)
//   4 bits: byte i = v[i] | v[i+16] << 4 (U = 16)
//   2 bits: byte i = v[i] | v[i+8] << 2 | v[i+16] << 4 | v[i+24] << 6 (U = 8)
// so a SIMD register of 16 lanes decodes with one shift and one mask. Value rows use units of 32
// channels; key tiles use units of 32 tokens (see page_layout.h).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace akv {

enum class KvFormat : uint8_t { kF16, kBF16, kInt8, kInt4, kInt2 };

// Keys only: which values share a (scale, zero).
enum class KeyGrouping : uint8_t {
  kPerToken,    // G consecutive channels of one token (values always use this)
  kPerChannel,  // KIVI: one channel over a block of G tokens; the page holds whole blocks
};

// Slots per key tile and values per packed unit; page capacities are multiples of this.
constexpr int kTileSlots = 32;
constexpr int kUnitValues = 32;

struct CodecSpec {
  KvFormat format = KvFormat::kF16;
  int group_size = 32;  // quantized formats: 32, 64 or 128 (channels, or tokens for kPerChannel)
  KeyGrouping grouping = KeyGrouping::kPerToken;
  bool hadamard = false;  // keys only: rotate before quantization
  bool symmetric = false; // values only: no stored zero point (SymmetricZero)

  static CodecSpec F16() { return {}; }
  static CodecSpec BF16() { return {KvFormat::kBF16, 32, KeyGrouping::kPerToken, false}; }
  // Per-token groups; `bits` is 8, 4 or 2 (checked by Validate*, not here).
  static CodecSpec Quantized(int bits, int group_size, bool hadamard = false);
  // KIVI keys: per-channel groups over blocks of `block_tokens` tokens.
  static CodecSpec Kivi(int bits, int block_tokens, bool hadamard = false);
  // This codec with symmetric quantization (values).
  CodecSpec Symmetric() const {
    CodecSpec c = *this;
    c.symmetric = true;
    return c;
  }

  bool operator==(const CodecSpec& o) const {
    return format == o.format && group_size == o.group_size && grouping == o.grouping &&
           hadamard == o.hadamard && symmetric == o.symmetric;
  }
};

inline bool IsQuantized(KvFormat f) { return f == KvFormat::kInt8 || f == KvFormat::kInt4 || f == KvFormat::kInt2; }
// 16, 16, 8, 4, 2.
int BitsPerValue(KvFormat f);
// Largest code of a quantized format: 255, 15, 3.
inline int MaxCode(int bits) { return (1 << bits) - 1; }
// kInt8 / kInt4 / kInt2 for 8 / 4 / 2; InvalidArgument otherwise.
StatusOr<KvFormat> QuantizedFormatFromBits(int bits);
// The implied zero point of a symmetric codec: exact in f32 for an f16 scale (the factor has at most
// 8 significant bits), so every reader computes the same de-quantized value.
inline float SymmetricZero(float scale, int bits) { return -scale * (0.5f * static_cast<float>(MaxCode(bits))); }
// Bytes of one packed unit of kUnitValues values.
inline int UnitBytes(int bits) { return kUnitValues * bits / 8; }

// "f16", "int4-g32", "int2-kivi64+hadamard", ...
std::string CodecName(const CodecSpec& c);

// Checks that the codec can store keys (resp. values) of `head_dim` channels: head_dim a positive
// multiple of 16 (of 32 for quantized formats), a group size of 32/64/128 dividing head_dim
// (per-token groups), no KIVI grouping or rotation on values, no symmetric keys, a
// power-of-two-block head_dim for Hadamard (always true for multiples of 16).
Status ValidateKeyCodec(const CodecSpec& c, int head_dim);
Status ValidateValueCodec(const CodecSpec& c, int head_dim);

// Storage of one token of one KV head, codes plus scales and zeros, in bytes. Per-channel (KIVI)
// keys amortize each block's D scales and D zeros over its G tokens, hence a fraction. Page-level
// overhead (positions, key summary) is in PageLayout.
double KeyBytesPerToken(const CodecSpec& c, int head_dim);
double ValueBytesPerToken(const CodecSpec& c, int head_dim);

}  // namespace akv
