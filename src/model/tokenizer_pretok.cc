#include "model/tokenizer_pretok.h"

#include <cstdint>

#include "model/tokenizer_unicode.h"

namespace akv::tok {
namespace {

struct Char {
  uint32_t cp;
  uint32_t offset;  // byte offset in the text
  uint8_t flags;
};

using Chars = std::vector<Char>;

// [begin, end) in character indices.
struct Range {
  size_t begin, end;
};

// A matcher returns how many characters the regex matches at `pos` (0: no match there), looking
// no further than `end`: llama.cpp applies each regex to every piece of the previous split
// separately, so lookaheads stop at the piece's end.
using Matcher = size_t (*)(const Chars& c, size_t pos, size_t end);

bool Letter(const Chars& c, size_t i, size_t end) { return i < end && (c[i].flags & kCharLetter); }
bool Number(const Chars& c, size_t i, size_t end) { return i < end && (c[i].flags & kCharNumber); }
bool Space(const Chars& c, size_t i, size_t end) { return i < end && (c[i].flags & kCharSpace); }
// [^\s\p{L}\p{N}]
bool Other(const Chars& c, size_t i, size_t end) {
  return i < end && !(c[i].flags & (kCharSpace | kCharLetter | kCharNumber));
}
bool CrLf(const Chars& c, size_t i, size_t end) { return i < end && (c[i].cp == '\r' || c[i].cp == '\n'); }

size_t RunOf(bool (*pred)(const Chars&, size_t, size_t), const Chars& c, size_t pos, size_t end) {
  size_t i = pos;
  while (pred(c, i, end)) ++i;
  return i - pos;
}

uint32_t AsciiLower(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive.
size_t Contraction(const Chars& c, size_t pos, size_t end, bool ignore_case) {
  if (c[pos].cp != '\'' || pos + 1 >= end) return 0;
  const auto at = [&](size_t i) { return ignore_case ? AsciiLower(c[i].cp) : c[i].cp; };
  const uint32_t a = at(pos + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= end) return 0;
  const uint32_t b = at(pos + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
size_t MatchGpt2(const Chars& c, size_t pos, size_t end) {
  if (size_t n = Contraction(c, pos, end, /*ignore_case=*/false)) return n;
  const size_t p = pos + (c[pos].cp == ' ' ? 1 : 0);  // the optional leading space
  for (auto pred : {Letter, Number, Other}) {
    // With the space taken, the class must follow it; the space alone is none of the classes,
    // so backtracking over the optional space cannot help.
    if (pred(c, p, end)) return p - pos + RunOf(pred, c, p, end);
  }
  const size_t n = RunOf(Space, c, pos, end);
  if (n == 0) return 0;
  if (pos + n == end) return n;  // (?!\S) holds at the end of the piece
  return n - 1;                  // leave the last space to prefix the next word (0: no match)
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,K}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
template <size_t kMaxDigits>
size_t MatchLlama3Like(const Chars& c, size_t pos, size_t end) {
  if (size_t n = Contraction(c, pos, end, /*ignore_case=*/true)) return n;
  if (Letter(c, pos, end)) return RunOf(Letter, c, pos, end);
  if (!CrLf(c, pos, end) && !Number(c, pos, end) && Letter(c, pos + 1, end)) {
    return 1 + RunOf(Letter, c, pos + 1, end);
  }
  if (Number(c, pos, end)) {
    size_t n = RunOf(Number, c, pos, end);
    return n < kMaxDigits ? n : kMaxDigits;
  }
  const size_t p = pos + (c[pos].cp == ' ' && Other(c, pos + 1, end) ? 1 : 0);
  if (Other(c, p, end)) {
    size_t i = p + RunOf(Other, c, p, end);
    return i - pos + RunOf(CrLf, c, i, end);
  }
  const size_t n = RunOf(Space, c, pos, end);
  if (n == 0) return 0;
  for (size_t k = n; k > 0; --k) {
    if (CrLf(c, pos + k - 1, end)) return k;  // \s*[\r\n]+ ends at the run's last CR/LF
  }
  if (pos + n == end || n == 1) return n;  // \s+(?!\S), or the final \s+
  return n - 1;
}

// \p{N}: one number character.
size_t MatchNumber(const Chars& c, size_t pos, size_t end) { return Number(c, pos, end) ? 1 : 0; }

// \p{N}+
size_t MatchNumberRun(const Chars& c, size_t pos, size_t end) { return RunOf(Number, c, pos, end); }

// [\p{P}\$\+<=>\^~\|]+
bool PunctOrMathSymbol(const Chars& c, size_t i, size_t end) {
  if (i >= end) return false;
  const uint32_t cp = c[i].cp;
  return (c[i].flags & kCharPunct) || cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' ||
         cp == '^' || cp == '~' || cp == '|';
}
size_t MatchPunctRun(const Chars& c, size_t pos, size_t end) {
  return RunOf(PunctOrMathSymbol, c, pos, end);
}

// [0-9][0-9][0-9]
size_t MatchDigitTriple(const Chars& c, size_t pos, size_t end) {
  if (pos + 3 > end) return 0;
  for (size_t i = pos; i < pos + 3; ++i) {
    if (c[i].cp < '0' || c[i].cp > '9') return 0;
  }
  return 3;
}

// Splits every piece at the regex's matches; text between matches becomes a piece of its own,
// as in llama.cpp's unicode_regex_split.
void Split(const Chars& c, Matcher match, std::vector<Range>* pieces) {
  std::vector<Range> out;
  out.reserve(pieces->size() * 2);
  for (const Range& r : *pieces) {
    size_t gap = r.begin, pos = r.begin;
    while (pos < r.end) {
      const size_t n = match(c, pos, r.end);
      if (n == 0) {
        ++pos;
        continue;
      }
      if (gap < pos) out.push_back({gap, pos});
      out.push_back({pos, pos + n});
      pos += n;
      gap = pos;
    }
    if (gap < r.end) out.push_back({gap, r.end});
  }
  pieces->swap(out);
}

}  // namespace

void PreTokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>* words) {
  if (text.empty()) return;
  Chars chars;
  chars.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(text, i, &cp);
    chars.push_back({cp, static_cast<uint32_t>(i), CharFlagsOf(cp)});
    i += n;
  }
  std::vector<Range> pieces = {{0, chars.size()}};
  switch (kind) {
    case PreTokenizer::kDefault:
      Split(chars, MatchPunctRun, &pieces);
      Split(chars, MatchGpt2, &pieces);
      Split(chars, MatchNumberRun, &pieces);
      Split(chars, MatchDigitTriple, &pieces);
      break;
    case PreTokenizer::kGpt2:
      Split(chars, MatchGpt2, &pieces);
      break;
    case PreTokenizer::kLlama3:
      Split(chars, MatchLlama3Like<3>, &pieces);
      break;
    case PreTokenizer::kQwen2:
      Split(chars, MatchLlama3Like<1>, &pieces);
      break;
    case PreTokenizer::kSmollm:
      Split(chars, MatchNumber, &pieces);
      Split(chars, MatchGpt2, &pieces);
      break;
  }
  const auto offset = [&](size_t i) { return i < chars.size() ? chars[i].offset : text.size(); };
  for (const Range& r : pieces) {
    words->push_back(text.substr(offset(r.begin), offset(r.end) - offset(r.begin)));
  }
}

}  // namespace akv::tok
