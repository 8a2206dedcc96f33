// Fuzz-style tokenizer tests: random byte strings (invalid UTF-8, NULs, long space runs, special
// token texts) must encode without crashing into valid ids and decode back losslessly; every
// vocabulary entry must have a well-formed piece.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "io/gguf.h"
#include "model/tokenizer.h"
#include "model/tokenizer_unicode.h"
#include "test_util.h"

namespace akv {
namespace {

const char* const kModels[] = {"akv-tiny-llama-25m-f16.gguf", "stories260K.gguf", "akv-tiny-qwen2-16m-f16.gguf"};

std::unique_ptr<Tokenizer> Load(const std::string& model_file) {
  auto gguf = GgufFile::Open(test::ModelPath(model_file));
  if (!gguf.ok()) return nullptr;
  auto t = Tokenizer::FromGguf(**gguf);
  return t.ok() ? std::move(*t) : nullptr;
}

// What Decode(Encode(text)) gives back. SentencePiece falls back to byte tokens, so everything.
// Byte-level BPE loses bytes whose mapped character is not a token (this vocabulary lacks some
// control characters and bytes that never occur in UTF-8): an invalid one becomes U+FFFD, as in
// llama.cpp; one inside a valid character is dropped, as in llama.cpp.
std::array<bool, 256> BytesWithTokens(const Tokenizer& tok) {
  std::array<bool, 256> has{};
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    const std::string& t = tok.TokenText(id);
    if (t.size() > 2) continue;
    for (int b = 0; b < 256; ++b) has[b] = has[b] || t == tok::ByteToUnicode(static_cast<uint8_t>(b));
  }
  return has;
}

std::string ExpectedRoundTrip(const Tokenizer& tok, const std::array<bool, 256>& has, const std::string& text) {
  if (tok.type() == Tokenizer::Type::kSpm) return text;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = tok::DecodeUtf8(text, i, &cp);
    for (size_t k = i; k < i + n; ++k) {
      const uint8_t b = static_cast<uint8_t>(text[k]);
      if (has[b]) {
        out.push_back(static_cast<char>(b));
      } else if (cp == tok::kInvalidCodePoint) {
        out += "\xEF\xBF\xBD";
      }
    }
    i += n;
  }
  return out;
}

// Random text built from fragments that stress the tokenizers.
std::string RandomText(std::mt19937_64& rng) {
  static const char* const kPieces[] = {
      " ", "  ", "\t", "\n", "\r\n", "\n\n\n", "a", "the", " The", "Hello", "world", "'s", "'T", "don't",
      "123", "4567890", "3.14", ",", ".", "!?", "(", ")", "<s>", "</s>", "<|im_start|>", "<|im_end|>",
      "<|endoftext|>", "<0x41>", "é", "ß", "Ü", "日本", "語", "🙂", "🚀", "\u00a0", "\u3000", "\u2028",
      "٣", "Ⅻ", "\xC3", "\xE6\x97", "\xF0\x9F\x99", "\x80", "\xBF", "\xC0\xAF", "\xED\xA0\x80",
      "\xF4\x90\x80\x80", "\xFE", "\xFF"};
  std::string s;
  const int n = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int i = 0; i < n; ++i) {
    const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
    if (kind == 0) {
      s.push_back(static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng)));  // any byte
    } else if (kind == 1) {
      s.push_back('\0');
    } else if (kind == 2) {
      s.append(std::uniform_int_distribution<int>(1, 300)(rng), ' ');  // long space runs
    } else {
      s += kPieces[std::uniform_int_distribution<size_t>(0, std::size(kPieces) - 1)(rng)];
    }
  }
  return s;
}

