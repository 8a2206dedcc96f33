#include "server/scheduler.h"

#include <algorithm>

#include "server/logprobs.h"

namespace akv::server {

namespace {
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

Scheduler::Scheduler(Engine* engine, const SchedulerOptions& options, Metrics* metrics)
    : engine_(engine), options_(options), metrics_(metrics), seed_rng_(std::random_device{}()) {}

StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(Engine* engine, const SchedulerOptions& options,
                                                       Metrics* metrics) {
  if (options.parallel < 1) return InvalidArgument("--parallel must be >= 1, got " + std::to_string(options.parallel));
  if (options.max_queue < 0) return InvalidArgument("--queue must be >= 0");
  if (options.prefill_chunk < 1) return InvalidArgument("--prefill-chunk must be >= 1");
  std::unique_ptr<Scheduler> s(new Scheduler(engine, options, metrics));
  s->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : engine->info().n_ctx_train;
  s->slots_.resize(options.parallel);
  for (Slot& slot : s->slots_) {
    AKV_ASSIGN_OR_RETURN(slot.session, engine->NewSession({.n_ctx = s->n_ctx_, .cache = options.cache}));
    slot.spec = options.cache;
  }
  s->PublishMetrics(true);
  return s;
}

Scheduler::~Scheduler() {
  if (thread_.joinable()) Shutdown(std::chrono::milliseconds(0));
}

void Scheduler::Start() { thread_ = std::thread([this] { Loop(); }); }

bool Scheduler::Submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Waiting room: the free slots plus --queue.
    const size_t capacity = static_cast<size_t>(options_.max_queue + options_.parallel - busy_slots_);
    if (draining_ || queue_.size() >= capacity) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool Scheduler::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_;
}

void Scheduler::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!draining_) {
      draining_ = true;
      cancel_at_ = Clock::now() + grace;
    }
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool Scheduler::AnyActive() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job != nullptr; });
}

void Scheduler::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool free_slot = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.job; });
      // Idle: sleep until a job arrives (or a short tick, to expire queued jobs).
      if (!AnyActive() && (queue_.empty() || !free_slot) && !draining_)
        cv_.wait_for(lock, std::chrono::milliseconds(50));
      if (draining_ && queue_.empty() && !AnyActive()) break;
    }
    DropQueued();
    Admit();
    CheckActive();
    PrefillStep();
    DecodeStep();
    PublishMetrics(false);
  }
  PublishMetrics(true);
}

void Scheduler::DropQueued() {
  std::deque<std::shared_ptr<Job>> dropped_busy, dropped_timeout;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    std::deque<std::shared_ptr<Job>> keep;
    for (auto& job : queue_) {
      if (job->cancelled) {
        metrics_->RecordFinished("cancelled");  // the client left while waiting
        continue;
      }
      if (draining_) dropped_busy.push_back(std::move(job));
      else if (now >= job->deadline) dropped_timeout.push_back(std::move(job));
      else keep.push_back(std::move(job));
    }
    queue_.swap(keep);
  }
  for (auto& job : dropped_busy) {
    GenEvent ev = GenEvent::Of(GenEvent::Kind::kError);
    ev.error = ApiError{503, "the server is shutting down", "server_overloaded", "", "shutting_down"};
    job->Push(std::move(ev));
  }
  for (auto& job : dropped_timeout) {
    GenEvent ev = GenEvent::Of(GenEvent::Kind::kError);
    ev.error = ApiError{503, "timed out waiting for a free slot; retry later", "server_overloaded", "", "queue_timeout"};
    job->Push(std::move(ev));
  }
}

void Scheduler::Admit() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty() || draining_) return;
      job = queue_.front();
    }
    // A free slot, preferring one whose session already has the job's cache.
    Slot* slot = nullptr;
    for (Slot& s : slots_) {
      if (s.job) continue;
      if (!slot || (s.spec == job->cache_spec && slot->spec != job->cache_spec)) slot = &s;
    }
    if (!slot) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      ++busy_slots_;
    }
    ApiError error;
    if (job->cancelled || !Prepare(*slot, job, &error)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        --busy_slots_;
      }
      if (job->cancelled) {
        metrics_->RecordFinished("cancelled");
        continue;
      }
      metrics_->RecordFinished("error");
      GenEvent ev = GenEvent::Of(GenEvent::Kind::kError);
      ev.error = std::move(error);
      job->Push(std::move(ev));
      continue;
    }
    GenEvent ev = GenEvent::Of(GenEvent::Kind::kAdmitted);
    ev.prompt_tokens = static_cast<int>(slot->prompt.size());
    ev.truncated_tokens = slot->truncated;
    job->Push(std::move(ev));
  }
}

