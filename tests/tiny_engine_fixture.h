// Test fixture for tests that run the engine on the shared tiny llama model (F16 weights,
// 2 threads); skipped when ../shared is not found. Header-only: akv_test_util links only
// akv_core, not the engine.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "akv/akv.hpp"
#include "test_util.h"

namespace akv::test {

class TinyEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AKV_REQUIRE_SHARED();
    auto e = Engine::Load({.model_path = ModelPath("akv-tiny-llama-25m-f16.gguf"), .n_threads = 2});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  std::unique_ptr<Engine> engine_;
};

}  // namespace akv::test
