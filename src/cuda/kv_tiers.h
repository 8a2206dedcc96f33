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

// Splits per job for a tier of `capacity_slots` slots per job: one warp per (job, split), as many
// splits as fit one wave of resident warps (sm_count * warps_per_sm; a partial second wave would
// leave most of the device idle at its end), at least two tiles per split.
int DecodeSplits(int capacity_slots, int n_jobs, int sm_count, int warps_per_sm);

}  // namespace akv::cuda
