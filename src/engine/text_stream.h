// Turns generated token pieces into text that is safe to send: never ends inside a UTF-8
// character, never shows the start of a stop string until it is known not to be one, and
// cuts the text at the first stop string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace akv {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Appends a token's bytes; returns the text released by it (may be empty). After a stop
  // string is seen, stopped() is true and further pushes release nothing.
  std::string Push(std::string_view piece);
  // Whatever is still held back (an incomplete character or a partial stop match), at the end.
  std::string Flush();

  bool stopped() const { return stopped_; }
  const std::string& text() const { return text_; }  // all text so far (cut at the stop)

 private:
  std::vector<std::string> stops_;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

}  // namespace akv
