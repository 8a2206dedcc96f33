// Helpers shared by the tests: where the fixtures are, and small readers for the reference files.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace akv::test {

// The fixtures folder: $AKV_SHARED, else ../shared beside the source tree. Empty when absent.
std::string SharedDir();
std::string ModelPath(const std::string& file_name);  // SharedDir()/models/<file_name>
std::string ReadFileToString(const std::string& path);
std::vector<uint8_t> ReadFileBytes(const std::string& path);
// Relative L2 error ||a - b|| / ||b|| over n values, in double.
double RelL2(const float* a, const float* b, size_t n);
// One JSON value per non-empty line of a .jsonl file (the reference outputs).
std::vector<nlohmann::json> ReadJsonl(const std::string& path);

// Name generator for INSTANTIATE_TEST_SUITE_P over model names: "akv-tiny-llama-25m-f16" ->
// "akv_tiny_llama_25m_f16".
struct ModelParamName {
  template <class ParamInfo>
  std::string operator()(const ParamInfo& info) const {
    std::string s = info.param;
    for (char& c : s)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return s;
  }
};

}  // namespace akv::test

// Skips the test, with a visible message, when the shared fixtures are missing.
#define AKV_REQUIRE_SHARED()                                                             \
  do {                                                                                   \
    if (::akv::test::SharedDir().empty())                                                \
      GTEST_SKIP() << "shared fixtures not found (set AKV_SHARED to the shared/ folder)"; \
  } while (0)
