#include "engine/gpu.h"

#include <cstdio>

#include "model/model.h"

namespace akv {

namespace {

constexpr const char* kGpuCaches =
    "full (f16), akv-balanced (= akv, akv:balanced), akv-int2, akv-cold, "
    "a tiered preset followed by ,key=value..., "
    "akv:sink=S,window=W,bits=B,group=G[,warm=N,cold_bits=C,promote=K,interval=I,demote=age|mass]";

}  // namespace

StatusOr<int> ParseDevice(const std::string& device) {
  if (device.empty() || device == "cpu") return -1;
  int index = 0;
  if (device.rfind("cuda", 0) != 0)
    return InvalidArgument("unknown device '" + device + "' (cpu, cuda or cuda:N)");
  if (device.size() > 4) {
    const std::string n = device.substr(4);
    if (n.size() < 2 || n[0] != ':' || n.find_first_not_of("0123456789", 1) != std::string::npos || n.size() > 4)
      return InvalidArgument("unknown device '" + device + "' (cpu, cuda or cuda:N)");
    index = std::stoi(n.substr(1));
  }
#ifndef AKV_HAVE_CUDA
  (void)index;
  return Unsupported("device '" + device +
                     "': this build has no CUDA backend (configure with -DAKV_CUDA=ON or AUTO on a machine with "
                     "nvcc); use --device cpu");
#else
  const int count = cuda::DeviceCount();
  if (count == 0)
    return Unsupported("device '" + device + "': no CUDA device found (no GPU, or no driver); use --device cpu");
  if (index >= count)
    return InvalidArgument("device '" + device + "': there are " + std::to_string(count) + " CUDA device(s) (cuda:0.." +
                           "cuda:" + std::to_string(count - 1) + ")");
  return index;
#endif
}

#ifndef AKV_HAVE_CUDA

StatusOr<std::unique_ptr<GpuEngine>> LoadGpuEngine(const Model&, int, std::string*, std::vector<std::string>*) {
  return Unsupported("this build has no CUDA backend");
}
StatusOr<std::unique_ptr<GpuSession>> NewGpuSession(GpuEngine&, const std::string&, int64_t) {
  return Unsupported("this build has no CUDA backend");
}
Status GpuPrefill(GpuSession&, std::span<const int32_t>, float*) { return Unsupported("this build has no CUDA backend"); }
Status GpuDecode(GpuSession&, int32_t) { return Unsupported("this build has no CUDA backend"); }
std::span<const float> GpuLastLogits(const GpuSession&) { return {}; }
void GpuReset(GpuSession&) {}
CacheStats GpuCacheStats(const GpuSession&) { return {}; }

#else

StatusOr<std::unique_ptr<GpuEngine>> LoadGpuEngine(const Model& model, int index, std::string* description,
                                                   std::vector<std::string>* log) {
  auto g = std::make_unique<GpuEngine>();
  AKV_ASSIGN_OR_RETURN(g->model, cuda::CudaModel::Upload(model, index));
  const cuda::DeviceInfo& d = g->model->device();
  *description = "cuda:" + std::to_string(index) + " (" + d.name + ")";
  char line[256];
  std::snprintf(line, sizeof line, "CUDA: %s, sm_%d%d, %d SMs; weights uploaded (%s, %.1f MiB)", d.name.c_str(),
                d.cc_major, d.cc_minor, d.sm_count, g->model->weight_types().c_str(),
                g->model->weight_bytes() / 1048576.0);
  if (log) log->push_back(line);
  return g;
}

StatusOr<std::unique_ptr<GpuSession>> NewGpuSession(GpuEngine& engine, const std::string& cache, int64_t n_ctx) {
  auto preset = cuda::KvPresetByName(cache);
  if (!preset.ok())
    return InvalidArgument("cache '" + cache + "' is not available on the GPU (caches there: " + kGpuCaches +
                           "): " + preset.status().message());
  if (n_ctx > (int64_t{1} << 30)) return InvalidArgument("context of " + std::to_string(n_ctx) + " tokens is too large");
  auto s = std::make_unique<GpuSession>();
  cuda::SessionOptions o;
  o.n_ctx = static_cast<int>(n_ctx);
  o.cache = *preset;
  AKV_ASSIGN_OR_RETURN(s->session, engine.model->NewSession(o));
  s->preset = *preset;
  const ModelConfig& c = engine.model->config();
  s->n_layer = c.n_layer;
  s->n_head_kv = c.n_head_kv;
  s->head_dim = c.head_dim;
  return s;
}

Status GpuPrefill(GpuSession& s, std::span<const int32_t> tokens, float* all_logits) {
  return s.session->Prefill(tokens, all_logits);
}

Status GpuDecode(GpuSession& s, int32_t token) { return s.session->Decode(token); }

std::span<const float> GpuLastLogits(const GpuSession& s) { return s.session->last_logits(); }

void GpuReset(GpuSession& s) { s.session->Reset(); }

CacheStats GpuCacheStats(const GpuSession& s) {
  const cuda::KvMemory m = s.session->kv_memory();
  const cuda::KvPreset& p = s.preset;
  const int64_t per = static_cast<int64_t>(s.n_layer) * s.n_head_kv;
  const int D = s.head_dim;
  // Bytes a token of one layer and KV head holds in a tier's pages: K and V codes, a scale and a
  // zero (f16) per group when quantized, its position (kv/codecs/page_layout.h).
  auto token_bytes = [D](int bits, int group) {
    return 2 * D * bits / 8 + (bits == 16 ? 0 : 2 * (D / group) * 4) + 4;
  };
  const int warm_bits = p.window > 0 ? p.warm_bits : 16;
  CacheStats st;
  st.n_layer = s.n_layer;
  st.n_head_kv = s.n_head_kv;
  st.n_positions = s.session->n_past();
  st.hot.tokens = m.hot_tokens * per;
  st.hot.bytes = st.hot.tokens * token_bytes(16, 32);
  st.warm.tokens = m.warm_tokens * per;
  st.warm.bytes = st.warm.tokens * token_bytes(warm_bits, p.warm_group);
  st.cold.tokens = m.cold_tokens * per;  // pinned host memory (akv-cold)
  st.cold.bytes = st.cold.tokens * token_bytes(p.cold_bits, p.warm_group);
  const int64_t values = (st.hot.tokens + st.warm.tokens + st.cold.tokens) * 2 * D;
  if (values > 0) {
    const double code_bits =
        2.0 * D * (st.hot.tokens * 16.0 + st.warm.tokens * (warm_bits + (warm_bits == 16 ? 0.0 : 32.0 / p.warm_group)) +
                   st.cold.tokens * (p.cold_bits + 32.0 / p.warm_group));
    st.bits_per_value = code_bits / values;
    st.bits_per_value_total = 8.0 * st.total_bytes() / values;
  }
  st.hot_per_layer.assign(s.n_layer, {st.hot.tokens / std::max(1, s.n_layer), st.hot.bytes / std::max(1, s.n_layer)});
  st.warm_per_layer.assign(s.n_layer,
                           {st.warm.tokens / std::max(1, s.n_layer), st.warm.bytes / std::max(1, s.n_layer)});
  st.cold_per_layer.assign(s.n_layer,
                           {st.cold.tokens / std::max(1, s.n_layer), st.cold.bytes / std::max(1, s.n_layer)});
  return st;
}

#endif

}  // namespace akv