bool Scheduler::Prepare(Slot& slot, const std::shared_ptr<Job>& job, ApiError* error) {
  const CompletionRequest& req = job->request;
  if (Status st = Sampler::Validate(req.sampling); !st.ok()) {
    *error = FromStatus(st);
    return false;
  }
  if (slot.spec != job->cache_spec) {
    // The library validates the spec; its message is the client's answer.
    auto session = engine_->NewSession({.n_ctx = n_ctx_, .cache = job->cache_spec});
    if (!session.ok()) {
      *error = FromStatus(session.status(), "akv.cache");
      if (error->http_status >= 500) error->http_status = 400;
      return false;
    }
    slot.session = std::move(*session);
    slot.spec = job->cache_spec;
  }
  std::vector<int32_t> tokens;
  if (req.prompt_is_tokens) {
    tokens = req.prompt_tokens;
    const int n_vocab = engine_->info().n_vocab;
    for (int32_t t : tokens) {
      if (t >= n_vocab) {
        *error = BadRequest("token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(n_vocab) +
                                " tokens)",
                            "prompt");
        return false;
      }
    }
  } else {
    tokens = engine_->Tokenize(job->prompt_text, /*add_special=*/true, job->parse_special);
  }
  if (tokens.empty()) {
    *error = BadRequest("the prompt is empty", req.endpoint == Endpoint::kChat ? "messages" : "prompt");
    return false;
  }
  slot.truncated = 0;
  if (static_cast<int64_t>(tokens.size()) > n_ctx_) {
    if (!options_.truncate_prompt) {
      *error = BadRequest("the prompt is " + std::to_string(tokens.size()) + " tokens, longer than the context of " +
                              std::to_string(n_ctx_) + " tokens (shorten it, or start the server with a larger -c or "
                              "--prompt-overflow truncate)",
                          req.endpoint == Endpoint::kChat ? "messages" : "prompt", "context_length_exceeded");
      return false;
    }
    // Keep BOS and the most recent tokens, leaving room for the reply.
    const int64_t reserve = std::clamp<int64_t>(req.max_tokens, 1, n_ctx_ / 2);
    const int64_t keep = n_ctx_ - reserve;
    const int64_t head = engine_->adds_bos() && tokens[0] == engine_->bos_token() ? 1 : 0;
    std::vector<int32_t> cut(tokens.begin(), tokens.begin() + head);
    cut.insert(cut.end(), tokens.end() - (keep - head), tokens.end());
    slot.truncated = static_cast<int>(tokens.size() - cut.size());
    tokens.swap(cut);
  }
  slot.session->Reset();
  slot.job = job;
  slot.prompt = std::move(tokens);
  slot.prefilled = 0;
  slot.prefilling = true;
  slot.history = slot.prompt;
  slot.sampler = std::make_unique<Sampler>(req.seed_given ? req.sampling.seed : seed_rng_());
  slot.text = std::make_unique<TextStream>(req.stop);
  slot.pending = -1;
  slot.n_generated = 0;
  slot.ttft_ms = 0;
  slot.logprobs.clear();
  metrics_->RecordTokens(static_cast<int64_t>(slot.prompt.size()), 0);
  return true;
}

void Scheduler::CheckActive() {
  const auto now = Clock::now();
  bool give_up;
  {
    std::lock_guard<std::mutex> lock(mu_);
    give_up = draining_ && now >= cancel_at_;
  }
  for (Slot& slot : slots_) {
    if (!slot.job) continue;
    if (slot.job->cancelled) {
      // The client is gone: nobody reads the result, the slot and its cache are freed now.
      metrics_->RecordFinished("cancelled");
      Free(slot);
    } else if (give_up) {
      Fail(slot, ApiError{503, "the server is shutting down", "server_overloaded", "", "shutting_down"});
    } else if (now >= slot.job->deadline) {
      Fail(slot, ApiError{504, "the request timed out (server --timeout)", "timeout", "", "timeout"});
    }
  }
}

void Scheduler::PrefillStep() {
  int64_t budget = options_.prefill_chunk;
  for (Slot& slot : slots_) {
    if (budget <= 0) break;
    if (!slot.job || !slot.prefilling) continue;
    const int64_t n = std::min<int64_t>(budget, static_cast<int64_t>(slot.prompt.size() - slot.prefilled));
    Status st = slot.session->Prefill(std::span<const int32_t>(slot.prompt).subspan(slot.prefilled, n));
    if (!st.ok()) {
      Fail(slot, FromStatus(st));
      continue;
    }
    slot.prefilled += n;
    budget -= n;
    if (slot.prefilled == slot.prompt.size()) {
      slot.prefilling = false;
      SampleAndEmit(slot);
    }
  }
}

void Scheduler::DecodeStep() {
  std::vector<Session*> sessions;
  std::vector<int32_t> tokens;
  std::vector<Slot*> batch;
  for (Slot& slot : slots_) {
    if (!slot.job || slot.prefilling || slot.pending < 0) continue;
    sessions.push_back(slot.session.get());
    tokens.push_back(slot.pending);
    batch.push_back(&slot);
  }
  if (batch.empty()) return;
  Status st = engine_->DecodeBatch(sessions, tokens);
  for (Slot* slot : batch) {
    slot->pending = -1;
    if (!st.ok()) Fail(*slot, FromStatus(st));
    else SampleAndEmit(*slot);
  }
}

