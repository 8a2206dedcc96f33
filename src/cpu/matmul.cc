// MatMul: picks a kernel (GEMV for few tokens, packed GEMM for many; float or integer) and
// splits the work over the thread pool in whole 32-row panels (and token ranges when a matrix
// has too few panels to keep every thread busy).
#include "cpu/matmul.h"

#include <algorithm>
#include <cassert>

#include "cpu/matmul_internal.h"
#include "cpu/quants.h"

namespace akv {
namespace {

using cpu_internal::QuantizedActivations;

constexpr int64_t kPanelRows = 32;  // GEMM panel height; row tasks are multiples of it
// Below this many tokens the GEMV kernels (weights streamed once per 4 tokens, no packing)
// beat packing a panel; measured with bench/cpu_matmul_bench.
constexpr int64_t kFloatGemmMinTokens = 8;
constexpr int64_t kQuantGemmMinTokens = 4;
// A task should be worth a few microseconds so the pool's dispatch (~1 us) is amortised.
constexpr int64_t kMinTaskMacs = 32 * 1024;
constexpr int64_t kTasksPerThread = 4;  // dynamic claiming evens out uneven tasks
constexpr int64_t kMinTokensPerChunk = 24;

struct Split {
  int64_t rows_per_task;
  int64_t row_tasks;
  int64_t tokens_per_task;
  int64_t token_tasks;
};

// Whole panels per task, as evenly as possible, in a multiple of the thread count when there
// is enough work (e.g. decode of 384 x 384: 4 tasks of 3 panels, not 256 + 128 rows).
Split PlanSplit(int64_t rows, int64_t cols, int64_t n_tokens, int threads) {
  Split s{rows, 1, n_tokens, 1};
  if (threads <= 1) return s;
  const int64_t panels = (rows + kPanelRows - 1) / kPanelRows;
  const int64_t by_work = std::max<int64_t>(1, rows * cols * n_tokens / kMinTaskMacs);
  int64_t tasks = std::min({panels, by_work, int64_t{threads} * kTasksPerThread});
  if (tasks > threads) tasks -= tasks % threads;
  const int64_t panels_per_task = (panels + tasks - 1) / tasks;
  s.rows_per_task = panels_per_task * kPanelRows;
  s.row_tasks = (panels + panels_per_task - 1) / panels_per_task;
  // Too few row tasks for the threads: also split the tokens (each chunk repacks its panels).
  if (s.row_tasks < 2 * threads && n_tokens >= 2 * kMinTokensPerChunk) {
    const int64_t want = (2 * threads + s.row_tasks - 1) / s.row_tasks;
    s.token_tasks = std::min(want, n_tokens / kMinTokensPerChunk);
    s.tokens_per_task = (n_tokens + s.token_tasks - 1) / s.token_tasks;
    s.token_tasks = (n_tokens + s.tokens_per_task - 1) / s.tokens_per_task;
  }
  return s;
}

// Calls fn(r0, r1, t0, t1) over the split, in parallel.
template <typename Fn>
void RunSplit(const Split& s, int64_t rows, int64_t n_tokens, ThreadPool& pool, const Fn& fn) {
  const int64_t n_tasks = s.row_tasks * s.token_tasks;
  pool.ParallelFor(n_tasks, [&](int64_t task, int) {
    const int64_t rt = task % s.row_tasks, tt = task / s.row_tasks;
    const int64_t r0 = rt * s.rows_per_task, r1 = std::min(rows, r0 + s.rows_per_task);
    const int64_t t0 = tt * s.tokens_per_task, t1 = std::min(n_tokens, t0 + s.tokens_per_task);
    fn(r0, r1, t0, t1);
  });
}

// Activation buffers of the calling thread, reused across calls.
thread_local QuantizedActivations tls_xq;

}  // namespace

void MatMul(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
            int64_t ldy, ThreadPool& pool) {
  assert(MatMulSupports(w.type));
  if (n_tokens <= 0 || w.rows <= 0) return;
  const Split split = PlanSplit(w.rows, w.cols, n_tokens, pool.size());

  if (w.type == GgmlType::Q8_0 || w.type == GgmlType::Q4_0) {
    assert(w.cols % kQK == 0);
    QuantizedActivations& xq = tls_xq;
    const bool gemm = n_tokens >= kQuantGemmMinTokens;
    xq.Prepare(n_tokens, w.cols, w.type, /*pairs=*/!gemm);
    if (n_tokens >= 16 && pool.size() > 1) {
      const int64_t chunk = 8;
      pool.ParallelFor((n_tokens + chunk - 1) / chunk, [&](int64_t task, int) {
        cpu_internal::QuantizeActivations(x, ldx, task * chunk,
                                          std::min(n_tokens, (task + 1) * chunk), &xq);
      });
    } else {
      cpu_internal::QuantizeActivations(x, ldx, 0, n_tokens, &xq);
    }
    RunSplit(split, w.rows, n_tokens, pool, [&](int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
      if (gemm) {
        cpu_internal::QuantGemmRows(w, xq, t0, t1, y, ldy, r0, r1);
      } else {
        cpu_internal::QuantGemvRows(w, xq, t0, t1, y, ldy, r0, r1);
      }
    });
    return;
  }

  const bool gemm = n_tokens >= kFloatGemmMinTokens;
  RunSplit(split, w.rows, n_tokens, pool, [&](int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    const float* xt = x + t0 * ldx;
    float* yt = y + t0 * ldy;
    if (gemm) {
      cpu_internal::FloatGemmRows(w, xt, ldx, t1 - t0, yt, ldy, r0, r1);
    } else {
      cpu_internal::FloatGemvRows(w, xt, ldx, t1 - t0, yt, ldy, r0, r1);
    }
  });
}

}  // namespace akv
