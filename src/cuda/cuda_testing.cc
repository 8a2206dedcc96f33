#include "cuda/cuda_testing.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_util.h"
#include "cuda/kernels.h"
#include "cuda/kv_tiers.h"
#include "cuda/linear.h"

namespace akv::cuda {

namespace {

template <typename T>
StatusOr<DeviceBuffer> ToDevice(const T* data, size_t count, const char* what) {
  DeviceBuffer b;
  AKV_RETURN_IF_ERROR(b.Allocate(std::max<size_t>(1, count) * sizeof(T), what));
  if (count) AKV_CUDA_RETURN(cudaMemcpy(b.get(), data, count * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}

template <typename T>
StatusOr<std::vector<T>> ToHost(const DeviceBuffer& b, size_t count) {
  std::vector<T> v(count);
  if (count) AKV_CUDA_RETURN(cudaMemcpy(v.data(), b.get(), count * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

StatusOr<DeviceBuffer> Step(int pos0, int n) {
  StepParams sp;
  sp.pos0 = pos0;
  sp.n_new = n;
  return ToDevice(&sp, 1, "step");
}

Status Finish() {
  AKV_CUDA_RETURN(cudaGetLastError());
  AKV_CUDA_RETURN(cudaDeviceSynchronize());
  return Status::Ok();
}

// Device copies of attention tiers built from host pages.
struct Tiers {
  std::vector<TierPool> pools;
  DeviceBuffer counts;  // [n_tiers][n_jobs]
  std::vector<int32_t> host_counts;
  std::vector<DevTier> views;
  int n_jobs = 0;
};

StatusOr<Tiers> BuildTiers(const std::vector<GpuTierInput>& in, int head_dim) {
  Tiers t;
  t.n_jobs = in.empty() ? 0 : static_cast<int>(in[0].pages.size());
  t.pools.resize(in.size());
  t.host_counts.assign(in.size() * t.n_jobs, 0);
  for (size_t k = 0; k < in.size(); ++k) {
    if (static_cast<int>(in[k].pages.size()) != t.n_jobs) return InvalidArgument("tiers disagree on the number of jobs");
    const KvPage* first = nullptr;
    int max_pages = 1;
    for (const auto& job : in[k].pages) {
      max_pages = std::max<int>(max_pages, static_cast<int>(job.size()));
      if (!job.empty() && !first) first = job[0];
    }
    if (!first) return InvalidArgument("tier " + std::to_string(k) + " has no page");
    const PageLayout& L = first->layout();
    if (!(L.key == L.value) || L.key.grouping != KeyGrouping::kPerToken || L.key.hadamard || L.head_dim != head_dim)
      return Unsupported("the GPU tiers take pages whose keys and values share one per-token codec without rotation (got " +
                         CodecName(L.key) + " / " + CodecName(L.value) + ")");
    AKV_RETURN_IF_ERROR(t.pools[k].Init(L, t.n_jobs, max_pages, "test tier"));
    for (int j = 0; j < t.n_jobs; ++j) {
      const auto& pages = in[k].pages[j];
      int count = 0;
      for (size_t p = 0; p < pages.size(); ++p) {
        if (pages[p]->layout().total_bytes != L.total_bytes || !(pages[p]->layout().key == L.key))
          return InvalidArgument("pages of one tier must share the layout");
        if (p + 1 < pages.size() && pages[p]->n_slots() != L.capacity)
          return InvalidArgument("every page of a job but the last must be full");
        uint8_t* dst = t.pools[k].pool.get<uint8_t>() + (static_cast<size_t>(j) * max_pages + p) * PageStride(L);
        AKV_CUDA_RETURN(cudaMemcpy(dst, pages[p]->data(), L.total_bytes, cudaMemcpyHostToDevice));
        count += pages[p]->n_slots();
      }
      t.host_counts[k * t.n_jobs + j] = count;
    }
  }
  AKV_ASSIGN_OR_RETURN(t.counts, ToDevice(t.host_counts.data(), t.host_counts.size(), "slot counts"));
  for (size_t k = 0; k < in.size(); ++k)
    t.views.push_back(t.pools[k].View(t.counts.get<int32_t>() + k * t.n_jobs, false));
  return t;
}

}  // namespace

StatusOr<std::vector<float>> GpuMatMul(const WeightMatrix& w, const float* x, int n, int gemv_max_tokens) {
  AKV_RETURN_IF_ERROR(QueryDevice(0).status());
  std::vector<DeviceBuffer> storage;
  AKV_ASSIGN_OR_RETURN(DevMatrix dm, UploadMatrix({&w}, "test weight", &storage, nullptr));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dx, ToDevice(x, static_cast<size_t>(n) * w.cols, "x"));
  DeviceBuffer dy;
  AKV_RETURN_IF_ERROR(dy.Allocate(static_cast<size_t>(n) * w.rows * 4, "y"));
  LinearRunner lin;
  AKV_RETURN_IF_ERROR(lin.Init(n, w.cols));
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return Internal("cuBLAS: cannot create a handle");
  Status st = lin.Run(h, dm, dx.get<float>(), w.cols, n, dy.get<float>(), w.rows, false, nullptr, gemv_max_tokens);
  if (st.ok()) st = Finish();
  cublasDestroy(h);
  AKV_RETURN_IF_ERROR(st);
  return ToHost<float>(dy, static_cast<size_t>(n) * w.rows);
}

StatusOr<std::vector<float>> GpuRmsNorm(const float* x, const float* w, float eps, int n_rows, int dim) {
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dx, ToDevice(x, static_cast<size_t>(n_rows) * dim, "x"));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dw, ToDevice(w, dim, "w"));
  DeviceBuffer dy;
  AKV_RETURN_IF_ERROR(dy.Allocate(static_cast<size_t>(n_rows) * dim * 4, "y"));
  AKV_CUDA_RETURN(LaunchRmsNorm(dx.get<float>(), dy.get<float>(), dim, 1, n_rows, dim, dw.get<float>(), eps, nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  return ToHost<float>(dy, static_cast<size_t>(n_rows) * dim);
}

StatusOr<std::vector<float>> GpuSwiGlu(const float* gate, const float* up, int n) {
  std::vector<float> gu(gate, gate + n);
  gu.insert(gu.end(), up, up + n);
  AKV_ASSIGN_OR_RETURN(DeviceBuffer d, ToDevice(gu.data(), gu.size(), "gate/up"));
  DeviceBuffer dy;
  AKV_RETURN_IF_ERROR(dy.Allocate(static_cast<size_t>(n) * 4, "y"));
  AKV_CUDA_RETURN(LaunchSwiGlu(d.get<float>(), 2 * n, n, 1, dy.get<float>(), n, nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  return ToHost<float>(dy, n);
}

StatusOr<std::vector<float>> GpuRope(const RopeConfig& config, const std::vector<float>& freq_factors, const float* x,
                                     int n, int n_heads, int head_dim, int pos0) {
  std::vector<float> inv;
  RopeParams p = MakeRopeParams(config, freq_factors, &inv);
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dinv, ToDevice(inv.data(), inv.size(), "rope"));
  p.inv_freq = dinv.get<float>();
  const size_t count = static_cast<size_t>(n) * n_heads * head_dim;
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dx, ToDevice(x, count, "x"));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer step, Step(pos0, n));
  AKV_CUDA_RETURN(LaunchRope(dx.get<float>(), static_cast<int64_t>(n_heads) * head_dim, n_heads, head_dim, n,
                             step.get<StepParams>(), p, nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  return ToHost<float>(dx, count);
}

StatusOr<std::vector<uint8_t>> GpuWritePage(int bits, int group, int head_dim, int capacity, const float* keys,
                                            const float* values, const std::vector<int32_t>& slots,
                                            const std::vector<int32_t>& positions) {
  AKV_ASSIGN_OR_RETURN(PageLayout L, TierPageLayout(bits, group, head_dim, capacity));
  TierPool pool;
  AKV_RETURN_IF_ERROR(pool.Init(L, 1, 1, "test page"));
  const int n = static_cast<int>(slots.size());
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dk, ToDevice(keys, static_cast<size_t>(n) * head_dim, "keys"));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dv, ToDevice(values, static_cast<size_t>(n) * head_dim, "values"));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer ds, ToDevice(slots.data(), slots.size(), "slots"));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dp, ToDevice(positions.data(), positions.size(), "positions"));
  int32_t zero = 0;
  AKV_ASSIGN_OR_RETURN(DeviceBuffer count, ToDevice(&zero, 1, "count"));
  AKV_CUDA_RETURN(LaunchKvWriteSlots(pool.View(count.get<int32_t>(), false), 0, 1, dk.get<float>(), dv.get<float>(),
                                     head_dim, n, ds.get<int32_t>(), dp.get<int32_t>(), nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  std::vector<uint8_t> bytes(L.total_bytes);
  AKV_CUDA_RETURN(cudaMemcpy(bytes.data(), pool.pool.get(), L.total_bytes, cudaMemcpyDeviceToHost));
  return bytes;
}

StatusOr<std::vector<std::vector<uint8_t>>> GpuConvertPages(const std::vector<const KvPage*>& pages, int bits,
                                                            int group) {
  if (pages.empty()) return InvalidArgument("no page to convert");
  const PageLayout& src_layout = pages[0]->layout();
  const int n = static_cast<int>(pages.size());
  AKV_ASSIGN_OR_RETURN(PageLayout dst_layout, TierPageLayout(bits, group, src_layout.head_dim, src_layout.capacity));
  TierPool src, dst;
  AKV_RETURN_IF_ERROR(src.Init(src_layout, n, 1, "test pages"));
  AKV_RETURN_IF_ERROR(dst.Init(dst_layout, n, 1, "test pages"));
  for (int j = 0; j < n; ++j) {
    if (pages[j]->layout().total_bytes != src_layout.total_bytes) return InvalidArgument("pages of different layouts");
    AKV_CUDA_RETURN(cudaMemcpy(src.pool.get<uint8_t>() + j * PageStride(src_layout), pages[j]->data(),
                               src_layout.total_bytes, cudaMemcpyHostToDevice));
  }
  // Every page but the first may hold fewer slots: convert each job on its own.
  for (int j = 0; j < n; ++j) {
    DevTier s = src.View(nullptr, false), d = dst.View(nullptr, false);
    s.page_table += j;  // job j of a one-job view
    AKV_CUDA_RETURN(LaunchKvConvertPage(s, 0, d, j, 1, pages[j]->n_slots(), nullptr));
  }
  AKV_RETURN_IF_ERROR(Finish());
  std::vector<std::vector<uint8_t>> out(n, std::vector<uint8_t>(dst_layout.total_bytes));
  for (int j = 0; j < n; ++j)
    AKV_CUDA_RETURN(cudaMemcpy(out[j].data(), dst.pool.get<uint8_t>() + j * PageStride(dst_layout),
                               dst_layout.total_bytes, cudaMemcpyDeviceToHost));
  return out;
}

StatusOr<std::vector<float>> GpuPageBounds(const std::vector<float>& q, const std::vector<uint16_t>& summaries,
                                           int n_layer, int n_kv, int R, int D, int max_pages, int n_pages) {
  const size_t jobs = static_cast<size_t>(n_layer) * n_kv;
  if (q.size() != jobs * R * D || summaries.size() != jobs * max_pages * 2 * D)
    return InvalidArgument("page bounds: input sizes do not match the shape");
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dq, ToDevice(q.data(), q.size(), "q"));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer ds, ToDevice(summaries.data(), summaries.size(), "summaries"));
  const std::vector<float> zeros(jobs * max_pages, 0.0f);
  AKV_ASSIGN_OR_RETURN(DeviceBuffer db, ToDevice(zeros.data(), zeros.size(), "bounds"));
  AKV_CUDA_RETURN(LaunchPageBounds(dq.get<float>(), static_cast<int64_t>(n_kv) * R * D, ds.get<uint16_t>(), n_layer,
                                   n_kv, R, D, max_pages, n_pages, db.get<float>(), nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  std::vector<float> out(zeros.size());
  AKV_CUDA_RETURN(cudaMemcpy(out.data(), db.get(), out.size() * 4, cudaMemcpyDeviceToHost));
  return out;
}

StatusOr<GpuAttentionOutput> GpuDecodeAttention(int head_dim, int R, const float* q,
                                                const std::vector<GpuTierInput>& tiers, bool want_mass, int splits) {
  AKV_ASSIGN_OR_RETURN(DeviceInfo dev, QueryDevice(0));
  AKV_ASSIGN_OR_RETURN(Tiers t, BuildTiers(tiers, head_dim));
  const int n_jobs = t.n_jobs, rows = n_jobs * R;
  std::vector<int> S(tiers.size());
  int S_total = 0;
  for (size_t k = 0; k < tiers.size(); ++k) {
    const int cap = t.pools[k].pages_per_job * t.pools[k].layout.capacity;
    S[k] = splits > 0 ? splits
                      : DecodeSplits(cap, n_jobs, dev.sm_count,
                                     DecodeAttentionWarpsPerSm(head_dim, R, t.pools[k].layout.key_bits));
    S_total += S[k];
  }
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dq, ToDevice(q, static_cast<size_t>(rows) * head_dim, "q"));
  DeviceBuffer pm, pd, po, mm, md, sm, sd, out;
  AKV_RETURN_IF_ERROR(pm.Allocate(static_cast<size_t>(rows) * S_total * 4, "partials"));
  AKV_RETURN_IF_ERROR(pd.Allocate(static_cast<size_t>(rows) * S_total * 4, "partials"));
  AKV_RETURN_IF_ERROR(po.Allocate(static_cast<size_t>(rows) * S_total * head_dim * 4, "partials"));
  AKV_RETURN_IF_ERROR(mm.Allocate(static_cast<size_t>(rows) * 4, "merged"));
  AKV_RETURN_IF_ERROR(md.Allocate(static_cast<size_t>(rows) * 4, "merged"));
  AKV_RETURN_IF_ERROR(sm.Allocate(static_cast<size_t>(rows) * 4, "stats"));
  AKV_RETURN_IF_ERROR(sd.Allocate(static_cast<size_t>(rows) * 4, "stats"));
  AKV_RETURN_IF_ERROR(out.Allocate(static_cast<size_t>(rows) * head_dim * 4, "out"));
  // Poison the outputs: every element must be written.
  AKV_CUDA_RETURN(cudaMemset(out.get(), 0xff, out.bytes()));
  std::vector<DeviceBuffer> mass_logits(tiers.size()), mass(tiers.size());
  DecodeAttnArgs a;
  a.q = dq.get<float>();
  a.n_jobs = n_jobs;
  a.R = R;
  a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  a.part_m = pm.get<float>();
  a.part_d = pd.get<float>();
  a.part_o = po.get<float>();
  a.S_total = S_total;
  int base = 0;
  for (size_t k = 0; k < tiers.size(); ++k) {
    const int cap = t.pools[k].pages_per_job * t.pools[k].layout.capacity;
    if (want_mass) {
      AKV_RETURN_IF_ERROR(mass_logits[k].Allocate(static_cast<size_t>(rows) * cap * 4, "mass logits"));
      AKV_RETURN_IF_ERROR(mass[k].Allocate(static_cast<size_t>(n_jobs) * cap * 4, "mass"));
      AKV_CUDA_RETURN(cudaMemset(mass[k].get(), 0xff, mass[k].bytes()));
    }
    a.split_base = base;
    a.n_splits = S[k];
    a.mass_logits = want_mass ? mass_logits[k].get<float>() : nullptr;
    AKV_CUDA_RETURN(LaunchDecodeAttention(t.views[k], a, nullptr));
    base += S[k];
  }
  AKV_CUDA_RETURN(LaunchAttentionMerge(pm.get<float>(), pd.get<float>(), po.get<float>(), rows, S_total, head_dim,
                                       out.get<float>(), static_cast<int64_t>(rows) * head_dim, rows, mm.get<float>(),
                                       md.get<float>(), sm.get<float>(), sd.get<float>(), nullptr));
  if (want_mass)
    for (size_t k = 0; k < tiers.size(); ++k)
      AKV_CUDA_RETURN(LaunchAttentionMass(t.views[k], mass_logits[k].get<float>(), mm.get<float>(), md.get<float>(),
                                          n_jobs, R, mass[k].get<float>(), nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  GpuAttentionOutput r;
  AKV_ASSIGN_OR_RETURN(r.out, ToHost<float>(out, static_cast<size_t>(rows) * head_dim));
  AKV_ASSIGN_OR_RETURN(std::vector<float> m, ToHost<float>(sm, rows));
  AKV_ASSIGN_OR_RETURN(std::vector<float> d, ToHost<float>(sd, rows));
  for (int i = 0; i < rows; ++i) r.stats.push_back(SoftmaxStats{m[i], d[i]});
  if (want_mass) {
    for (size_t k = 0; k < tiers.size(); ++k) {
      const int cap = t.pools[k].pages_per_job * t.pools[k].layout.capacity;
      AKV_ASSIGN_OR_RETURN(std::vector<float> all, ToHost<float>(mass[k], static_cast<size_t>(n_jobs) * cap));
      std::vector<float> trimmed;
      for (int j = 0; j < n_jobs; ++j) {
        const int c = t.host_counts[k * n_jobs + j];
        trimmed.insert(trimmed.end(), all.begin() + static_cast<size_t>(j) * cap, all.begin() + static_cast<size_t>(j) * cap + c);
      }
      r.mass.push_back(std::move(trimmed));
    }
  }
  return r;
}

StatusOr<std::vector<float>> GpuPrefillAttention(int head_dim, int R, const float* q, int n_q, int pos0,
                                                 const std::vector<GpuTierInput>& tiers) {
  AKV_RETURN_IF_ERROR(QueryDevice(0).status());
  if (tiers.size() > 3) return InvalidArgument("at most 3 tiers");
  AKV_ASSIGN_OR_RETURN(Tiers t, BuildTiers(tiers, head_dim));
  const int64_t ld = static_cast<int64_t>(t.n_jobs) * R * head_dim;
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dq, ToDevice(q, static_cast<size_t>(n_q) * ld, "q"));
  DeviceBuffer out;
  AKV_RETURN_IF_ERROR(out.Allocate(static_cast<size_t>(n_q) * ld * 4, "out"));
  AKV_CUDA_RETURN(cudaMemset(out.get(), 0xff, out.bytes()));
  AKV_ASSIGN_OR_RETURN(DeviceBuffer step, Step(pos0, n_q));
  DevTierSet set;
  for (const DevTier& v : t.views) set.t[set.n++] = v;
  PrefillAttnArgs a;
  a.q = dq.get<float>();
  a.ldq = ld;
  a.out = out.get<float>();
  a.ldo = ld;
  a.job0 = 0;
  a.n_kv = t.n_jobs;
  a.R = R;
  a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  a.max_tokens = n_q;
  a.step = step.get<StepParams>();
  AKV_CUDA_RETURN(LaunchPrefillAttention(set, a, nullptr));
  AKV_RETURN_IF_ERROR(Finish());
  return ToHost<float>(out, static_cast<size_t>(n_q) * ld);
}

StatusOr<std::vector<float>> GpuColdPromotionAttention(int head_dim, int R, const float* q, const GpuTierInput& hot,
                                                       const std::vector<std::vector<const KvPage*>>& cold,
                                                       const std::vector<std::vector<int>>& promote) {
  AKV_ASSIGN_OR_RETURN(DeviceInfo dev, QueryDevice(0));
  AKV_ASSIGN_OR_RETURN(Tiers t, BuildTiers({hot}, head_dim));
  const int n_jobs = t.n_jobs, rows = n_jobs * R;
  if (static_cast<int>(cold.size()) != n_jobs || static_cast<int>(promote.size()) != n_jobs)
    return InvalidArgument("cold pages / promotions per job do not match the hot tier's jobs");
  const KvPage* first = nullptr;
  int host_pages = 1, promote_pages = 1;
  for (int j = 0; j < n_jobs; ++j) {
    host_pages = std::max<int>(host_pages, static_cast<int>(cold[j].size()));
    promote_pages = std::max<int>(promote_pages, static_cast<int>(promote[j].size()));
    if (!cold[j].empty() && !first) first = cold[j][0];
  }
  if (!first) return InvalidArgument("no cold page");
  ColdTier ct;
  AKV_RETURN_IF_ERROR(ct.Init(first->layout(), n_jobs, host_pages, promote_pages));
  for (int j = 0; j < n_jobs; ++j)
    for (size_t p = 0; p < cold[j].size(); ++p) {
      std::memcpy(ct.host_page(j, static_cast<int>(p)), cold[j][p]->data(), ct.layout().total_bytes);
      ct.page_slots(j, static_cast<int>(p)) = cold[j][p]->n_slots();
    }
  cudaStream_t compute = nullptr, copy = nullptr;
  cudaEvent_t done = nullptr;
  AKV_CUDA_RETURN(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
  AKV_CUDA_RETURN(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking));
  AKV_CUDA_RETURN(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  auto cleanup = [&] {
    cudaStreamDestroy(compute);
    cudaStreamDestroy(copy);
    cudaEventDestroy(done);
  };
  const int hot_cap = t.pools[0].pages_per_job * t.pools[0].layout.capacity;
  const int S_hot = DecodeSplits(hot_cap, n_jobs, dev.sm_count, DecodeAttentionWarpsPerSm(head_dim, R, 16));
  const int S_cold = DecodeSplits(promote_pages * ct.layout().capacity, n_jobs, dev.sm_count,
                                  DecodeAttentionWarpsPerSm(head_dim, R, ct.layout().key_bits));
  const int S = S_hot + S_cold;
  auto dq = ToDevice(q, static_cast<size_t>(rows) * head_dim, "q");
  if (!dq.ok()) {
    cleanup();
    return dq.status();
  }
  DeviceBuffer pm, pd, po, out;
  Status st = pm.Allocate(static_cast<size_t>(rows) * S * 4, "partials");
  if (st.ok()) st = pd.Allocate(static_cast<size_t>(rows) * S * 4, "partials");
  if (st.ok()) st = po.Allocate(static_cast<size_t>(rows) * S * head_dim * 4, "partials");
  if (st.ok()) st = out.Allocate(static_cast<size_t>(rows) * head_dim * 4, "out");
  if (!st.ok()) {
    cleanup();
    return st;
  }
  DecodeAttnArgs a;
  a.q = dq->get<float>();
  a.n_jobs = n_jobs;
  a.R = R;
  a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  a.part_m = pm.get<float>();
  a.part_d = pd.get<float>();
  a.part_o = po.get<float>();
  a.S_total = S;
  a.split_base = 0;
  a.n_splits = S_hot;
  // Hot tier on the compute stream while the copy engine promotes; then the promoted pages.
  cudaError_t e = LaunchDecodeAttention(t.views[0], a, compute);
  if (e == cudaSuccess) st = ct.PromoteAsync(promote, copy, done);
  if (e == cudaSuccess && st.ok()) e = cudaStreamWaitEvent(compute, done, 0);
  a.split_base = S_hot;
  a.n_splits = S_cold;
  if (e == cudaSuccess && st.ok()) e = LaunchDecodeAttention(ct.PromotedView(), a, compute);
  if (e == cudaSuccess && st.ok())
    e = LaunchAttentionMerge(pm.get<float>(), pd.get<float>(), po.get<float>(), rows, S, head_dim, out.get<float>(),
                             static_cast<int64_t>(rows) * head_dim, rows, nullptr, nullptr, nullptr, nullptr, compute);
  if (e == cudaSuccess && st.ok()) e = cudaStreamSynchronize(compute);
  cleanup();
  if (!st.ok()) return st;
  AKV_CUDA_RETURN(e);
  AKV_RETURN_IF_ERROR(Finish());
  return ToHost<float>(out, static_cast<size_t>(rows) * head_dim);
}

// ---- Benchmarks --------------------------------------------------------------------------------

StatusOr<ColdBenchResult> BenchColdPromotion(int batch, int n_kv, int head_dim, int context, int promote_pages,
                                             int page_slots, int iters) {
  AKV_ASSIGN_OR_RETURN(DeviceInfo dev, QueryDevice(0));
  const int jobs = batch * n_kv, D = head_dim;
  // Hot f16 tier with random contents (the attention the copy overlaps with).
  AKV_ASSIGN_OR_RETURN(PageLayout hl, TierPageLayout(16, 32, D, page_slots));
  TierPool hot;
  AKV_RETURN_IF_ERROR(hot.Init(hl, jobs, (context + page_slots - 1) / page_slots, "bench hot tier"));
  AKV_CUDA_RETURN(LaunchRandomFill(hot.pool.get(), GgmlType::F16, static_cast<int64_t>(hot.pool.bytes() / 2), 7, 1.0f, nullptr));
  std::vector<int32_t> counts(jobs, context);
  AKV_ASSIGN_OR_RETURN(DeviceBuffer dcounts, ToDevice(counts.data(), counts.size(), "counts"));
  // Cold int2 pages (random bytes: codes, scales and zeros do not matter for copy timing).
  AKV_ASSIGN_OR_RETURN(PageLayout cl, TierPageLayout(2, 32, D, page_slots));
  ColdTier ct;
  AKV_RETURN_IF_ERROR(ct.Init(cl, jobs, promote_pages, promote_pages));
  for (int j = 0; j < jobs; ++j)
    for (int p = 0; p < promote_pages; ++p) ct.page_slots(j, p) = page_slots;
  std::vector<std::vector<int>> sel(jobs);
  for (auto& v : sel)
    for (int p = 0; p < promote_pages; ++p) v.push_back(p);
  const int rows = jobs;
  const int S = DecodeSplits(hot.pages_per_job * page_slots, jobs, dev.sm_count, DecodeAttentionWarpsPerSm(D, 1, 16));
  DeviceBuffer q, pm, pd, po;
  AKV_RETURN_IF_ERROR(q.Allocate(static_cast<size_t>(rows) * D * 4, "q"));
  AKV_CUDA_RETURN(LaunchRandomFill(q.get(), GgmlType::F32, static_cast<int64_t>(rows) * D, 3, 1.0f, nullptr));
  AKV_RETURN_IF_ERROR(pm.Allocate(static_cast<size_t>(rows) * S * 4, "partials"));
  AKV_RETURN_IF_ERROR(pd.Allocate(static_cast<size_t>(rows) * S * 4, "partials"));
  AKV_RETURN_IF_ERROR(po.Allocate(static_cast<size_t>(rows) * S * D * 4, "partials"));
  DecodeAttnArgs a;
  a.q = q.get<float>();
  a.n_jobs = jobs;
  a.R = 1;
  a.scale = 1.0f / std::sqrt(static_cast<float>(D));
  a.part_m = pm.get<float>();
  a.part_d = pd.get<float>();
  a.part_o = po.get<float>();
  a.S_total = S;
  a.n_splits = S;
  const DevTier hv = hot.View(dcounts.get<int32_t>(), true);
  cudaStream_t compute, copy;
  cudaEvent_t done, e0, e1, c0, c1;
  cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
  cudaEventCreate(&done);
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventCreate(&c0);
  cudaEventCreate(&c1);
  AKV_RETURN_IF_ERROR(Finish());
  auto median = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return static_cast<double>(v[v.size() / 2]);
  };
  std::vector<float> t_copy, t_attn, t_both;
  Status st;
  for (int i = 0; i < iters + 2 && st.ok(); ++i) {
    float ms = 0;
    // Copy alone.
    cudaEventRecord(c0, copy);
    st = ct.PromoteAsync(sel, copy, done);
    cudaEventRecord(c1, copy);
    cudaEventSynchronize(c1);
    cudaEventElapsedTime(&ms, c0, c1);
    if (i >= 2) t_copy.push_back(ms);
    // Attention alone.
    cudaEventRecord(e0, compute);
    LaunchDecodeAttention(hv, a, compute);
    cudaEventRecord(e1, compute);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 2) t_attn.push_back(ms);
    // Both: the copy is issued first, the attention right after; time until both are done.
    cudaEventRecord(e0, compute);
    cudaStreamWaitEvent(copy, e0, 0);
    if (st.ok()) st = ct.PromoteAsync(sel, copy, done);
    LaunchDecodeAttention(hv, a, compute);
    cudaStreamWaitEvent(compute, done, 0);
    cudaEventRecord(e1, compute);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 2) t_both.push_back(ms);
  }
  cudaStreamDestroy(compute);
  cudaStreamDestroy(copy);
  for (cudaEvent_t ev : {done, e0, e1, c0, c1}) cudaEventDestroy(ev);
  AKV_RETURN_IF_ERROR(st);
  AKV_RETURN_IF_ERROR(Finish());
  ColdBenchResult r;
  r.copy_ms = median(t_copy);
  r.attention_ms = median(t_attn);
  r.both_ms = median(t_both);
  r.promoted_bytes = static_cast<double>(jobs) * promote_pages * cl.total_bytes;
  r.copy_gbps = r.promoted_bytes / (r.copy_ms * 1e-3) / 1e9;
  return r;
}


StatusOr<AttnBenchResult> BenchDecodeAttention(const AttnBenchConfig& c, int iters) {
  AKV_ASSIGN_OR_RETURN(DeviceInfo dev, QueryDevice(0));
  const int jobs = c.batch * c.n_kv, D = c.head_dim, ps = c.page_slots;
  const int hot_n = std::min(c.hot_tokens, c.context);
  const int main_n = c.context - hot_n;
  auto pages_for = [ps](int n) { return std::max(1, (n + ps - 1) / ps); };
  struct T {
    TierPool pool;
    int count = 0;
    int S = 0;
  };
  std::vector<T> tiers;
  if (hot_n > 0) {
    tiers.emplace_back();
    AKV_ASSIGN_OR_RETURN(PageLayout L, TierPageLayout(16, 32, D, ps));
    AKV_RETURN_IF_ERROR(tiers.back().pool.Init(L, jobs, pages_for(hot_n), "bench hot tier"));
    tiers.back().count = hot_n;
  }
  if (main_n > 0) {
    tiers.emplace_back();
    AKV_ASSIGN_OR_RETURN(PageLayout L, TierPageLayout(c.bits, c.group, D, ps));
    AKV_RETURN_IF_ERROR(tiers.back().pool.Init(L, jobs, pages_for(main_n), "bench tier"));
    tiers.back().count = main_n;
  }
  // Random K/V written through the append kernels, 256 tokens at a time.
  const int chunk = 256;
  DeviceBuffer k, v, slots, pos;
  AKV_RETURN_IF_ERROR(k.Allocate(static_cast<size_t>(chunk) * jobs * D * 4, "bench keys"));
  AKV_RETURN_IF_ERROR(v.Allocate(static_cast<size_t>(chunk) * jobs * D * 4, "bench values"));
  AKV_RETURN_IF_ERROR(slots.Allocate(chunk * 4, "slots"));
  AKV_RETURN_IF_ERROR(pos.Allocate(chunk * 4, "positions"));
  std::vector<int32_t> host_counts(jobs);
  DeviceBuffer counts;
  AKV_RETURN_IF_ERROR(counts.Allocate(tiers.size() * jobs * 4, "counts"));
  uint64_t seed = 1;
  int position = 0;
  for (size_t ti = 0; ti < tiers.size(); ++ti) {
    T& t = tiers[ti];
    std::fill(host_counts.begin(), host_counts.end(), t.count);
    AKV_CUDA_RETURN(cudaMemcpy(counts.get<int32_t>() + ti * jobs, host_counts.data(), jobs * 4, cudaMemcpyHostToDevice));
    const DevTier view = t.pool.View(counts.get<int32_t>() + ti * jobs, false);
    for (int s0 = 0; s0 < t.count; s0 += chunk) {
      const int n = std::min(chunk, t.count - s0);
      std::vector<int32_t> sl(n), ps_(n);
      for (int i = 0; i < n; ++i) {
        sl[i] = s0 + i;
        ps_[i] = position++;
      }
      AKV_CUDA_RETURN(cudaMemcpy(slots.get(), sl.data(), n * 4, cudaMemcpyHostToDevice));
      AKV_CUDA_RETURN(cudaMemcpy(pos.get(), ps_.data(), n * 4, cudaMemcpyHostToDevice));
      AKV_CUDA_RETURN(LaunchRandomFill(k.get(), GgmlType::F32, static_cast<int64_t>(n) * jobs * D, ++seed, 2.0f, nullptr));
      AKV_CUDA_RETURN(LaunchRandomFill(v.get(), GgmlType::F32, static_cast<int64_t>(n) * jobs * D, ++seed, 2.0f, nullptr));
      AKV_CUDA_RETURN(LaunchKvWriteSlots(view, 0, jobs, k.get<float>(), v.get<float>(), static_cast<int64_t>(jobs) * D, n,
                                         slots.get<int32_t>(), pos.get<int32_t>(), nullptr));
    }
    t.S = c.splits > 0 ? c.splits
                       : DecodeSplits(t.pool.pages_per_job * ps, jobs, dev.sm_count,
                                      DecodeAttentionWarpsPerSm(D, c.R, t.pool.layout.key_bits));
  }
  AKV_RETURN_IF_ERROR(Finish());
  k.Reset();
  v.Reset();

  const int rows = jobs * c.R;
  int S_total = 0;
  for (const T& t : tiers) S_total += t.S;
  DeviceBuffer q, pm, pd, po, mm, md, out;
  AKV_RETURN_IF_ERROR(q.Allocate(static_cast<size_t>(rows) * D * 4, "q"));
  AKV_CUDA_RETURN(LaunchRandomFill(q.get(), GgmlType::F32, static_cast<int64_t>(rows) * D, 99, 1.0f, nullptr));
  AKV_RETURN_IF_ERROR(pm.Allocate(static_cast<size_t>(rows) * S_total * 4, "partials"));
  AKV_RETURN_IF_ERROR(pd.Allocate(static_cast<size_t>(rows) * S_total * 4, "partials"));
  AKV_RETURN_IF_ERROR(po.Allocate(static_cast<size_t>(rows) * S_total * D * 4, "partials"));
  AKV_RETURN_IF_ERROR(mm.Allocate(static_cast<size_t>(rows) * 4, "merged"));
  AKV_RETURN_IF_ERROR(md.Allocate(static_cast<size_t>(rows) * 4, "merged"));
  AKV_RETURN_IF_ERROR(out.Allocate(static_cast<size_t>(rows) * D * 4, "out"));
  std::vector<DeviceBuffer> ml(tiers.size()), mass(tiers.size());
  if (c.mass)
    for (size_t ti = 0; ti < tiers.size(); ++ti) {
      const size_t cap = static_cast<size_t>(tiers[ti].pool.pages_per_job) * ps;
      AKV_RETURN_IF_ERROR(ml[ti].Allocate(rows * cap * 4, "mass logits"));
      AKV_RETURN_IF_ERROR(mass[ti].Allocate(jobs * cap * 4, "mass"));
    }
  auto run = [&]() -> cudaError_t {
    DecodeAttnArgs a;
    a.q = q.get<float>();
    a.n_jobs = jobs;
    a.R = c.R;
    a.scale = 1.0f / std::sqrt(static_cast<float>(D));
    a.part_m = pm.get<float>();
    a.part_d = pd.get<float>();
    a.part_o = po.get<float>();
    a.S_total = S_total;
    int base = 0;
    for (size_t ti = 0; ti < tiers.size(); ++ti) {
      a.split_base = base;
      a.n_splits = tiers[ti].S;
      a.mass_logits = c.mass ? ml[ti].get<float>() : nullptr;
      cudaError_t e = LaunchDecodeAttention(tiers[ti].pool.View(counts.get<int32_t>() + ti * jobs, false), a, nullptr);
      if (e != cudaSuccess) return e;
      base += tiers[ti].S;
    }
    cudaError_t e = LaunchAttentionMerge(pm.get<float>(), pd.get<float>(), po.get<float>(), rows, S_total, D,
                                         out.get<float>(), static_cast<int64_t>(rows) * D, rows, mm.get<float>(),
                                         md.get<float>(), nullptr, nullptr, nullptr);
    if (e != cudaSuccess || !c.mass) return e;
    for (size_t ti = 0; ti < tiers.size(); ++ti) {
      e = LaunchAttentionMass(tiers[ti].pool.View(counts.get<int32_t>() + ti * jobs, false), ml[ti].get<float>(),
                              mm.get<float>(), md.get<float>(), jobs, c.R, mass[ti].get<float>(), nullptr);
      if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
  };
  for (int i = 0; i < 3; ++i) AKV_CUDA_RETURN(run());
  AKV_RETURN_IF_ERROR(Finish());
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(e0);
    cudaError_t e = run();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    if (e != cudaSuccess) {
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      return CudaStatus(e, "attention benchmark");
    }
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  AKV_RETURN_IF_ERROR(Finish());
  std::sort(ms.begin(), ms.end());
  AttnBenchResult r;
  r.ms_median = ms[ms.size() / 2];
  r.ms_min = ms.front();
  for (const T& t : tiers) {
    const PageLayout& L = t.pool.layout;
    const int bits = L.key_bits;
    const double per_slot = 2.0 * (D * bits / 8.0 + (bits < 16 ? 4.0 * D / L.key.group_size : 0.0));
    r.kv_bytes += per_slot * t.count * jobs;
    r.other_bytes += static_cast<double>(rows) * t.S * (D + 2) * 4 * 2;  // partials written and read
    if (c.mass) r.other_bytes += static_cast<double>(t.count) * jobs * (c.R * 4.0 * 2 + 4);
  }
  r.other_bytes += static_cast<double>(rows) * D * 4 * 2;  // q read, out written
  r.gbps = (r.kv_bytes + r.other_bytes) / (r.ms_median * 1e-3) / 1e9;
  r.splits = S_total;
  return r;
}

StatusOr<double> BenchGemv(int64_t rows, int64_t cols, GgmlType type, int variant, int iters) {
  AKV_RETURN_IF_ERROR(QueryDevice(0).status());
  DeviceBuffer wb;
  const int elem = type == GgmlType::F32 ? 4 : 2;
  AKV_RETURN_IF_ERROR(wb.Allocate(static_cast<size_t>(rows * cols) * elem, "gemv weights"));
  AKV_CUDA_RETURN(LaunchRandomFill(wb.get(), type, rows * cols, 11, 0.03f, nullptr));
  DevMatrix w;
  w.type = type;
  w.rows = rows;
  w.cols = cols;
  w.data = wb.get();
  return GemvGBps(w, variant, iters);
}

StatusOr<double> BenchDeviceCopyGBps(size_t bytes, int iters) {
  AKV_RETURN_IF_ERROR(QueryDevice(0).status());
  DeviceBuffer a, b;
  AKV_RETURN_IF_ERROR(a.Allocate(bytes, "copy source"));
  AKV_RETURN_IF_ERROR(b.Allocate(bytes, "copy destination"));
  AKV_CUDA_RETURN(LaunchRandomFill(a.get(), GgmlType::F32, static_cast<int64_t>(bytes / 4), 5, 1.0f, nullptr));
  for (int i = 0; i < 2; ++i) AKV_CUDA_RETURN(cudaMemcpy(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(e0);
    cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  AKV_RETURN_IF_ERROR(Finish());
  std::sort(ms.begin(), ms.end());
  return 2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

}  // namespace akv::cuda
