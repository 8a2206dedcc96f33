// Byte-level BPE (llama.cpp's llm_tokenizer_bpe): pre-tokenize into words, map each word's bytes
// to GPT-2's printable code points, then repeatedly merge the adjacent pair with the lowest merge
// rank (ties: leftmost first) until no listed pair remains.
#include <queue>

#include "model/tokenizer_internal.h"
#include "model/tokenizer_unicode.h"

namespace akv::tok {
namespace {

struct Symbol {
  int32_t prev, next;
  uint32_t start, n;  // byte span in the mapped word; n == 0 once merged into its left neighbour
};

struct Bigram {
  int32_t rank;
  int32_t left, right;
  uint32_t size;  // left.n + right.n when queued; a mismatch later means the pair is stale
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(const Vocab& vocab, const std::vector<std::string>& merges,
                                                     PreTokenizer pre, bool ignore_merges) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->pre_ = pre;
  m->ignore_merges_ = ignore_merges;
  for (int b = 0; b < 256; ++b) {
    m->byte_has_token_[b] = vocab.Find(ByteToUnicode(static_cast<uint8_t>(b))) >= 0;
    m->all_bytes_have_tokens_ = m->all_bytes_have_tokens_ && m->byte_has_token_[b];
  }
  m->ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    // llama.cpp splits at the first space after the first byte. Mapped text never holds a space,
    // so looking a pair up as "left right" finds exactly the entries that split would produce.
    if (merges[i].size() < 3 || merges[i].find(' ', 1) == std::string::npos) {
      return Corrupt("tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + merges[i] +
                     "' is not two symbols separated by a space");
    }
    m->ranks_.emplace(merges[i], static_cast<int32_t>(i));
  }
  return m;
}

void BpeModel::Encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) const {
  std::string replaced;
  if (!all_bytes_have_tokens_) {
    bool any = false;
    for (size_t i = 0; i < text.size();) {
      uint32_t cp;
      const size_t n = DecodeUtf8(text, i, &cp);
      if (cp == kInvalidCodePoint && !byte_has_token_[static_cast<uint8_t>(text[i])]) {
        if (!any) replaced.assign(text.substr(0, i)), any = true;
        replaced += "\xEF\xBF\xBD";  // U+FFFD
      } else if (any) {
        replaced.append(text.substr(i, n));
      }
      i += n;
    }
    if (any) text = replaced;
  }
  std::vector<std::string_view> words;
  PreTokenize(pre_, text, &words);
  std::string mapped;
  for (std::string_view word : words) {
    mapped.clear();
    for (char c : word) mapped += ByteToUnicode(static_cast<uint8_t>(c));
    EncodeWord(vocab, mapped, out);
  }
}

void BpeModel::EncodeWord(const Vocab& vocab, const std::string& mapped, std::vector<int32_t>* out) const {
  if (mapped.empty()) return;
  if (ignore_merges_) {  // Llama 3: a word that is itself a token skips the merges
    const int32_t id = vocab.Find(mapped);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const std::string_view text(mapped);
  std::vector<Symbol> symbols;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(text, i, &cp);  // one mapped code point per original byte
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, i + n == text.size() ? -1 : index + 1, static_cast<uint32_t>(i),
                       static_cast<uint32_t>(n)});
    i += n;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  std::string key;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    key.assign(text.substr(l.start, l.n));
    key += ' ';
    key.append(text.substr(r.start, r.n));
    auto it = ranks_.find(key);
    if (it == ranks_.end()) return;
    queue.push({it->second, left, right, l.n + r.n});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const int32_t id = vocab.Find(text.substr(s.start, s.n));
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // A merge result missing from the vocabulary (malformed model): emit its characters one by
    // one where they are tokens. llama.cpp looks up single bytes here, which in a byte-level
    // vocabulary drops the text; characters keep it.
    for (uint32_t k = 0; k < s.n;) {
      uint32_t cp;
      const size_t n = DecodeUtf8(text, s.start + k, &cp);
      const int32_t char_id = vocab.Find(text.substr(s.start + k, n));
      if (char_id >= 0) out->push_back(char_id);
      k += static_cast<uint32_t>(n);
    }
  }
}

std::string BpeDecodeText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(text, i, &cp);
    const int b = cp == kInvalidCodePoint ? -1 : UnicodeToByte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace akv::tok
