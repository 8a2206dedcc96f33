// The engine's side of the GPU backend (EngineOptions::device = "cuda"): an Engine keeps its CPU
// Model (tokenizer, metadata) and, on the device, a cuda::CudaModel; each Session then owns a
// cuda::CudaSession (KV tiers on the device) instead of a CPU KvCache. No CUDA header is
// included here; without the backend (AKV_CUDA=OFF) every entry point refuses with a message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "akv/akv.hpp"
#ifdef AKV_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace akv {

// "cpu" -> -1; "cuda" -> 0; "cuda:N" -> N. Anything else, or "cuda" in a build without the backend
// or on a machine without a device, is an error naming what is missing.
StatusOr<int> ParseDevice(const std::string& device);

struct GpuEngine {
#ifdef AKV_HAVE_CUDA
  std::unique_ptr<cuda::CudaModel> model;
#endif
};

struct GpuSession {
#ifdef AKV_HAVE_CUDA
  std::unique_ptr<cuda::CudaSession> session;
  cuda::KvPreset preset;
  int n_layer = 0, n_head_kv = 0, head_dim = 0;
#endif
};

// Uploads the model's weights to device `index`; `description` receives "cuda:0 (<name>)".
StatusOr<std::unique_ptr<GpuEngine>> LoadGpuEngine(const Model& model, int index, std::string* description,
                                                   std::vector<std::string>* log);

// A session on the device. cache: "full"/"f16", "akv" / "akv:balanced" / "akv-balanced", "akv-int2",
// or "akv:sink=S,window=W,bits=B,group=G" (the GPU presets, src/cuda/cuda_backend.h).
StatusOr<std::unique_ptr<GpuSession>> NewGpuSession(GpuEngine& engine, const std::string& cache, int64_t n_ctx);
Status GpuPrefill(GpuSession& s, std::span<const int32_t> tokens, float* all_logits);
Status GpuDecode(GpuSession& s, int32_t token);
std::span<const float> GpuLastLogits(const GpuSession& s);
void GpuReset(GpuSession& s);
CacheStats GpuCacheStats(const GpuSession& s);

}  // namespace akv
