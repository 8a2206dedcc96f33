// akv cache-help: every KV cache method, preset and option, from the declarations the parser uses.
#include <cstdio>

#include "common.h"
#include "kv/cache_config.h"

namespace akv::cli {

void RegisterCacheHelp(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("cache-help", "List the KV cache methods, presets and options for --cache");
  sub->callback([] {
    std::printf("Methods: full (f16, every token), akv (adaptive tiers)\n\n%s", CacheConfig::Help().c_str());
  });
}

}  // namespace akv::cli
