// A persistent pool of worker threads for data-parallel loops.
// Workers spin briefly between jobs (decode issues ~100 small jobs per token, too many for
// condition-variable wake-ups), then sleep. The calling thread takes part as worker 0.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace akv {

class ThreadPool {
 public:
  // `n_threads` counts the caller; 1 means run everything inline. With `pin` (and no more
  // threads than CPUs allowed to the process), worker i runs only on the i-th allowed CPU and
  // a thread calling ParallelFor/RunOnAll on the first: spinning threads that the kernel left
  // on one CPU yield to each other forever (both look cache-hot, so neither is migrated), which
  // measured 3x slower than one thread in some runs on a 2-vCPU VM.
  explicit ThreadPool(int n_threads, bool pin = true);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread_index) for every task in [0, n_tasks), spread over the threads;
  // tasks are claimed dynamically, so uneven tasks balance. Returns when all are done.
  void ParallelFor(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

  // Calls fn(thread_index, n_threads) once on every thread (static partitioning).
  void RunOnAll(const std::function<void(int thread, int n_threads)>& fn);

  // Default thread count: physical cores visible to this process.
  static int DefaultThreads();

 private:
  void WorkerLoop(int index);
  void RunJob(int index);
  void PinCaller();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // Current job.
  const std::function<void(int64_t, int)>* task_fn_ = nullptr;
  const std::function<void(int, int)>* all_fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::vector<int> cpus_;                       // allowed CPUs, when pinning
  std::atomic<std::thread::id> pinned_caller_;  // the calling thread last pinned to cpus_[0]
};

}  // namespace akv
