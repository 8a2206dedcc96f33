// IEEE binary16 and bfloat16 scalar conversions (bit-exact, round-to-nearest-even).
// Vector code converts through Highway; these are the references and the slow paths.
#pragma once

#include <cstdint>
#include <cstring>

namespace akv {

using f16_t = uint16_t;   // raw IEEE half bits
using bf16_t = uint16_t;  // raw bfloat16 bits

inline float F16ToF32(f16_t h) {
  const uint32_t w = uint32_t(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  uint32_t bits;
  float normalized, denormalized;
  {
    uint32_t v = (two_w >> 4) + exp_offset;
    std::memcpy(&normalized, &v, 4);
    normalized *= 0x1.0p-112f;
  }
  {
    uint32_t v = (two_w >> 17) | (126u << 23);
    std::memcpy(&denormalized, &v, 4);
    denormalized -= 0.5f;
  }
  const uint32_t denorm_cutoff = 1u << 27;
  uint32_t nb, db;
  std::memcpy(&nb, &normalized, 4);
  std::memcpy(&db, &denormalized, 4);
  bits = sign | (two_w < denorm_cutoff ? db : nb);
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

inline f16_t F32ToF16(float f) {
  float base = (f < 0 ? -f : f) * 0x1.0p+112f;
  base *= 0x1.0p-110f;
  uint32_t w;
  std::memcpy(&w, &f, 4);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  float bias_f;
  uint32_t bb = (bias >> 1) + 0x07800000u;
  std::memcpy(&bias_f, &bb, 4);
  base = bias_f + base;
  uint32_t bits;
  std::memcpy(&bits, &base, 4);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<f16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float BF16ToF32(bf16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

inline bf16_t F32ToBF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((bits >> 16) | 64);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<bf16_t>(bits >> 16);
}

}  // namespace akv
