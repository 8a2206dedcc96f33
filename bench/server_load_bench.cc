// Load generator for `akv serve`: N concurrent clients, each sending streaming completion
// requests back to back for a fixed time over loopback. Measures, client side, time to first
// token (request sent -> first text event), inter-token latency (gaps between text events),
// tokens/s overall, and counts every status code (5xx separately) and transport error.
//
//   build-server/bench/server_load_bench --port 8080 --clients 32 --duration 60 --max-tokens 64
//       --prompts ../shared/data/treasure_island.txt --json bench/results/server_load.json
//
// (Built by bench/CMakeLists.txt as a *_bench target; it has its own main and does not use
// Google Benchmark.) See bench/server_load.sh for the whole experiment, RSS included.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/sse_parser.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Flags {
  std::string host = "127.0.0.1";
  int port = 8080;
  int clients = 32;
  double duration_s = 60;
  int max_tokens = 64;
  std::string prompts_file;
  int prompt_words = 120;  // words per prompt drawn from the file
  bool stream = true;
  std::string json_out;
  std::string label;
};

struct ClientStats {
  std::vector<double> ttft_ms, itl_ms;
  int64_t tokens = 0, requests_ok = 0, transport_errors = 0;
  std::map<int, int64_t> status;
  std::map<std::string, int64_t> transport;  // httplib error name -> count
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double idx = p / 100.0 * (v.size() - 1);
  const size_t lo = static_cast<size_t>(idx);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - lo);
}

std::vector<std::string> LoadPrompts(const Flags& f) {
  std::vector<std::string> words;
  if (!f.prompts_file.empty()) {
    std::ifstream in(f.prompts_file);
    std::string w;
    while (in >> w) words.push_back(w);
  }
  if (words.empty()) {
    std::istringstream in("The old captain looked out over the harbour and said that the ship would sail at dawn");
    std::string w;
    while (in >> w) words.push_back(w);
  }
  // 256 prompts: windows of the text at spread-out offsets, so prefill work varies realistically.
  std::vector<std::string> prompts;
  std::mt19937 rng(42);
  for (int i = 0; i < 256; ++i) {
    const size_t start = words.size() > static_cast<size_t>(f.prompt_words) ? rng() % (words.size() - f.prompt_words) : 0;
    std::string p;
    for (size_t k = start; k < std::min(words.size(), start + f.prompt_words); ++k) p += (p.empty() ? "" : " ") + words[k];
    prompts.push_back(p);
  }
  return prompts;
}

