// Tokenizer tests: llama.cpp's reference tokenizations (the oracle), whole-book round trips,
// pre-tokenizer splits derived from the regexes, special tokens, and metadata errors.
#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "model/tokenizer_pretok.h"
#include "test_util.h"

namespace akv {
namespace {

using json = nlohmann::json;

std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& model_file) {
  auto gguf = GgufFile::Open(test::ModelPath(model_file));
  EXPECT_TRUE(gguf.ok()) << model_file << ": " << gguf.status().ToString();
  if (!gguf.ok()) return nullptr;
  auto t = Tokenizer::FromGguf(**gguf);
  EXPECT_TRUE(t.ok()) << model_file << ": " << t.status().ToString();
  return t.ok() ? std::move(*t) : nullptr;
}

// --- llama.cpp reference tokenizations ---------------------------------------------------------

class ReferenceTokenization : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceTokenization, MatchesLlamaCppAndRoundTrips) {
  AKV_REQUIRE_SHARED();
  const std::string model = GetParam();
  auto tok = LoadTokenizer(model + ".gguf");
  ASSERT_NE(tok, nullptr);
  const auto rows = test::ReadJsonl(test::SharedDir() + "/reference/" + model + ".tokenize.jsonl");
  ASSERT_GE(rows.size(), 20u);
  for (const json& row : rows) {
    const std::string prompt = row["prompt"].get<std::string>();
    const auto want = row["tokens"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->Encode(prompt), want) << model << ": '" << prompt << "'";
    // Every fixture prompt round-trips, leading spaces included: SPM's prefix space is the one
    // Decode strips after BOS, and byte-level BPE is lossless.
    EXPECT_EQ(tok->Decode(want), prompt) << model;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceTokenization,
                         ::testing::Values("akv-tiny-llama-25m-f16", "akv-tiny-llama-25m-q8_0",
                                           "akv-tiny-qwen2-16m-f16", "stories260K"),
                         test::ModelParamName());

TEST(Tokenizer, ReportsModelMetadata) {
  AKV_REQUIRE_SHARED();
  auto spm = LoadTokenizer("akv-tiny-llama-25m-f16.gguf");
  ASSERT_NE(spm, nullptr);
  EXPECT_EQ(spm->type(), Tokenizer::Type::kSpm);
  EXPECT_EQ(spm->n_vocab(), 32000);
  EXPECT_EQ(spm->TokenText(spm->bos()), "<s>");
  EXPECT_EQ(spm->TokenText(spm->eos()), "</s>");
  EXPECT_TRUE(spm->add_bos());
  EXPECT_TRUE(spm->IsEndOfGeneration(spm->eos()));
  EXPECT_FALSE(spm->IsEndOfGeneration(spm->bos()));
  EXPECT_EQ(spm->TokenToPiece(spm->bos()), "");
  EXPECT_EQ(spm->Encode("", true), std::vector<int32_t>{spm->bos()});
  EXPECT_TRUE(spm->Encode("", false).empty());
  EXPECT_FALSE(spm->IsValid(-1));
  EXPECT_FALSE(spm->IsValid(32000));
  EXPECT_EQ(spm->TokenText(-5), "");
  EXPECT_EQ(spm->TokenToPiece(1 << 30), "");

  auto bpe = LoadTokenizer("akv-tiny-qwen2-16m-f16.gguf");
  ASSERT_NE(bpe, nullptr);
  EXPECT_EQ(bpe->type(), Tokenizer::Type::kBpe);
  EXPECT_EQ(bpe->n_vocab(), 49152);
  EXPECT_FALSE(bpe->add_bos());
  EXPECT_TRUE(bpe->Encode("").empty());
  const int32_t im_end = 2;
  ASSERT_EQ(bpe->TokenText(im_end), "<|im_end|>");
  EXPECT_TRUE(bpe->IsEndOfGeneration(im_end));
  EXPECT_TRUE(bpe->IsEndOfGeneration(bpe->eos()));
  EXPECT_FALSE(bpe->IsEndOfGeneration(1));  // <|im_start|>
}

// --- special tokens ---------------------------------------------------------------------------

TEST(Tokenizer, ParsesControlTokensOnlyWhenAsked) {
  AKV_REQUIRE_SHARED();
  auto bpe = LoadTokenizer("akv-tiny-qwen2-16m-f16.gguf");
  ASSERT_NE(bpe, nullptr);
  const std::string chat = "<|im_start|>user\nHi there<|im_end|>\n";
  std::vector<int32_t> want = {1};
  for (int32_t t : bpe->Encode("user\nHi there")) want.push_back(t);
  want.push_back(2);
  for (int32_t t : bpe->Encode("\n")) want.push_back(t);
  EXPECT_EQ(bpe->Encode(chat, true, /*parse_special=*/true), want);
  const auto plain = bpe->Encode(chat, true, /*parse_special=*/false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(bpe->Decode(plain), chat);
  EXPECT_EQ(bpe->Decode(want), "user\nHi there\n");  // control tokens have no text

  // SentencePiece adds its space prefix again after a special token, as llama.cpp does.
  auto spm = LoadTokenizer("akv-tiny-llama-25m-f16.gguf");
  ASSERT_NE(spm, nullptr);
  std::vector<int32_t> hello = spm->Encode("Hello", false);
  std::vector<int32_t> want_spm = {spm->bos(), spm->eos()};
  want_spm.insert(want_spm.end(), hello.begin(), hello.end());
  EXPECT_EQ(spm->Encode("</s>Hello", true, true), want_spm);
  EXPECT_NE(spm->Encode("</s>Hello", true, false)[1], spm->eos());
}

// --- whole books --------------------------------------------------------------------------------

TEST(Tokenizer, BooksRoundTripOnBothFamilies) {
  AKV_REQUIRE_SHARED();
  for (const char* model : {"akv-tiny-llama-25m-f16.gguf", "stories260K.gguf", "akv-tiny-qwen2-16m-f16.gguf"}) {
    auto tok = LoadTokenizer(model);
    ASSERT_NE(tok, nullptr);
    for (const char* book : {"treasure_island.txt", "secret_garden.txt"}) {
      const std::string text = test::ReadFileToString(test::SharedDir() + "/data/" + book);
      ASSERT_GT(text.size(), 100000u);
      const auto start = std::chrono::steady_clock::now();
      const std::vector<int32_t> ids = tok->Encode(text);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ASSERT_FALSE(ids.empty());
      for (int32_t id : ids) ASSERT_TRUE(tok->IsValid(id));
      EXPECT_LT(ids.size(), text.size());  // merges happened
      EXPECT_TRUE(tok->Decode(ids) == text) << model << " " << book << " does not round-trip";
      std::printf("  %-30s %-20s %7zu bytes -> %6zu tokens in %.3f s\n", model, book, text.size(), ids.size(),
                  seconds);
#if !defined(__SANITIZE_ADDRESS__) && defined(NDEBUG)
      // Far below a second on one core in an optimised build; the bound leaves room for a busy machine.
      EXPECT_LT(seconds, 1.0) << model << " " << book;
#endif
    }
  }
}

// The wikitext file has CRLF line ends and many Unicode symbols: lossless both ways too.
TEST(Tokenizer, WikitextRoundTrips) {
  AKV_REQUIRE_SHARED();
  const std::string text = test::ReadFileToString(test::SharedDir() + "/data/wikitext2_test.txt");
  ASSERT_GT(text.size(), 100000u);
  for (const char* model : {"akv-tiny-llama-25m-f16.gguf", "akv-tiny-qwen2-16m-f16.gguf"}) {
    auto tok = LoadTokenizer(model);
    ASSERT_NE(tok, nullptr);
    EXPECT_TRUE(tok->Decode(tok->Encode(text)) == text) << model;
  }
}

// --- pre-tokenizers: expected words follow from the regexes' semantics -------------------------

std::vector<std::string> Words(tok::PreTokenizer kind, std::string_view text) {
  std::vector<std::string_view> views;
  tok::PreTokenize(kind, text, &views);
  return std::vector<std::string>(views.begin(), views.end());
}

using V = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  const auto k = tok::PreTokenizer::kGpt2;
  EXPECT_EQ(Words(k, "Hello world's 12345 \n\n  x"), (V{"Hello", " world", "'s", " 12345", " \n\n ", " x"}));
  EXPECT_EQ(Words(k, "Hello  world"), (V{"Hello", " ", " world"}));
  EXPECT_EQ(Words(k, "trailing   "), (V{"trailing", "   "}));
  EXPECT_EQ(Words(k, "a\tb"), (V{"a", "\t", "b"}));  // a lone tab before \S matches nothing
  EXPECT_EQ(Words(k, "don't DON'T"), (V{"don", "'t", " DON", "'", "T"}));  // case-sensitive
  EXPECT_EQ(Words(k, "x?!.. (y)"), (V{"x", "?!..", " (", "y", ")"}));
  EXPECT_EQ(Words(k, "Café naïve"), (V{"Café", " naïve"}));
  EXPECT_EQ(Words(k, "日本語 テキスト"), (V{"日本語", " テキスト"}));
  EXPECT_EQ(Words(k, "x\u00a0y"), (V{"x", "\u00a0", "y"}));  // NBSP is \s
  EXPECT_EQ(Words(k, "٣٤ x"), (V{"٣٤", " x"}));           // Arabic-Indic digits are \p{N}
  EXPECT_EQ(Words(k, "a\xFF\xFE" "b"), (V{"a", "\xFF\xFE", "b"}));  // invalid bytes: no class
  EXPECT_EQ(Words(k, ""), V{});
}

TEST(PreTokenizer, Llama3AndQwen2) {
  const std::string s = "Hello world's 12345 \n\n  x";
  EXPECT_EQ(Words(tok::PreTokenizer::kLlama3, s), (V{"Hello", " world", "'s", " ", "123", "45", " \n\n", " ", " x"}));
  EXPECT_EQ(Words(tok::PreTokenizer::kQwen2, s),
            (V{"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " \n\n", " ", " x"}));
  const auto k = tok::PreTokenizer::kLlama3;
  EXPECT_EQ(Words(k, "DON'T"), (V{"DON", "'T"}));             // case-insensitive contractions
  EXPECT_EQ(Words(k, "(hello) \"x\""), (V{"(hello", ")", " \"", "x", "\""}));  // one non-letter may lead letters
  EXPECT_EQ(Words(k, "a\tb"), (V{"a", "\tb"}));
  EXPECT_EQ(Words(k, "x;\n\ny"), (V{"x", ";\n\n", "y"}));      // punctuation keeps following newlines
  EXPECT_EQ(Words(k, "end  "), (V{"end", "  "}));
  EXPECT_EQ(Words(k, "\n1"), (V{"\n", "1"}));
}

TEST(PreTokenizer, SmollmAndDefault) {
  EXPECT_EQ(Words(tok::PreTokenizer::kSmollm, "3.14 and 2,718"),
            (V{"3", ".", "1", "4", " and", " ", "2", ",", "7", "1", "8"}));
  EXPECT_EQ(Words(tok::PreTokenizer::kDefault, "Hello world's 12345 \n\n  x"),
            (V{"Hello", " world", "'", "s", " ", "123", "45", " \n\n ", " x"}));
  EXPECT_EQ(Words(tok::PreTokenizer::kDefault, "a+=b<<c"), (V{"a", "+=", "b", "<<", "c"}));
}

TEST(PreTokenizer, CoversEveryByteOfAnyInput) {
  std::string s;
  for (int i = 0; i < 4096; ++i) s.push_back(static_cast<char>((i * 7919 + i / 3) & 0xFF));
  for (auto k : {tok::PreTokenizer::kDefault, tok::PreTokenizer::kGpt2, tok::PreTokenizer::kLlama3,
                 tok::PreTokenizer::kQwen2, tok::PreTokenizer::kSmollm}) {
    std::string joined;
    for (const auto& w : Words(k, s)) {
      ASSERT_FALSE(w.empty());
      joined += w;
    }
    EXPECT_EQ(joined, s);
  }
}

// --- hand-built vocabularies and bad metadata ----------------------------------------------------

// Writes a GGUF image with metadata only (no tensors).
class GgufBuilder {
 public:
  void Str(const std::string& key, const std::string& v) { Key(key, 8), S(v); }
  void U32(const std::string& key, uint32_t v) { Key(key, 4), Put(&v, 4); }
  void Bool(const std::string& key, bool v) {
    Key(key, 7);
    uint8_t b = v;
    Put(&b, 1);
  }
  void Strs(const std::string& key, const std::vector<std::string>& v) {
    Array(key, 8, v.size());
    for (const auto& s : v) S(s);
  }
  void F32s(const std::string& key, const std::vector<float>& v) {
    Array(key, 6, v.size());
    for (float f : v) Put(&f, 4);
  }
  void I32s(const std::string& key, const std::vector<int32_t>& v) {
    Array(key, 5, v.size());
    for (int32_t i : v) Put(&i, 4);
  }
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out;
    const uint32_t magic = 0x46554747, version = 3;
    const uint64_t n_tensors = 0;
    for (const void* p : {static_cast<const void*>(&magic), static_cast<const void*>(&version)}) {
      out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + 4);
    }
    for (const uint64_t* p : {&n_tensors, &n_kv_}) {
      out.insert(out.end(), reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p) + 8);
    }
    out.insert(out.end(), kv_.begin(), kv_.end());
    while (out.size() % 32) out.push_back(0);
    return out;
  }

 private:
  void Put(const void* p, size_t n) {
    kv_.insert(kv_.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  }
  void S(const std::string& s) {
    uint64_t n = s.size();
    Put(&n, 8);
    Put(s.data(), s.size());
  }
  void Key(const std::string& key, uint32_t type) {
    ++n_kv_;
    S(key);
    Put(&type, 4);
  }
  void Array(const std::string& key, uint32_t elem_type, uint64_t n) {
    Key(key, 9);
    Put(&elem_type, 4);
    Put(&n, 8);
  }
  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0;
};

StatusOr<std::unique_ptr<Tokenizer>> Build(const GgufBuilder& b) {
  auto gguf = GgufFile::FromBytes(b.Bytes());
  if (!gguf.ok()) return gguf.status();
  return Tokenizer::FromGguf(**gguf);
}

const std::vector<std::string> kSpmTokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "c",
                                             "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab", "bc"};

GgufBuilder SpmVocab(const std::vector<float>& scores) {
  GgufBuilder b;
  b.Str("tokenizer.ggml.model", "llama");
  b.Strs("tokenizer.ggml.tokens", kSpmTokens);
  b.F32s("tokenizer.ggml.scores", scores);
  b.I32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1});
  return b;
}

