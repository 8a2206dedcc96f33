// One generation request as the scheduler sees it, and the channel its results travel back on.
// The HTTP handler thread fills in the input, submits the job, and then only waits on events
// (and may set `cancelled`); the scheduler thread is the only one that generates.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "akv/cache_stats.h"
#include "server/api_error.h"
#include "server/logprobs.h"
#include "server/request.h"

namespace akv::server {

using Clock = std::chrono::steady_clock;

struct GenEvent {
  enum class Kind { kAdmitted, kToken, kDone, kError };
  Kind kind = Kind::kToken;
  std::string text;                    // kToken: text released (complete UTF-8, stop strings cut)
  std::vector<TokenLogprob> logprobs;  // kToken: one per token since the last event (if asked)
  // kAdmitted / kDone
  int prompt_tokens = 0;
  int truncated_tokens = 0;  // prompt tokens dropped by --prompt-overflow truncate
  // kDone
  int completion_tokens = 0;
  std::string finish_reason;  // "stop", "length", "cancelled"
  CacheStats cache;           // the session's cache at the end of generation
  double ttft_ms = 0;         // submitted -> first token sampled
  ApiError error;             // kError

  static GenEvent Of(Kind k) {
    GenEvent e;
    e.kind = k;
    return e;
  }
};

class Job {
 public:
  // Input, fixed before Submit.
  CompletionRequest request;
  std::string prompt_text;       // completions prompt, or the rendered chat
  bool parse_special = false;    // chat templates spell special tokens as text
  std::string cache_spec;        // resolved (request's or the server default)
  Clock::time_point submitted;
  Clock::time_point deadline;

  std::atomic<bool> cancelled{false};  // set by the handler (client gone, timeout)

  void Push(GenEvent ev) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(ev));
    }
    cv_.notify_one();
  }
  // Everything pushed so far, waiting up to `timeout` for at least one event.
  std::deque<GenEvent> Wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
    std::deque<GenEvent> out;
    out.swap(events_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenEvent> events_;
};

}  // namespace akv::server
