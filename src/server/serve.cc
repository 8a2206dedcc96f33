// Process-level serving: signal handling and the graceful-shutdown sequence.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "server/http_server.h"

namespace akv::server {

namespace {
sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server on write
}

int Serve(std::unique_ptr<Engine> engine, const ServerOptions& options) {
  BlockShutdownSignals();  // again, for callers that did not (threads started later inherit it)
  auto server = HttpServer::Create(std::move(engine), options);
  if (!server.ok()) {
    std::fprintf(stderr, "akv: error: %s\n", server.status().ToString().c_str());
    return 2;
  }
  auto port = (*server)->Bind();
  if (!port.ok()) {
    std::fprintf(stderr, "akv: error: %s\n", port.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "akv: listening on http://%s:%d (parallel %d, queue %d, cache %s)\n", options.host.c_str(),
               *port, options.scheduler.parallel, options.scheduler.max_queue, options.scheduler.cache.c_str());
  std::fflush(stderr);

  HttpServer* s = server->get();
  std::thread signals([s] {
    sigset_t set = ShutdownSignals();
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGINT || sig == SIGTERM) {
      std::fprintf(stderr, "akv: %s received, shutting down (in-flight requests get %.0f s to finish)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", s->options().shutdown_grace_s);
      s->Stop();
    }
  });
  s->Run();
  // Run() also returns if the listener fails; wake the signal thread so it can be joined.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  s->Stop();
  std::fprintf(stderr, "akv: server stopped\n");
  return 0;
}

}  // namespace akv::server
