#include "model/tokenizer.h"

#include <algorithm>
#include <limits>

#include "io/gguf.h"
#include "model/tokenizer_internal.h"

namespace akv {
namespace {

using tok::PreTokenizer;
using tok::TokenAttr;

constexpr char kSpaceEscape[] = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

struct PreTokenizerInfo {
  PreTokenizer kind;
  bool ignore_merges;  // a word that is a token skips the merges (Llama 3)
  bool add_bos;        // llama.cpp's default before add_bos_token is read
};

// tokenizer.ggml.pre names, grouped as llama.cpp groups them by shared regexes.
StatusOr<PreTokenizerInfo> LookupPreTokenizer(const std::string& name) {
  const auto in = [&](std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
  };
  if (in({"default"})) return PreTokenizerInfo{PreTokenizer::kDefault, false, false};
  if (in({"llama3", "llama-v3", "llama-bpe", "falcon3"})) {
    return PreTokenizerInfo{PreTokenizer::kLlama3, true, true};
  }
  if (in({"qwen2", "qwen2.5", "qwen-2.5", "deepseek-r1-qwen"})) {
    return PreTokenizerInfo{PreTokenizer::kQwen2, false, false};
  }
  if (in({"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"})) {
    return PreTokenizerInfo{PreTokenizer::kSmollm, false, false};
  }
  if (in({"gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "roberta-bpe"})) {
    return PreTokenizerInfo{PreTokenizer::kGpt2, false, false};
  }
  return Unsupported("tokenizer.ggml.pre '" + name +
                     "' is not supported (known: default, gpt2, llama3 / llama-bpe, qwen2, smollm and aliases)");
}

// "<0xNN>" -> NN, else -1.
int ParseByteToken(const std::string& text) {
  if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = text[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return -1;
    }
    value = value * 16 + d;
  }
  return value;
}

std::string UnescapeSpaces(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, kSpaceEscape) == 0) {
      out.push_back(' ');
      i += 3;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// A run of input text, or (token >= 0) a special token found in it.
struct Fragment {
  int32_t token;
  size_t offset, length;
};

}  // namespace

Tokenizer::Tokenizer() : vocab_(std::make_unique<tok::Vocab>()) {}
Tokenizer::~Tokenizer() = default;

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& gguf) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  AKV_RETURN_IF_ERROR(t->Init(gguf));
  return t;
}

