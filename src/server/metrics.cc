#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace akv::server {

namespace {
std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}
void Line(std::string* out, const std::string& name, double v) { *out += name + " " + Num(v) + "\n"; }
}  // namespace

void Histogram::Observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    *out += name + "_bucket{le=\"" + Num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  Line(out, name + "_sum", sum_);
  *out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      duration_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}) {}

void Metrics::RecordStatus(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::RecordDuration(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  duration_.Observe(seconds);
}

void Metrics::RecordTokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  generated_tokens_ += generated;
}

void Metrics::RecordTtft(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(s);
}

void Metrics::RecordInterToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.Observe(s);
}

void Metrics::RecordFinished(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_[reason];
}

void Metrics::RecordRetiredCache(const CacheStats& s) {
  std::lock_guard<std::mutex> lock(mu_);
  retired_promotions_ += s.promotions;
  retired_demotions_ += s.demotions;
  retired_evicted_ += s.evicted;
}

void Metrics::SetKv(const KvSnapshot& live, int64_t p, int64_t d, int64_t e) {
  std::lock_guard<std::mutex> lock(mu_);
  kv_ = live;
  live_promotions_ = p;
  live_demotions_ = d;
  live_evicted_ = e;
}

void Metrics::SetQueue(int active, int queued, int slots, int queue_capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = active;
  queued_ = queued;
  slots_ = slots;
  queue_capacity_ = queue_capacity;
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string o;
  Header(&o, "akv_requests_total", "counter", "HTTP requests by endpoint and status code.");
  for (const auto& [key, n] : requests_)
    o += "akv_requests_total{endpoint=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
         std::to_string(n) + "\n";
  Header(&o, "akv_requests_rejected_total", "counter", "Requests refused with 503 (queue full or shutting down).");
  Line(&o, "akv_requests_rejected_total", rejected_);
  Header(&o, "akv_generations_total", "counter", "Finished generations by finish reason.");
  for (const auto& [reason, n] : finished_)
    o += "akv_generations_total{finish_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  Header(&o, "akv_requests_active", "gauge", "Requests generating now (slots in use).");
  Line(&o, "akv_requests_active", active_);
  Header(&o, "akv_requests_queued", "gauge", "Requests waiting for a slot.");
  Line(&o, "akv_requests_queued", queued_);
  Header(&o, "akv_slots", "gauge", "Sessions decoding together at most (--parallel).");
  Line(&o, "akv_slots", slots_);
  Header(&o, "akv_queue_capacity", "gauge", "Requests that may wait for a slot (--queue).");
  Line(&o, "akv_queue_capacity", queue_capacity_);
  Header(&o, "akv_prompt_tokens_total", "counter", "Prompt tokens processed.");
  Line(&o, "akv_prompt_tokens_total", prompt_tokens_);
  Header(&o, "akv_generated_tokens_total", "counter", "Tokens generated.");
  Line(&o, "akv_generated_tokens_total", generated_tokens_);
  Header(&o, "akv_time_to_first_token_seconds", "histogram", "Request submitted to first token sampled.");
  ttft_.Render("akv_time_to_first_token_seconds", &o);
  Header(&o, "akv_inter_token_latency_seconds", "histogram", "Time between consecutive tokens of one request.");
  itl_.Render("akv_inter_token_latency_seconds", &o);
  Header(&o, "akv_request_duration_seconds", "histogram", "Completion requests, body parsed to last byte written.");
  duration_.Render("akv_request_duration_seconds", &o);
  Header(&o, "akv_kv_tokens", "gauge", "Cached tokens of the active sessions per tier (summed over layers and KV heads).");
  o += "akv_kv_tokens{tier=\"hot\"} " + std::to_string(kv_.hot.tokens) + "\n";
  o += "akv_kv_tokens{tier=\"warm\"} " + std::to_string(kv_.warm.tokens) + "\n";
  o += "akv_kv_tokens{tier=\"cold\"} " + std::to_string(kv_.cold.tokens) + "\n";
  Header(&o, "akv_kv_bytes", "gauge", "KV cache bytes of the active sessions per tier.");
  o += "akv_kv_bytes{tier=\"hot\"} " + std::to_string(kv_.hot.bytes) + "\n";
  o += "akv_kv_bytes{tier=\"warm\"} " + std::to_string(kv_.warm.bytes) + "\n";
  o += "akv_kv_bytes{tier=\"cold\"} " + std::to_string(kv_.cold.bytes) + "\n";
  Header(&o, "akv_kv_sequences", "gauge", "Sessions holding cache right now.");
  Line(&o, "akv_kv_sequences", kv_.sequences);
  Header(&o, "akv_kv_promotions_total", "counter", "Token slots promoted to a warmer tier.");
  Line(&o, "akv_kv_promotions_total", retired_promotions_ + live_promotions_);
  Header(&o, "akv_kv_demotions_total", "counter", "Token slots demoted to a colder tier.");
  Line(&o, "akv_kv_demotions_total", retired_demotions_ + live_demotions_);
  Header(&o, "akv_kv_evicted_total", "counter", "Token slots evicted by the cache policy.");
  Line(&o, "akv_kv_evicted_total", retired_evicted_ + live_evicted_);
  return o;
}

}  // namespace akv::server