void RunClient(const Flags& f, const std::vector<std::string>& prompts, int id, Clock::time_point end, ClientStats* out) {
  httplib::Client cli(f.host, f.port);
  cli.set_read_timeout(120, 0);
  cli.set_keep_alive(true);
  std::mt19937 rng(1000 + id);
  while (Clock::now() < end) {
    json body = {{"prompt", prompts[rng() % prompts.size()]},
                 {"max_tokens", f.max_tokens},
                 {"temperature", 0.8},
                 {"seed", static_cast<uint64_t>(rng())},
                 {"ignore_eos", true},
                 {"stream", f.stream}};
    if (f.stream) body["stream_options"] = {{"include_usage", true}};
    akv::server::SseParser parser;
    int status = 0;
    std::string raw;
    const auto t0 = Clock::now();
    Clock::time_point last{};
    bool first = true;
    int64_t tokens = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (!f.stream || status != 200) {
        raw.append(data, n);
        return true;
      }
      const auto now = Clock::now();
      for (const std::string& ev : parser.Feed(std::string_view(data, n))) {
        if (ev == "[DONE]") continue;
        json j = json::parse(ev, nullptr, false);
        if (j.is_discarded()) continue;
        if (j.contains("usage") && j["usage"].is_object()) tokens = j["usage"]["completion_tokens"].get<int64_t>();
        if (!j.contains("choices") || j["choices"].empty()) continue;
        if (j["choices"][0].value("text", std::string()).empty()) continue;
        if (first) {
          out->ttft_ms.push_back(std::chrono::duration<double, std::milli>(now - t0).count());
          first = false;
        } else {
          out->itl_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
        }
        last = now;
      }
      return true;
    };
    auto res = cli.send(req);
    if (!res) {
      ++out->transport_errors;
      ++out->transport[httplib::to_string(res.error())];
      continue;
    }
    ++out->status[res->status];
    if (res->status == 200) {
      ++out->requests_ok;
      if (!f.stream) {
        json j = json::parse(raw, nullptr, false);
        if (!j.is_discarded()) tokens = j["usage"]["completion_tokens"].get<int64_t>();
        out->ttft_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      out->tokens += tokens;
    } else if (res->status == 503) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // honour Retry-After loosely
    }
  }
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--host") f->host = next();
    else if (a == "--port") f->port = std::stoi(next());
    else if (a == "--clients") f->clients = std::stoi(next());
    else if (a == "--duration") f->duration_s = std::stod(next());
    else if (a == "--max-tokens") f->max_tokens = std::stoi(next());
    else if (a == "--prompts") f->prompts_file = next();
    else if (a == "--prompt-words") f->prompt_words = std::stoi(next());
    else if (a == "--no-stream") f->stream = false;
    else if (a == "--json") f->json_out = next();
    else if (a == "--label") f->label = next();
    else {
      std::fprintf(stderr,
                   "usage: server_load_bench [--host H] [--port P] [--clients N] [--duration S] [--max-tokens N]\n"
                   "                         [--prompts FILE] [--prompt-words N] [--no-stream] [--json OUT] [--label L]\n");
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) return 2;
  const std::vector<std::string> prompts = LoadPrompts(f);
  std::vector<ClientStats> stats(f.clients);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.duration_s));
  for (int i = 0; i < f.clients; ++i) threads.emplace_back(RunClient, std::cref(f), std::cref(prompts), i, end, &stats[i]);
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();

  ClientStats all;
  for (const ClientStats& s : stats) {
    all.ttft_ms.insert(all.ttft_ms.end(), s.ttft_ms.begin(), s.ttft_ms.end());
    all.itl_ms.insert(all.itl_ms.end(), s.itl_ms.begin(), s.itl_ms.end());
    all.tokens += s.tokens;
    all.requests_ok += s.requests_ok;
    all.transport_errors += s.transport_errors;
    for (auto [code, n] : s.status) all.status[code] += n;
    for (const auto& [what, n] : s.transport) all.transport[what] += n;
  }
  int64_t n5xx = 0, n4xx = 0;
  json codes = json::object();
  for (auto [code, n] : all.status) {
    codes[std::to_string(code)] = n;
    if (code >= 500) n5xx += n;
    else if (code >= 400) n4xx += n;
  }
  json r = {{"label", f.label},
            {"clients", f.clients},
            {"duration_s", elapsed},
            {"max_tokens", f.max_tokens},
            {"prompt_words", f.prompt_words},
            {"stream", f.stream},
            {"requests_ok", all.requests_ok},
            {"status_codes", codes},
            {"http_5xx", n5xx},
            {"http_4xx", n4xx},
            {"transport_errors", all.transport_errors},
            {"transport_error_kinds", all.transport},
            {"tokens", all.tokens},
            {"tokens_per_s", all.tokens / elapsed},
            {"requests_per_s", all.requests_ok / elapsed},
            {"ttft_ms", {{"p50", Percentile(all.ttft_ms, 50)}, {"p90", Percentile(all.ttft_ms, 90)},
                         {"p99", Percentile(all.ttft_ms, 99)}, {"n", all.ttft_ms.size()}}},
            {"itl_ms", {{"p50", Percentile(all.itl_ms, 50)}, {"p90", Percentile(all.itl_ms, 90)},
                        {"p99", Percentile(all.itl_ms, 99)}, {"n", all.itl_ms.size()}}}};
  std::printf("%s\n", r.dump(2).c_str());
  if (!f.json_out.empty()) std::ofstream(f.json_out) << r.dump(2) << "\n";
  return n5xx == 0 && all.transport_errors == 0 ? 0 : 1;
}