TEST(TokenizerFuzz, RandomBytesEncodeToValidIdsAndRoundTrip) {
  AKV_REQUIRE_SHARED();
  std::mt19937_64 rng(20240611);
  for (const char* model : kModels) {
    auto tok = Load(model);
    ASSERT_NE(tok, nullptr) << model;
    const auto has = BytesWithTokens(*tok);
    for (int iter = 0; iter < 2000; ++iter) {
      const std::string text = RandomText(rng);
      for (bool parse_special : {false, true}) {
        const std::vector<int32_t> ids = tok->Encode(text, true, parse_special);
        for (int32_t id : ids) ASSERT_TRUE(tok->IsValid(id)) << model << " id " << id;
        if (parse_special) continue;  // control tokens have no text, so no round trip
        // SPM escapes spaces as U+2581, so text holding U+2581 itself would come back with a
        // space there; random bytes could form it.
        if (text.find("\xE2\x96\x81") != std::string::npos) continue;
        ASSERT_EQ(tok->Decode(ids), ExpectedRoundTrip(*tok, has, text)) << model << " iteration " << iter;
      }
    }
  }
}

TEST(TokenizerFuzz, PathologicalInputs) {
  AKV_REQUIRE_SHARED();
  std::vector<std::string> inputs = {
      std::string(100000, ' '), std::string(50000, '\n'), std::string(20000, '\0'), std::string(30000, 'x'),
      std::string(10000, '\xFF'), std::string(10001, '\xC3')};
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  inputs.push_back(all_bytes);
  std::string cjk;
  for (uint32_t cp = 0x4E00; cp < 0x4E00 + 3000; ++cp) tok::AppendUtf8(cp, &cjk);
  inputs.push_back(cjk);
  for (const char* model : kModels) {
    auto tok = Load(model);
    ASSERT_NE(tok, nullptr) << model;
    const auto has = BytesWithTokens(*tok);
    for (const std::string& text : inputs) {
      const auto ids = tok->Encode(text, false);
      for (int32_t id : ids) ASSERT_TRUE(tok->IsValid(id));
      EXPECT_TRUE(tok->Decode(ids) == ExpectedRoundTrip(*tok, has, text)) << model << " input of " << text.size() << " bytes";
    }
  }
}

TEST(TokenizerFuzz, EveryVocabularyEntryDecodes) {
  AKV_REQUIRE_SHARED();
  for (const char* model : kModels) {
    auto tok = Load(model);
    ASSERT_NE(tok, nullptr) << model;
    size_t with_text = 0;
    for (int32_t id = 0; id < tok->n_vocab(); ++id) {
      const std::string& text = tok->TokenText(id);
      const std::string piece = tok->TokenToPiece(id);
      ASSERT_FALSE(text.empty()) << model << " token " << id;
      if (tok->IsControl(id)) {
        EXPECT_EQ(piece, "") << model << " control token " << id;
        continue;
      }
      ASSERT_FALSE(piece.empty()) << model << " token " << id << " '" << text << "'";
      ++with_text;
      // Decoding the token alone after BOS gives its piece, less SPM's prefix space.
      std::string alone = tok->Decode({tok->bos(), id});
      std::string want = piece;
      if (tok->add_space_prefix() && want[0] == ' ') want.erase(0, 1);
      EXPECT_EQ(alone, want) << model << " token " << id;
      if (tok->type() == Tokenizer::Type::kBpe) {
        // Byte-level: mapping the piece's bytes forward again gives the vocabulary text.
        std::string remapped;
        for (char c : piece) remapped += tok::ByteToUnicode(static_cast<uint8_t>(c));
        EXPECT_EQ(remapped, text) << model << " token " << id;
        // And the piece re-encodes to text that decodes to the same bytes.
        EXPECT_EQ(tok->Decode(tok->Encode(piece, false)), piece) << model << " token " << id;
      } else if (text.size() == 6 && text.rfind("<0x", 0) == 0) {
        EXPECT_EQ(piece.size(), 1u) << model << " byte token " << text;
      }
    }
    EXPECT_GT(with_text, static_cast<size_t>(tok->n_vocab()) * 9 / 10) << model;
  }
}

}  // namespace
}  // namespace akv
