// Scalar dequantizers for every supported GGUF type, bit-compatible with ggml's
// dequantize_row_* (layouts described next to each function). These are the references the
// fast kernels are tested against, and the path used for embedding look-ups (one row per token).
#include <cassert>
#include <cstring>

#include "cpu/quants.h"
#include "cpu/vec_ops.h"

namespace akv {
namespace {

// Q4_0: 32 values, x = d * (q - 8); byte j holds element j (low nibble) and j + 16 (high).
void DequantQ4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * float((b[i].qs[j] & 0x0F) - 8);
      y[j + kQK / 2] = d * float((b[i].qs[j] >> 4) - 8);
    }
  }
}

// Q4_1: x = d * q + m, same nibble order as Q4_0.
void DequantQ4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(b[i].d), m = F16ToF32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * float(b[i].qs[j] & 0x0F) + m;
      y[j + kQK / 2] = d * float(b[i].qs[j] >> 4) + m;
    }
  }
}

// Q5_0/Q5_1: the fifth bit of element j is bit j of the little-endian uint32 qh
// (elements 0..15 bits 0..15, elements 16..31 bits 16..31).
inline uint32_t LoadQh(const uint8_t qh[4]) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

void DequantQ5_0(const BlockQ5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(b[i].d);
    const uint32_t qh = LoadQh(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
      y[j] = d * float(((b[i].qs[j] & 0x0F) | (h0 << 4)) - 16);
      y[j + kQK / 2] = d * float(((b[i].qs[j] >> 4) | (h1 << 4)) - 16);
    }
  }
}

void DequantQ5_1(const BlockQ5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(b[i].d), m = F16ToF32(b[i].m);
    const uint32_t qh = LoadQh(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
      y[j] = d * float((b[i].qs[j] & 0x0F) | (h0 << 4)) + m;
      y[j + kQK / 2] = d * float((b[i].qs[j] >> 4) | (h1 << 4)) + m;
    }
  }
}

void DequantQ8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * float(b[i].qs[j]);
  }
}

// K-quant 6-bit scale/min pairs: 8 sub-blocks of 32, packed in 12 bytes. Sub-blocks 0..3 use the
// low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 take their low 4 bits from
// bytes 8..11 (scale: low nibble, min: high nibble) and their top 2 bits from the top 2 bits of
// bytes 0..3 (scale) and 4..7 (min).
void UnpackScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K: 256 values in 4 chunks of 64; chunk c uses qs[32c .. 32c+31]: low nibbles are sub-block
// 2c, high nibbles sub-block 2c+1. x = d * sc * q - dmin * m.
void DequantQ4_K(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d), dmin = F16ToF32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c, q += 32) {
      uint8_t sc, m;
      UnpackScaleMinK4(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      UnpackScaleMinK4(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: as Q4_K plus a fifth bit: for chunk c, element l of sub-block 2c takes bit 2c of qh[l],
// sub-block 2c+1 takes bit 2c+1 of qh[l] (qh has 32 bytes shared by all chunks).
void DequantQ5_K(const BlockQ5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d), dmin = F16ToF32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    const uint8_t* qh = b[i].qh;
    for (int c = 0; c < 4; ++c, q += 32) {
      uint8_t sc, m;
      UnpackScaleMinK4(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      UnpackScaleMinK4(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const int h = (qh[l] >> (2 * c)) & 1;
        *y++ = d1 * float((q[l] & 0x0F) | (h << 4)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int h = (qh[l] >> (2 * c + 1)) & 1;
        *y++ = d2 * float((q[l] >> 4) | (h << 4)) - m2;
      }
    }
  }
}

// Q6_K: 256 values in 2 halves of 128 (ql advances 64 bytes, qh 32, scales 8 per half).
// Within a half, element 32k + l (k < 4, l < 32) has low 4 bits from ql[l + 32 * (k & 1)]
// (low nibble for k < 2, high nibble for k >= 2), high 2 bits from bits 2k..2k+1 of qh[l],
// and scale scales[2k + l / 16]. x = d * scale * (q - 32).
void DequantQ6_K(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is + 0]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

}  // namespace

void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  const GgmlTypeTraits tr = GetTypeTraits(type);
  assert(tr.supported && n % tr.block_size == 0);
  const int64_t nb = n / tr.block_size;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * sizeof(float)); return;
    case GgmlType::F16: F16ToF32Row(static_cast<const f16_t*>(src), dst, n); return;
    case GgmlType::BF16: BF16ToF32Row(static_cast<const bf16_t*>(src), dst, n); return;
    case GgmlType::Q4_0: DequantQ4_0(static_cast<const BlockQ4_0*>(src), dst, nb); return;
    case GgmlType::Q4_1: DequantQ4_1(static_cast<const BlockQ4_1*>(src), dst, nb); return;
    case GgmlType::Q5_0: DequantQ5_0(static_cast<const BlockQ5_0*>(src), dst, nb); return;
    case GgmlType::Q5_1: DequantQ5_1(static_cast<const BlockQ5_1*>(src), dst, nb); return;
    case GgmlType::Q8_0: DequantQ8_0(static_cast<const BlockQ8_0*>(src), dst, nb); return;
    case GgmlType::Q4_K: DequantQ4_K(static_cast<const BlockQ4_K*>(src), dst, nb); return;
    case GgmlType::Q5_K: DequantQ5_K(static_cast<const BlockQ5_K*>(src), dst, nb); return;
    case GgmlType::Q6_K: DequantQ6_K(static_cast<const BlockQ6_K*>(src), dst, nb); return;
    default: assert(false && "DequantizeRow: unsupported type"); return;
  }
}

}  // namespace akv
