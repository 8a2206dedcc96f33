#include "core/thread_pool.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace akv {

namespace {
inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}
constexpr int kSpinIterations = 20000;

// Waits for the workers of a job. Spins (jobs are short). Unpinned threads then yield, so that
// a worker the OS has descheduled (more threads than free cores) can finish instead of being
// starved; pinned threads never yield: each yield hands the CPU to any other runnable process,
// even a nice 19 build, for a scheduler slice (measured: decode 3x slower beside one).
void WaitForZero(const std::atomic<int>& pending, bool may_yield) {
  int spins = 0;
  while (pending.load(std::memory_order_acquire) != 0) {
    if (!may_yield || ++spins < 2000) {
      CpuRelax();
    } else {
      sched_yield();
    }
  }
}
}  // namespace

namespace {
// The CPUs the process may run on, read once, before any pool pins its calling thread (a
// pinned thread's own mask, which new threads inherit, is a single CPU).
const std::vector<int>& ProcessCpus() {
  static const std::vector<int> cpus = [] {
    std::vector<int> v;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) v.push_back(c);
    return v;
  }();
  return cpus;
}

void SetThisThreadCpus(const int* cpus, size_t n) {
  if (n == 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (size_t i = 0; i < n; ++i) CPU_SET(cpus[i], &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort
}
void PinThisThread(int cpu) { SetThisThreadCpus(&cpu, 1); }
}  // namespace

ThreadPool::ThreadPool(int n_threads, bool pin) : n_threads_(std::max(1, n_threads)) {
  if (pin && n_threads_ > 1 && static_cast<int>(ProcessCpus().size()) >= n_threads_)
    cpus_ = ProcessCpus();  // else oversubscribed: let the OS place the threads
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

void ThreadPool::PinCaller() {
  if (cpus_.empty()) return;
  const std::thread::id self = std::this_thread::get_id();
  if (pinned_caller_.load(std::memory_order_relaxed) == self) return;
  PinThisThread(cpus_[0]);
  pinned_caller_.store(self, std::memory_order_relaxed);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::DefaultThreads() {
  if (!ProcessCpus().empty()) return static_cast<int>(ProcessCpus().size());
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::RunJob(int index) {
  if (all_fn_) {
    (*all_fn_)(index, n_threads_);
    return;
  }
  for (;;) {
    int64_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (t >= n_tasks_) break;
    (*task_fn_)(t, index);
  }
}

void ThreadPool::WorkerLoop(int index) {
  if (!cpus_.empty()) {
    PinThisThread(cpus_[static_cast<size_t>(index)]);
  } else {
    // Not pinned: any CPU of the process, not the (possibly pinned) creating thread's one.
    SetThisThreadCpus(ProcessCpus().data(), ProcessCpus().size());
  }
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen;
    int spins = 0;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        // Unpinned: let a runnable thread on this core go first (see WaitForZero).
        if (cpus_.empty() && spins % 256 == 0) sched_yield();
        CpuRelax();
        continue;
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = gen;
    if (stop_.load()) return;
    RunJob(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  PinCaller();
  task_fn_ = &fn;
  all_fn_ = nullptr;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  RunJob(0);
  WaitForZero(pending_, cpus_.empty());
}

void ThreadPool::RunOnAll(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  PinCaller();
  all_fn_ = &fn;
  task_fn_ = nullptr;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  RunJob(0);
  WaitForZero(pending_, cpus_.empty());
}

}  // namespace akv
