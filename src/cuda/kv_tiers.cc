#include "cuda/kv_tiers.h"

#include <algorithm>
#include <string>

#include "kv/codecs/codec.h"

namespace akv::cuda {

StatusOr<PageLayout> TierPageLayout(int bits, int group, int head_dim, int capacity) {
  CodecSpec codec = CodecSpec::F16();
  if (bits != 16) codec = CodecSpec::Quantized(bits, group);
  return PageLayout::Make(codec, codec, head_dim, capacity);
}

DevPageLayout ToDevLayout(const PageLayout& l) {
  DevPageLayout d;
  d.head_dim = l.head_dim;
  d.capacity = l.capacity;
  d.bits = l.key_bits;
  d.key_group = IsQuantized(l.key.format) ? l.key.group_size : 0;
  d.value_group = IsQuantized(l.value.format) ? l.value.group_size : 0;
  d.positions_offset = static_cast<uint32_t>(l.positions_offset);
  d.key_data_offset = static_cast<uint32_t>(l.key_data_offset);
  d.key_scales_offset = static_cast<uint32_t>(l.key_scales_offset);
  d.key_zeros_offset = static_cast<uint32_t>(l.key_zeros_offset);
  d.value_data_offset = static_cast<uint32_t>(l.value_data_offset);
  d.value_scales_offset = static_cast<uint32_t>(l.value_scales_offset);
  d.value_zeros_offset = static_cast<uint32_t>(l.value_zeros_offset);
  d.key_min_offset = static_cast<uint32_t>(l.key_min_offset);
  d.key_max_offset = static_cast<uint32_t>(l.key_max_offset);
  d.total_bytes = static_cast<uint32_t>(l.total_bytes);
  return d;
}

size_t PageStride(const PageLayout& l) { return (l.total_bytes + 255) & ~size_t(255); }

Status TierPool::Init(const PageLayout& l, int jobs, int pages, const char* what) {
  layout = l;
  n_jobs = jobs;
  pages_per_job = pages;
  const size_t n_pages = static_cast<size_t>(jobs) * pages;
  AKV_RETURN_IF_ERROR(pool.Allocate(n_pages * PageStride(l), what));
  if (pool.get()) AKV_CUDA_RETURN(cudaMemset(pool.get(), 0, pool.bytes()));
  std::vector<int32_t> ids(n_pages);
  for (size_t i = 0; i < n_pages; ++i) ids[i] = static_cast<int32_t>(i);
  AKV_RETURN_IF_ERROR(table.Allocate(n_pages * sizeof(int32_t), "page table"));
  if (n_pages) AKV_CUDA_RETURN(cudaMemcpy(table.get(), ids.data(), n_pages * sizeof(int32_t), cudaMemcpyHostToDevice));
  return Status::Ok();
}

DevTier TierPool::View(int32_t* n_slots, bool ordered) const {
  DevTier t;
  t.layout = ToDevLayout(layout);
  t.pool = pool.get<uint8_t>();
  t.page_bytes = PageStride(layout);
  t.page_table = table.get<int32_t>();
  t.max_pages = pages_per_job;
  t.n_slots = n_slots;
  t.ordered = ordered;
  return t;
}

int DecodeSplits(int capacity_slots, int n_jobs, int sm_count, int warps_per_sm) {
  const int tiles = (capacity_slots + 31) / 32;
  const int by_work = std::max(1, tiles / 2);
  const int wave = sm_count * std::max(1, warps_per_sm);
  const int by_device = std::max(1, wave / std::max(1, n_jobs));
  return std::max(1, std::min({by_work, by_device, 1024}));
}

}  // namespace akv::cuda
