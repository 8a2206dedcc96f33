// Builds a KV cache from a user spec string (`--cache`, SessionOptions::cache).
#pragma once

#include <memory>
#include <string>

#include "kv/kv_cache.h"

namespace akv {

// spec: "full" (f16, everything kept) or METHOD[:PRESET][,key=value...] for the tiered stores
// (akv, window, h2o, snapkv, ...; see CacheConfig). Unknown names are an error listing the valid ones.
StatusOr<std::unique_ptr<KvCache>> MakeKvCache(const std::string& spec, const KvShape& shape, int64_t n_ctx);

}  // namespace akv
