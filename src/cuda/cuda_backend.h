// The CUDA backend as the rest of the engine sees it: no CUDA header is included here, so any
// layer may use it (guarded by AKV_HAVE_CUDA, which the build defines when the backend is built).
//
//   auto model = cuda::CudaModel::Upload(cpu_model);            // weights uploaded once
//   auto session = (*model)->NewSession({.n_ctx = 32768, .cache = *cuda::KvPresetByName("akv-balanced")});
//   (*session)->Prefill(tokens);  (*session)->Decode(next);     // logits in last_logits()
//
// KV cache on the device (kernels.h has the formats): pages laid out exactly as
// kv/codecs/page_layout.h, a hot tier in f16 and, for the tiered presets, a warm tier quantized on
// append (int4 / int2 group-wise asymmetric). Decode steps run as one captured CUDA graph.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/ggml_types.h"
#include "core/status.h"
#include "model/hparams.h"

namespace akv {
class Model;
}

namespace akv::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int64_t total_bytes = 0, free_bytes = 0;
  int64_t l2_bytes = 0;
  std::string driver_version, runtime_version;
};

// Number of CUDA devices; 0 when there is no device or no driver (never fails).
int DeviceCount();
// The device, checked against the architectures this build carries: a device older than sm_80,
// or one with no matching machine code or PTX, is refused with a message naming both.
StatusOr<DeviceInfo> QueryDevice(int device = 0);
// "sm_90 (+PTX compute_80)" etc.: what the build embedded.
std::string BuiltArchitectures();
// Bytes in use on the device (total - free), for peak-memory reports.
StatusOr<int64_t> DeviceBytesInUse(int device = 0);

// GPU KV cache presets.
//   "f16": every token in f16 (the baseline; slot = position).
//   "akv-balanced": the first n_sink tokens and the last `window` tokens in f16, every other token
//     int4 (group 32, keys and values) in device memory, quantized when it leaves the window.
//   "akv-int2": the same with int2 (group 32) for the warm tier.
//   "akv-cold": three tiers: f16 sinks and window, the newest 4096 other tokens int4 in device
//     memory, everything older int2 (group 32) in pinned host memory; every 8 decode steps the 4
//     cold pages per KV head whose key-summary bound q.k ranks highest for the step's queries are
//     promoted (copied to the device on a copy stream, overlapping the next step) and attended as a
//     third tier. Cold pages that are not promoted are not attended.
//   "akv:sink=S,window=W,bits=B,group=G[,warm=N,cold_bits=C,promote=K,interval=I,demote=age|mass]":
//     explicit (warm=N bounds the device warm tier to N tokens, rounded up to whole pages, and turns
//     the cold tier on; demote=mass demotes, per layer and KV head, the warm page with the least
//     decayed attention mass instead of the oldest).
struct KvPreset {
  std::string name = "f16";
  int n_sink = 0;
  int window = 0;  // 0: everything f16
  int warm_bits = 4;
  int warm_group = 32;
  int warm_tokens = 0;       // > 0: warm tier bounded, older pages go cold
  int cold_bits = 2;         // cold codec (group warm_group)
  int promote_pages = 4;     // cold pages per KV head attended at a time
  int promote_interval = 8;  // decode steps between promotion choices
  bool demote_by_mass = false;  // demote the warm page with the least decayed attention mass
  bool cold() const { return window > 0 && warm_tokens > 0; }
};
StatusOr<KvPreset> KvPresetByName(const std::string& name);

struct SessionOptions {
  int n_ctx = 4096;         // tokens the cache holds
  KvPreset cache;
  bool attention_mass = false;  // decode steps also produce per-token attention mass (scorer input)
  bool use_graphs = true;       // decode steps as a captured CUDA graph
  int page_slots = 256;
};

