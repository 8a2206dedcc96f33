// Progress on a terminal: one redrawn line with a bar, counts, elapsed time and an estimate of
// the time left when the stream is a TTY; one plain line per update otherwise (logs, CI).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace akv {

class ProgressBar {
 public:
  // tty: redraw in place (callers pass isatty(fileno(out))).
  ProgressBar(std::FILE* out, bool tty, size_t total, int width = 30);
  // done items of total, with a short note ("akv @0.25 ctx=4096 depth=0.05: 1/1").
  void Update(size_t done, const std::string& note);
  void Finish();  // ends the redrawn line

  // The line without the carriage return (for tests): "[#####     ] 5/10 0:12 eta 0:12 note".
  static std::string Render(size_t done, size_t total, double elapsed_s, int width, const std::string& note);

 private:
  std::FILE* out_;
  bool tty_;
  size_t total_;
  int width_;
  size_t last_len_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace akv
