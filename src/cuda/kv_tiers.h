// Device-side KV tier storage: pools of pages with the CPU page layout (kv/codecs/page_layout.h),
// page tables and slot counts, as the kernels see them (DevTier).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "cuda/cuda_util.h"
#include "cuda/kernels.h"
#include "kv/codecs/page_layout.h"

namespace akv::cuda {

// The page layout of a tier whose keys and values share the codec: bits 16 (f16) or 8 / 4 / 2
// with per-token groups of `group` channels.
StatusOr<PageLayout> TierPageLayout(int bits, int group, int head_dim, int capacity);
DevPageLayout ToDevLayout(const PageLayout& layout);
// Bytes between pages in a pool (the layout rounded up to 256, so every page is aligned).
size_t PageStride(const PageLayout& layout);

// Pages for n_jobs jobs, pages_per_job each, in one zeroed device allocation; page id
// j * pages_per_job + p is page p of job j (the identity table the caches use; a manager may
// rewrite the table). n_slots points into caller-owned device memory.
struct TierPool {
  PageLayout layout;
  int n_jobs = 0, pages_per_job = 0;
  DeviceBuffer pool;
  DeviceBuffer table;  // int32 [n_jobs][pages_per_job]

  Status Init(const PageLayout& layout, int n_jobs, int pages_per_job, const char* what);
  DevTier View(int32_t* n_slots, bool ordered) const;
  int64_t bytes() const { return static_cast<int64_t>(pool.bytes() + table.bytes()); }
};

// The cold tier: pages in pinned host memory (same layout as on the device, int2 in the AKV
// presets; the CPU can read them in place: key summaries, bounds), and a device area into which
// chosen pages are promoted by the copy engine on a copy stream, overlapping the compute stream.
// The compute stream waits on the returned event before attending to the promoted pages.
class ColdTier {
 public:
  // host_pages_per_job pages per job in host memory; up to promote_pages_per_job of them promoted
  // at a time into each of n_buffers device areas (two: the next promotion is copied into one while
  // attention reads the other).
  Status Init(const PageLayout& layout, int n_jobs, int host_pages_per_job, int promote_pages_per_job,
              int n_buffers = 1);
  const PageLayout& layout() const { return layout_; }
  int n_jobs() const { return n_jobs_; }
  int host_pages_per_job() const { return host_pages_; }
  int promote_pages_per_job() const { return promote_[0].pages_per_job; }
  int n_buffers() const { return static_cast<int>(promote_.size()); }
  // Page `page` of job `job` in pinned host memory, and its slot count (set by the writer).
  uint8_t* host_page(int job, int page) { return host_.get<uint8_t>() + PageIndex(job, page) * PageStride(layout_); }
  const uint8_t* host_page(int job, int page) const {
    return host_.get<uint8_t>() + PageIndex(job, page) * PageStride(layout_);
  }
  int& page_slots(int job, int page) { return slots_[PageIndex(job, page)]; }
  // Copies pages[j] (host page indices of job j; at most promote_pages_per_job, at most one of
  // them not full: it is placed last) into job j's promotion area of `buffer` on `copy_stream`,
  // with the promoted slot counts, and records `done` there (done may be null). Waits on the host
  // for the previous promotion into the same buffer (its pinned slot counts are reused).
  Status PromoteAsync(const std::vector<std::vector<int>>& pages, cudaStream_t copy_stream, cudaEvent_t done,
                      int buffer = 0);
  // The promoted pages of `buffer` as a tier (device memory).
  DevTier PromotedView(int buffer = 0) const {
    return promote_[buffer].View(counts_.get<int32_t>() + static_cast<size_t>(buffer) * n_jobs_, false);
  }
  int64_t host_bytes() const { return static_cast<int64_t>(host_.bytes()); }
  int64_t device_bytes() const {
    int64_t b = static_cast<int64_t>(counts_.bytes());
    for (const TierPool& p : promote_) b += p.bytes();
    return b;
  }

 private:
  size_t PageIndex(int job, int page) const { return static_cast<size_t>(job) * host_pages_ + page; }
  PageLayout layout_;
  int n_jobs_ = 0, host_pages_ = 0;
  PinnedBuffer host_;
  std::vector<int> slots_;
  std::vector<TierPool> promote_;
  DeviceBuffer counts_;  // int32 [n_buffers][n_jobs]
  PinnedBuffer counts_host_;  // int32 [n_buffers][n_jobs]
  std::vector<CudaEvent> copied_;  // per buffer: its last promotion finished
  std::vector<void*> dsts_;
  std::vector<const void*> srcs_;
};

// Copies n blocks of `bytes` each (srcs[i] -> dsts[i], any direction) on `stream`, as one batched
// submission where the driver has cudaMemcpyBatchAsync, else one cudaMemcpyAsync per block.
Status CopyBlocksAsync(const std::vector<void*>& dsts, const std::vector<const void*>& srcs, size_t bytes,
                       cudaStream_t stream);

// Splits per job for a tier of `capacity_slots` slots per job: one warp per (job, split), as many
// splits as fit one wave of resident warps (sm_count * warps_per_sm; a partial second wave would
// leave most of the device idle at its end), at least two tiles per split.
int DecodeSplits(int capacity_slots, int n_jobs, int sm_count, int warps_per_sm);

}  // namespace akv::cuda
