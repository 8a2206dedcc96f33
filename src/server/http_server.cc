#include "server/http_server.h"

#include <httplib.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

#include "model/model.h"
#include "server/conn_probe.h"
#include "server/openai_format.h"

namespace akv::server {

namespace {

using namespace std::chrono_literals;

// How often a waiting handler checks that its client is still connected.
constexpr std::chrono::milliseconds kProbeEvery{100};

void Reply(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  if (e.http_status == 503) res.set_header("Retry-After", "1");
  if (e.http_status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(e.ToJson(), "application/json");
}

// Bounded label set for /metrics, whatever paths clients try.
std::string EndpointLabel(const std::string& path) {
  for (const char* p : {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"})
    if (path == p) return p;
  return "other";
}

const char* ReasonFor(int status) {
  switch (status) {
    case 400: return "the request is malformed";
    case 404: return "no such endpoint";
    case 405: return "method not allowed";
    case 413: return "the request body is too large";
    case 414: return "the request URI is too long";
    default: return "request failed";
  }
}

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(std::unique_ptr<Engine> engine, const ServerOptions& o) {
  if (!engine) return InvalidArgument("no engine");
  if (o.timeout_s <= 0) return InvalidArgument("--timeout must be > 0");
  if (o.default_max_tokens < 1) return InvalidArgument("--n-predict must be >= 1");
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->options_ = o;
  s->engine_ = std::move(engine);
  AKV_ASSIGN_OR_RETURN(s->scheduler_, Scheduler::Create(s->engine_.get(), o.scheduler, &s->metrics_));
  if (!o.chat_template.empty()) {
    AKV_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplateByName(o.chat_template));
    s->chat_template_ = t;
  } else {
    auto jinja = s->engine_->model().gguf().GetStringOr("tokenizer.chat_template", "");
    s->chat_template_ = jinja.ok() ? DetectChatTemplate(*jinja) : StatusOr<ChatTemplate>(jinja.status());
  }
  s->limits_.max_tokens_limit = s->scheduler_->n_ctx();
  s->limits_.default_max_tokens = std::min(o.default_max_tokens, s->scheduler_->n_ctx());
  s->limits_.unknown_fields = o.unknown_fields;
  s->model_id_ = o.model_alias.empty() ? std::filesystem::path(s->engine_->info().path).filename().string()
                                       : o.model_alias;
  s->http_ = std::make_unique<httplib::Server>();
  s->Routes();
  return s;
}

HttpServer::~HttpServer() {
  Stop();
}

void HttpServer::Routes() {
  httplib::Server& h = *http_;
  const int threads = options_.http_threads > 0 ? options_.http_threads
                                                : options_.scheduler.parallel + options_.scheduler.max_queue + 8;
  h.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  h.set_payload_max_length(options_.max_body_bytes);
  h.set_read_timeout(10, 0);
  h.set_write_timeout(10, 0);
  h.set_keep_alive_max_count(1000);
  h.set_keep_alive_timeout(5);
  h.set_tcp_nodelay(true);  // stream tokens as they come, not in Nagle-sized bursts

  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health" || Authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    Reply(res, ApiError{401, "missing or wrong API key (send 'Authorization: Bearer KEY')", "authentication_error",
                        "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors httplib produces itself (unknown route, body over the limit, bad request line) get
  // the same JSON shape as ours; responses that already have a body are left alone.
  h.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                  httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e{res.status, ReasonFor(res.status), "invalid_request_error", "", ""};
    if (res.status == 404) {
      e.message = "no such endpoint: " + req.method + " " + req.path;
      e.type = "not_found_error";
    }
    if (res.status == 413)
      e.message = "the request body is larger than the limit of " + std::to_string(options_.max_body_bytes) +
                  " bytes (--max-body)";
    if (res.status >= 500) e.type = "server_error";
    res.set_content(e.ToJson(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  h.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    Reply(res, ApiError{500, what, "server_error", "", ""});
  });
  h.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.RecordStatus(EndpointLabel(req.path), res.status);
    if (options_.log_requests)
      std::fprintf(stderr, "akv: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });

  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) { HandleHealth(res); });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { HandleModels(res); });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
  });
  h.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(req, res, Endpoint::kCompletions);
  });
  h.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(req, res, Endpoint::kChat);
  });
}

bool HttpServer::Authorized(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  return ConstantTimeEquals(req.get_header_value("Authorization"), "Bearer " + options_.api_key);
}

