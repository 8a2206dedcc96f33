#include "kv/cache_factory.h"

#include "kv/cache_config.h"
#include "kv/full_cache.h"
#include "kv/tiered_cache.h"

namespace akv {

StatusOr<std::unique_ptr<KvCache>> MakeKvCache(const std::string& spec, const KvShape& shape, int64_t n_ctx) {
  if (n_ctx <= 0) return InvalidArgument("context size must be positive, got " + std::to_string(n_ctx));
  const std::string name = spec.substr(0, spec.find_first_of(":,"));
  if (name == "full") {
    if (name != spec) return InvalidArgument("cache 'full' takes no options (got '" + spec + "')");
    return std::unique_ptr<KvCache>(new FullCache(shape, n_ctx));
  }
  // Every other method is a policy over the tiered stores (kv/cache_config.cc lists them).
  AKV_ASSIGN_OR_RETURN(CacheConfig config, CacheConfig::Parse(spec));
  AKV_ASSIGN_OR_RETURN(auto cache, TieredCache::Create(config, shape, n_ctx));
  return std::unique_ptr<KvCache>(std::move(cache));
}

}  // namespace akv
