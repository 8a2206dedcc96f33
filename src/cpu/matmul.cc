// MatMul / MatMulMany: picks a kernel (GEMV for few tokens, packed GEMM for many; float or
// integer) and splits the work over the thread pool in whole 32-row panels (and token ranges
// when a matrix has too few panels to keep every thread busy), all matrices of a MatMulMany
// call in one dispatch.
#include "cpu/matmul.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "cpu/matmul_internal.h"
#include "cpu/quants.h"

namespace akv {
namespace {

using cpu_internal::QuantizedActivations;

constexpr int64_t kPanelRows = 32;  // GEMM panel height; row tasks are multiples of it
// Below this many tokens the GEMV kernels (weights streamed once per 4 tokens, no packing)
// beat packing a panel; measured with bench/cpu_matmul_bench.
constexpr int64_t kFloatGemmMinTokens = 10;
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

struct Task {
  int matrix;
  int64_t r0, r1, t0, t1;
};

// Appends the tasks of one matrix's split.
void AddTasks(const Split& s, int matrix, int64_t rows, int64_t n_tokens, std::vector<Task>* out) {
  for (int64_t tt = 0; tt < s.token_tasks; ++tt) {
    for (int64_t rt = 0; rt < s.row_tasks; ++rt) {
      const int64_t r0 = rt * s.rows_per_task, t0 = tt * s.tokens_per_task;
      out->push_back({matrix, r0, std::min(rows, r0 + s.rows_per_task), t0,
                      std::min(n_tokens, t0 + s.tokens_per_task)});
    }
  }
}

// Per calling thread, reused across calls: quantized activations and the task list.
thread_local QuantizedActivations tls_xq;
thread_local std::vector<Task> tls_tasks;

bool IsQuant(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0; }

}  // namespace

void MatMulMany(const WeightMatrix* ws, const MatMulOutput* outs, int n, const float* x,
                int64_t ldx, int64_t n_tokens, ThreadPool& pool) {
  if (n <= 0 || n_tokens <= 0) return;
  for (int i = 1; i < n; ++i) {
    if (ws[i].type != ws[0].type || ws[i].cols != ws[0].cols) {
      // Different activation formats: one call each.
      for (int j = 0; j < n; ++j) MatMul(ws[j], x, ldx, n_tokens, outs[j].y, outs[j].ldy, pool);
      return;
    }
  }
  const GgmlType type = ws[0].type;
  const int64_t cols = ws[0].cols;
  for (int i = 0; i < n; ++i) assert(MatMulSupports(ws[i].type));
  std::vector<Task>& tasks = tls_tasks;
  tasks.clear();
  for (int i = 0; i < n; ++i) {
    if (ws[i].rows <= 0) continue;
    AddTasks(PlanSplit(ws[i].rows, cols, n_tokens, pool.size()), i, ws[i].rows, n_tokens,
             &tasks);
  }

  if (IsQuant(type)) {
    assert(cols % kQK == 0);
    QuantizedActivations& xq = tls_xq;
    const bool gemm = n_tokens >= kQuantGemmMinTokens;
    xq.Prepare(n_tokens, cols, type, /*pairs=*/!gemm);
    if (n_tokens >= 16 && pool.size() > 1) {
      const int64_t chunk = 8;
      pool.ParallelFor((n_tokens + chunk - 1) / chunk, [&](int64_t task, int) {
        cpu_internal::QuantizeActivations(x, ldx, task * chunk,
                                          std::min(n_tokens, (task + 1) * chunk), &xq);
      });
    } else {
      cpu_internal::QuantizeActivations(x, ldx, 0, n_tokens, &xq);
    }
    pool.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i, int) {
      const Task& k = tasks[static_cast<size_t>(i)];
      const WeightMatrix& w = ws[k.matrix];
      if (gemm) {
        cpu_internal::QuantGemmRows(w, xq, k.t0, k.t1, outs[k.matrix].y, outs[k.matrix].ldy,
                                    k.r0, k.r1);
      } else {
        cpu_internal::QuantGemvRows(w, xq, k.t0, k.t1, outs[k.matrix].y, outs[k.matrix].ldy,
                                    k.r0, k.r1);
      }
    });
    return;
  }

  const bool gemm = n_tokens >= kFloatGemmMinTokens;
  pool.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i, int) {
    const Task& k = tasks[static_cast<size_t>(i)];
    const WeightMatrix& w = ws[k.matrix];
    const float* xt = x + k.t0 * ldx;
    const int64_t ldy = outs[k.matrix].ldy;
    float* yt = outs[k.matrix].y + k.t0 * ldy;
    if (gemm) {
      cpu_internal::FloatGemmRows(w, xt, ldx, k.t1 - k.t0, yt, ldy, k.r0, k.r1);
    } else {
      cpu_internal::FloatGemvRows(w, xt, ldx, k.t1 - k.t0, yt, ldy, k.r0, k.r1);
    }
  });
}

void MatMul(const WeightMatrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
            int64_t ldy, ThreadPool& pool) {
  const MatMulOutput out{y, ldy};
  MatMulMany(&w, &out, 1, x, ldx, n_tokens, pool);
}

}  // namespace akv
