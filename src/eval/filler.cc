#include "eval/filler.h"

#include <fstream>
#include <sstream>

namespace akv {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// Closing quotes and brackets that may follow a sentence's final punctuation, in UTF-8 as well:
// ’ (E2 80 99) and ” (E2 80 9D).
size_t ClosingRun(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size()) {
    if (s[j] == '"' || s[j] == '\'' || s[j] == ')' || s[j] == ']') {
      ++j;
    } else if (j + 2 < s.size() && static_cast<unsigned char>(s[j]) == 0xE2 &&
               static_cast<unsigned char>(s[j + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[j + 2]) == 0x99 || static_cast<unsigned char>(s[j + 2]) == 0x9D)) {
      j += 3;
    } else {
      break;
    }
  }
  return j;
}

bool Usable(const std::string& s) {
  int words = 1, lower = 0, upper = 0;
  for (char c : s) {
    words += c == ' ';
    lower += c >= 'a' && c <= 'z';
    upper += c >= 'A' && c <= 'Z';
  }
  return words >= 3 && words <= 80 && lower > 0 && upper * 4 < lower;
}

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::vector<std::string> SplitSentences(std::string_view text) {
  std::string norm;
  norm.reserve(text.size());
  for (char c : text) {
    if (IsSpace(c)) {
      if (!norm.empty() && norm.back() != ' ') norm.push_back(' ');
    } else {
      norm.push_back(c);
    }
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < norm.size(); ++i) {
    const char c = norm[i];
    if (c != '.' && c != '!' && c != '?') continue;
    const size_t end = ClosingRun(norm, i + 1);
    if (end < norm.size() && norm[end] != ' ') continue;  // "3.5", "Mr.Smith", "?!"
    // "“Where are you?” she asked." goes on after the question mark.
    if (end + 1 < norm.size() && norm[end + 1] >= 'a' && norm[end + 1] <= 'z') continue;
    std::string s = norm.substr(start, end - start);
    if (Usable(s)) out.push_back(std::move(s));
    start = end + 1;
    i = end;
  }
  return out;
}

FillerCorpus FillerCorpus::FromText(std::string_view text) {
  FillerCorpus c;
  c.sentences_ = SplitSentences(text);
  for (const auto& s : c.sentences_) {
    c.lower_ += AsciiLower(s);
    c.lower_ += '\n';
  }
  return c;
}

StatusOr<FillerCorpus> FillerCorpus::Load(const std::vector<std::string>& paths) {
  if (paths.empty()) return InvalidArgument("no filler text files given");
  FillerCorpus all;
  for (const std::string& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return NotFound("cannot read filler text file '" + p + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    FillerCorpus one = FromText(ss.str());
    if (one.sentences_.empty()) return InvalidArgument("filler text file '" + p + "' holds no usable sentence");
    all.sentences_.insert(all.sentences_.end(), one.sentences_.begin(), one.sentences_.end());
    all.lower_ += one.lower_;
  }
  return all;
}

bool FillerCorpus::Contains(std::string_view needle) const {
  return lower_.find(AsciiLower(needle)) != std::string::npos;
}

}  // namespace akv
