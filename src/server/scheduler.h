// Continuous batching. One thread owns the Engine: each step it admits queued jobs into free
// slots (tokenize, pick or rebuild the slot's session for the job's cache spec), prefills one
// chunk of prompt, runs one Engine::DecodeBatch over every slot that is generating, samples
// each, streams the released text to the job's channel, and retires finished or cancelled
// jobs (Session::Reset frees the cache for the next job). Handler threads only Submit and wait.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "akv/akv.hpp"
#include "engine/sampler.h"
#include "server/job.h"
#include "server/metrics.h"
#include "engine/text_stream.h"

namespace akv::server {

struct SchedulerOptions {
  int parallel = 1;             // slots: sessions generating together
  int max_queue = 64;           // jobs that may wait when every slot is busy; more: Submit refuses
  int n_ctx = 0;                // per session; 0 = the model's training context
  std::string cache = "full";   // default cache spec of the slots
  int prefill_chunk = 256;      // prompt tokens per step, so long prompts do not stall decoding
  bool truncate_prompt = false; // overlong prompts: keep BOS + the tail (else a 400)
};

class Scheduler {
 public:
  // Creates every slot's session up front, so the server's memory is fixed from the start.
  static StatusOr<std::unique_ptr<Scheduler>> Create(Engine* engine, const SchedulerOptions& options,
                                                     Metrics* metrics);
  ~Scheduler();

  void Start();
  // Queues a job; false when the queue is full or the scheduler is shutting down (503).
  bool Submit(std::shared_ptr<Job> job);
  // Stops admitting (queued jobs get a 503 error), lets active jobs finish until `grace`, then
  // cancels what is left, and joins the thread.
  void Shutdown(std::chrono::milliseconds grace);

  int n_ctx() const { return n_ctx_; }
  bool draining() const;

 private:
  struct Slot {
    std::unique_ptr<Session> session;
    std::string spec;
    std::shared_ptr<Job> job;  // null when free
    bool prefilling = false;
    std::vector<int32_t> prompt;
    size_t prefilled = 0;
    std::vector<int32_t> history;  // prompt + generated, for the repeat penalty
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<TextStream> text;
    int32_t pending = -1;  // sampled, to be decoded next step
    int n_generated = 0;
    int truncated = 0;
    Clock::time_point last_token;
    double ttft_ms = 0;
    std::vector<TokenLogprob> logprobs;  // not yet sent (their text is held back)
  };

  Scheduler(Engine* engine, const SchedulerOptions& options, Metrics* metrics);
  void Loop();
  void DropQueued();       // cancelled / expired / draining jobs in the queue
  void Admit();
  bool Prepare(Slot& slot, const std::shared_ptr<Job>& job, ApiError* error);
  void CheckActive();      // cancelled or past the deadline
  void PrefillStep();
  void DecodeStep();
  void SampleAndEmit(Slot& slot);
  void Finish(Slot& slot, const std::string& reason);
  void Fail(Slot& slot, const ApiError& error);
  void Free(Slot& slot);
  void PublishMetrics(bool force);
  bool AnyActive() const;

  Engine* engine_;
  SchedulerOptions options_;
  Metrics* metrics_;
  int n_ctx_ = 0;
  std::vector<Slot> slots_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_
  bool draining_ = false;                   // guarded by mu_
  int busy_slots_ = 0;                      // guarded by mu_: slots holding a job (or being given one)
  Clock::time_point cancel_at_;             // guarded by mu_: when draining gives up on active jobs
  std::mt19937_64 seed_rng_;                // seeds for requests that give none
  Clock::time_point last_publish_;
};

}  // namespace akv::server
