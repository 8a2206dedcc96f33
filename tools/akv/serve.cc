// akv serve: the OpenAI-compatible HTTP server (src/server) on one model.
#include <cstdlib>

#include "common.h"
#include "server/http_server.h"

namespace akv::cli {

namespace {

struct ServeFlags {
  ModelFlags model;
  server::ServerOptions server;
  std::string prompt_overflow = "error";
  std::string unknown_fields = "ignore";
  double max_body_mib = 4;
};

int Serve(ServeFlags& f) {
  server::ServerOptions o = f.server;
  o.scheduler.n_ctx = f.model.ctx;
  o.scheduler.cache = f.model.cache;
  o.scheduler.truncate_prompt = f.prompt_overflow == "truncate";
  o.unknown_fields = f.unknown_fields == "reject" ? server::UnknownFields::kReject : server::UnknownFields::kIgnore;
  o.max_body_bytes = static_cast<size_t>(f.max_body_mib * 1024 * 1024);
  if (o.api_key.empty())
    if (const char* env = std::getenv("AKV_API_KEY")) o.api_key = env;
  // Before any thread exists (the engine's pool included), so only the signal thread sees them.
  server::BlockShutdownSignals();
  auto engine = f.model.LoadEngine();
  if (!engine) return 1;
  return server::Serve(std::move(engine), o);
}

}  // namespace

void RegisterServe(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions)");
  f->model.AddTo(sub);
  server::ServerOptions& s = f->server;
  sub->add_option("--host", s.host, "Address to listen on (loopback unless you mean otherwise)")->capture_default_str();
  sub->add_option("--port", s.port, "TCP port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  sub->add_option("--api-key", s.api_key, "Require 'Authorization: Bearer KEY' (default: $AKV_API_KEY; none if unset)");
  sub->add_option("--parallel,--np", s.scheduler.parallel, "Sessions decoding together (continuous batching slots)")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  sub->add_option("--queue", s.scheduler.max_queue, "Requests that may wait for a slot; beyond that: 503 + Retry-After")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  sub->add_option("--timeout", s.timeout_s, "Seconds a request may take, queueing included (then 503 or 504)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--chat-template", s.chat_template,
                  "Chat template family: chatml, llama2, llama3, qwen (default: from the model's metadata)");
  sub->add_option("-n,--n-predict", s.default_max_tokens, "max_tokens when a request gives none")
      ->capture_default_str()->check(CLI::Range(1, 1 << 24));
  sub->add_option("--max-body", f->max_body_mib, "Largest request body, MiB (larger: 413)")
      ->capture_default_str()->check(CLI::Range(0.001, 1024.0));
  sub->add_option("--prompt-overflow", f->prompt_overflow,
                  "Prompts longer than the context: error (400) or truncate (keep BOS and the end)")
      ->capture_default_str()->check(CLI::IsMember({"error", "truncate"}));
  sub->add_option("--unknown-fields", f->unknown_fields, "Request fields akv does not know: ignore or reject (400)")
      ->capture_default_str()->check(CLI::IsMember({"ignore", "reject"}));
  sub->add_option("--prefill-chunk", s.scheduler.prefill_chunk, "Prompt tokens per scheduler step (bounds decode stalls)")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--http-threads", s.http_threads, "HTTP worker threads (0: parallel + queue + 8)")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  sub->add_option("--shutdown-grace", s.shutdown_grace_s, "Seconds in-flight requests may finish after SIGINT/SIGTERM")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--alias", s.model_alias, "Model id reported by /v1/models (default: the file name)");
  sub->add_flag("--log", s.log_requests, "Log one line per request to stderr");
  sub->callback([f] {
    int rc = Serve(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace akv::cli
