// Scalar reference of group quantization, and the (scale, zero) choice shared with the SIMD path.
#include <algorithm>
#include <string>

#include "kv/codecs/codec.h"
#include "kv/codecs/group_quant.h"
#include "kv/codecs/pack.h"

namespace akv {

namespace {

constexpr float kF16Max = 65504.0f;

// Next representable f16 below / above (finite inputs; the range check keeps results finite).
f16_t NextDownF16(f16_t h) {
  if ((h & 0x7fff) == 0) return 0x8001;        // +-0 -> smallest negative subnormal
  return (h & 0x8000) ? f16_t(h + 1) : f16_t(h - 1);
}
f16_t NextUpNonNegativeF16(f16_t h) { return (h & 0x7fff) == 0 ? f16_t(1) : f16_t(h + 1); }

}  // namespace

GroupParams ChooseGroupParams(float lo, float hi, int bits) {
  const float max_code = float(MaxCode(bits));
  lo += 0.0f;  // -0 -> +0, so the zero's bits do not depend on how the minimum was found
  GroupParams p;
  p.zero = F32ToF16(lo);
  if (F16ToF32(p.zero) > lo) p.zero = NextDownF16(p.zero);
  const float zero = F16ToF32(p.zero);
  if (!(hi > zero)) {  // constant group, exactly representable
    p.scale = 0;
    return p;
  }
  p.scale = F32ToF16((hi - zero) / max_code);
  // Round up until the top code reaches hi (at most a couple of steps: f16 rounding is 2^-11).
  while (std::fma(max_code, F16ToF32(p.scale), zero) < hi) p.scale = NextUpNonNegativeF16(p.scale);
  return p;
}

Status CheckGroupQuantArgs(int n, int bits, int group_size) {
  AKV_RETURN_IF_ERROR(QuantizedFormatFromBits(bits).status());
  if (group_size != 32 && group_size != 64 && group_size != 128)
    return InvalidArgument("group quantization: group size " + std::to_string(group_size) +
                           " is not supported (use 32, 64 or 128)");
  if (n <= 0 || n % group_size != 0)
    return InvalidArgument("group quantization: length " + std::to_string(n) +
                           " is not a positive multiple of the group size " + std::to_string(group_size));
  return Status::Ok();
}

Status CheckQuantizableRange(float lo, float hi) {
  if (lo >= -kF16Max && hi <= kF16Max) return Status::Ok();  // false for NaN
  return InvalidArgument("group quantization: values span [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "], outside the f16 range of the scales (or NaN)");
}

// Min and max of group g (`size` values at xg); an error for NaN or a range the f16 scales cannot hold.
static Status GroupRange(const float* xg, int size, int g, float* lo, float* hi) {
  *lo = *hi = xg[0];
  bool has_nan = false;
  for (int i = 0; i < size; ++i) {
    has_nan |= xg[i] != xg[i];
    *lo = std::min(*lo, xg[i]);
    *hi = std::max(*hi, xg[i]);
  }
  if (has_nan) return InvalidArgument("group quantization: NaN in group " + std::to_string(g));
  return CheckQuantizableRange(*lo, *hi);
}

Status QuantizeToCodesReference(const float* x, int n, int bits, int group_size, uint8_t* codes,
                                f16_t* scales, f16_t* zeros) {
  AKV_RETURN_IF_ERROR(CheckGroupQuantArgs(n, bits, group_size));
  for (int g = 0; g < n / group_size; ++g) {
    const float* xg = x + g * group_size;
    float lo, hi;
    AKV_RETURN_IF_ERROR(GroupRange(xg, group_size, g, &lo, &hi));
    const GroupParams p = ChooseGroupParams(lo, hi, bits);
    scales[g] = p.scale;
    zeros[g] = p.zero;
    const float zero = F16ToF32(p.zero), inv_scale = InverseScale(F16ToF32(p.scale));
    for (int i = 0; i < group_size; ++i)
      codes[g * group_size + i] = QuantizeValue(xg[i], zero, inv_scale, MaxCode(bits));
  }
  return Status::Ok();
}

Status QuantizeRowReference(const float* x, int n, int bits, int group_size, uint8_t* packed,
                            f16_t* scales, f16_t* zeros) {
  AKV_RETURN_IF_ERROR(CheckGroupQuantArgs(n, bits, group_size));
  uint8_t codes[128];
  for (int g = 0; g < n / group_size; ++g) {
    AKV_RETURN_IF_ERROR(QuantizeToCodesReference(x + g * group_size, group_size, bits, group_size,
                                                 codes, scales + g, zeros + g));
    for (int u = 0; u < group_size / kUnitValues; ++u)
      PackUnit(codes + u * kUnitValues, bits, packed + (g * group_size / kUnitValues + u) * UnitBytes(bits));
  }
  return Status::Ok();
}

Status QuantizeRowSymmetric(const float* x, int n, int bits, int group_size, uint8_t* packed, f16_t* scales) {
  AKV_RETURN_IF_ERROR(CheckGroupQuantArgs(n, bits, group_size));
  const int max_code = MaxCode(bits);
  uint8_t codes[128];
  for (int g = 0; g < n / group_size; ++g) {
    const float* xg = x + g * group_size;
    float lo, hi;
    AKV_RETURN_IF_ERROR(GroupRange(xg, group_size, g, &lo, &hi));
    const float m = std::max(-lo, hi);
    f16_t scale = F32ToF16(m / (0.5f * float(max_code)));
    // Round up until the grid covers the group (f16 rounding: at most a couple of steps).
    while (m > 0 && (SymmetricZero(F16ToF32(scale), bits) > lo ||
                     std::fma(float(max_code), F16ToF32(scale), SymmetricZero(F16ToF32(scale), bits)) < hi))
      scale = NextUpNonNegativeF16(scale);
    scales[g] = scale;
    const float s = F16ToF32(scale);
    const float zero = SymmetricZero(s, bits), inv_scale = InverseScale(s);
    for (int i = 0; i < group_size; ++i) codes[i] = m > 0 ? QuantizeValue(xg[i], zero, inv_scale, max_code) : 0;
    for (int u = 0; u < group_size / kUnitValues; ++u)
      PackUnit(codes + u * kUnitValues, bits, packed + (g * group_size / kUnitValues + u) * UnitBytes(bits));
  }
  return Status::Ok();
}

void DequantizeRowReference(const uint8_t* packed, const f16_t* scales, const f16_t* zeros, int n,
                            int bits, int group_size, float* out) {
  for (int i = 0; i < n; ++i) {
    const int g = i / group_size;
    const int code = GetPackedCode(packed + (i / kUnitValues) * UnitBytes(bits), bits, i % kUnitValues);
    out[i] = DequantizeValue(code, F16ToF32(scales[g]), F16ToF32(zeros[g]));
  }
}

}  // namespace akv
