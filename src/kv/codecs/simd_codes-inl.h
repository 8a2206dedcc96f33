// Per-target SIMD helpers for packed codes and f16/bf16 loads, shared by the codecs and the
// attention kernels. Include after hwy/highway.h inside a foreach_target translation unit.
//
// A vector holds N = Lanes(df) consecutive values of one packed unit of 32 (N in {1, 4, 8, 16}).
#if defined(AKV_KV_CODECS_SIMD_CODES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef AKV_KV_CODECS_SIMD_CODES_INL_H_
#undef AKV_KV_CODECS_SIMD_CODES_INL_H_
#else
#define AKV_KV_CODECS_SIMD_CODES_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "core/half.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace akv {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU32 = hn::RebindToUnsigned<DF>;
using DI32 = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VU32 = hn::Vec<DU32>;

static_assert(32 % hn::MaxLanes(DF()) == 0, "kernels assume the f32 lane count divides 32");

// 2-bit codes with 16 lanes: lanes 0..7 and 8..15 come from the same 8 bytes, one field apart.
template <int kLanes>
HWY_INLINE VU32 LoadTwoBitCodesWide(const uint8_t* HWY_RESTRICT unit, int j0) {
  static_assert(kLanes == 16, "only 16-lane vectors are wider than a 2-bit unit");
  const hn::Simd<uint32_t, kLanes, 0> du32;
  const hn::Simd<uint8_t, kLanes, 0> du8;
  const hn::Simd<uint64_t, kLanes / 8, 0> du64;
  uint64_t word;
  std::memcpy(&word, unit, 8);
  const VU32 bytes = hn::PromoteTo(du32, hn::BitCast(du8, hn::Set(du64, word)));
  const VU32 field = hn::Add(hn::Set(du32, uint32_t(j0 / 8)), hn::ShiftRight<3>(hn::Iota(du32, 0)));
  return hn::And(hn::Shr(bytes, hn::ShiftLeft<1>(field)), hn::Set(du32, 3u));
}

// Codes of values [j0, j0 + N) of a packed unit (j0 a multiple of N), as u32 lanes.
template <int kBits>
HWY_INLINE VU32 LoadUnitCodes(const uint8_t* HWY_RESTRICT unit, int j0) {
  const DU32 du32;
  const hn::Rebind<uint8_t, DU32> du8;
  constexpr int kUnitBytes = 32 * kBits / 8;
  constexpr int kLanes = static_cast<int>(hn::MaxLanes(DF()));
  if constexpr (kBits == 8) {
    return hn::PromoteTo(du32, hn::LoadU(du8, unit + j0));
  } else if constexpr (kLanes <= kUnitBytes) {
    const VU32 bytes = hn::PromoteTo(du32, hn::LoadU(du8, unit + (j0 % kUnitBytes)));
    return hn::And(hn::ShiftRightSame(bytes, kBits * (j0 / kUnitBytes)), hn::Set(du32, (1u << kBits) - 1));
  } else {
    return LoadTwoBitCodesWide<kLanes>(unit, j0);
  }
}

#if HWY_TARGET <= HWY_AVX3
// AVX-512: codes become floats through a 16-entry in-register table (vpermps reads only the low
// 4 bits of each index lane, so no masking is needed), and the table can hold code * scale + zero
// directly: decode and de-quantization in one permute.
template <int kBits>
HWY_INLINE __m512i UnitCodeIndices(const uint8_t* HWY_RESTRICT unit, int j0) {
  if constexpr (kBits == 4) {
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(unit)));
    return j0 >= 16 ? _mm512_srli_epi32(bytes, 4) : bytes;
  } else {
    static_assert(kBits == 2, "8-bit codes do not fit a 16-entry table");
    const __m128i word = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(unit));
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(word, word));
    // Lanes 0..7 hold field j0/8, lanes 8..15 the next one: shift by 2 * field.
    const __m512i shifts = j0 >= 16 ? _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4)
                                    : _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_srlv_epi32(bytes, shifts);
  }
}
// Table lane i = the code that index i decodes to (i, or i & 3 for 2-bit codes).
template <int kBits>
HWY_INLINE VF CodeValueTable() {
  if constexpr (kBits == 4) return VF{_mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)};
  else return VF{_mm512_set_ps(3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0)};
}
#endif

// Float codes of values [j0, j0 + N) of a packed unit.
template <int kBits>
HWY_INLINE VF LoadUnitCodesF32(const uint8_t* HWY_RESTRICT unit, int j0) {
#if HWY_TARGET <= HWY_AVX3
  if constexpr (kBits != 8) return VF{_mm512_permutexvar_ps(UnitCodeIndices<kBits>(unit, j0), CodeValueTable<kBits>().raw)};
#endif
  const DF df;
  const DI32 di32;
  return hn::ConvertTo(df, hn::BitCast(di32, LoadUnitCodes<kBits>(unit, j0)));
}

// code * scale + zero for values [j0, j0 + N) sharing one (scale, zero) (broadcast vectors).
template <int kBits>
HWY_INLINE VF LoadUnitDequantized(const uint8_t* HWY_RESTRICT unit, int j0, VF scale, VF zero) {
#if HWY_TARGET <= HWY_AVX3
  if constexpr (kBits != 8) {
    const VF table = hn::MulAdd(CodeValueTable<kBits>(), scale, zero);
    return VF{_mm512_permutexvar_ps(UnitCodeIndices<kBits>(unit, j0), table.raw)};
  }
#endif
  return hn::MulAdd(LoadUnitCodesF32<kBits>(unit, j0), scale, zero);
}

// N f16 / bf16 values -> f32.
HWY_INLINE VF LoadF16AsF32(const f16_t* HWY_RESTRICT p) {
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}
HWY_INLINE VF LoadBF16AsF32(const bf16_t* HWY_RESTRICT p) {
  const DF df;
  const DU32 du32;
  const hn::Rebind<uint16_t, DF> du16;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

}  // namespace HWY_NAMESPACE
}  // namespace akv
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
