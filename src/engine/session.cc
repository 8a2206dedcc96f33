#include <algorithm>
#include <chrono>
#include <numeric>

#include "akv/akv.hpp"
#include "engine/gpu.h"
#include "engine/sampler.h"
#include "engine/text_stream.h"
#include "kv/kv_cache.h"
#include "model/model.h"

namespace akv {

namespace {
using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

struct Session::Scratch {
  ForwardScratch forward;
};

Session::Session(Engine* engine, int64_t n_ctx, std::unique_ptr<KvCache> cache)
    : engine_(engine), n_ctx_(n_ctx), cache_(std::move(cache)), scratch_(std::make_unique<Scratch>()) {}

Session::Session(Engine* engine, int64_t n_ctx, std::unique_ptr<GpuSession> gpu)
    : engine_(engine), n_ctx_(n_ctx), gpu_(std::move(gpu)), scratch_(std::make_unique<Scratch>()) {}

Session::~Session() = default;

void Session::Reset() {
  if (gpu_) GpuReset(*gpu_);
  else cache_->Clear();
  history_.clear();
  logits_.clear();
}

CacheStats Session::cache_stats() const { return gpu_ ? GpuCacheStats(*gpu_) : cache_->Stats(); }

std::span<const float> Session::last_logits() const { return logits_; }

Status Session::Prefill(std::span<const int32_t> tokens, float* all_logits) {
  if (tokens.empty()) return InvalidArgument("no tokens to process");
  if (n_past() + static_cast<int64_t>(tokens.size()) > n_ctx_)
    return OutOfRange("prompt of " + std::to_string(tokens.size()) + " tokens (+" + std::to_string(n_past()) +
                      " already in the context) does not fit the context of " + std::to_string(n_ctx_) +
                      " tokens (raise it with -c/--ctx)");
  const Model& model = engine_->model();
  const int n_vocab = model.config().n_vocab;
  if (gpu_) {
    AKV_RETURN_IF_ERROR(GpuPrefill(*gpu_, tokens, all_logits));
    const std::span<const float> last = GpuLastLogits(*gpu_);
    logits_.assign(last.begin(), last.end());
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    return Status::Ok();
  }
  std::vector<int32_t> positions(tokens.size());
  std::iota(positions.begin(), positions.end(), static_cast<int32_t>(n_past()));
  logits_.resize(n_vocab);
  AKV_RETURN_IF_ERROR(model.Forward(tokens.data(), positions.data(), static_cast<int64_t>(tokens.size()), *cache_,
                                    engine_->pool(), scratch_->forward, all_logits ? all_logits : logits_.data(),
                                    all_logits != nullptr));
  if (all_logits)
    std::copy_n(all_logits + (tokens.size() - 1) * n_vocab, n_vocab, logits_.begin());
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  return Status::Ok();
}

Status Session::Decode(int32_t token) {
  if (gpu_) {  // one captured CUDA graph per step
    if (n_past() + 1 > n_ctx_)
      return OutOfRange("the context of " + std::to_string(n_ctx_) + " tokens is full (raise it with -c/--ctx)");
    AKV_RETURN_IF_ERROR(GpuDecode(*gpu_, token));
    const std::span<const float> last = GpuLastLogits(*gpu_);
    logits_.assign(last.begin(), last.end());
    history_.push_back(token);
    return Status::Ok();
  }
  return Prefill(std::span<const int32_t>(&token, 1));
}

StatusOr<int32_t> Session::Sample(const SamplingParams& params) {
  if (logits_.empty()) return InvalidArgument("nothing to sample from: prefill a prompt first");
  AKV_RETURN_IF_ERROR(Sampler::Validate(params));
  if (!sampler_ || sampler_seed_ != params.seed) {
    sampler_ = std::make_unique<Sampler>(params.seed);
    sampler_seed_ = params.seed;
  }
  return sampler_->Sample(logits_, params, history_);
}

StatusOr<GenerationResult> Session::Generate(const std::string& prompt, const GenerateOptions& options) {
  return Run(prompt, options, nullptr);
}

StatusOr<GenerationResult> Session::Stream(const std::string& prompt, const GenerateOptions& options,
                                           const std::function<bool(const TokenEvent&)>& on_token) {
  return Run(prompt, options, &on_token);
}

StatusOr<GenerationResult> Session::Run(const std::string& prompt, const GenerateOptions& options,
                                        const std::function<bool(const TokenEvent&)>* on_token) {
  if (options.max_tokens < 0) return InvalidArgument("max_tokens must be >= 0");
  AKV_RETURN_IF_ERROR(Sampler::Validate(options.sampling));
  for (const auto& s : options.stop)
    if (s.empty()) return InvalidArgument("empty stop string");
  const Engine& eng = *engine_;
  std::vector<int32_t> prompt_tokens = eng.Tokenize(prompt, options.add_special && n_past() == 0);
  if (prompt_tokens.empty()) return InvalidArgument("the prompt is empty");

  GenerationResult res;
  res.stats.n_prompt = static_cast<int>(prompt_tokens.size());
  // Each sampled token is decoded before the next one is sampled; the last is not decoded.
  const int64_t room = n_ctx_ - n_past() - static_cast<int64_t>(prompt_tokens.size());
  if (room < 0) {
    return OutOfRange("prompt of " + std::to_string(prompt_tokens.size()) + " tokens does not fit the context of " +
                      std::to_string(n_ctx_) + " tokens" + (n_past() ? " (with " + std::to_string(n_past()) + " already used)" : "") +
                      "; raise it with -c/--ctx");
  }
  const int max_tokens = static_cast<int>(std::min<int64_t>(options.max_tokens, room + 1));

  const auto t0 = Clock::now();
  AKV_RETURN_IF_ERROR(Prefill(prompt_tokens));
  res.stats.prefill_ms = MsSince(t0);

  TextStream text(options.stop);  // UTF-8-safe release, stop strings cut
  res.finish_reason = "length";
  Clock::time_point t_decode;
  CacheStats stats_now;
  for (int i = 0; i < max_tokens; ++i) {
    if (i > 0) {
      AKV_RETURN_IF_ERROR(Decode(res.tokens.back()));
    }
    AKV_ASSIGN_OR_RETURN(int32_t tok, Sample(options.sampling));
    if (i == 0) {
      res.stats.ttft_ms = MsSince(t0);
      t_decode = Clock::now();
    }
    res.tokens.push_back(tok);
    res.stats.n_generated = i + 1;
    if (options.stop_at_eos && eng.IsEndOfGeneration(tok)) {
      res.finish_reason = "stop";
      break;
    }
    std::string piece = text.Push(eng.TokenPiece(tok));
    if (on_token) {
      TokenEvent ev;
      ev.token = tok;
      ev.index = i;
      ev.piece = std::move(piece);
      stats_now = cache_stats();
      ev.cache = &stats_now;
      if (!(*on_token)(ev)) {
        res.finish_reason = "cancelled";
        break;
      }
    }
    if (text.stopped()) {
      res.finish_reason = "stop";
      break;
    }
  }
  if (res.stats.n_generated > 0) res.stats.decode_ms = MsSince(t_decode);
  // Release whatever the stream held back (an incomplete character or partial stop match).
  std::string rest = text.Flush();
  if (on_token && !rest.empty() && res.finish_reason != "cancelled") {
    TokenEvent ev;
    ev.token = res.tokens.empty() ? -1 : res.tokens.back();
    ev.index = res.stats.n_generated;
    ev.piece = std::move(rest);
    (*on_token)(ev);
  }
  res.text = text.text();
  res.stats.cache = cache_stats();
  return res;
}

}  // namespace akv