// Device memory of a session's KV cache: bytes allocated per tier (all layers and heads), tokens
// stored per tier (per layer and KV head, i.e. per sequence position).
// The cold tier (akv-cold): cold_host_bytes of pinned host memory, promoted_bytes of device memory
// for the promotion buffers; promotions counts the pages copied to the device so far.
struct KvMemory {
  int64_t hot_bytes = 0, warm_bytes = 0, promoted_bytes = 0, cold_host_bytes = 0;
  int64_t hot_tokens = 0, warm_tokens = 0, cold_tokens = 0;
  int64_t promotions = 0;
  double bytes_per_token = 0;  // allocated device bytes / capacity, all layers
  int64_t total_bytes() const { return hot_bytes + warm_bytes + promoted_bytes; }  // device memory
};

class CudaSession;

class CudaModel {
 public:
  // Uploads a loaded model's weights (F32/F16/BF16/Q8_0/Q4_0; ggml blocks are split into codes and
  // scales for aligned loads).
  static StatusOr<std::unique_ptr<CudaModel>> Upload(const Model& model, int device = 0);
  // Random weights of `config`'s shape generated on the device (F16 / BF16 / F32), for speed and
  // memory measurements at 7B-class shapes without a 13 GB upload. n_vocab must be set.
  static StatusOr<std::unique_ptr<CudaModel>> Random(const ModelConfig& config, GgmlType type, uint64_t seed,
                                                     int device = 0);
  ~CudaModel();

  const ModelConfig& config() const;
  int64_t weight_bytes() const;
  std::string weight_types() const;
  const DeviceInfo& device() const;
  StatusOr<std::unique_ptr<CudaSession>> NewSession(const SessionOptions& options);

  struct Impl;

 private:
  explicit CudaModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class CudaSession {
 public:
  ~CudaSession();

  // Appends tokens (chunks of up to 512). all_logits (may be null): [tokens.size(), n_vocab].
  Status Prefill(std::span<const int32_t> tokens, float* all_logits = nullptr);
  // One decode step (a CUDA graph replay after the first step).
  Status Decode(int32_t token);
  std::span<const float> last_logits() const;
  // Appends n synthetic tokens to every layer: random K/V rows through the same append kernels as
  // real tokens (quantized on append). For speed tests at long context without a long prefill.
  Status FillRandom(int n_tokens, uint64_t seed);
  // Attention mass of the last decode step in `layer`: [n_head_kv][n_past] in position order,
  // summed over the query heads of each group (needs attention_mass).
  StatusOr<std::vector<float>> LastAttentionMass(int layer) const;

  int64_t n_past() const;
  int64_t n_ctx() const;
  KvMemory kv_memory() const;
  // The bytes of one KV page (kv/codecs/page_layout.h), for tests: tier 0 hot, 1 warm (page index in
  // the job's current table order), 2 the promoted cold pages attended now, 3 the cold tier's host
  // pages; job = KV head.
  StatusOr<std::vector<uint8_t>> PageBytes(int tier, int layer, int job, int page) const;
  void Reset();

  struct Impl;

 private:
  friend class CudaModel;
  explicit CudaSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `akv bench --device cuda`: prefill / decode tokens/s on the GPU (see tools/akv/bench.cc).
// model_path: a GGUF file, or "random:llama-2-7b" (random F16 weights of that shape, generated
// on the device). Depths are filled with FillRandom (synthetic K/V) unless real_prefill.
struct BenchOptions {
  std::string model_path;
  std::vector<int> prompt = {512};
  std::vector<int> gen = {128};
  std::vector<int> depth = {0};
  std::vector<std::string> caches = {"f16"};
  int reps = 3;
  std::string json;
  bool real_prefill = false;
  bool attention_mass = false;
};
int RunBench(const BenchOptions& options);

// The Llama-2-7B shape (32 layers, 4096 wide, 32 heads of 128, FFN 11008, vocab 32000).
ModelConfig Llama2_7BConfig();

}  // namespace akv::cuda
