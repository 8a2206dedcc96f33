// Helpers shared by the tests: where the fixtures are, and small readers for the reference files.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace akv::test {

// The fixtures folder: $AKV_SHARED, else ../shared beside the source tree. Empty when absent.
std::string SharedDir();
std::string ModelPath(const std::string& file_name);  // SharedDir()/models/<file_name>
std::string ReadFileToString(const std::string& path);
std::vector<uint8_t> ReadFileBytes(const std::string& path);

}  // namespace akv::test

// Skips the test, with a visible message, when the shared fixtures are missing.
#define AKV_REQUIRE_SHARED()                                                             \
  do {                                                                                   \
    if (::akv::test::SharedDir().empty())                                                \
      GTEST_SKIP() << "shared fixtures not found (set AKV_SHARED to the shared/ folder)"; \
  } while (0)
