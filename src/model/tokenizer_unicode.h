// Unicode helpers for the tokenizers: tolerant UTF-8 decoding, the character classes the
// pre-tokenizer regexes ask about (\p{L}, \p{N}, \p{P}, \s), and GPT-2's byte <-> code point map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace akv::tok {

// Code point reported for a byte that does not start a valid UTF-8 sequence.
inline constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

// Decodes the code point at s[i] (i < s.size()). Returns the bytes consumed: the sequence length
// for valid UTF-8, else 1 with *cp = kInvalidCodePoint, so every byte is covered exactly once.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);
void AppendUtf8(uint32_t cp, std::string* out);

enum CharFlags : uint8_t {
  kCharLetter = 1,  // \p{L}
  kCharNumber = 2,  // \p{N}
  kCharPunct = 4,   // \p{P}
  kCharSpace = 8,   // \s as llama.cpp sees it (ASCII \t\n\v\f\r and space, plus Unicode spaces)
};
// Flags of one code point; kInvalidCodePoint (and unassigned code points) have none.
uint8_t CharFlagsOf(uint32_t cp);

// GPT-2 byte-level BPE: every byte maps to one printable code point (space -> U+0120 'Ġ').
// ByteToUnicode returns that code point's UTF-8; UnicodeToByte is its inverse (-1 if unmapped).
const std::string& ByteToUnicode(uint8_t b);
int UnicodeToByte(uint32_t cp);

// Generated category runs (tokenizer_unicode_data.cc): (first code point << 2) | class, where
// class 1 = letter, 2 = number, 3 = punctuation, 0 = anything else.
extern const uint32_t kUnicodeRuns[];
extern const size_t kUnicodeRunCount;

}  // namespace akv::tok
