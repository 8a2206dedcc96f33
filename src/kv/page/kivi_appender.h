// KIVI's residual: the newest tokens of a KV head stay in f16 (keys and values) until a whole
// block of G tokens has arrived; then the block is quantized at once (keys per channel over the
// block, values per token) into a page of the KIVI codec. The residual is itself an f16 page, so
// attention reads it as one more segment.
#pragma once

#include <vector>

#include "core/status.h"
#include "kv/codecs/codec.h"
#include "kv/page/kv_page.h"

namespace akv {

class KiviAppender {
 public:
  // key: a per-channel (KIVI) codec; its group size is the block.
  static StatusOr<KiviAppender> Create(const CodecSpec& key, const CodecSpec& value, int head_dim);

  int block() const { return key_.group_size; }
  // True when the residual holds a whole block: Flush before the next Append.
  bool full() const { return residual_.free_slots() == 0; }
  const KvPage& residual() const { return residual_; }

  // Adds one token (key after RoPE) to the f16 residual; an error when full().
  Status Append(const float* key, const float* value, int32_t position);
  // Quantizes the residual's block into `dest` (same codecs, block-aligned, with room) and empties
  // the residual; an error, with nothing moved, otherwise.
  Status Flush(KvPage* dest);

 private:
  KiviAppender(const CodecSpec& key, const CodecSpec& value, KvPage residual)
      : key_(key), value_(value), residual_(std::move(residual)) {}
  CodecSpec key_, value_;
  KvPage residual_;
};

}  // namespace akv