void HttpServer::HandleHealth(httplib::Response& res) const {
  const bool draining = stopping_ || scheduler_->draining();
  res.status = draining ? 503 : 200;
  res.set_content(Dump({{"status", draining ? "shutting_down" : "ok"}}), "application/json");
}

void HttpServer::HandleModels(httplib::Response& res) const {
  const ModelInfo& i = engine_->info();
  nlohmann::json model = {{"id", model_id_},
                          {"object", "model"},
                          {"created", 0},
                          {"owned_by", "akv"},
                          {"meta",
                           {{"arch", i.arch},
                            {"n_params", i.n_params},
                            {"n_ctx", scheduler_->n_ctx()},
                            {"n_ctx_train", i.n_ctx_train},
                            {"n_vocab", i.n_vocab},
                            {"weights", i.weight_types},
                            {"cache", options_.scheduler.cache},
                            {"parallel", options_.scheduler.parallel},
                            {"chat_template", chat_template_.ok() ? chat_template_->name() : ""}}}};
  res.set_content(Dump({{"object", "list"}, {"data", nlohmann::json::array({model})}}), "application/json");
}

void HttpServer::HandleGenerate(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  const auto t0 = Clock::now();
  auto job = std::make_shared<Job>();
  ApiError error;
  if (!ParseCompletionRequest(req.body, endpoint, limits_, &job->request, &error)) return Reply(res, error);
  CompletionRequest& r = job->request;
  if (endpoint == Endpoint::kChat) {
    if (!chat_template_.ok())
      return Reply(res, ApiError{400, chat_template_.status().message(), "invalid_request_error", "messages",
                                 "chat_template_missing"});
    job->prompt_text = chat_template_->Render(r.messages);
    job->parse_special = true;
    for (const std::string& s : chat_template_->TurnEndStrings()) r.stop.push_back(s);
  } else {
    job->prompt_text = r.prompt;
  }
  job->cache_spec = r.cache_spec.empty() ? options_.scheduler.cache : r.cache_spec;
  job->submitted = t0;
  job->deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.timeout_s));
  if (stopping_ || !scheduler_->Submit(job)) {
    metrics_.RecordRejected();
    const bool draining = stopping_ || scheduler_->draining();
    return Reply(res, ApiError{503,
                               draining ? "the server is shutting down"
                                        : "the server is busy (" + std::to_string(options_.scheduler.max_queue) +
                                              " requests waiting); retry later",
                               "server_overloaded", "", draining ? "shutting_down" : "queue_full"});
  }

  ResponseMeta meta;
  meta.endpoint = endpoint;
  char id[48];
  std::snprintf(id, sizeof id, "%s-%016llx", endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl",
                static_cast<unsigned long long>(next_id_.fetch_add(1) * 0x9E3779B97F4A7C15ull));
  meta.id = id;
  meta.created = static_cast<int64_t>(std::time(nullptr));
  meta.model = model_id_;
  meta.cache_spec = job->cache_spec;
  auto probe = std::make_shared<ConnProbe>(req.local_port, req.remote_addr, req.remote_port);
  const Clock::time_point give_up = job->deadline + 10s;  // the scheduler enforces the deadline; this is a backstop

  // Wait for admission: errors found there (cache spec, prompt length) still get a 4xx status.
  std::deque<GenEvent> pending;
  for (bool admitted = false; !admitted;) {
    std::deque<GenEvent> events = job->Wait(kProbeEvery);
    while (!events.empty()) {
      GenEvent ev = std::move(events.front());
      events.pop_front();
      if (admitted) {
        pending.push_back(std::move(ev));
      } else if (ev.kind == GenEvent::Kind::kError) {
        return Reply(res, ev.error);
      } else if (ev.kind == GenEvent::Kind::kAdmitted) {
        admitted = true;
      }
    }
    if (!admitted && (probe->PeerGone() || Clock::now() > give_up)) {
      job->cancelled = true;
      return Reply(res, ApiError{499, "client closed the connection", "cancelled", "", ""});
    }
  }

  const bool want_logprobs = r.logprobs >= 0;
  if (!r.stream) {
    Accumulated acc;
    Clock::time_point next_probe = Clock::now() + kProbeEvery;
    for (;;) {
      if (pending.empty()) pending = job->Wait(kProbeEvery);
      // Tokens may arrive faster than the probe interval: probe by the clock, not on idle.
      if (Clock::now() >= next_probe) {
        next_probe = Clock::now() + kProbeEvery;
        if (probe->PeerGone() || Clock::now() > give_up) {
          job->cancelled = true;  // the scheduler frees the slot at its next step
          return Reply(res, ApiError{499, "client closed the connection", "cancelled", "", ""});
        }
      }
      if (pending.empty()) continue;
      GenEvent ev = std::move(pending.front());
      pending.pop_front();
      if (ev.kind == GenEvent::Kind::kToken) {
        acc.text += ev.text;
        for (auto& lp : ev.logprobs) acc.logprobs.push_back(std::move(lp));
      } else if (ev.kind == GenEvent::Kind::kError) {
        return Reply(res, ev.error);
      } else if (ev.kind == GenEvent::Kind::kDone) {
        acc.done = std::move(ev);
        break;
      }
    }
    res.set_content(CompletionBody(meta, acc, want_logprobs), "application/json");
    metrics_.RecordDuration(std::chrono::duration<double>(Clock::now() - t0).count());
    return;
  }

  // Streaming: the provider runs on this handler thread after the headers are sent, and
  // returns only when the generation is over (or the client is gone).
  struct StreamState {
    std::shared_ptr<Job> job;
    std::shared_ptr<ConnProbe> probe;
    std::deque<GenEvent> pending;
    ResponseMeta meta;
    bool want_logprobs = false, include_usage = false;
    Clock::time_point t0, give_up;
  };
  auto st = std::make_shared<StreamState>();
  st->job = job;
  st->probe = probe;
  st->pending = std::move(pending);
  st->meta = meta;
  st->want_logprobs = want_logprobs;
  st->include_usage = r.include_usage;
  st->t0 = t0;
  st->give_up = give_up;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st](size_t, httplib::DataSink& sink) -> bool {
        auto cancel = [&] {
          st->job->cancelled = true;
          return false;
        };
        const std::string start = StreamStartChunk(st->meta);
        if (!start.empty() && !sink.write(start.data(), start.size())) return cancel();
        Clock::time_point next_probe = Clock::now() + kProbeEvery;
        for (;;) {
          std::deque<GenEvent> events = st->pending.empty() ? st->job->Wait(kProbeEvery) : std::move(st->pending);
          st->pending.clear();
          // Writes fail once the client is gone, but only after the kernel learns it; the probe
          // also catches a client that leaves while nothing is being written.
          if (Clock::now() >= next_probe) {
            next_probe = Clock::now() + kProbeEvery;
            if (st->probe->PeerGone() || Clock::now() > st->give_up) return cancel();
          }
          if (events.empty()) continue;
          for (GenEvent& ev : events) {
            std::string out;
            bool last = false;
            if (ev.kind == GenEvent::Kind::kToken) {
              out = StreamTextChunk(st->meta, ev, st->want_logprobs);
            } else if (ev.kind == GenEvent::Kind::kDone) {
              out = StreamFinishChunk(st->meta, ev);
              if (st->include_usage) out += StreamUsageChunk(st->meta, ev);
              out += kStreamDone;
              last = true;
            } else if (ev.kind == GenEvent::Kind::kError) {
              out = StreamErrorEvent(ev.error);  // the status line is gone; the error travels in the stream
              last = true;
            }
            if (!out.empty() && !sink.write(out.data(), out.size())) return cancel();
            if (last) {
              sink.done();
              metrics_.RecordDuration(std::chrono::duration<double>(Clock::now() - st->t0).count());
              return true;
            }
          }
        }
      },
      [st](bool success) {
        if (!success) st->job->cancelled = true;
      });
}

StatusOr<int> HttpServer::Bind() {
  if (options_.port < 0 || options_.port > 65535) return InvalidArgument("--port must be in [0, 65535]");
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port <= 0) return IoError("cannot bind to " + options_.host + " (any port)");
  } else if (!http_->bind_to_port(options_.host, port)) {
    return IoError("cannot bind to " + options_.host + ":" + std::to_string(port) + " (in use, or not an address here)");
  }
  return port;
}

void HttpServer::Run() {
  scheduler_->Start();
  run_called_ = true;
  if (!stopping_) http_->listen_after_bind();
}

bool HttpServer::WaitUntilListening(std::chrono::milliseconds timeout) const {
  const auto until = Clock::now() + timeout;
  while (!http_->is_running()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  // Stop accepting first, then let the scheduler finish (or, after the grace period, cancel)
  // what is in flight; the handlers waiting on those jobs then complete and Run() returns.
  // httplib's stop() does nothing before the listener runs: give a starting Run() a moment.
  if (run_called_) (void)WaitUntilListening(2s);
  if (http_) http_->stop();
  if (scheduler_)
    scheduler_->Shutdown(std::chrono::milliseconds(static_cast<int64_t>(options_.shutdown_grace_s * 1000)));
}

}  // namespace akv::server
