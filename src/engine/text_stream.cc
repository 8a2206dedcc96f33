#include "engine/text_stream.h"

#include <algorithm>

#include "engine/utf8.h"

namespace akv {

namespace {
// Length of the longest suffix of text[from:] that is a proper prefix of some stop string.
size_t PartialStopSuffix(const std::string& text, size_t from, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const std::string& s : stops) {
    for (size_t k = std::min(s.size() - 1, text.size() - from); k > best; --k) {
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}
}  // namespace

std::string TextStream::Push(std::string_view piece) {
  if (stopped_) return "";
  text_.append(piece);
  // Any suffix that could begin a stop string is held back, so a match always starts at or
  // after the released part: searching from there is enough.
  size_t stop_at = std::string::npos;
  for (const std::string& s : stops_) stop_at = std::min(stop_at, text_.find(s, emitted_));
  if (stop_at != std::string::npos) {
    stopped_ = true;
    text_.resize(stop_at);
  }
  size_t end = stopped_ ? text_.size() : text_.size() - PartialStopSuffix(text_, emitted_, stops_);
  end = emitted_ + CompleteUtf8Prefix(std::string_view(text_).substr(emitted_, end - emitted_));
  std::string out = text_.substr(emitted_, end - emitted_);
  emitted_ = end;
  return out;
}

std::string TextStream::Flush() {
  std::string out = text_.substr(emitted_);
  emitted_ = text_.size();
  return out;
}

}  // namespace akv
