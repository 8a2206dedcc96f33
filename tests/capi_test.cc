// The C API through its header only: handles, status codes, error messages, generation.
#include "akv/akv.h"

#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace {

TEST(CApi, ErrorsAreCodesWithMessages) {
  akv_engine* e = reinterpret_cast<akv_engine*>(0x1);
  EXPECT_EQ(akv_engine_load("/nonexistent/model.gguf", 1, &e), AKV_NOT_FOUND);
  EXPECT_EQ(e, nullptr);
  EXPECT_NE(std::string(akv_last_error()).find("/nonexistent/model.gguf"), std::string::npos);
  EXPECT_EQ(akv_engine_load(nullptr, 1, &e), AKV_INVALID_ARGUMENT);
  EXPECT_EQ(akv_session_new(nullptr, 0, "full", nullptr), AKV_INVALID_ARGUMENT);
  // The device is checked before the model is read: a bad name is a bad argument whatever the path.
  EXPECT_EQ(akv_engine_load_on("/nonexistent/model.gguf", 1, "tpu", &e), AKV_INVALID_ARGUMENT);
  EXPECT_NE(std::string(akv_last_error()).find("unknown device 'tpu'"), std::string::npos) << akv_last_error();
  EXPECT_EQ(akv_engine_load_on("/nonexistent/model.gguf", 1, "cpu", &e), AKV_NOT_FOUND);
  EXPECT_EQ(akv_engine_device(nullptr), std::string());
}

TEST(CApi, LoadsOnTheCpuAndExplainsAMissingGpu) {
  AKV_REQUIRE_SHARED();
  const std::string model = akv::test::ModelPath("akv-tiny-llama-25m-f16.gguf");
  akv_engine* e = nullptr;
  ASSERT_EQ(akv_engine_load_on(model.c_str(), 1, "cpu", &e), AKV_OK) << akv_last_error();
  EXPECT_EQ(std::string(akv_engine_device(e)), "cpu");
  akv_engine_free(e);
  // "cuda" either works (a GPU build on a GPU machine) or says why not, naming the device.
  const akv_status st = akv_engine_load_on(model.c_str(), 1, "cuda", &e);
  if (st == AKV_OK) {
    EXPECT_EQ(std::string(akv_engine_device(e)).rfind("cuda", 0), 0u);
    akv_engine_free(e);
  } else {
    EXPECT_EQ(st, AKV_UNSUPPORTED) << akv_last_error();
    EXPECT_NE(std::string(akv_last_error()).find("device 'cuda'"), std::string::npos) << akv_last_error();
    EXPECT_EQ(e, nullptr);
  }
}

TEST(CApi, GeneratesAndStreamsTheSameGreedyText) {
  AKV_REQUIRE_SHARED();
  akv_engine* e = nullptr;
  ASSERT_EQ(akv_engine_load(akv::test::ModelPath("akv-tiny-llama-25m-f16.gguf").c_str(), 2, &e), AKV_OK) << akv_last_error();
  akv_session* s = nullptr;
  EXPECT_EQ(akv_session_new(e, 256, "no-such-cache", &s), AKV_INVALID_ARGUMENT);
  EXPECT_NE(std::string(akv_last_error()).find("no-such-cache"), std::string::npos);
  ASSERT_EQ(akv_session_new(e, 256, "full", &s), AKV_OK);

  int32_t ids[16];
  int32_t n = 0;
  ASSERT_EQ(akv_tokenize(e, "Hello world", 1, ids, 16, &n), AKV_OK);
  EXPECT_EQ(n, 3);  // BOS Hello world (shared/reference/akv-tiny-llama-25m-f16.tokenize.jsonl)

  akv_generate_params p;
  akv_generate_params_default(&p);
  p.max_tokens = 12;
  p.temperature = 0;
  char* text = nullptr;
  akv_generate_stats st;
  ASSERT_EQ(akv_generate(s, "Once upon a time", &p, &text, &st), AKV_OK) << akv_last_error();
  std::string generated = text;
  akv_string_free(text);
  EXPECT_EQ(st.n_generated, 12);
  EXPECT_FALSE(generated.empty());

  akv_session_reset(s);
  std::string streamed;
  auto cb = [](const char* piece, size_t len, void* user) {
    static_cast<std::string*>(user)->append(piece, len);
    return 0;
  };
  ASSERT_EQ(akv_stream(s, "Once upon a time", &p, cb, &streamed, nullptr), AKV_OK);
  EXPECT_EQ(streamed, generated);

  // Too long a prompt for the context: a clean error, not a crash.
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += " word";
  akv_session_reset(s);
  EXPECT_EQ(akv_generate(s, long_prompt.c_str(), &p, &text, nullptr), AKV_OUT_OF_RANGE);
  EXPECT_NE(std::string(akv_last_error()).find("context"), std::string::npos);

  akv_session_free(s);
  akv_engine_free(e);
}

}  // namespace
