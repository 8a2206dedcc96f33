// The OpenAI-compatible HTTP front end (cpp-httplib): routes, auth, request limits, and the
// handlers that turn a request into a scheduler Job and its events into a response or an
// SSE stream.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "akv/akv.hpp"
#include "server/chat_template.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/scheduler.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace akv::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port (Bind returns it)
  std::string api_key;          // "": no auth; else "Authorization: Bearer KEY" on all but /health
  SchedulerOptions scheduler;
  std::string chat_template;    // family name; "": from the model's tokenizer.chat_template
  size_t max_body_bytes = 4 << 20;
  UnknownFields unknown_fields = UnknownFields::kIgnore;
  int default_max_tokens = 256;
  double timeout_s = 600;       // per request, queue wait included
  int http_threads = 0;         // 0: parallel + queue + 8 (every waiting request holds one)
  double shutdown_grace_s = 10; // how long in-flight requests may finish after SIGINT/SIGTERM
  std::string model_alias;      // the id /v1/models reports; "": the model file's name
  bool log_requests = false;
};

class HttpServer {
 public:
  static StatusOr<std::unique_ptr<HttpServer>> Create(std::unique_ptr<Engine> engine, const ServerOptions& options);
  ~HttpServer();

  StatusOr<int> Bind();  // the port bound
  void Run();            // serves until Stop(); returns once every handler has finished
  bool WaitUntilListening(std::chrono::milliseconds timeout) const;
  // Graceful: stop accepting, let in-flight requests finish within the grace period, cancel
  // the rest. Safe to call from any thread, more than once.
  void Stop();

  const ServerOptions& options() const { return options_; }
  Metrics& metrics() { return metrics_; }

 private:
  HttpServer() = default;
  void Routes();
  bool Authorized(const httplib::Request& req) const;
  void HandleGenerate(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  void HandleModels(httplib::Response& res) const;
  void HandleHealth(httplib::Response& res) const;

  ServerOptions options_;
  std::unique_ptr<Engine> engine_;
  Metrics metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<httplib::Server> http_;
  StatusOr<ChatTemplate> chat_template_ = Status(StatusCode::kNotFound, "no chat template");
  ParserLimits limits_;
  std::string model_id_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> run_called_{false};
  std::atomic<uint64_t> next_id_{1};
};

// Blocks SIGINT/SIGTERM (so a dedicated thread can sigwait for them) and ignores SIGPIPE. Call
// before any thread starts: threads inherit the mask.
void BlockShutdownSignals();
// Runs the server until SIGINT or SIGTERM, then shuts down gracefully. Returns the exit code.
int Serve(std::unique_ptr<Engine> engine, const ServerOptions& options);

}  // namespace akv::server
