#include <set>

#include "akv/akv.hpp"
#include "core/thread_pool.h"
#include "engine/gpu.h"
#include "engine/sampler.h"
#include "kv/cache_factory.h"
#include "model/model.h"

namespace akv {

StatusOr<std::unique_ptr<Engine>> Engine::Load(const EngineOptions& options) {
  if (options.model_path.empty()) return InvalidArgument("no model path given");
  if (options.n_threads < 0) return InvalidArgument("thread count must be >= 0");
  AKV_ASSIGN_OR_RETURN(const int gpu_index, ParseDevice(options.device));  // before the (slow) load
  std::unique_ptr<Engine> e(new Engine());
  AKV_ASSIGN_OR_RETURN(e->model_, Model::Load(options.model_path, &e->load_log_));
  if (gpu_index >= 0) {
    AKV_ASSIGN_OR_RETURN(e->gpu_, LoadGpuEngine(*e->model_, gpu_index, &e->device_, &e->load_log_));
  }
  const int n_threads = options.n_threads > 0 ? options.n_threads : ThreadPool::DefaultThreads();
  e->pool_ = std::make_unique<ThreadPool>(n_threads, options.pin_threads);

  const ModelConfig& c = e->model_->config();
  ModelInfo& i = e->info_;
  i.arch = c.arch;
  i.name = c.name;
  i.path = options.model_path;
  i.n_layer = c.n_layer;
  i.n_embd = c.n_embd;
  i.n_head = c.n_head;
  i.n_head_kv = c.n_head_kv;
  i.head_dim = c.head_dim;
  i.n_ff = c.n_ff;
  i.n_vocab = c.n_vocab;
  i.n_ctx_train = c.n_ctx_train;
  std::set<std::string> types;
  for (const GgufTensor& t : e->model_->gguf().tensors()) {
    i.n_params += t.n_elements();
    i.weight_bytes += static_cast<int64_t>(t.bytes);
    if (t.dims.size() == 2) types.insert(TypeName(t.type));
  }
  for (const auto& t : types) i.weight_types += (i.weight_types.empty() ? "" : " + ") + t;
  return e;
}

Engine::~Engine() = default;

int Engine::n_threads() const { return pool_->size(); }

StatusOr<std::unique_ptr<Session>> Engine::NewSession(const SessionOptions& options) {
  if (options.n_ctx < 0) return InvalidArgument("context size must be >= 0 (0 = model default)");
  const int64_t n_ctx = options.n_ctx > 0 ? options.n_ctx : model_->config().n_ctx_train;
  if (gpu_) {
    AKV_ASSIGN_OR_RETURN(auto gpu, NewGpuSession(*gpu_, options.cache, n_ctx));
    return std::unique_ptr<Session>(new Session(this, n_ctx, std::move(gpu)));
  }
  AKV_ASSIGN_OR_RETURN(auto cache, MakeKvCache(options.cache, model_->kv_shape(), n_ctx));
  return std::unique_ptr<Session>(new Session(this, n_ctx, std::move(cache)));
}

std::vector<int32_t> Engine::Tokenize(const std::string& text, bool add_special, bool parse_special) const {
  return model_->tokenizer().Encode(text, add_special, parse_special);
}

std::string Engine::Detokenize(const std::vector<int32_t>& tokens) const { return model_->tokenizer().Decode(tokens); }

std::string Engine::TokenPiece(int32_t token) const { return model_->tokenizer().TokenToPiece(token); }

Status Engine::DecodeBatch(std::span<Session* const> sessions, std::span<const int32_t> tokens) {
  if (sessions.size() != tokens.size()) return InvalidArgument("DecodeBatch: one token per session expected");
  const size_t n = sessions.size();
  if (n == 0) return Status::Ok();
  std::vector<KvCache*> caches(n);
  std::vector<int32_t> positions(n);
  for (size_t i = 0; i < n; ++i) {
    Session* s = sessions[i];
    if (s->engine_ != this) return InvalidArgument("DecodeBatch: session belongs to another engine");
    for (size_t j = 0; j < i; ++j)
      if (sessions[j] == s) return InvalidArgument("DecodeBatch: a session appears twice");
    if (s->n_past() + 1 > s->n_ctx_)
      return OutOfRange("DecodeBatch: session " + std::to_string(i) + " is at its context limit of " + std::to_string(s->n_ctx_));
    caches[i] = s->cache_.get();
    positions[i] = static_cast<int32_t>(s->n_past());
  }
  if (gpu_) {  // GPU sessions: one decode step (a CUDA graph replay) each, not batched yet
    for (size_t i = 0; i < n; ++i) AKV_RETURN_IF_ERROR(sessions[i]->Decode(tokens[i]));
    return Status::Ok();
  }
  const int n_vocab = model_->config().n_vocab;
  if (!batch_scratch_) batch_scratch_ = std::make_unique<ForwardScratch>();
  batch_logits_.resize(n * static_cast<size_t>(n_vocab));
  AKV_RETURN_IF_ERROR(model_->ForwardMulti(tokens.data(), positions.data(), caches.data(), static_cast<int64_t>(n),
                                           *pool_, *batch_scratch_, batch_logits_.data()));
  for (size_t i = 0; i < n; ++i) {
    Session* s = sessions[i];
    s->logits_.assign(batch_logits_.begin() + i * n_vocab, batch_logits_.begin() + (i + 1) * n_vocab);
    s->history_.push_back(tokens[i]);
  }
  return Status::Ok();
}

bool Engine::adds_bos() const { return model_->tokenizer().add_bos(); }
int32_t Engine::bos_token() const { return model_->tokenizer().bos(); }

bool Engine::IsEndOfGeneration(int32_t token) const { return model_->tokenizer().IsEndOfGeneration(token); }

}  // namespace akv
