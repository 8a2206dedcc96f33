#include "server/cache_spec.h"

#include <cmath>
#include <sstream>

namespace akv::server {

namespace {

// Names and values are pasted into "name:preset,key=value": keep them to characters that cannot
// change that structure.
bool IsSpecWord(const std::string& s, bool allow_dot_minus) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    (allow_dot_minus && (c == '.' || c == '-' || c == '+'));
    if (!ok) return false;
  }
  return true;
}

bool ScalarToString(const nlohmann::json& v, std::string* out) {
  if (v.is_boolean()) {
    *out = v.get<bool>() ? "true" : "false";
  } else if (v.is_number_integer()) {
    *out = v.is_number_unsigned() ? std::to_string(v.get<uint64_t>()) : std::to_string(v.get<int64_t>());
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return false;
    std::ostringstream os;
    os.precision(9);
    os << d;
    *out = os.str();
  } else if (v.is_string()) {
    *out = v.get<std::string>();
    return IsSpecWord(*out, true);
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool BuildCacheSpec(const nlohmann::json& ext, std::string* spec, ApiError* error) {
  spec->clear();
  if (ext.is_null()) return true;
  if (!ext.is_object()) {
    *error = BadRequest("'akv' must be an object such as {\"cache\": \"akv\", \"preset\": \"balanced\"}", "akv");
    return false;
  }
  std::string name, preset, options;
  for (const auto& [key, value] : ext.items()) {
    const std::string param = "akv." + key;
    if (key == "cache") {
      if (!value.is_string() || !IsSpecWord(value.get<std::string>(), true)) {
        *error = BadRequest("'akv.cache' must be a cache name such as \"full\" or \"akv\"", param);
        return false;
      }
      name = value.get<std::string>();
    } else if (key == "preset") {
      if (!value.is_string() || !IsSpecWord(value.get<std::string>(), true)) {
        *error = BadRequest("'akv.preset' must be a preset name such as \"balanced\"", param);
        return false;
      }
      preset = value.get<std::string>();
    } else {
      if (!IsSpecWord(key, false)) {
        *error = BadRequest("'akv' option names are letters, digits and '_'; got '" + key + "'", "akv");
        return false;
      }
      std::string text;
      if (!ScalarToString(value, &text)) {
        *error = BadRequest("'" + param + "' must be a number, a boolean or a short word", param);
        return false;
      }
      options += "," + key + "=" + text;
    }
  }
  if (name.empty()) {
    if (!preset.empty() || !options.empty()) {
      *error = BadRequest("'akv' sets cache options but no 'cache' name", "akv.cache");
      return false;
    }
    return true;
  }
  *spec = name;
  if (!preset.empty()) *spec += ":" + preset;
  *spec += options;  // METHOD[:PRESET][,key=value...], the library's syntax
  return true;
}

}  // namespace akv::server
