// Scalar access to packed code units (layout in codec.h): value j of a unit of 32 values lives in
// byte (j % U) at bit offset bits * (j / U), U = 32 * bits / 8.
#pragma once

#include <cstdint>

#include "kv/codecs/codec.h"

namespace akv {

inline int GetPackedCode(const uint8_t* unit, int bits, int j) {
  const int unit_bytes = UnitBytes(bits);
  const int shift = bits * (j / unit_bytes);
  return (unit[j % unit_bytes] >> shift) & MaxCode(bits);
}

inline void SetPackedCode(uint8_t* unit, int bits, int j, int code) {
  const int unit_bytes = UnitBytes(bits);
  const int shift = bits * (j / unit_bytes);
  uint8_t& b = unit[j % unit_bytes];
  b = static_cast<uint8_t>((b & ~(MaxCode(bits) << shift)) | (code << shift));
}

// codes[32] (one byte each) -> one packed unit.
inline void PackUnit(const uint8_t* codes, int bits, uint8_t* unit) {
  const int unit_bytes = UnitBytes(bits);
  const int per_byte = 8 / bits;
  for (int i = 0; i < unit_bytes; ++i) {
    int b = 0;
    for (int k = 0; k < per_byte; ++k) b |= codes[i + k * unit_bytes] << (k * bits);
    unit[i] = static_cast<uint8_t>(b);
  }
}

inline void UnpackUnit(const uint8_t* unit, int bits, uint8_t* codes) {
  for (int j = 0; j < kUnitValues; ++j) codes[j] = static_cast<uint8_t>(GetPackedCode(unit, bits, j));
}

}  // namespace akv
