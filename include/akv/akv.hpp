// akv C++ API: load a GGUF model once (Engine), run sequences on it (Session).
//
//   auto engine = akv::Engine::Load({.model_path = "model.gguf"});
//   auto session = (*engine)->NewSession({.n_ctx = 4096, .cache = "full"});
//   auto result = (*session)->Generate("Once upon a time", {.max_tokens = 64});
//   (*session)->Stream(prompt, opts, [](const akv::TokenEvent& e) { std::cout << e.piece; return true; });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "akv/cache_stats.h"
#include "akv/status.h"

namespace akv {

class Model;
class ThreadPool;
class KvCache;
class Sampler;
struct ForwardScratch;

struct EngineOptions {
  std::string model_path;
  int n_threads = 0;  // 0: all cores available to the process
  // Pin thread i to the i-th CPU of the process (the thread calling into the engine to the
  // first) when there are no more threads than CPUs. Spin-waiting threads that the OS leaves on
  // one CPU otherwise yield to each other (measured 3x slower). Off: the OS places them.
  bool pin_threads = true;
  // Where the forward pass and the KV cache run: "cpu", or "cuda" / "cuda:N" (the GPU backend:
  // needs a build with AKV_CUDA and a device; Load fails with a message otherwise).
  std::string device = "cpu";
};

struct ModelInfo {
  std::string arch, name, path;
  int n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
  int n_ctx_train = 0;
  int64_t n_params = 0;
  int64_t weight_bytes = 0;
  std::string weight_types;  // e.g. "f16" or "q4_0 + q8_0"
};

struct SessionOptions {
  int n_ctx = 0;              // 0: the model's training context
  std::string cache = "full"; // KV cache spec (see `akv run --help`)
};

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 0xA4B;
};

struct GenerateOptions {
  int max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (not included in the text)
  bool add_special = true;        // BOS/EOS as the model's metadata says
  bool stop_at_eos = true;
};

struct GenerationStats {
  int n_prompt = 0, n_generated = 0;
  double prefill_ms = 0, decode_ms = 0;
  double ttft_ms = 0;  // prompt submitted -> first token sampled
  double prefill_tokens_per_s() const { return prefill_ms > 0 ? n_prompt * 1000.0 / prefill_ms : 0; }
  double decode_tokens_per_s() const { return decode_ms > 0 && n_generated > 1 ? (n_generated - 1) * 1000.0 / decode_ms : 0; }
  CacheStats cache;
};

struct GenerationResult {
  std::string text;
  std::vector<int32_t> tokens;
  std::string finish_reason;  // "stop" (EOS or stop string), "length", "cancelled"
  GenerationStats stats;
};

struct TokenEvent {
  int32_t token = 0;
  std::string piece;  // complete UTF-8 text released by this token (may be empty)
  int index = 0;      // 0-based index among generated tokens
  const CacheStats* cache = nullptr;  // cache state after this token
};

class Session;
struct GpuEngine;
struct GpuSession;

class Engine {
 public:
  static StatusOr<std::unique_ptr<Engine>> Load(const EngineOptions& options);
  ~Engine();

  const ModelInfo& info() const { return info_; }
  const std::vector<std::string>& load_log() const { return load_log_; }
  int n_threads() const;
  // "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)" when the GPU backend runs the model.
  const std::string& device() const { return device_; }
  bool on_gpu() const { return gpu_ != nullptr; }

  StatusOr<std::unique_ptr<Session>> NewSession(const SessionOptions& options = {});

  std::vector<int32_t> Tokenize(const std::string& text, bool add_special = true, bool parse_special = false) const;
  std::string Detokenize(const std::vector<int32_t>& tokens) const;
  std::string TokenPiece(int32_t token) const;

  // One decode step for several sessions at once (continuous batching): appends tokens[i] to
  // sessions[i] and refreshes each session's last logits. The sessions' weight matmuls run as
  // one batch; attention runs per session over its own cache (on a GPU engine: one decode step
  // per session, not batched yet). Not thread-safe against other calls on the same engine.
  Status DecodeBatch(std::span<Session* const> sessions, std::span<const int32_t> tokens);
  bool IsEndOfGeneration(int32_t token) const;
  bool adds_bos() const;      // the model's metadata asks for a BOS token
  int32_t bos_token() const;

  // Internals for the layers built on the engine (eval, server, tools).
  const Model& model() const { return *model_; }
  ThreadPool& pool() const { return *pool_; }

 private:
  Engine() = default;
  std::unique_ptr<Model> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ForwardScratch> batch_scratch_;  // DecodeBatch's work buffers
  std::vector<float> batch_logits_;
  ModelInfo info_;
  std::vector<std::string> load_log_;
  std::string device_ = "cpu";
  std::unique_ptr<GpuEngine> gpu_;  // the weights on the device (device "cuda")
};

class Session {
 public:
  ~Session();

  // Appends tokens to the sequence. all_logits (may be null): [tokens.size(), n_vocab].
  // The last token's logits are kept for sampling either way.
  Status Prefill(std::span<const int32_t> tokens, float* all_logits = nullptr);
  // Samples from the last logits (repeat penalty over the sequence's recent tokens).
  StatusOr<int32_t> Sample(const SamplingParams& params);
  // Appends one token (a decode step).
  Status Decode(int32_t token);
  std::span<const float> last_logits() const;

  StatusOr<GenerationResult> Generate(const std::string& prompt, const GenerateOptions& options);
  // on_token returns false to stop (finish_reason "cancelled").
  StatusOr<GenerationResult> Stream(const std::string& prompt, const GenerateOptions& options,
                                    const std::function<bool(const TokenEvent&)>& on_token);

  void Reset();  // empty the cache, keep the allocation
  int64_t n_past() const { return static_cast<int64_t>(history_.size()); }
  int64_t n_ctx() const { return n_ctx_; }
  CacheStats cache_stats() const;
  // The CPU KV cache (CPU sessions only; a GPU session's cache lives on the device: cache_stats()).
  KvCache& cache() { return *cache_; }
  bool on_gpu() const { return gpu_ != nullptr; }

 private:
  friend class Engine;
  struct Scratch;
  Session(Engine* engine, int64_t n_ctx, std::unique_ptr<KvCache> cache);
  Session(Engine* engine, int64_t n_ctx, std::unique_ptr<GpuSession> gpu);
  StatusOr<GenerationResult> Run(const std::string& prompt, const GenerateOptions& options,
                                 const std::function<bool(const TokenEvent&)>* on_token);

  Engine* engine_;
  int64_t n_ctx_;
  std::unique_ptr<KvCache> cache_;      // CPU sessions
  std::unique_ptr<GpuSession> gpu_;     // GPU sessions (engine device "cuda")
  std::unique_ptr<Scratch> scratch_;
  std::vector<int32_t> history_;
  std::vector<float> logits_;
  std::unique_ptr<Sampler> sampler_;
  uint64_t sampler_seed_ = 0;
};

}  // namespace akv
