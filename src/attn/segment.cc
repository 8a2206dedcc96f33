#include "attn/segment.h"

#include <string>

#include "kv/codecs/slot_codec.h"

namespace akv {

KvSegment SegmentOfPage(const PageLayout& l, const uint8_t* page, int n_slots) {
  auto f16_at = [page](size_t offset) { return offset ? reinterpret_cast<const f16_t*>(page + offset) : nullptr; };
  KvSegment s;
  s.n_slots = n_slots;
  s.positions = reinterpret_cast<const int32_t*>(page + l.positions_offset);
  s.key_codec = l.key;
  s.key_data = page + l.key_data_offset;
  s.key_scales = f16_at(l.key_scales_offset);
  s.key_zeros = f16_at(l.key_zeros_offset);
  s.value_codec = l.value;
  s.value_data = page + l.value_data_offset;
  s.value_scales = f16_at(l.value_scales_offset);
  s.value_zeros = f16_at(l.value_zeros_offset);
  s.key_min = f16_at(l.key_min_offset);
  s.key_max = f16_at(l.key_max_offset);
  return s;
}

Status ValidateSegment(const KvSegment& s, int head_dim, std::string_view what_view) {
  auto what = [what_view] { return std::string(what_view); };
  if (s.n_slots < 0) return InvalidArgument(what() + ": negative slot count " + std::to_string(s.n_slots));
  Status st = ValidateKeyCodec(s.key_codec, head_dim);
  if (!st.ok()) return InvalidArgument(what() + ": " + st.message());
  st = ValidateValueCodec(s.value_codec, head_dim);
  if (!st.ok()) return InvalidArgument(what() + ": " + st.message());
  if (s.n_slots == 0) return Status::Ok();
  if (!s.positions || !s.key_data || !s.value_data)
    return InvalidArgument(what() + ": positions, key data and value data are required");
  if (IsQuantized(s.key_codec.format) && (!s.key_scales || !s.key_zeros))
    return InvalidArgument(what() + ": " + CodecName(s.key_codec) + " keys need scales and zeros");
  if (IsQuantized(s.value_codec.format) && (!s.value_scales || (!s.value_zeros && !s.value_codec.symmetric)))
    return InvalidArgument(what() + ": " + CodecName(s.value_codec) + " values need scales and zeros");
  return Status::Ok();
}

void DecodeSegmentKey(const KvSegment& s, int head_dim, int slot, float* key) {
  DecodeKeySlot(s.key_codec, head_dim, s.key_data, s.key_scales, s.key_zeros, slot, key);
}

void DecodeSegmentValue(const KvSegment& s, int head_dim, int slot, float* value) {
  DecodeValueSlot(s.value_codec, head_dim, s.value_data, s.value_scales, s.value_zeros, slot, value);
}

}  // namespace akv
