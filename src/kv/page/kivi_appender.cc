#include "kv/page/kivi_appender.h"

#include <string>

namespace akv {

StatusOr<KiviAppender> KiviAppender::Create(const CodecSpec& key, const CodecSpec& value, int head_dim) {
  AKV_RETURN_IF_ERROR(ValidateKeyCodec(key, head_dim));
  AKV_RETURN_IF_ERROR(ValidateValueCodec(value, head_dim));
  if (key.grouping != KeyGrouping::kPerChannel)
    return InvalidArgument("KIVI appender: key codec " + CodecName(key) + " is not per-channel");
  AKV_ASSIGN_OR_RETURN(KvPage residual, KvPage::Create(CodecSpec::F16(), CodecSpec::F16(), head_dim, key.group_size));
  return KiviAppender(key, value, std::move(residual));
}

Status KiviAppender::Append(const float* key, const float* value, int32_t position) {
  if (full()) return OutOfRange("KIVI appender: the residual block is full; Flush it first");
  return residual_.Append(key, value, position);
}

Status KiviAppender::Flush(KvPage* dest) {
  if (!full()) return InvalidArgument("KIVI appender: the residual holds " + std::to_string(residual_.n_slots()) +
                                      " of " + std::to_string(block()) + " tokens");
  if (!dest || !(dest->layout().key == key_) || !(dest->layout().value == value_))
    return InvalidArgument("KIVI appender: the destination page does not use codecs " + CodecName(key_) + " / " +
                           CodecName(value_));
  const int dim = residual_.head_dim(), n = residual_.n_slots();
  std::vector<float> keys(size_t(n) * dim), values(size_t(n) * dim);
  for (int i = 0; i < n; ++i)
    AKV_RETURN_IF_ERROR(residual_.ReadSlot(i, keys.data() + size_t(i) * dim, values.data() + size_t(i) * dim));
  AKV_RETURN_IF_ERROR(dest->AppendBlock(keys.data(), values.data(), residual_.positions(), n));
  residual_.Clear();
  return Status::Ok();
}

}  // namespace akv