TEST(TokenizerSpm, MergesHighestScoreFirst) {
  // "abc" -> "▁abc": candidates ▁a (-2), ab (-0.5), bc (-0.1). bc wins; then only ▁ + a
  // joins, giving ▁a, bc.
  auto t = Build(SpmVocab({0, 0, 0, -1, -1, -1, -1, -2, -0.5f, -3, -0.1f}));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->Encode("abc"), (std::vector<int32_t>{1, 7, 10}));
  // Without bc preferred: ab (-0.5) first, then ▁ + ab -> ▁ab, then c alone.
  auto u = Build(SpmVocab({0, 0, 0, -1, -1, -1, -1, -2, -0.5f, -3, -0.9f}));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)->Encode("abc"), (std::vector<int32_t>{1, 9, 6}));
  EXPECT_EQ((*u)->Decode({1, 9, 6}), "abc");
  // No byte tokens in this vocabulary: unknown characters become <unk>, one per byte.
  EXPECT_EQ((*u)->Encode("a\xC3\xA9", false), (std::vector<int32_t>{7, 0, 0}));
}

TEST(TokenizerSpm, AddSpacePrefixKey) {
  GgufBuilder b = SpmVocab({0, 0, 0, -1, -1, -1, -1, -2, -0.5f, -3, -0.9f});
  b.Bool("tokenizer.ggml.add_space_prefix", false);
  b.Bool("tokenizer.ggml.add_bos_token", false);
  b.Bool("tokenizer.ggml.add_eos_token", true);
  auto t = Build(b);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->Encode("abc"), (std::vector<int32_t>{8, 6, 2}));
  EXPECT_EQ((*t)->Decode({3, 8}), " ab");  // no prefix to strip
}