void Scheduler::SampleAndEmit(Slot& slot) {
  Job& job = *slot.job;
  const CompletionRequest& req = job.request;
  std::span<const float> logits = slot.session->last_logits();
  const int32_t tok = slot.sampler->Sample(logits, req.sampling, slot.history);
  const auto now = Clock::now();
  if (slot.n_generated == 0) {
    slot.ttft_ms = Seconds(now - job.submitted) * 1000;
    metrics_->RecordTtft(slot.ttft_ms / 1000);
  } else {
    metrics_->RecordInterToken(Seconds(now - slot.last_token));
  }
  slot.last_token = now;
  ++slot.n_generated;
  metrics_->RecordTokens(0, 1);
  const bool end = !req.ignore_eos && engine_->IsEndOfGeneration(tok);
  if (end) {
    Finish(slot, "stop");
    return;
  }
  if (req.logprobs >= 0) {
    TokenLogprob lp = ComputeLogprob(logits, tok, req.logprobs);
    lp.chosen.text = engine_->TokenPiece(tok);
    for (LogprobEntry& e : lp.top) e.text = engine_->TokenPiece(e.token);
    slot.logprobs.push_back(std::move(lp));
  }
  std::string released = slot.text->Push(engine_->TokenPiece(tok));
  if (!released.empty()) {
    GenEvent ev = GenEvent::Of(GenEvent::Kind::kToken);
    ev.text = std::move(released);
    ev.logprobs.swap(slot.logprobs);
    job.Push(std::move(ev));
  }
  if (slot.text->stopped()) {
    Finish(slot, "stop");
  } else if (slot.n_generated >= req.max_tokens || slot.session->n_past() >= n_ctx_) {
    Finish(slot, "length");  // max_tokens, or no room left in the context for another token
  } else {
    slot.pending = tok;
    slot.history.push_back(tok);
  }
}

void Scheduler::Finish(Slot& slot, const std::string& reason) {
  Job& job = *slot.job;
  std::string rest = slot.text->Flush();
  if (!rest.empty() || !slot.logprobs.empty()) {
    GenEvent ev = GenEvent::Of(GenEvent::Kind::kToken);
    ev.text = std::move(rest);
    ev.logprobs.swap(slot.logprobs);
    job.Push(std::move(ev));
  }
  GenEvent done = GenEvent::Of(GenEvent::Kind::kDone);
  done.prompt_tokens = static_cast<int>(slot.prompt.size());
  done.truncated_tokens = slot.truncated;
  done.completion_tokens = slot.n_generated;
  done.finish_reason = reason;
  done.cache = slot.session->cache_stats();
  done.ttft_ms = slot.ttft_ms;
  job.Push(std::move(done));
  metrics_->RecordFinished(reason);
  Free(slot);
}

void Scheduler::Fail(Slot& slot, const ApiError& error) {
  GenEvent ev = GenEvent::Of(GenEvent::Kind::kError);
  ev.error = error;
  slot.job->Push(std::move(ev));
  metrics_->RecordFinished(error.http_status == 504 ? "timeout" : "error");
  Free(slot);
}

void Scheduler::Free(Slot& slot) {
  metrics_->RecordRetiredCache(slot.session->cache_stats());
  slot.session->Reset();
  slot.job.reset();
  slot.prompt.clear();
  slot.history.clear();
  slot.logprobs.clear();
  slot.text.reset();
  slot.pending = -1;
  slot.prefilling = false;
  std::lock_guard<std::mutex> lock(mu_);
  --busy_slots_;
}

void Scheduler::PublishMetrics(bool force) {
  const auto now = Clock::now();
  if (!force && now - last_publish_ < std::chrono::milliseconds(200)) return;
  last_publish_ = now;
  KvSnapshot kv;
  int64_t promotions = 0, demotions = 0, evicted = 0;
  int active = 0;
  for (const Slot& slot : slots_) {
    if (!slot.job) continue;
    ++active;
    const CacheStats s = slot.session->cache_stats();
    kv.hot.tokens += s.hot.tokens;
    kv.hot.bytes += s.hot.bytes;
    kv.warm.tokens += s.warm.tokens;
    kv.warm.bytes += s.warm.bytes;
    kv.cold.tokens += s.cold.tokens;
    kv.cold.bytes += s.cold.bytes;
    promotions += s.promotions;
    demotions += s.demotions;
    evicted += s.evicted;
    ++kv.sequences;
  }
  size_t queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued = queue_.size();
  }
  metrics_->SetKv(kv, promotions, demotions, evicted);
  metrics_->SetQueue(active, static_cast<int>(queued), static_cast<int>(slots_.size()), options_.max_queue);
}

}  // namespace akv::server
