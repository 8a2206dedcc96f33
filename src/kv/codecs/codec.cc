#include "kv/codecs/codec.h"

namespace akv {

CodecSpec CodecSpec::Quantized(int bits, int group_size, bool hadamard) {
  CodecSpec c;
  auto f = QuantizedFormatFromBits(bits);
  // An invalid bit width keeps a sentinel that Validate* rejects with a message.
  c.format = f.ok() ? *f : static_cast<KvFormat>(255);
  c.group_size = group_size;
  c.hadamard = hadamard;
  return c;
}

CodecSpec CodecSpec::Kivi(int bits, int block_tokens, bool hadamard) {
  CodecSpec c = Quantized(bits, block_tokens, hadamard);
  c.grouping = KeyGrouping::kPerChannel;
  return c;
}

int BitsPerValue(KvFormat f) {
  switch (f) {
    case KvFormat::kF16:
    case KvFormat::kBF16: return 16;
    case KvFormat::kInt8: return 8;
    case KvFormat::kInt4: return 4;
    case KvFormat::kInt2: return 2;
  }
  return 0;
}

StatusOr<KvFormat> QuantizedFormatFromBits(int bits) {
  switch (bits) {
    case 8: return KvFormat::kInt8;
    case 4: return KvFormat::kInt4;
    case 2: return KvFormat::kInt2;
  }
  return InvalidArgument("quantized KV codec: bit width " + std::to_string(bits) +
                         " is not supported (use 8, 4 or 2)");
}

std::string CodecName(const CodecSpec& c) {
  std::string s;
  switch (c.format) {
    case KvFormat::kF16: s = "f16"; break;
    case KvFormat::kBF16: s = "bf16"; break;
    case KvFormat::kInt8: s = "int8"; break;
    case KvFormat::kInt4: s = "int4"; break;
    case KvFormat::kInt2: s = "int2"; break;
    default: s = "invalid"; break;
  }
  if (IsQuantized(c.format)) {
    s += c.grouping == KeyGrouping::kPerChannel ? "-kivi" : "-g";
    s += std::to_string(c.group_size);
  }
  if (c.hadamard) s += "+hadamard";
  if (c.symmetric) s += "+sym";
  return s;
}

namespace {

bool IsKnownFormat(KvFormat f) {
  return f == KvFormat::kF16 || f == KvFormat::kBF16 || IsQuantized(f);
}

Status ValidateCommon(const CodecSpec& c, int head_dim, const char* what) {
  // The name is built only for an error: attention validates every segment of every step.
  auto name = [&] { return std::string(what) + " codec " + CodecName(c); };
  if (!IsKnownFormat(c.format)) return InvalidArgument(name() + ": unknown format or bit width");
  if (head_dim <= 0 || head_dim % 16 != 0)
    return InvalidArgument(name() + ": head_dim " + std::to_string(head_dim) +
                           " must be a positive multiple of 16");
  if (!IsQuantized(c.format)) return Status::Ok();
  if (c.group_size != 32 && c.group_size != 64 && c.group_size != 128)
    return InvalidArgument(name() + ": group size " + std::to_string(c.group_size) +
                           " is not supported (use 32, 64 or 128)");
  if (head_dim % kUnitValues != 0)
    return InvalidArgument(name() + ": head_dim " + std::to_string(head_dim) +
                           " must be a multiple of 32 for quantized formats");
  if (c.grouping == KeyGrouping::kPerToken && head_dim % c.group_size != 0)
    return InvalidArgument(name() + ": group size " + std::to_string(c.group_size) +
                           " does not divide head_dim " + std::to_string(head_dim));
  return Status::Ok();
}

}  // namespace

Status ValidateKeyCodec(const CodecSpec& c, int head_dim) {
  AKV_RETURN_IF_ERROR(ValidateCommon(c, head_dim, "key"));
  if (c.grouping == KeyGrouping::kPerChannel && !IsQuantized(c.format))
    return InvalidArgument("key codec " + CodecName(c) + ": per-channel grouping needs a quantized format");
  if (c.symmetric) return InvalidArgument("key codec " + CodecName(c) + ": symmetric quantization is for values only");
  return Status::Ok();
}

Status ValidateValueCodec(const CodecSpec& c, int head_dim) {
  AKV_RETURN_IF_ERROR(ValidateCommon(c, head_dim, "value"));
  if (c.grouping != KeyGrouping::kPerToken)
    return InvalidArgument("value codec " + CodecName(c) + ": values are quantized per token only");
  if (c.hadamard) return InvalidArgument("value codec " + CodecName(c) + ": Hadamard rotation is for keys only");
  if (c.symmetric && !IsQuantized(c.format))
    return InvalidArgument("value codec " + CodecName(c) + ": symmetric needs a quantized format");
  return Status::Ok();
}

double KeyBytesPerToken(const CodecSpec& c, int head_dim) {
  const int bits = BitsPerValue(c.format);
  const double codes = double(head_dim) * bits / 8;
  if (!IsQuantized(c.format)) return codes;
  // Two f16 per group: scale and zero.
  if (c.grouping == KeyGrouping::kPerChannel) return codes + 4.0 * head_dim / c.group_size;
  return codes + 4.0 * (head_dim / c.group_size);
}

double ValueBytesPerToken(const CodecSpec& c, int head_dim) {
  const int bits = BitsPerValue(c.format);
  const double codes = double(head_dim) * bits / 8;
  if (!IsQuantized(c.format)) return codes;
  // f16 scale and zero per group; symmetric: the scale only.
  return codes + (c.symmetric ? 2.0 : 4.0) * (head_dim / c.group_size);
}

}  // namespace akv
