// The C API over the C++ API: converts Status to codes + a thread-local message, and never
// lets an exception escape.
#include "akv/akv.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "akv/akv.hpp"

struct akv_engine {
  std::unique_ptr<akv::Engine> engine;
};
struct akv_session {
  std::unique_ptr<akv::Session> session;
};

namespace {

thread_local std::string g_last_error;

akv_status Fail(const akv::Status& st) {
  g_last_error = st.ToString();
  return static_cast<akv_status>(static_cast<int>(st.code()));
}
akv_status FailArg(const char* msg) { return Fail(akv::InvalidArgument(msg)); }

template <typename F>
akv_status Guard(F&& f) {
  try {
    g_last_error.clear();
    return f();
  } catch (const std::bad_alloc&) {
    return Fail(akv::Status(akv::StatusCode::kResourceExhausted, "out of memory"));
  } catch (const std::exception& e) {
    return Fail(akv::Internal(e.what()));
  }
}

akv::GenerateOptions ToOptions(const akv_generate_params* p) {
  akv::GenerateOptions o;
  akv_generate_params d;
  if (!p) {
    akv_generate_params_default(&d);
    p = &d;
  }
  o.max_tokens = p->max_tokens;
  o.sampling.temperature = p->temperature;
  o.sampling.top_k = p->top_k;
  o.sampling.top_p = p->top_p;
  o.sampling.min_p = p->min_p;
  o.sampling.repeat_penalty = p->repeat_penalty;
  o.sampling.seed = p->seed;
  return o;
}

void FillStats(const akv::GenerationResult& r, akv_generate_stats* s) {
  if (!s) return;
  s->n_prompt = r.stats.n_prompt;
  s->n_generated = r.stats.n_generated;
  s->prefill_tokens_per_s = r.stats.prefill_tokens_per_s();
  s->decode_tokens_per_s = r.stats.decode_tokens_per_s();
  s->ttft_ms = r.stats.ttft_ms;
  s->kv_bytes = r.stats.cache.total_bytes();
  s->bits_per_value = r.stats.cache.bits_per_value;
}

}  // namespace

extern "C" {

const char* akv_last_error(void) { return g_last_error.c_str(); }

akv_status akv_engine_load_on(const char* model_path, int32_t n_threads, const char* device, akv_engine** out) {
  return Guard([&] {
    if (!model_path || !out) return FailArg("akv_engine_load: null argument");
    *out = nullptr;
    auto e = akv::Engine::Load({.model_path = model_path, .n_threads = n_threads, .device = device ? device : "cpu"});
    if (!e.ok()) return Fail(e.status());
    *out = new akv_engine{std::move(*e)};
    return AKV_OK;
  });
}

akv_status akv_engine_load(const char* model_path, int32_t n_threads, akv_engine** out) {
  return akv_engine_load_on(model_path, n_threads, nullptr, out);
}

const char* akv_engine_device(const akv_engine* engine) { return engine ? engine->engine->device().c_str() : ""; }

void akv_engine_free(akv_engine* engine) { delete engine; }

int32_t akv_engine_n_vocab(const akv_engine* engine) { return engine ? engine->engine->info().n_vocab : 0; }

akv_status akv_tokenize(const akv_engine* engine, const char* text, int32_t add_special, int32_t* tokens,
                        int32_t capacity, int32_t* n_tokens) {
  return Guard([&] {
    if (!engine || !text || !n_tokens || capacity < 0 || (capacity > 0 && !tokens)) return FailArg("akv_tokenize: bad argument");
    std::vector<int32_t> ids = engine->engine->Tokenize(text, add_special != 0);
    *n_tokens = static_cast<int32_t>(ids.size());
    std::memcpy(tokens, ids.data(), sizeof(int32_t) * std::min<size_t>(ids.size(), capacity));
    return AKV_OK;
  });
}

akv_status akv_session_new(akv_engine* engine, int32_t n_ctx, const char* cache, akv_session** out) {
  return Guard([&] {
    if (!engine || !out) return FailArg("akv_session_new: null argument");
    *out = nullptr;
    auto s = engine->engine->NewSession({.n_ctx = n_ctx, .cache = cache ? cache : "full"});
    if (!s.ok()) return Fail(s.status());
    *out = new akv_session{std::move(*s)};
    return AKV_OK;
  });
}

void akv_session_free(akv_session* session) { delete session; }

void akv_session_reset(akv_session* session) {
  if (session) session->session->Reset();
}

void akv_generate_params_default(akv_generate_params* p) {
  if (!p) return;
  akv::GenerateOptions o;
  p->max_tokens = o.max_tokens;
  p->temperature = o.sampling.temperature;
  p->top_k = o.sampling.top_k;
  p->top_p = o.sampling.top_p;
  p->min_p = o.sampling.min_p;
  p->repeat_penalty = o.sampling.repeat_penalty;
  p->seed = o.sampling.seed;
}

akv_status akv_generate(akv_session* session, const char* prompt, const akv_generate_params* params, char** text,
                        akv_generate_stats* stats) {
  return Guard([&] {
    if (!session || !prompt || !text) return FailArg("akv_generate: null argument");
    *text = nullptr;
    auto r = session->session->Generate(prompt, ToOptions(params));
    if (!r.ok()) return Fail(r.status());
    *text = static_cast<char*>(std::malloc(r->text.size() + 1));
    if (!*text) return Fail(akv::Status(akv::StatusCode::kResourceExhausted, "out of memory"));
    std::memcpy(*text, r->text.c_str(), r->text.size() + 1);
    FillStats(*r, stats);
    return AKV_OK;
  });
}

akv_status akv_stream(akv_session* session, const char* prompt, const akv_generate_params* params,
                      akv_piece_callback on_piece, void* user_data, akv_generate_stats* stats) {
  return Guard([&] {
    if (!session || !prompt || !on_piece) return FailArg("akv_stream: null argument");
    auto r = session->session->Stream(prompt, ToOptions(params), [&](const akv::TokenEvent& ev) {
      return on_piece(ev.piece.c_str(), ev.piece.size(), user_data) == 0;
    });
    if (!r.ok()) return Fail(r.status());
    FillStats(*r, stats);
    return AKV_OK;
  });
}

void akv_string_free(char* text) { std::free(text); }

}  // extern "C"
