// Server metrics in Prometheus text format (GET /metrics). Thread-safe: handlers and the
// scheduler record, the /metrics handler renders.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "akv/cache_stats.h"

namespace akv::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void Observe(double v);
  // Appends the _bucket/_sum/_count lines of metric `name`.
  void Render(const std::string& name, std::string* out) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// KV cache totals over the sessions generating right now, plus counters over all sessions.
struct KvSnapshot {
  TierCount hot, warm, cold;  // tokens summed over layers and KV heads, and bytes
  int64_t sequences = 0;
};

class Metrics {
 public:
  Metrics();

  void RecordStatus(const std::string& endpoint, int status);
  void RecordDuration(double seconds);  // a completion request, parse to last byte written
  void RecordRejected() { Add(&rejected_, 1); }  // 503: queue full or shutting down
  void RecordTokens(int64_t prompt, int64_t generated);
  void RecordTtft(double seconds);
  void RecordInterToken(double seconds);
  void RecordFinished(const std::string& finish_reason);
  // A session's cache at retirement: its promotions/demotions/evictions join the totals.
  void RecordRetiredCache(const CacheStats& s);
  void SetKv(const KvSnapshot& live, int64_t live_promotions, int64_t live_demotions, int64_t live_evicted);
  void SetQueue(int active, int queued, int slots, int queue_capacity);

  std::string Render() const;

 private:
  void Add(uint64_t* counter, uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    *counter += n;
  }

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> finished_;
  uint64_t rejected_ = 0, prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, itl_, duration_;
  KvSnapshot kv_;
  int64_t retired_promotions_ = 0, retired_demotions_ = 0, retired_evicted_ = 0;
  int64_t live_promotions_ = 0, live_demotions_ = 0, live_evicted_ = 0;
  int active_ = 0, queued_ = 0, slots_ = 0, queue_capacity_ = 0;
};

}  // namespace akv::server
