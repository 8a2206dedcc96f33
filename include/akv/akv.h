/* akv C API: opaque handles, status codes, no exceptions cross it. Thread-safety: one session
 * per thread; an engine may be shared by sessions used one at a time.
 *
 *   akv_engine* e; akv_session* s; char* text;
 *   if (akv_engine_load("model.gguf", 0, &e) != AKV_OK) fprintf(stderr, "%s\n", akv_last_error());
 *   akv_session_new(e, 0, "full", &s);
 *   akv_generate_params p; akv_generate_params_default(&p); p.max_tokens = 32;
 *   akv_generate(s, "Once upon a time", &p, &text); puts(text); akv_string_free(text);
 *   akv_session_free(s); akv_engine_free(e);
 */
#ifndef AKV_AKV_H_
#define AKV_AKV_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum akv_status {
  AKV_OK = 0,
  AKV_INVALID_ARGUMENT = 1,
  AKV_NOT_FOUND = 2,
  AKV_CORRUPT = 3,
  AKV_UNSUPPORTED = 4,
  AKV_OUT_OF_RANGE = 5,
  AKV_RESOURCE_EXHAUSTED = 6,
  AKV_IO_ERROR = 7,
  AKV_INTERNAL = 8,
  AKV_CANCELLED = 9,
} akv_status;

typedef struct akv_engine akv_engine;
typedef struct akv_session akv_session;

typedef struct akv_generate_params {
  int32_t max_tokens;
  float temperature; /* <= 0: greedy */
  int32_t top_k;
  float top_p;
  float min_p;
  float repeat_penalty;
  uint64_t seed;
} akv_generate_params;

typedef struct akv_generate_stats {
  int32_t n_prompt, n_generated;
  double prefill_tokens_per_s, decode_tokens_per_s, ttft_ms;
  int64_t kv_bytes;
  double bits_per_value;
} akv_generate_stats;

/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
const char* akv_last_error(void);

akv_status akv_engine_load(const char* model_path, int32_t n_threads, akv_engine** out);
/* As akv_engine_load, on a device: NULL or "cpu", "cuda" (device 0) or "cuda:N". Without a CUDA
 * backend in the build, or without a GPU, fails with AKV_UNSUPPORTED and a message saying which;
 * an unknown device name is AKV_INVALID_ARGUMENT. The device is checked before the model is read. */
akv_status akv_engine_load_on(const char* model_path, int32_t n_threads, const char* device, akv_engine** out);
/* "cpu" or "cuda:N": where the engine's weights and its sessions' KV caches live. */
const char* akv_engine_device(const akv_engine* engine);
void akv_engine_free(akv_engine* engine);
int32_t akv_engine_n_vocab(const akv_engine* engine);

/* Tokenizes text (with BOS/EOS as the model says when add_special != 0). Writes up to
 * capacity ids; *n_tokens receives the full count (call again with a larger buffer if needed). */
akv_status akv_tokenize(const akv_engine* engine, const char* text, int32_t add_special, int32_t* tokens,
                        int32_t capacity, int32_t* n_tokens);

/* n_ctx 0: the model's training context. cache: "full" (or NULL). */
akv_status akv_session_new(akv_engine* engine, int32_t n_ctx, const char* cache, akv_session** out);
void akv_session_free(akv_session* session);
void akv_session_reset(akv_session* session);

void akv_generate_params_default(akv_generate_params* params);

/* Generates from prompt; *text receives a malloc'ed UTF-8 string to free with akv_string_free.
 * stats may be NULL. */
akv_status akv_generate(akv_session* session, const char* prompt, const akv_generate_params* params, char** text,
                        akv_generate_stats* stats);

/* Streams pieces to on_piece (return non-zero to stop early). */
typedef int (*akv_piece_callback)(const char* piece, size_t length, void* user_data);
akv_status akv_stream(akv_session* session, const char* prompt, const akv_generate_params* params,
                      akv_piece_callback on_piece, void* user_data, akv_generate_stats* stats);

void akv_string_free(char* text);

#ifdef __cplusplus
}
#endif

#endif /* AKV_AKV_H_ */
