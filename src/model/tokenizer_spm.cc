// SentencePiece (llama.cpp's llm_tokenizer_spm): start from single UTF-8 characters and keep
// merging the adjacent pair whose concatenation is the highest-scoring vocabulary entry (ties:
// leftmost first). Symbols are a linked list over the text and candidate pairs sit in a priority
// queue, so a whole book encodes in O(n log n).
#include <queue>

#include "model/tokenizer_internal.h"
#include "model/tokenizer_unicode.h"

namespace akv::tok {
namespace {

struct Symbol {
  int32_t prev, next;
  uint32_t start, n;  // byte span in the text; n == 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;  // left.n + right.n when queued; a mismatch later means the pair is stale
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void SpmEncode(const Vocab& vocab, const std::array<int32_t, 256>& byte_tokens, std::string_view text,
               std::vector<int32_t>* out) {
  if (text.empty()) return;
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(text, i, &cp);  // invalid bytes become one-byte symbols
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, i + n == text.size() ? -1 : index + 1, static_cast<uint32_t>(i),
                       static_cast<uint32_t>(n)});
    i += n;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const int32_t id = vocab.Find(text.substr(l.start, l.n + r.n));
    if (id < 0) return;
    queue.push({vocab.score[id], left, right, l.n + r.n});
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

  // Every merged symbol is a vocabulary entry (pairs are only queued when their text is one), so
  // only single characters can be missing: those fall back to byte tokens. llama.cpp's rev_merge
  // re-split never applies for the same reason.
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const int32_t id = vocab.Find(text.substr(s.start, s.n));
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (uint32_t k = 0; k < s.n; ++k) {
      const int32_t byte_id = byte_tokens[static_cast<uint8_t>(text[s.start + k])];
      if (byte_id >= 0) out->push_back(byte_id);
    }
  }
}

}  // namespace akv::tok
