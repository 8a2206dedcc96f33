// ThreadPool: every task runs exactly once, on every thread count (also more threads than CPUs),
// from several calling threads in turn; with pinning, thread i runs on the i-th allowed CPU.
#include "core/thread_pool.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <thread>
#include <vector>

namespace akv {
namespace {

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}
// Read at static initialisation, before any pool pins the test's thread.
const std::vector<int> kProcessCpus = AllowedCpus();

void ExpectEachTaskOnce(ThreadPool& pool, int64_t n_tasks) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n_tasks));
  std::atomic<int> bad_thread{0};
  pool.ParallelFor(n_tasks, [&](int64_t t, int thread) {
    hits[static_cast<size_t>(t)].fetch_add(1);
    if (thread < 0 || thread >= pool.size()) bad_thread.fetch_add(1);
  });
  for (int64_t t = 0; t < n_tasks; ++t) ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1) << "task " << t;
  EXPECT_EQ(bad_thread.load(), 0);
}

TEST(ThreadPool, EveryTaskOnce) {
  const int cpus = static_cast<int>(kProcessCpus.size());
  for (int threads : {1, 2, 3, cpus + 2}) {
    for (bool pin : {true, false}) {
      ThreadPool pool(threads, pin);
      for (int64_t n : {0, 1, 2, 7, 100, 5000}) ExpectEachTaskOnce(pool, n);
    }
  }
}

TEST(ThreadPool, RunOnAllCallsEachThreadOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> calls(static_cast<size_t>(threads));
    pool.RunOnAll([&](int i, int n) {
      EXPECT_EQ(n, threads);
      calls[static_cast<size_t>(i)].fetch_add(1);
    });
    for (int i = 0; i < threads; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1);
  }
}

// The server calls the engine's pool from its scheduler thread, tests from the main thread:
// any thread may be the caller, one at a time.
TEST(ThreadPool, CallersTakeTurns) {
  ThreadPool pool(2);
  for (int round = 0; round < 4; ++round) {
    std::thread caller([&] { ExpectEachTaskOnce(pool, 300); });
    caller.join();
    ExpectEachTaskOnce(pool, 300);
  }
}

TEST(ThreadPool, PinnedThreadsRunOnTheirCpus) {
  const std::vector<int>& cpus = kProcessCpus;
  if (cpus.size() < 2) GTEST_SKIP() << "one CPU: nothing is pinned";
  const int threads = static_cast<int>(std::min<size_t>(cpus.size(), 4));
  ThreadPool pool(threads, /*pin=*/true);
  std::vector<int> seen(static_cast<size_t>(threads), -1);
  for (int rep = 0; rep < 3; ++rep) {
    pool.RunOnAll([&](int i, int) { seen[static_cast<size_t>(i)] = sched_getcpu(); });
    for (int i = 0; i < threads; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], cpus[static_cast<size_t>(i)]) << "thread " << i;
  }
}

// A pool created after another pinned the calling thread still gets every CPU of the process:
// its workers must not inherit the caller's single-CPU mask.
TEST(ThreadPool, LaterPoolsSeeEveryCpu) {
  const int before = ThreadPool::DefaultThreads();
  { ThreadPool first(2); ExpectEachTaskOnce(first, 10); }  // pins this thread when >= 2 CPUs
  EXPECT_EQ(ThreadPool::DefaultThreads(), before);
  ThreadPool unpinned(2, /*pin=*/false);
  std::vector<int> allowed(2, 0);
  unpinned.RunOnAll([&](int i, int) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) allowed[static_cast<size_t>(i)] = CPU_COUNT(&set);
  });
  EXPECT_EQ(allowed[1], before) << "worker inherited the pinned caller's mask";
}

}  // namespace
}  // namespace akv
