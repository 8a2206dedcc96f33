#include "model/tokenizer_unicode.h"

#include <algorithm>
#include <array>

namespace akv::tok {

size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto at = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = at(i);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, v = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, v = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, v = b0 & 0x07, min = 0x10000;
  } else {
    *cp = kInvalidCodePoint;  // continuation byte, overlong lead (C0/C1) or F5..FF
    return 1;
  }
  if (s.size() - i < len) {
    *cp = kInvalidCodePoint;
    return 1;
  }
  for (size_t k = 1; k < len; ++k) {
    const uint8_t b = at(i + k);
    if ((b & 0xC0) != 0x80) {
      *cp = kInvalidCodePoint;
      return 1;
    }
    v = (v << 6) | (b & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not valid UTF-8.
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    *cp = kInvalidCodePoint;
    return 1;
  }
  *cp = v;
  return len;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// The whitespace set llama.cpp's unicode tables use for \s.
bool IsUnicodeSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

uint8_t ClassFlags(uint32_t cp) {
  // Last run starting at or before cp.
  const uint32_t key = (cp << 2) | 3u;
  const uint32_t* end = kUnicodeRuns + kUnicodeRunCount;
  const uint32_t* it = std::upper_bound(kUnicodeRuns, end, key);
  switch (*(it - 1) & 3u) {
    case 1: return kCharLetter;
    case 2: return kCharNumber;
    case 3: return kCharPunct;
    default: return 0;
  }
}

struct FlagCache {
  std::array<uint8_t, 0x800> flags;  // U+0000..U+07FF: Latin, Greek, Cyrillic, ... without a search
  FlagCache() {
    for (uint32_t cp = 0; cp < flags.size(); ++cp) {
      flags[cp] = ClassFlags(cp) | (IsUnicodeSpace(cp) ? kCharSpace : 0);
    }
  }
};

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 512> to_byte;  // mapped code points are all below 256 + 68
  ByteMap() {
    to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      // Printable Latin-1 bytes keep their code point; the rest move to U+0100 and up, in order.
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = keep ? b : 256 + extra++;
      AppendUtf8(cp, &to_unicode[b]);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const FlagCache& Flags() {
  static const FlagCache cache;
  return cache;
}

const ByteMap& Bytes() {
  static const ByteMap map;
  return map;
}

}  // namespace

uint8_t CharFlagsOf(uint32_t cp) {
  if (cp < 0x800) return Flags().flags[cp];
  if (cp > 0x10FFFF) return 0;
  return ClassFlags(cp) | (IsUnicodeSpace(cp) ? kCharSpace : 0);
}

const std::string& ByteToUnicode(uint8_t b) { return Bytes().to_unicode[b]; }

int UnicodeToByte(uint32_t cp) { return cp < 512 ? Bytes().to_byte[cp] : -1; }

}  // namespace akv::tok
