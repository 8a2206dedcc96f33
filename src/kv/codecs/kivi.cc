// SIMD KIVI block quantization: channel min/max and codes are computed with vectors over
// channels (keys arrive token-major); the transpose into channel-major tiles is a byte shuffle.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kv/codecs/kivi.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kv/codecs/simd_codes-inl.h"

#include <string>
#include <vector>

#include "kv/codecs/group_quant.h"
#include "kv/codecs/kivi.h"
#include "kv/codecs/pack.h"
#include "kv/codecs/page_layout.h"

HWY_BEFORE_NAMESPACE();
namespace akv {
namespace HWY_NAMESPACE {

// Returns false on NaN or out-of-range values (the reference then reports which).
bool EncodeBlockSimd(int bits, int block, int head_dim, const float* HWY_RESTRICT keys,
                     uint8_t* HWY_RESTRICT tiles, f16_t* HWY_RESTRICT scales, f16_t* HWY_RESTRICT zeros) {
  const DF df;
  const DI32 di32;
  const hn::Rebind<uint8_t, DI32> du8;
  const int lanes = static_cast<int>(hn::Lanes(df));
  std::vector<float> zero_f(head_dim), inv_scale_f(head_dim);
  for (int c = 0; c < head_dim; c += lanes) {
    VF lo = hn::LoadU(df, keys + c), hi = lo;
    auto nan = hn::Not(hn::Eq(lo, lo));
    for (int t = 1; t < block; ++t) {
      const VF v = hn::LoadU(df, keys + size_t(t) * head_dim + c);
      lo = hn::Min(lo, v);
      hi = hn::Max(hi, v);
      nan = hn::Or(nan, hn::Not(hn::Eq(v, v)));
    }
    if (!hn::AllFalse(df, nan)) return false;
    HWY_ALIGN float lo_a[16], hi_a[16];
    hn::Store(lo, df, lo_a);
    hn::Store(hi, df, hi_a);
    for (int i = 0; i < lanes; ++i) {
      if (!CheckQuantizableRange(lo_a[i], hi_a[i]).ok()) return false;
      const GroupParams p = ChooseGroupParams(lo_a[i], hi_a[i], bits);
      scales[c + i] = p.scale;
      zeros[c + i] = p.zero;
      zero_f[c + i] = F16ToF32(p.zero);
      inv_scale_f[c + i] = InverseScale(F16ToF32(p.scale));
    }
  }
  // Codes token-major, then transposed into units of 32 slots per channel.
  std::vector<uint8_t> codes(size_t(block) * head_dim);
  const auto max_code = hn::Set(di32, MaxCode(bits));
  for (int t = 0; t < block; ++t)
    for (int c = 0; c < head_dim; c += lanes) {
      const VF x = hn::LoadU(df, keys + size_t(t) * head_dim + c);
      auto q = hn::NearestInt(hn::Mul(hn::Sub(x, hn::LoadU(df, zero_f.data() + c)), hn::LoadU(df, inv_scale_f.data() + c)));
      q = hn::Min(hn::Max(q, hn::Zero(di32)), max_code);
      hn::StoreU(hn::DemoteTo(du8, q), du8, codes.data() + size_t(t) * head_dim + c);
    }
  const size_t tile_bytes = size_t(head_dim) * kTileSlots * bits / 8;
  const int unit_bytes = UnitBytes(bits);
  for (int t0 = 0; t0 < block; t0 += kTileSlots) {
    uint8_t* tile = tiles + tile_bytes * (t0 / kTileSlots);
    uint8_t unit_codes[kUnitValues];
    for (int c = 0; c < head_dim; ++c) {
      for (int j = 0; j < kUnitValues; ++j) unit_codes[j] = codes[size_t(t0 + j) * head_dim + c];
      PackUnit(unit_codes, bits, tile + c * unit_bytes);
    }
  }
  return true;
}

}  // namespace HWY_NAMESPACE
}  // namespace akv
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv {

HWY_EXPORT(EncodeBlockSimd);

Status EncodeKeyBlockPerChannel(const CodecSpec& codec, int head_dim, const float* keys,
                                int first_slot, void* key_data, f16_t* key_scales, f16_t* key_zeros) {
  AKV_RETURN_IF_ERROR(CheckKiviBlockArgs(codec, head_dim, first_slot));
  const int block = codec.group_size;
  uint8_t* tiles = static_cast<uint8_t*>(key_data) + KeyTileBytes(codec, head_dim) * (first_slot / kTileSlots);
  const size_t scale_at = size_t(first_slot / block) * head_dim;
  if (HWY_DYNAMIC_DISPATCH(EncodeBlockSimd)(BitsPerValue(codec.format), block, head_dim, keys, tiles,
                                            key_scales + scale_at, key_zeros + scale_at))
    return Status::Ok();
  return EncodeKeyBlockPerChannelReference(codec, head_dim, keys, first_slot, key_data, key_scales, key_zeros);
}

}  // namespace akv
#endif  // HWY_ONCE
