// The `akv` extension object of a request -> the cache spec string the library parses.
//   {"cache": "akv", "preset": "balanced", "hot_budget": 512}  ->  "akv:balanced,hot_budget=512"
//   {"cache": "akv", "warm_bits": 2}                            ->  "akv,warm_bits=2"
// Only the shape is checked here (scalar values, safe characters); whether the cache and its
// options exist is the library's call (MakeKvCache), whose message goes back as the 400.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace akv::server {

// Returns false and fills *error when `ext` is malformed. *spec is "" when no cache is named.
bool BuildCacheSpec(const nlohmann::json& ext, std::string* spec, ApiError* error);

}  // namespace akv::server
