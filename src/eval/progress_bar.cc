#include "eval/progress_bar.h"

#include <algorithm>

namespace akv {

namespace {
std::string Clock(double s) {
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}
}  // namespace

ProgressBar::ProgressBar(std::FILE* out, bool tty, size_t total, int width)
    : out_(out), tty_(tty), total_(total), width_(width), t0_(std::chrono::steady_clock::now()) {}

std::string ProgressBar::Render(size_t done, size_t total, double elapsed, int width, const std::string& note) {
  const size_t filled = total ? std::min<size_t>(width, width * done / total) : width;
  std::string line = "[" + std::string(filled, '#') + std::string(width - filled, ' ') + "] ";
  line += std::to_string(done) + "/" + std::to_string(total) + " " + Clock(elapsed);
  if (done > 0 && done < total) line += " eta " + Clock(elapsed / done * (total - done));
  if (!note.empty()) line += " " + note;
  return line;
}

void ProgressBar::Update(size_t done, const std::string& note) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  std::string line = Render(done, total_, elapsed, width_, note);
  if (tty_) {
    const size_t len = line.size();
    if (len < last_len_) line += std::string(last_len_ - len, ' ');  // erase the longer previous line
    last_len_ = len;
    std::fprintf(out_, "\r%s", line.c_str());
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressBar::Finish() {
  if (tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace akv
