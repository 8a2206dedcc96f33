// Incremental parser for server-sent events as OpenAI streams them ("data: ...\n\n"), for
// clients of the server: the tests and the load generator (bench/server_load_bench.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace akv::server {

class SseParser {
 public:
  // Feeds received bytes; returns the data payloads of the events completed by them
  // (multi-line data joined with '\n'; comments and other fields skipped).
  std::vector<std::string> Feed(std::string_view bytes);

 private:
  std::string buffer_;
  std::string data_;
  bool has_data_ = false;
};

}  // namespace akv::server