Status Tokenizer::Init(const GgufFile& gguf) {
  AKV_ASSIGN_OR_RETURN(const std::string model, gguf.GetString("tokenizer.ggml.model"));
  if (model == "llama") {
    type_ = Type::kSpm;
  } else if (model == "gpt2") {
    type_ = Type::kBpe;
  } else {
    return Unsupported("tokenizer.ggml.model '" + model +
                       "' is not supported (only 'llama' SentencePiece and 'gpt2' byte-level BPE)");
  }

  tok::Vocab& v = *vocab_;
  AKV_ASSIGN_OR_RETURN(v.text, gguf.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n = v.text.size();
  if (n == 0) return Corrupt("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return Corrupt("tokenizer.ggml.tokens has too many entries (" + std::to_string(n) + ")");
  }
  const auto check_length = [&](const char* key, size_t got) -> Status {
    if (got == n) return Status::Ok();
    return Corrupt(std::string(key) + " has " + std::to_string(got) +
                   " entries but tokenizer.ggml.tokens has " + std::to_string(n));
  };
  v.score.assign(n, 0.0f);
  if (gguf.Has("tokenizer.ggml.scores")) {
    AKV_ASSIGN_OR_RETURN(const std::vector<double> scores, gguf.GetFloatArray("tokenizer.ggml.scores"));
    AKV_RETURN_IF_ERROR(check_length("tokenizer.ggml.scores", scores.size()));
    for (size_t i = 0; i < n; ++i) v.score[i] = static_cast<float>(scores[i]);
  }
  v.attr.assign(n, TokenAttr::kNormal);
  if (gguf.Has("tokenizer.ggml.token_type")) {
    AKV_ASSIGN_OR_RETURN(const std::vector<int64_t> types, gguf.GetIntArray("tokenizer.ggml.token_type"));
    AKV_RETURN_IF_ERROR(check_length("tokenizer.ggml.token_type", types.size()));
    for (size_t i = 0; i < n; ++i) {
      v.attr[i] = types[i] >= 1 && types[i] <= 6 ? static_cast<TokenAttr>(types[i]) : TokenAttr::kUndefined;
    }
  }
  v.to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // An empty string would match everywhere as a special token; llama.cpp renames it the same way.
    if (v.text[i].empty()) v.text[i] = "[EMPTY_" + std::to_string(i) + "]";
    v.to_id[v.text[i]] = static_cast<int32_t>(i);
  }

  PreTokenizerInfo pre{PreTokenizer::kDefault, false, false};
  if (type_ == Type::kBpe) {
    AKV_ASSIGN_OR_RETURN(const std::string pre_name, gguf.GetStringOr("tokenizer.ggml.pre", "default"));
    AKV_ASSIGN_OR_RETURN(pre, LookupPreTokenizer(pre_name));
    AKV_ASSIGN_OR_RETURN(const std::vector<std::string> merges, gguf.GetStringArray("tokenizer.ggml.merges"));
    AKV_ASSIGN_OR_RETURN(bpe_, tok::BpeModel::Create(v, merges, pre.kind, pre.ignore_merges));
  }

  // Flags: llama.cpp's per-type defaults, then the metadata.
  const bool spm = type_ == Type::kSpm;
  AKV_ASSIGN_OR_RETURN(add_bos_, gguf.GetBoolOr("tokenizer.ggml.add_bos_token", spm || pre.add_bos));
  AKV_ASSIGN_OR_RETURN(add_eos_, gguf.GetBoolOr("tokenizer.ggml.add_eos_token", false));
  AKV_ASSIGN_OR_RETURN(add_space_prefix_, gguf.GetBoolOr("tokenizer.ggml.add_space_prefix", spm));
  AKV_RETURN_IF_ERROR(InitSpecialIds(gguf));

  if (spm) spm_ = std::make_unique<tok::SpmTables>(tok::BuildSpmTables(v, unk_));

  for (int32_t id = 0; id < v.size(); ++id) {
    const TokenAttr a = v.attr[id];
    if (a == TokenAttr::kControl || a == TokenAttr::kUserDefined || a == TokenAttr::kUnknown) {
      special_tokens_.push_back(id);
    }
  }
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [&](int32_t a, int32_t b) { return v.text[a].size() > v.text[b].size(); });

  // Pieces as llama.cpp's token_to_piece(special = false) gives them.
  pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = v.text[i];
    switch (v.attr[i]) {
      case TokenAttr::kUserDefined:
        pieces_[i] = text;
        break;
      case TokenAttr::kNormal:
        pieces_[i] = spm ? UnescapeSpaces(text) : tok::BpeDecodeText(text);
        break;
      case TokenAttr::kByte:
        if (spm) {
          const int b = ParseByteToken(text);
          if (b >= 0) pieces_[i] = std::string(1, static_cast<char>(b));
        }
        break;
      default:  // control, unknown, unused, undefined: no text
        break;
    }
  }
  return Status::Ok();
}

Status Tokenizer::InitSpecialIds(const GgufFile& gguf) {
  tok::Vocab& v = *vocab_;
  const int32_t n = v.size();
  const auto valid_or_none = [&](int32_t id) { return id >= 0 && id < n ? id : -1; };
  // llama.cpp's defaults: Llama's ids for SentencePiece, GPT-2's for BPE.
  if (type_ == Type::kSpm) {
    bos_ = valid_or_none(1), eos_ = valid_or_none(2), unk_ = valid_or_none(0);
  } else {
    bos_ = valid_or_none(11), eos_ = valid_or_none(11), unk_ = -1;
  }
  // An id outside the vocabulary (often 0xFFFFFFFF for "none") keeps the default, as llama.cpp does.
  const auto read = [&](const char* key, int32_t* id) -> Status {
    AKV_ASSIGN_OR_RETURN(const int64_t value, gguf.GetIntOr(key, -1));
    if (value >= 0 && value < n) *id = static_cast<int32_t>(value);
    return Status::Ok();
  };
  AKV_RETURN_IF_ERROR(read("tokenizer.ggml.bos_token_id", &bos_));
  AKV_RETURN_IF_ERROR(read("tokenizer.ggml.eos_token_id", &eos_));
  AKV_RETURN_IF_ERROR(read("tokenizer.ggml.eot_token_id", &eot_));
  AKV_RETURN_IF_ERROR(read("tokenizer.ggml.eom_token_id", &eom_));
  AKV_RETURN_IF_ERROR(read("tokenizer.ggml.unknown_token_id", &unk_));
  if (add_bos_ && bos_ < 0) return Corrupt("tokenizer.ggml.add_bos_token is set but there is no valid BOS token id");
  if (add_eos_ && eos_ < 0) return Corrupt("tokenizer.ggml.add_eos_token is set but there is no valid EOS token id");

  // End-of-turn tokens that conversion scripts do not label; llama.cpp finds them by text and
  // treats them as control tokens.
  static const char* const kEotTexts[] = {"<|eot_id|>", "<|im_end|>",    "<|end|>", "<end_of_turn>",
                                          "<|endoftext|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>",
                                          "<end_of_utterance>"};
  static const char* const kEogTexts[] = {"<|eot_id|>",      "<|im_end|>", "<|end|>", "<|return|>",
                                          "<|call|>",        "<end_of_turn>", "<|endoftext|>",
                                          "<|eom_id|>",      "<EOT>", "_<EOT>", "<|end_of_text|>",
                                          "<end_of_utterance>", "<|fim_pad|>", "<|repo_name|>",
                                          "<|file_sep|>"};
  if (eot_ < 0) {
    for (const char* text : kEotTexts) {
      const int32_t id = v.Find(text);
      if (id >= 0 && (eot_ < 0 || id < eot_)) eot_ = id;
    }
    if (eot_ >= 0) v.attr[eot_] = TokenAttr::kControl;
  }
  if (eom_ < 0) {
    eom_ = v.Find("<|eom_id|>");
    if (eom_ >= 0) v.attr[eom_] = TokenAttr::kControl;
  }
  end_of_generation_.assign(n, false);
  for (const char* text : kEogTexts) {
    const int32_t id = v.Find(text);
    if (id < 0) continue;
    end_of_generation_[id] = true;
    v.attr[id] = TokenAttr::kControl;
  }
  for (int32_t id : {eos_, eot_, eom_}) {
    if (id >= 0) end_of_generation_[id] = true;
  }
  return Status::Ok();
}

