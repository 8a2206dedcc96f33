// Filler text for the recall tasks: real prose, split into sentences, so a fact can be planted
// between two sentences at any depth and the context can be cut to a token count at a sentence
// boundary.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "akv/status.h"

namespace akv {

// Splits text into sentences: whitespace runs become one space, a sentence ends at . ! or ?
// (with any closing quotes or brackets after it) followed by a space and not by a lower-case word. Headings and fragments
// (no lower-case letter, mostly capitals, fewer than 3 or more than 80 words) are dropped, so
// a cut never lands inside a chapter title or a table of contents.
std::vector<std::string> SplitSentences(std::string_view text);

class FillerCorpus {
 public:
  FillerCorpus() = default;
  // Reads and splits each file, in order; an error names a file that cannot be read or that
  // holds no usable sentence.
  static StatusOr<FillerCorpus> Load(const std::vector<std::string>& paths);
  static FillerCorpus FromText(std::string_view text);

  const std::vector<std::string>& sentences() const { return sentences_; }
  size_t size() const { return sentences_.size(); }
  // Case-insensitive search over every sentence: a cue that the filler contains could be
  // completed from the filler instead of from the planted fact.
  bool Contains(std::string_view needle) const;

 private:
  std::vector<std::string> sentences_;
  std::string lower_;  // all sentences, lower-cased, joined by '\n'
};

std::string AsciiLower(std::string_view s);

}  // namespace akv
