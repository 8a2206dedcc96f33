// Pre-tokenizers of byte-level BPE vocabularies: they cut text into words before merges run.
// Each is a hand-written equivalent of the regex list llama.cpp uses for that
// `tokenizer.ggml.pre` (the regexes need \p{L} / \p{N}, which std::regex lacks).
#pragma once

#include <string_view>
#include <vector>

namespace akv::tok {

enum class PreTokenizer {
  kDefault,  // llama.cpp's fallback: punctuation runs, GPT-2 regex, number runs, digit triples
  kGpt2,     // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  kLlama3,   // case-insensitive contractions, [^\r\n\p{L}\p{N}]?\p{L}+, \p{N}{1,3}, ...
  kQwen2,    // as kLlama3 but single digits: \p{N}
  kSmollm,   // \p{N} split first, then the GPT-2 regex (also StarCoder, Refact, Command-R)
};

// Appends the words of `text`, in order; together they cover every byte of `text` exactly once.
// Invalid UTF-8 bytes count as single characters of no class, like an unassigned code point.
void PreTokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>* words);

}  // namespace akv::tok