int32_t Tokenizer::n_vocab() const { return vocab_->size(); }

bool Tokenizer::IsEndOfGeneration(int32_t token) const { return IsValid(token) && end_of_generation_[token]; }

bool Tokenizer::IsControl(int32_t token) const {
  if (!IsValid(token)) return false;
  const TokenAttr a = vocab_->attr[token];
  return a == TokenAttr::kControl || a == TokenAttr::kUnknown;
}

const std::string& Tokenizer::TokenText(int32_t token) const {
  static const std::string kEmpty;
  return IsValid(token) ? vocab_->text[token] : kEmpty;
}

std::string Tokenizer::TokenToPiece(int32_t token) const { return IsValid(token) ? pieces_[token] : std::string(); }

std::string Tokenizer::Decode(const std::vector<int32_t>& tokens) const {
  std::string out;
  size_t i = 0;
  if (!tokens.empty() && bos_ >= 0 && tokens[0] == bos_) i = 1;
  bool strip_space = add_space_prefix_;  // undo the space Encode put before the text
  for (; i < tokens.size(); ++i) {
    if (!IsValid(tokens[i])) continue;
    const std::string& piece = pieces_[tokens[i]];
    if (strip_space && !piece.empty() && piece[0] == ' ') {
      out.append(piece, 1, std::string::npos);
    } else {
      out += piece;
    }
    strip_space = false;
  }
  return out;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_) out.push_back(bos_);

  // Cut out special tokens, longest first, leftmost occurrences first (llama.cpp's
  // tokenizer_st_partition). Control and unknown tokens only count when parse_special is set.
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : special_tokens_) {
    const TokenAttr a = vocab_->attr[id];
    if (!parse_special && a != TokenAttr::kUserDefined) continue;
    const std::string& special = vocab_->text[id];
    if (text.find(special) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const size_t end = f.offset + f.length;
      const std::string_view window = text.substr(0, end);
      size_t pos = f.offset;
      for (size_t m; (m = window.find(special, pos)) != std::string_view::npos; pos = m + special.size()) {
        if (m > pos) next.push_back({-1, pos, m - pos});
        next.push_back({id, 0, 0});
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    fragments.swap(next);
  }

  bool after_special = true;  // SPM adds its space prefix at the start and after special tokens
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      EncodeFragment(text.substr(f.offset, f.length), after_special, &out);
      after_special = false;
    }
  }

  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

void Tokenizer::EncodeFragment(std::string_view text, bool after_special, std::vector<int32_t>* out) const {
  if (type_ == Type::kBpe) {
    bpe_->Encode(*vocab_, text, out);
    return;
  }
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 4 + 3);
  if (add_space_prefix_ && after_special) escaped += kSpaceEscape;
  for (char c : text) {
    if (c == ' ') {
      escaped += kSpaceEscape;
    } else {
      escaped.push_back(c);
    }
  }
  tok::SpmEncode(*vocab_, *spm_, escaped, out);
}

}  // namespace akv
