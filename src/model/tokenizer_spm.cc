// SentencePiece (llama.cpp's llm_tokenizer_spm): start from single UTF-8 characters and keep
// merging the adjacent pair whose concatenation is the highest-scoring vocabulary entry (ties:
// leftmost first). Symbols are a linked list over the text and candidate pairs sit in a priority
// queue, so a whole book encodes in O(n log n).
#include <algorithm>
#include <cstdio>

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

// Heap order: the top is the highest score, then the leftmost pair.
bool Lower(const Bigram& a, const Bigram& b) { return a.score < b.score || (a.score == b.score && a.left > b.left); }

class SpmSession {
 public:
  SpmSession(const Vocab& vocab, const SpmTables& tables, std::vector<int32_t>* out)
      : vocab_(vocab), tables_(tables), out_(out) {}

  // One run of text that merges cannot cross.
  void EncodeChunk(std::string_view text) {
    text_ = text;
    symbols_.clear();
    queue_.clear();
    for (size_t i = 0; i < text.size();) {
      uint32_t cp;
      const size_t n = DecodeUtf8(text, i, &cp);  // invalid bytes become one-byte symbols
      const int32_t index = static_cast<int32_t>(symbols_.size());
      symbols_.push_back({index - 1, i + n == text.size() ? -1 : index + 1, static_cast<uint32_t>(i),
                          static_cast<uint32_t>(n)});
      i += n;
    }
    for (int32_t i = 1; i < static_cast<int32_t>(symbols_.size()); ++i) TryAdd(i - 1, i);

    while (!queue_.empty()) {
      std::pop_heap(queue_.begin(), queue_.end(), Lower);
      const Bigram b = queue_.back();
      queue_.pop_back();
      Symbol& l = symbols_[b.left];
      Symbol& r = symbols_[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols_[r.next].prev = b.left;
      TryAdd(l.prev, b.left);
      TryAdd(b.left, l.next);
    }

    // Every merged symbol is a vocabulary entry (pairs are only queued when their text is one),
    // so only single characters can be missing: those fall back to byte tokens. llama.cpp's
    // rev_merge re-split never applies for the same reason.
    for (int32_t i = 0; i != -1; i = symbols_[i].next) {
      const Symbol& s = symbols_[i];
      const int32_t id = vocab_.Find(text_.substr(s.start, s.n));
      if (id >= 0) {
        out_->push_back(id);
        continue;
      }
      for (uint32_t k = 0; k < s.n; ++k) {
        const int32_t byte_id = tables_.byte_tokens[static_cast<uint8_t>(text_[s.start + k])];
        if (byte_id >= 0) out_->push_back(byte_id);
      }
    }
  }

 private:
  void TryAdd(int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[left];
    const Symbol& r = symbols_[right];
    const int32_t id = vocab_.Find(text_.substr(l.start, l.n + r.n));
    if (id < 0) return;
    queue_.push_back({vocab_.score[id], left, right, l.n + r.n});
    std::push_heap(queue_.begin(), queue_.end(), Lower);
  }

  const Vocab& vocab_;
  const SpmTables& tables_;
  std::vector<int32_t>* out_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::vector<Bigram> queue_;
};

}  // namespace

SpmTables BuildSpmTables(const Vocab& vocab, int32_t unk) {
  SpmTables t;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    int32_t id = vocab.Find(name);
    if (id < 0) id = vocab.Find(std::string(1, static_cast<char>(b)));
    t.byte_tokens[b] = id >= 0 ? id : unk;
  }
  t.barrier.fill(true);
  t.barrier[0] = false;  // keep NUL runs ordinary; nothing gained
  for (const std::string& text : vocab.text) {
    if (text.size() < 2) continue;
    for (char c : text) {
      if (static_cast<uint8_t>(c) < 128) t.barrier[static_cast<uint8_t>(c)] = false;
    }
  }
  return t;
}

void SpmEncode(const Vocab& vocab, const SpmTables& tables, std::string_view text, std::vector<int32_t>* out) {
  SpmSession session(vocab, tables, out);
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    if (c >= 128 || !tables.barrier[c]) continue;
    if (start < i) session.EncodeChunk(text.substr(start, i - start));
    session.EncodeChunk(text.substr(i, 1));
    start = i + 1;
  }
  if (start < text.size()) session.EncodeChunk(text.substr(start));
}

}  // namespace akv::tok