GgufBuilder BpeVocab(const std::string& pre) {
  // Byte-level texts: 'Ġ' (U+0120) is the space byte.
  GgufBuilder b;
  b.Str("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) b.Str("tokenizer.ggml.pre", pre);
  b.Strs("tokenizer.ggml.tokens", {"<|endoftext|>", "a", "b", "c", "\xC4\xA0", "ab", "abc", "\xC4\xA0" "a", "bc"});
  b.I32s("tokenizer.ggml.token_type", {3, 1, 1, 1, 1, 1, 1, 1, 1});
  b.Strs("tokenizer.ggml.merges", {"a b", "ab c", "\xC4\xA0 a", "b c"});
  b.U32("tokenizer.ggml.bos_token_id", 0);
  b.U32("tokenizer.ggml.eos_token_id", 0);
  return b;
}

TEST(TokenizerBpe, MergesLowestRankFirst) {
  auto t = Build(BpeVocab("gpt2"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // Words "abc" and " ab". In " ab", a+b (rank 0) beats Ġ+a (rank 2), and "Ġ ab" is no merge.
  EXPECT_EQ((*t)->Encode("abc ab"), (std::vector<int32_t>{6, 4, 5}));
  EXPECT_EQ((*t)->Decode({6, 4, 5}), "abc ab");
  EXPECT_EQ((*t)->Encode(" a"), (std::vector<int32_t>{7}));
  EXPECT_EQ((*t)->Encode("bc"), (std::vector<int32_t>{8}));
  EXPECT_EQ((*t)->Encode("zz"), std::vector<int32_t>{});  // bytes without tokens are dropped
  EXPECT_TRUE((*t)->IsEndOfGeneration(0));
  EXPECT_EQ((*t)->TokenToPiece(4), " ");
  EXPECT_EQ((*t)->TokenToPiece(0), "");
}

TEST(TokenizerBpe, Llama3IgnoresMergesForWholeWordTokens) {
  GgufBuilder b = BpeVocab("llama-bpe");
  auto t = Build(b);
  // llama-bpe adds BOS by default; the BOS id here is 0.
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE((*t)->add_bos());
  EXPECT_EQ((*t)->Encode("abc"), (std::vector<int32_t>{0, 6}));
}

TEST(TokenizerErrors, BadMetadataGivesClearStatus) {
  const auto expect_error = [](const GgufBuilder& b, StatusCode code, const std::string& needle) {
    auto t = Build(b);
    ASSERT_FALSE(t.ok()) << "expected an error mentioning " << needle;
    EXPECT_EQ(t.status().code(), code) << t.status().ToString();
    EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().ToString();
  };
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "llama");
    expect_error(b, StatusCode::kNotFound, "tokenizer.ggml.tokens");
  }
  {
    GgufBuilder b;
    b.Strs("tokenizer.ggml.tokens", kSpmTokens);
    expect_error(b, StatusCode::kNotFound, "tokenizer.ggml.model");
  }
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "wordpiece-xyz");
    b.Strs("tokenizer.ggml.tokens", kSpmTokens);
    expect_error(b, StatusCode::kUnsupported, "wordpiece-xyz");
  }
  expect_error(SpmVocab({0, 0, 0}), StatusCode::kCorrupt, "tokenizer.ggml.scores");
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "llama");
    b.Strs("tokenizer.ggml.tokens", kSpmTokens);
    b.I32s("tokenizer.ggml.token_type", {1, 1});
    expect_error(b, StatusCode::kCorrupt, "tokenizer.ggml.token_type");
  }
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "llama");
    b.Str("tokenizer.ggml.tokens", "not an array");
    expect_error(b, StatusCode::kCorrupt, "tokenizer.ggml.tokens");
  }
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "llama");
    b.Strs("tokenizer.ggml.tokens", {});
    expect_error(b, StatusCode::kCorrupt, "empty");
  }
  {
    GgufBuilder b;  // SentencePiece adds BOS by default, and id 1 does not exist here
    b.Str("tokenizer.ggml.model", "llama");
    b.Strs("tokenizer.ggml.tokens", {"a"});
    expect_error(b, StatusCode::kCorrupt, "BOS");
  }
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "gpt2");
    b.Strs("tokenizer.ggml.tokens", {"a", "b"});
    expect_error(b, StatusCode::kNotFound, "tokenizer.ggml.merges");
  }
  {
    GgufBuilder b = BpeVocab("klingon-v2");
    expect_error(b, StatusCode::kUnsupported, "klingon-v2");
  }
  {
    GgufBuilder b;
    b.Str("tokenizer.ggml.model", "gpt2");
    b.Strs("tokenizer.ggml.tokens", {"a", "b"});
    b.Strs("tokenizer.ggml.merges", {"ab"});
    expect_error(b, StatusCode::kCorrupt, "tokenizer.ggml.merges[0]");
  }
  {
    GgufBuilder b = SpmVocab({0, 0, 0, -1, -1, -1, -1, -2, -0.5f, -3, -0.9f});
    b.Str("tokenizer.ggml.add_bos_token", "yes");
    expect_error(b, StatusCode::kCorrupt, "tokenizer.ggml.add_bos_token");
  }
}

TEST(TokenizerErrors, OutOfRangeSpecialIdsKeepDefaults) {
  GgufBuilder b = SpmVocab({0, 0, 0, -1, -1, -1, -1, -2, -0.5f, -3, -0.9f});
  b.U32("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu);
  b.U32("tokenizer.ggml.bos_token_id", 1000);
  auto t = Build(b);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->bos(), 1);
  EXPECT_EQ((*t)->eos(), 2);
}

}  // namespace
}  // namespace akv
