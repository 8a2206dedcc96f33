#include "cuda/kv_tiers.h"

#include <algorithm>
#include <cstring>
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

Status ColdTier::Init(const PageLayout& layout, int n_jobs, int host_pages_per_job, int promote_pages_per_job,
                      int n_buffers) {
  if (n_buffers < 1) return InvalidArgument("cold tier: at least one promotion buffer");
  layout_ = layout;
  n_jobs_ = n_jobs;
  host_pages_ = host_pages_per_job;
  const size_t n_host = static_cast<size_t>(n_jobs) * host_pages_per_job;
  AKV_RETURN_IF_ERROR(host_.Allocate(n_host * PageStride(layout), "the cold KV tier"));
  if (host_.get()) std::memset(host_.get(), 0, host_.bytes());
  slots_.assign(n_host, 0);
  promote_.resize(n_buffers);
  for (TierPool& p : promote_) AKV_RETURN_IF_ERROR(p.Init(layout, n_jobs, promote_pages_per_job, "promoted cold pages"));
  AKV_RETURN_IF_ERROR(counts_.Allocate(static_cast<size_t>(n_buffers) * n_jobs * 4, "promoted slot counts"));
  AKV_CUDA_RETURN(cudaMemset(counts_.get(), 0, counts_.bytes()));
  AKV_RETURN_IF_ERROR(counts_host_.Allocate(static_cast<size_t>(n_buffers) * n_jobs * 4, "promoted slot counts"));
  copied_.resize(n_buffers);
  for (CudaEvent& e : copied_) AKV_RETURN_IF_ERROR(e.Create());
  AKV_CUDA_RETURN(cudaDeviceSynchronize());
  return Status::Ok();
}

Status ColdTier::PromoteAsync(const std::vector<std::vector<int>>& pages, cudaStream_t copy_stream, cudaEvent_t done,
                              int buffer) {
  if (buffer < 0 || buffer >= n_buffers()) return InvalidArgument("cold promotion: no buffer " + std::to_string(buffer));
  const TierPool& area = promote_[buffer];
  if (static_cast<int>(pages.size()) != n_jobs_)
    return InvalidArgument("cold promotion: " + std::to_string(pages.size()) + " page lists for " +
                           std::to_string(n_jobs_) + " jobs");
  // The pinned counts are read by the previous promotion's copy: wait for it before rewriting.
  AKV_CUDA_RETURN(cudaEventSynchronize(copied_[buffer].get()));
  int32_t* counts = counts_host_.get<int32_t>() + static_cast<size_t>(buffer) * n_jobs_;
  const size_t stride = PageStride(layout_);
  for (int j = 0; j < n_jobs_; ++j) {
    std::vector<int> order = pages[j];
    if (static_cast<int>(order.size()) > area.pages_per_job)
      return InvalidArgument("cold promotion: " + std::to_string(order.size()) + " pages for job " + std::to_string(j) +
                             ", room for " + std::to_string(area.pages_per_job));
    int partial = -1;
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] < 0 || order[i] >= host_pages_) return InvalidArgument("cold promotion: no page " + std::to_string(order[i]));
      if (page_slots(j, order[i]) != layout_.capacity) {
        if (partial >= 0) return InvalidArgument("cold promotion: two partial pages for job " + std::to_string(j));
        partial = static_cast<int>(i);
      }
    }
    if (partial >= 0) std::swap(order[partial], order.back());
    int count = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      dsts_.push_back(area.pool.get<uint8_t>() + (static_cast<size_t>(j) * area.pages_per_job + i) * stride);
      srcs_.push_back(host_page(j, order[i]));
      count += page_slots(j, order[i]);
    }
    counts[j] = count;
  }
  Status st = CopyBlocksAsync(dsts_, srcs_, layout_.total_bytes, copy_stream);
  dsts_.clear();
  srcs_.clear();
  AKV_RETURN_IF_ERROR(st);
  AKV_CUDA_RETURN(cudaMemcpyAsync(counts_.get<int32_t>() + static_cast<size_t>(buffer) * n_jobs_, counts,
                                  static_cast<size_t>(n_jobs_) * 4, cudaMemcpyHostToDevice, copy_stream));
  AKV_CUDA_RETURN(cudaEventRecord(copied_[buffer].get(), copy_stream));
  if (done) AKV_CUDA_RETURN(cudaEventRecord(done, copy_stream));
  return Status::Ok();
}

Status CopyBlocksAsync(const std::vector<void*>& dsts, const std::vector<const void*>& srcs, size_t bytes,
                       cudaStream_t stream) {
  if (dsts.size() != srcs.size()) return InvalidArgument("block copy: destination and source counts differ");
  if (dsts.empty()) return Status::Ok();
  // One batched submission: one cudaMemcpyAsync per page costs a few microseconds of driver time
  // each (8.8 GB/s for 21 KB pages measured on an H100), the batch goes to the copy engines at once.
  std::vector<size_t> sizes(dsts.size(), bytes);
  cudaMemcpyAttributes attr{};
  attr.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
  size_t attr_idx = 0;
  cudaError_t e = cudaMemcpyBatchAsync(dsts.data(), srcs.data(), sizes.data(), dsts.size(), &attr, &attr_idx, 1, stream);
  if (e != cudaSuccess) {  // older drivers: one copy per block
    (void)cudaGetLastError();
    for (size_t i = 0; i < dsts.size(); ++i)
      AKV_CUDA_RETURN(cudaMemcpyAsync(dsts[i], srcs[i], bytes, cudaMemcpyDefault, stream));
  }
  return Status::Ok();
}

int DecodeSplits(int capacity_slots, int n_jobs, int sm_count, int warps_per_sm) {
  const int tiles = (capacity_slots + 31) / 32;
  const int by_work = std::max(1, tiles / 2);
  const int wave = sm_count * std::max(1, warps_per_sm);
  const int by_device = std::max(1, wave / std::max(1, n_jobs));
  return std::max(1, std::min({by_work, by_device, 1024}));
}

}  // namespace akv::cuda
