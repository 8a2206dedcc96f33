// Text <-> token ids for the vocabularies stored in GGUF files (tokenizer.ggml.*), matching
// llama.cpp's tokenizer output id for id:
//   - "llama": SentencePiece (score-ordered merges, U+2581 for spaces, <0xNN> byte fallback);
//   - "gpt2":  byte-level BPE with merge ranks and the pre-tokenizer named by tokenizer.ggml.pre
//              (default, gpt2, llama3 / llama-bpe, qwen2, smollm and their aliases).
// Encoding never fails: any byte string (invalid UTF-8 included) yields valid ids.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace akv {

class GgufFile;

namespace tok {
struct Vocab;
struct SpmTables;
class BpeModel;
}  // namespace tok

class Tokenizer {
 public:
  enum class Type { kSpm, kBpe };

  // Reads tokenizer.ggml.*; a missing or inconsistent field yields an error naming the key.
  static StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& gguf);
  ~Tokenizer();

  // add_special: add BOS / EOS as the model's metadata says (add_bos_token / add_eos_token).
  // parse_special: recognise control-token text such as "<|im_start|>" in `text`; user-defined
  // tokens are always recognised, as in llama.cpp.
  std::vector<int32_t> Encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const;
  // The bytes `token` contributes to the output text: byte tokens give their byte, SPM's U+2581
  // becomes a space, byte-level BPE text is unmapped; control and unknown tokens give "".
  std::string TokenToPiece(int32_t token) const;
  // Concatenated pieces. With a space prefix (SPM) the first piece after a leading BOS loses one
  // leading space, undoing the prefix Encode added, so Decode(Encode(text)) == text. That is
  // SentencePiece's decode and llama.cpp's detokenize without BOS; llama.cpp keeps the space when
  // a BOS comes first. Byte-level BPE decoding is lossless; llama.cpp's optional
  // clean_up_tokenization_spaces pass (" ," -> ",", ...) is not applied.
  std::string Decode(const std::vector<int32_t>& tokens) const;

  Type type() const { return type_; }
  int32_t n_vocab() const;
  int32_t bos() const { return bos_; }  // -1 when the model has none
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // eos, eot, eom and the end-of-turn tokens llama.cpp recognises by text (<|im_end|>, <|eot_id|>...).
  bool IsEndOfGeneration(int32_t token) const;
  bool IsControl(int32_t token) const;  // control or unknown: no text of its own
  const std::string& TokenText(int32_t token) const;  // raw vocabulary string ("" if invalid)
  bool IsValid(int32_t token) const { return token >= 0 && token < n_vocab(); }

 private:
  Tokenizer();
  Status Init(const GgufFile& gguf);
  Status InitSpecialIds(const GgufFile& gguf);
  void EncodeFragment(std::string_view text, bool after_special, std::vector<int32_t>* out) const;

  Type type_ = Type::kSpm;
  std::unique_ptr<tok::Vocab> vocab_;
  std::unique_ptr<tok::BpeModel> bpe_;
  std::unique_ptr<tok::SpmTables> spm_;
  std::vector<std::string> pieces_;       // TokenToPiece for every token
  std::vector<int32_t> special_tokens_;   // control / user-defined / unknown, longest text first
  std::vector<bool> end_of_generation_;
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
};

}  // namespace akv
