#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "test_util.h"

namespace akv {
namespace {

// Builds a small GGUF image by hand so every field is under the test's control.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) { U32(0x46554747); U32(version); }
  void U32(uint32_t v) { Put(&v, 4); }
  void U64(uint64_t v) { Put(&v, 8); }
  void I64(int64_t v) { Put(&v, 8); }
  void F32(float v) { Put(&v, 4); }
  void Str(const std::string& s) { U64(s.size()); Put(s.data(), s.size()); }
  void Put(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void Align(size_t a) { while (bytes.size() % a) bytes.push_back(0); }
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> TinyFile() {
  GgufBuilder b;
  b.U64(2);  // tensors
  b.U64(5);  // kv
  b.Str("general.architecture"); b.U32(8); b.Str("llama");
  b.Str("llama.block_count"); b.U32(4); b.U32(3);
  b.Str("some.float"); b.U32(6); b.F32(0.5f);
  b.Str("some.flag"); b.U32(7); uint8_t t = 1; b.Put(&t, 1);
  b.Str("tok.list"); b.U32(9); b.U32(8); b.U64(2); b.Str("a"); b.Str("bc");
  b.Str("w"); b.U32(2); b.I64(4); b.I64(2); b.U32(0); b.U64(0);            // f32 [4,2] = 32 bytes
  b.Str("q"); b.U32(1); b.I64(32); b.U32(8); b.U64(32);                    // q8_0 [32] = 34 bytes
  b.Align(32);
  for (int k = 0; k < 8; ++k) b.F32(float(k));
  std::vector<uint8_t> q(34, 7);
  b.Put(q.data(), q.size());
  return b.bytes;
}

TEST(Gguf, ParsesHandBuiltFile) {
  auto f = GgufFile::FromBytes(TinyFile());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*f)->GetInt("llama.block_count"), 3);
  EXPECT_FLOAT_EQ(*(*f)->GetFloat("some.float"), 0.5);
  EXPECT_TRUE(*(*f)->GetBool("some.flag"));
  EXPECT_EQ((*(*f)->GetStringArray("tok.list")).size(), 2u);
  const GgufTensor* w = (*f)->FindTensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->bytes, 32u);
  float x;
  std::memcpy(&x, w->data + 4 * 5, 4);
  EXPECT_EQ(x, 5.0f);
  EXPECT_EQ((*f)->FindTensor("q")->bytes, 34u);
}

TEST(Gguf, ErrorsNameTheProblem) {
  auto f = GgufFile::FromBytes(TinyFile());
  ASSERT_TRUE(f.ok());
  auto missing = (*f)->GetInt("llama.nope");
  EXPECT_NE(missing.status().message().find("llama.nope"), std::string::npos);
  auto wrong = (*f)->GetInt("general.architecture");
  EXPECT_NE(wrong.status().message().find("should be an integer"), std::string::npos);
  auto t = (*f)->GetTensor("blk.9.attn_q.weight");
  EXPECT_NE(t.status().message().find("blk.9.attn_q.weight"), std::string::npos);
}

TEST(Gguf, RejectsTruncationAtEveryLength) {
  std::vector<uint8_t> full = TinyFile();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    auto f = GgufFile::FromBytes(cut);
    EXPECT_FALSE(f.ok()) << "truncated at " << n << " bytes still loaded";
  }
}

TEST(Gguf, RejectsBadHeaderFields) {
  {
    auto bytes = TinyFile();
    bytes[0] = 'X';
    EXPECT_NE(GgufFile::FromBytes(bytes).status().message().find("magic"), std::string::npos);
  }
  {
    auto bytes = TinyFile();
    bytes[4] = 1;
    EXPECT_EQ(GgufFile::FromBytes(bytes).status().code(), StatusCode::kUnsupported);
  }
  {
    GgufBuilder b;
    b.U64(1); b.U64(0);
    b.Str("t"); b.U32(1); b.I64(32); b.U32(99); b.U64(0);  // unknown type id
    auto st = GgufFile::FromBytes(b.bytes).status();
    EXPECT_NE(st.message().find("unknown tensor type"), std::string::npos) << st.ToString();
  }
  {
    GgufBuilder b;
    b.U64(0); b.U64(1);
    b.Str("k"); b.U32(9); b.U32(8); b.U64(1ull << 60);  // absurd array length
    EXPECT_FALSE(GgufFile::FromBytes(b.bytes).ok());
  }
  {
    GgufBuilder b;
    b.U64(1); b.U64(0);
    b.Str("t"); b.U32(2); b.I64(1ll << 40); b.I64(1ll << 40); b.U32(0); b.U64(0);  // overflow
    EXPECT_FALSE(GgufFile::FromBytes(b.bytes).ok());
  }
}

TEST(Gguf, LoadsSharedModels) {
  AKV_REQUIRE_SHARED();
  for (const char* m : {"akv-tiny-llama-25m-f16.gguf", "akv-tiny-llama-25m-q8_0.gguf",
                        "akv-tiny-llama-25m-q4_0.gguf", "akv-tiny-qwen2-16m-f16.gguf", "stories260K.gguf"}) {
    auto f = GgufFile::Open(test::ModelPath(m));
    ASSERT_TRUE(f.ok()) << m << ": " << f.status().ToString();
    EXPECT_GT((*f)->tensors().size(), 10u);
    EXPECT_TRUE((*f)->Has("general.architecture"));
  }
}

// Mutates the header region (metadata + tensor infos) of each shared model with random bytes
// and truncations; every result must be a clean error or a valid load. Run under ASan/UBSan
// (the `sanitize` CI step) this catches any out-of-bounds read.
TEST(GgufFuzz, MutatedSharedModelHeaders) {
  AKV_REQUIRE_SHARED();
  std::mt19937_64 rng(1234);
  for (const char* m : {"stories260K.gguf", "akv-tiny-qwen2-16m-f16.gguf"}) {
    std::vector<uint8_t> orig = test::ReadFileBytes(test::ModelPath(m));
    ASSERT_GT(orig.size(), 4096u);
    auto base = GgufFile::FromBytes(orig);
    ASSERT_TRUE(base.ok());
    // Header size: from the first tensor's data pointer.
    const size_t header = (*base)->data_offset();
    int loaded = 0, rejected = 0;
    for (int iter = 0; iter < 300; ++iter) {
      std::vector<uint8_t> b = orig;
      int n_mut = 1 + rng() % 8;
      for (int k = 0; k < n_mut; ++k) {
        size_t pos = rng() % header;
        switch (rng() % 3) {
          case 0: b[pos] = static_cast<uint8_t>(rng()); break;
          case 1: b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
          case 2: b[pos] = (rng() & 1) ? 0xFF : 0x00; break;
        }
      }
      if (rng() % 4 == 0) b.resize(rng() % b.size());
      auto f = GgufFile::FromBytes(std::move(b));
      if (f.ok()) {
        ++loaded;
        for (const GgufTensor& t : (*f)->tensors()) ASSERT_NE(t.data, nullptr);
      } else {
        ++rejected;
        EXPECT_FALSE(f.status().message().empty());
      }
    }
    EXPECT_GT(rejected, 0) << m;
  }
}

}  // namespace
}  // namespace akv
