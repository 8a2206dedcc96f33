// SIMD group quantization (Highway, runtime dispatch). Same contract and bit-identical results as
// group_quant_ref.cc: min/max and the (scale, zero) choice are exact; codes use the same f32
// subtract, multiply and round-to-nearest-even.
// SSSE3 adds nothing over SSE4 here and costs compile time.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kv/codecs/group_quant.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kv/codecs/simd_codes-inl.h"

#include <immintrin.h>

#include <cmath>

#include "kv/codecs/codec.h"
#include "kv/codecs/group_quant.h"

HWY_BEFORE_NAMESPACE();
namespace akv {
namespace HWY_NAMESPACE {

// ChooseGroupParams with the hardware f16 converter where the target has one (same rounding to
// nearest even as core/half.h, so the result is bit-identical; the tests check it).
#if HWY_TARGET <= HWY_AVX2
HWY_INLINE f16_t ToF16(float x) { return static_cast<f16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }
HWY_INLINE float FromF16(f16_t h) { return _cvtsh_ss(h); }
HWY_INLINE GroupParams ChooseParams(float lo, float hi, int bits) {
  const float max_code = float(MaxCode(bits));
  lo += 0.0f;
  GroupParams p;
  p.zero = ToF16(lo);
  if (FromF16(p.zero) > lo) {
    p.zero = (p.zero & 0x7fff) == 0 ? f16_t(0x8001) : ((p.zero & 0x8000) ? f16_t(p.zero + 1) : f16_t(p.zero - 1));
  }
  const float zero = FromF16(p.zero);
  if (!(hi > zero)) {
    p.scale = 0;
    return p;
  }
  p.scale = ToF16((hi - zero) / max_code);
  while (std::fma(max_code, FromF16(p.scale), zero) < hi) p.scale = (p.scale & 0x7fff) == 0 ? f16_t(1) : f16_t(p.scale + 1);
  return p;
}
#else
HWY_INLINE GroupParams ChooseParams(float lo, float hi, int bits) { return ChooseGroupParams(lo, hi, bits); }
#endif

// Codes of one group (n values) into codes[n]; returns false on NaN or out-of-range values.
HWY_INLINE bool QuantizeGroupToCodes(const float* HWY_RESTRICT x, int n, int bits,
                                     uint8_t* HWY_RESTRICT codes, f16_t* scale, f16_t* zero) {
  const DF df;
  const DI32 di32;
  const hn::Rebind<uint8_t, DI32> du8;
  const int lanes = static_cast<int>(hn::Lanes(df));
  VF lo = hn::LoadU(df, x), hi = lo;
  auto nan = hn::Not(hn::Eq(lo, lo));
  for (int i = lanes; i < n; i += lanes) {
    const VF v = hn::LoadU(df, x + i);
    lo = hn::Min(lo, v);
    hi = hn::Max(hi, v);
    nan = hn::Or(nan, hn::Not(hn::Eq(v, v)));
  }
  if (!hn::AllFalse(df, nan)) return false;
  const float lo_s = hn::GetLane(hn::MinOfLanes(df, lo));
  const float hi_s = hn::GetLane(hn::MaxOfLanes(df, hi));
  if (!(lo_s >= -65504.0f && hi_s <= 65504.0f)) return false;  // CheckQuantizableRange, without a message
  const GroupParams p = ChooseParams(lo_s, hi_s, bits);
  *scale = p.scale;
  *zero = p.zero;
  const VF z = hn::Set(df, F16ToF32(p.zero));
  const VF inv_scale = hn::Set(df, InverseScale(F16ToF32(p.scale)));
  const auto max_code = hn::Set(di32, MaxCode(bits));
  const auto zero_code = hn::Zero(di32);
  for (int i = 0; i < n; i += lanes) {
    auto c = hn::NearestInt(hn::Mul(hn::Sub(hn::LoadU(df, x + i), z), inv_scale));
    c = hn::Min(hn::Max(c, zero_code), max_code);
    hn::StoreU(hn::DemoteTo(du8, c), du8, codes + i);
  }
  return true;
}

template <int kBits>
HWY_INLINE void PackUnitSimd(const uint8_t* HWY_RESTRICT codes, uint8_t* HWY_RESTRICT unit) {
  if constexpr (kBits == 8) {
    std::memcpy(unit, codes, 32);
  } else if constexpr (kBits == 4) {
    const hn::CappedTag<uint8_t, 16> d;
    for (int i = 0; i < 16; i += static_cast<int>(hn::Lanes(d))) {
      const auto lo = hn::LoadU(d, codes + i), hi = hn::LoadU(d, codes + 16 + i);
      hn::StoreU(hn::Or(lo, hn::ShiftLeft<4>(hi)), d, unit + i);
    }
  } else {
    const hn::CappedTag<uint8_t, 8> d;
    for (int i = 0; i < 8; i += static_cast<int>(hn::Lanes(d))) {
      const auto a = hn::LoadU(d, codes + i), b = hn::LoadU(d, codes + 8 + i);
      const auto c = hn::LoadU(d, codes + 16 + i), e = hn::LoadU(d, codes + 24 + i);
      hn::StoreU(hn::Or(hn::Or(a, hn::ShiftLeft<2>(b)), hn::Or(hn::ShiftLeft<4>(c), hn::ShiftLeft<6>(e))),
                 d, unit + i);
    }
  }
}

bool QuantizeToCodesSimd(const float* x, int n, int bits, int group_size, uint8_t* codes,
                         f16_t* scales, f16_t* zeros) {
  for (int g = 0; g < n / group_size; ++g) {
    if (!QuantizeGroupToCodes(x + g * group_size, group_size, bits, codes + g * group_size,
                              scales + g, zeros + g))
      return false;
  }
  return true;
}

template <int kBits>
bool QuantizeRowBits(const float* x, int n, int group_size, uint8_t* packed, f16_t* scales,
                     f16_t* zeros) {
  HWY_ALIGN uint8_t codes[128];
  for (int g = 0; g < n / group_size; ++g) {
    if (!QuantizeGroupToCodes(x + g * group_size, group_size, kBits, codes, scales + g, zeros + g))
      return false;
    for (int u = 0; u < group_size / kUnitValues; ++u)
      PackUnitSimd<kBits>(codes + u * kUnitValues,
                          packed + (g * group_size / kUnitValues + u) * (kUnitValues * kBits / 8));
  }
  return true;
}

bool QuantizeRowSimd(const float* x, int n, int bits, int group_size, uint8_t* packed,
                     f16_t* scales, f16_t* zeros) {
  switch (bits) {
    case 8: return QuantizeRowBits<8>(x, n, group_size, packed, scales, zeros);
    case 4: return QuantizeRowBits<4>(x, n, group_size, packed, scales, zeros);
    default: return QuantizeRowBits<2>(x, n, group_size, packed, scales, zeros);
  }
}

template <int kBits>
void DequantizeRowBits(const uint8_t* packed, const f16_t* scales, const f16_t* zeros, int n,
                       int group_size, float* out) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  constexpr int kUnitBytes = kUnitValues * kBits / 8;
  for (int g = 0; g < n / group_size; ++g) {
    const VF s = hn::Set(df, F16ToF32(scales[g])), z = hn::Set(df, F16ToF32(zeros[g]));
    for (int i = g * group_size; i < (g + 1) * group_size; i += lanes) {
      const VF codes = LoadUnitCodesF32<kBits>(packed + (i / kUnitValues) * kUnitBytes, i % kUnitValues);
      hn::StoreU(hn::MulAdd(codes, s, z), df, out + i);
    }
  }
}

void DequantizeRowSimd(const uint8_t* packed, const f16_t* scales, const f16_t* zeros, int n,
                       int bits, int group_size, float* out) {
  switch (bits) {
    case 8: return DequantizeRowBits<8>(packed, scales, zeros, n, group_size, out);
    case 4: return DequantizeRowBits<4>(packed, scales, zeros, n, group_size, out);
    default: return DequantizeRowBits<2>(packed, scales, zeros, n, group_size, out);
  }
}

void DequantizeCodesSimd(const uint8_t* HWY_RESTRICT codes, const f16_t* HWY_RESTRICT scales,
                         const f16_t* HWY_RESTRICT zeros, int n, int group_size, float* HWY_RESTRICT out) {
  const DF df;
  const DU32 du32;
  const DI32 di32;
  const hn::Rebind<uint8_t, DU32> du8;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int g = 0; g < n / group_size; ++g) {
    const VF s = hn::Set(df, F16ToF32(scales[g])), z = hn::Set(df, F16ToF32(zeros[g]));
    for (int i = g * group_size; i < (g + 1) * group_size; i += lanes) {
      const VF c = hn::ConvertTo(df, hn::BitCast(di32, hn::PromoteTo(du32, hn::LoadU(du8, codes + i))));
      hn::StoreU(hn::MulAdd(c, s, z), df, out + i);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace akv
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv {

HWY_EXPORT(QuantizeToCodesSimd);
HWY_EXPORT(QuantizeRowSimd);
HWY_EXPORT(DequantizeRowSimd);
HWY_EXPORT(DequantizeCodesSimd);

void DequantizeCodes(const uint8_t* codes, const f16_t* scales, const f16_t* zeros, int n, int group_size,
                     float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeCodesSimd)(codes, scales, zeros, n, group_size, out);
}

Status QuantizeToCodes(const float* x, int n, int bits, int group_size, uint8_t* codes,
                       f16_t* scales, f16_t* zeros) {
  AKV_RETURN_IF_ERROR(CheckGroupQuantArgs(n, bits, group_size));
  if (HWY_DYNAMIC_DISPATCH(QuantizeToCodesSimd)(x, n, bits, group_size, codes, scales, zeros))
    return Status::Ok();
  // Rare: let the reference produce the message that names the bad group.
  return QuantizeToCodesReference(x, n, bits, group_size, codes, scales, zeros);
}

Status QuantizeRow(const float* x, int n, int bits, int group_size, uint8_t* packed, f16_t* scales,
                   f16_t* zeros) {
  AKV_RETURN_IF_ERROR(CheckGroupQuantArgs(n, bits, group_size));
  if (HWY_DYNAMIC_DISPATCH(QuantizeRowSimd)(x, n, bits, group_size, packed, scales, zeros))
    return Status::Ok();
  return QuantizeRowReference(x, n, bits, group_size, packed, scales, zeros);
}

void DequantizeRow(const uint8_t* packed, const f16_t* scales, const f16_t* zeros, int n, int bits,
                   int group_size, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowSimd)(packed, scales, zeros, n, bits, group_size, out);
}

}  // namespace akv
#endif  // HWY_ONCE
