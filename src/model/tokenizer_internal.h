// Pieces shared by tokenizer.cc and the per-algorithm files; not part of the public API.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "model/tokenizer_pretok.h"

namespace akv::tok {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenAttr : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
// Keyed by std::string, looked up by string_view without a copy.
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocab {
  std::vector<std::string> text;
  std::vector<float> score;
  std::vector<TokenAttr> attr;
  StringMap to_id;  // on duplicate strings the last id wins, as in llama.cpp

  int32_t size() const { return static_cast<int32_t>(text.size()); }
  int32_t Find(std::string_view s) const {
    auto it = to_id.find(s);
    return it == to_id.end() ? -1 : it->second;
  }
};

struct SpmTables {
  std::array<int32_t, 256> byte_tokens;  // fallback token for each byte (-1: none, byte dropped)
  // ASCII bytes that occur in no token longer than one byte, so no merge can ever include them
  // (newline, tab, ... in Llama's vocabulary). Merging stays within the text between them, which
  // keeps the work queues small without changing the result.
  std::array<bool, 128> barrier;
};
SpmTables BuildSpmTables(const Vocab& vocab, int32_t unk);

// SentencePiece encoding of one text fragment whose spaces are already escaped to U+2581.
void SpmEncode(const Vocab& vocab, const SpmTables& tables, std::string_view text, std::vector<int32_t>* out);

// Byte-level BPE: merge ranks plus the pre-tokenizer that cuts text into words.
class BpeModel {
 public:
  // `merges` are "left right" strings, rank = index; the first of duplicate pairs wins.
  static StatusOr<std::unique_ptr<BpeModel>> Create(const Vocab& vocab, const std::vector<std::string>& merges,
                                                    PreTokenizer pre, bool ignore_merges);
  void Encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) const;
  size_t n_merges() const { return ranks_.size(); }

 private:
  BpeModel() = default;
  void EncodeWord(const Vocab& vocab, const std::string& mapped, std::vector<int32_t>* out) const;

  StringMap ranks_;  // "left right" -> rank
  // Bytes whose mapped character is a token. Vocabularies often lack bytes that never occur in
  // UTF-8 (C0, C1, F5..FF); an invalid byte without a token is encoded as U+FFFD instead, the
  // replacement llama.cpp applies to every invalid byte.
  std::array<bool, 256> byte_has_token_{};
  bool all_bytes_have_tokens_ = true;
  PreTokenizer pre_ = PreTokenizer::kDefault;
  bool ignore_merges_ = false;
};

// Undoes the byte-to-unicode mapping of a byte-level BPE token's text. Code points outside the
// map (never in well-formed vocabularies) are passed through as UTF-8.
std::string BpeDecodeText(std::string_view text);

}  // namespace akv::tok
