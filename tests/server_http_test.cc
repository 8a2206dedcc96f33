// The server end to end on loopback: real HTTP (cpp-httplib client), the tiny llama model,
// ephemeral ports. Covers the endpoints, streaming, per-request cache specs, bad input (each
// a 4xx with an OpenAI-style error), auth, queue limits, client disconnects, timeouts, and
// graceful SIGTERM shutdown of the real `akv serve` binary.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "akv/akv.hpp"
#include "server/http_server.h"
#include "server/sse_parser.h"
#include "test_util.h"

namespace akv::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const char* kModel = "akv-tiny-llama-25m-f16.gguf";

class TestServer {
 public:
  explicit TestServer(ServerOptions o) {
    signal(SIGPIPE, SIG_IGN);
    auto engine = Engine::Load({.model_path = test::ModelPath(kModel), .n_threads = 2});
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    o.host = "127.0.0.1";
    o.port = 0;
    auto s = HttpServer::Create(std::move(*engine), o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    auto port = server_->Bind();
    EXPECT_TRUE(port.ok());
    port_ = *port;
    thread_ = std::thread([this] { server_->Run(); });
    EXPECT_TRUE(server_->WaitUntilListening(5s));
  }
  ~TestServer() {
    server_->Stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

ServerOptions BaseOptions() {
  ServerOptions o;
  o.scheduler.parallel = 2;
  o.scheduler.max_queue = 8;
  o.scheduler.n_ctx = 256;
  o.chat_template = "chatml";
  o.default_max_tokens = 16;
  o.max_body_bytes = 64 * 1024;
  return o;
}

struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  json j() const { return json::parse(body, nullptr, false); }
};

Reply Post(int port, const std::string& path, const std::string& body, httplib::Headers headers = {},
           int read_timeout_s = 60) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(read_timeout_s, 0);
  auto r = c.Post(path.c_str(), headers, body, "application/json");
  if (!r) return {};
  return {r->status, r->body, r->headers};
}

Reply Get(int port, const std::string& path, httplib::Headers headers = {}) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get(path.c_str(), headers);
  if (!r) return {};
  return {r->status, r->body, r->headers};
}

struct Stream {
  int status = 0;
  std::vector<std::string> events;  // SSE data payloads
  std::string body;                 // raw, when the answer was not a stream
};

// POSTs and reads the SSE answer; stops reading (closes the connection) after `max_events`.
Stream PostStream(int port, const std::string& path, const std::string& body, size_t max_events = SIZE_MAX) {
  Stream out;
  SseParser parser;
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.response_handler = [&](const httplib::Response& r) {
    out.status = r.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (out.status != 200) {
      out.body.append(data, n);
      return true;
    }
    for (auto& e : parser.Feed(std::string_view(data, n))) out.events.push_back(std::move(e));
    return out.events.size() < max_events;
  };
  auto r = c.send(req);
  if (r) out.status = r->status;
  return out;
}

// A gauge or counter value from /metrics ("name{labels}" exactly as printed).
double Metric(int port, const std::string& series) {
  Reply m = Get(port, "/metrics");
  std::smatch match;
  std::regex re("(^|\n)" + std::regex_replace(series, std::regex(R"([{}\[\]().+*?^$|\\])"), R"(\$&)") + " ([0-9.e+-]+)");
  if (!std::regex_search(m.body, match, re)) return -1;
  return std::stod(match[2]);
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = 30s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

void ExpectApiError(const Reply& r, int status, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  json j = r.j();
  ASSERT_FALSE(j.is_discarded()) << what << ": " << r.body;
  ASSERT_TRUE(j.contains("error")) << what;
  EXPECT_TRUE(j["error"]["message"].is_string()) << what;
  EXPECT_TRUE(j["error"]["type"].is_string()) << what;
}

class ServerHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::SharedDir().empty()) server_ = new TestServer(BaseOptions());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { AKV_REQUIRE_SHARED(); }
  int port() const { return server_->port(); }
  static TestServer* server_;
};
TestServer* ServerHttp::server_ = nullptr;

TEST_F(ServerHttp, HealthModelsMetrics) {
  Reply h = Get(port(), "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.j()["status"], "ok");
  Reply m = Get(port(), "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.j()["object"], "list");
  EXPECT_EQ(m.j()["data"][0]["id"], kModel);
  EXPECT_EQ(m.j()["data"][0]["meta"]["n_ctx"], 256);
  Reply met = Get(port(), "/metrics");
  EXPECT_EQ(met.status, 200);
  for (const char* name : {"akv_requests_total", "akv_time_to_first_token_seconds_bucket", "akv_inter_token_latency_seconds",
                           "akv_kv_tokens{tier=\"hot\"}", "akv_kv_bytes{tier=\"cold\"}", "akv_kv_promotions_total",
                           "akv_kv_demotions_total", "akv_slots 2"})
    EXPECT_NE(met.body.find(name), std::string::npos) << name;
  ExpectApiError(Get(port(), "/v1/nothing"), 404, "unknown route");
}

// Greedy output through the server equals the library's own Generate on the same prompt, also
// when two requests decode in the same batch.
TEST_F(ServerHttp, GreedyMatchesLibraryEvenWhenBatched) {
  auto engine = Engine::Load({.model_path = test::ModelPath(kModel), .n_threads = 1});
  ASSERT_TRUE(engine.ok());
  const std::vector<std::string> prompts = {"Once upon a time", "The captain said"};
  std::vector<std::string> expected;
  for (const auto& p : prompts) {
    auto s = (*engine)->NewSession({.n_ctx = 256});
    GenerateOptions g;
    g.max_tokens = 24;
    g.sampling.temperature = 0;
    expected.push_back((*s)->Generate(p, g)->text);
  }
  std::vector<Reply> replies(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] {
      replies[i] = Post(port(), "/v1/completions",
                        json{{"prompt", prompts[i]}, {"max_tokens", 24}, {"temperature", 0}}.dump());
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    json j = replies[i].j();
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["choices"][0]["text"], expected[i]);
    EXPECT_EQ(j["usage"]["completion_tokens"], 24);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_GT(j["akv"]["cache"]["hot"]["tokens"].get<int>(), 24);
  }
}

TEST_F(ServerHttp, StreamingMatchesNonStreaming) {
  const json req = {{"prompt", "It was a dark night"}, {"max_tokens", 20}, {"temperature", 0}};
  Reply whole = Post(port(), "/v1/completions", req.dump());
  ASSERT_EQ(whole.status, 200);
  json sreq = req;
  sreq["stream"] = true;
  sreq["stream_options"] = {{"include_usage", true}};
  Stream s = PostStream(port(), "/v1/completions", sreq.dump());
  ASSERT_EQ(s.status, 200);
  ASSERT_GE(s.events.size(), 3u);
  EXPECT_EQ(s.events.back(), "[DONE]");
  std::string text, finish;
  json usage;
  for (size_t i = 0; i + 1 < s.events.size(); ++i) {
    json e = json::parse(s.events[i], nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << s.events[i];
    EXPECT_EQ(e["object"], "text_completion");
    if (e.contains("usage")) usage = e["usage"];
    if (e["choices"].empty()) continue;
    text += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, whole.j()["choices"][0]["text"]);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(usage["completion_tokens"], 20);
}

TEST_F(ServerHttp, ChatCompletionAndStream) {
  const json req = {{"messages", {{{"role", "system"}, {"content", "You are terse."}}, {{"role", "user"}, {"content", "Hello"}}}},
                    {"max_tokens", 12},
                    {"temperature", 0},
                    {"logprobs", true},
                    {"top_logprobs", 2}};
  Reply r = Post(port(), "/v1/chat/completions", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.j();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 10);  // the rendered template, not just "Hello"
  const json& lp = j["choices"][0]["logprobs"]["content"];
  ASSERT_TRUE(lp.is_array());
  ASSERT_FALSE(lp.empty());
  for (const json& t : lp) {
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_LE(t["top_logprobs"].size(), 2u);
    EXPECT_TRUE(t["bytes"].is_array());
  }
  json sreq = req;
  sreq["stream"] = true;
  Stream s = PostStream(port(), "/v1/chat/completions", sreq.dump());
  ASSERT_EQ(s.status, 200);
  json first = json::parse(s.events.at(0));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 1; i + 1 < s.events.size(); ++i) {
    json e = json::parse(s.events[i]);
    if (e["choices"][0]["delta"].contains("content")) text += e["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, j["choices"][0]["message"]["content"]);
}

TEST_F(ServerHttp, LogprobsStopAndSeed) {
  Reply base = Post(port(), "/v1/completions",
                    json{{"prompt", "The sea"}, {"max_tokens", 30}, {"temperature", 0}, {"logprobs", 3}}.dump());
  ASSERT_EQ(base.status, 200);
  json j = base.j();
  const std::string text = j["choices"][0]["text"];
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 30u);
  EXPECT_EQ(lp["token_logprobs"].size(), 30u);
  for (const json& top : lp["top_logprobs"]) EXPECT_LE(top.size(), 3u);
  // Greedy picks the most likely token: its logprob is the best of the top list.
  double best = -1e9;
  for (auto& [tok, v] : lp["top_logprobs"][0].items()) best = std::max(best, v.get<double>());
  EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), best, 1e-4);

  ASSERT_GT(text.size(), 12u);
  const std::string stop = text.substr(8, 3);
  Reply stopped = Post(port(), "/v1/completions",
                       json{{"prompt", "The sea"}, {"max_tokens", 30}, {"temperature", 0}, {"stop", stop}}.dump());
  ASSERT_EQ(stopped.status, 200);
  EXPECT_EQ(stopped.j()["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(stopped.j()["choices"][0]["finish_reason"], "stop");

  const std::string seeded = json{{"prompt", "The sea"}, {"max_tokens", 16}, {"temperature", 1.0}, {"seed", 7}}.dump();
  Reply a = Post(port(), "/v1/completions", seeded), b = Post(port(), "/v1/completions", seeded);
  EXPECT_EQ(a.j()["choices"][0]["text"], b.j()["choices"][0]["text"]);
}

TEST_F(ServerHttp, PerRequestCacheSpec) {
  Reply bad = Post(port(), "/v1/completions", R"({"prompt":"x","akv":{"cache":"nope"}})");
  ExpectApiError(bad, 400, "unknown cache");
  EXPECT_NE(bad.j()["error"]["message"].get<std::string>().find("nope"), std::string::npos);
  EXPECT_EQ(bad.j()["error"]["param"], "akv.cache");
  Reply ok = Post(port(), "/v1/completions",
                  R"({"prompt":"Once upon a time","max_tokens":8,"akv":{"cache":"akv","preset":"balanced"}})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.j()["akv"]["cache_spec"], "akv:balanced");
  Reply full = Post(port(), "/v1/completions", R"({"prompt":"Once","max_tokens":4,"akv":{"cache":"full"}})");
  EXPECT_EQ(full.status, 200);
}

TEST_F(ServerHttp, BadInputGets4xxAndServerSurvives) {
  const std::string long_prompt = [] {
    std::string s;
    for (int i = 0; i < 400; ++i) s += "word" + std::to_string(i) + " ";
    return s;
  }();
  const std::vector<std::pair<std::string, int>> cases = {
      {"{", 400},
      {"", 400},
      {"[1,2]", 400},
      {R"({"prompt": 12})", 400},
      {R"({"prompt": "x", "max_tokens": "many"})", 400},
      {R"({"prompt": "x", "stream": "yes"})", 400},
      {R"({"prompt": "x", "max_tokens": 100000000})", 400},
      {R"({"prompt": "x", "max_tokens": 1e30})", 400},
      {R"({"prompt": "x", "temperature": -1})", 400},
      {R"({"prompt": "x", "top_p": -0.5})", 400},
      {"{\"prompt\": \"\xff\xfe bad bytes\"}", 400},
      {R"({"prompt": "\udc00 lone surrogate"})", 400},
      {std::string(200, '[') + std::string(200, ']'), 400},
      {R"({"prompt": [999999]})", 400},
      {json{{"prompt", long_prompt}}.dump(), 400},
      {R"({"prompt": "x", "n": 3})", 400},
  };
  for (const auto& [body, status] : cases) ExpectApiError(Post(port(), "/v1/completions", body), status, body.substr(0, 60));
  ExpectApiError(Post(port(), "/v1/chat/completions", R"({"messages": "hi"})"), 400, "messages string");
  Reply too_long = Post(port(), "/v1/completions", json{{"prompt", long_prompt}}.dump());
  EXPECT_EQ(too_long.j()["error"]["code"], "context_length_exceeded");
  ExpectApiError(Post(port(), "/v1/completions", std::string(100 * 1024, ' ') + R"({"prompt":"x"})"), 413, "oversized");
  // Unknown fields are ignored by default.
  EXPECT_EQ(Post(port(), "/v1/completions", R"({"prompt":"Hi","max_tokens":2,"frobnicate":true})").status, 200);
  EXPECT_EQ(Get(port(), "/health").status, 200);
}

TEST(ServerHttpOptions, UnknownFieldsRejectAndTruncation) {
  AKV_REQUIRE_SHARED();
  ServerOptions o = BaseOptions();
  o.unknown_fields = UnknownFields::kReject;
  o.scheduler.truncate_prompt = true;
  TestServer s(o);
  Reply r = Post(s.port(), "/v1/completions", R"({"prompt":"Hi","frobnicate":true})");
  ExpectApiError(r, 400, "unknown field");
  EXPECT_EQ(r.j()["error"]["param"], "frobnicate");
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += "word" + std::to_string(i) + " ";
  Reply t = Post(s.port(), "/v1/completions", json{{"prompt", long_prompt}, {"max_tokens", 8}}.dump());
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_GT(t.j()["akv"]["truncated_prompt_tokens"].get<int>(), 0);
  EXPECT_LE(t.j()["usage"]["prompt_tokens"].get<int>(), 256 - 8);
}

TEST(ServerHttpOptions, NoChatTemplateIsAClearError) {
  AKV_REQUIRE_SHARED();
  ServerOptions o = BaseOptions();
  o.chat_template = "";  // the llama test model has no tokenizer.chat_template
  TestServer s(o);
  Reply r = Post(s.port(), "/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}]})");
  ExpectApiError(r, 400, "no template");
  EXPECT_NE(r.j()["error"]["message"].get<std::string>().find("--chat-template"), std::string::npos);
  EXPECT_EQ(Post(s.port(), "/v1/completions", R"({"prompt":"Hi","max_tokens":2})").status, 200);
}

TEST(ServerHttpOptions, ApiKey) {
  AKV_REQUIRE_SHARED();
  ServerOptions o = BaseOptions();
  o.api_key = "s3cret";
  TestServer s(o);
  const std::string body = R"({"prompt":"Hi","max_tokens":2})";
  ExpectApiError(Post(s.port(), "/v1/completions", body), 401, "no key");
  ExpectApiError(Post(s.port(), "/v1/completions", body, {{"Authorization", "Bearer wrong"}}), 401, "wrong key");
  ExpectApiError(Get(s.port(), "/v1/models", {{"Authorization", "Bearer s3cre"}}), 401, "prefix of the key");
  EXPECT_EQ(Post(s.port(), "/v1/completions", body, {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(Get(s.port(), "/health").status, 200);  // health stays open for load balancers
}

TEST(ServerHttpOptions, QueueFullGives503WithRetryAfter) {
  AKV_REQUIRE_SHARED();
  ServerOptions o = BaseOptions();
  o.scheduler.parallel = 1;
  o.scheduler.max_queue = 1;
  TestServer s(o);
  const std::string slow = R"({"prompt":"Once","max_tokens":250,"ignore_eos":true})";
  Reply a, b;
  std::thread ta([&] { a = Post(s.port(), "/v1/completions", slow); });
  ASSERT_TRUE(WaitFor([&] { return Metric(s.port(), "akv_requests_active") == 1; }));
  std::thread tb([&] { b = Post(s.port(), "/v1/completions", slow); });
  ASSERT_TRUE(WaitFor([&] { return Metric(s.port(), "akv_requests_queued") == 1; }));
  Reply c = Post(s.port(), "/v1/completions", slow);
  ExpectApiError(c, 503, "queue full");
  EXPECT_EQ(c.j()["error"]["code"], "queue_full");
  EXPECT_EQ(c.headers.count("Retry-After"), 1u);
  ta.join();
  tb.join();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(Metric(s.port(), "akv_requests_rejected_total"), 1);
}

// A client that goes away cancels its generation and frees the slot (streaming and not).
TEST(ServerHttpOptions, DisconnectCancels) {
  AKV_REQUIRE_SHARED();
  ServerOptions o = BaseOptions();
  o.scheduler.parallel = 1;
  TestServer s(o);
  Stream st = PostStream(s.port(), "/v1/completions", R"({"prompt":"Once","max_tokens":250,"ignore_eos":true,"stream":true})",
                         3);
  EXPECT_EQ(st.status, 200);
  EXPECT_EQ(st.events.size(), 3u);
  ASSERT_TRUE(WaitFor([&] { return Metric(s.port(), "akv_generations_total{finish_reason=\"cancelled\"}") == 1; }));
  ASSERT_TRUE(WaitFor([&] { return Metric(s.port(), "akv_requests_active") == 0; }));

  httplib::Client c("127.0.0.1", s.port());
  c.set_read_timeout(0, 300000);  // gives up after 0.3 s, long before 250 tokens are done
  auto r = c.Post("/v1/completions", R"({"prompt":"Once","max_tokens":250,"ignore_eos":true})", "application/json");
  EXPECT_FALSE(r);
  ASSERT_TRUE(WaitFor([&] { return Metric(s.port(), "akv_generations_total{finish_reason=\"cancelled\"}") == 2; }));
  // The slot is free again: a short request completes at once.
  EXPECT_EQ(Post(s.port(), "/v1/completions", R"({"prompt":"Hi","max_tokens":2})", {}, 10).status, 200);
}

TEST(ServerHttpOptions, RequestTimeout) {
  AKV_REQUIRE_SHARED();
  ServerOptions o = BaseOptions();
  o.timeout_s = 0.3;
  TestServer s(o);
  Reply r = Post(s.port(), "/v1/completions", R"({"prompt":"Once","max_tokens":250,"ignore_eos":true})");
  ExpectApiError(r, 504, "timeout");
  Stream st = PostStream(s.port(), "/v1/completions", R"({"prompt":"Once","max_tokens":250,"ignore_eos":true,"stream":true})");
  ASSERT_FALSE(st.events.empty());
  json last = json::parse(st.events.back(), nullptr, false);
  EXPECT_TRUE(last.contains("error")) << st.events.back();  // the stream ends with an error event
}

// The real binary: SIGTERM while a stream is in flight lets it finish, then exits 0.
TEST(ServerBinary, SigtermFinishesInFlightAndExitsZero) {
  AKV_REQUIRE_SHARED();
  const std::filesystem::path cli = std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "akv";
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << "build the akv binary (target akv_cli) for this test: " << cli;
  int err_pipe[2];
  ASSERT_EQ(pipe(err_pipe), 0);
  const std::string model = test::ModelPath(kModel);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(err_pipe[1], STDERR_FILENO);
    close(err_pipe[0]);
    execl(cli.c_str(), "akv", "serve", "-m", model.c_str(), "--port", "0", "-c", "256", "-t", "2", "--parallel", "2",
          "--shutdown-grace", "120",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err_pipe[1]);
  // "akv: listening on http://127.0.0.1:PORT ..."
  std::string log;
  int port = 0;
  char buf[512];
  while (port == 0) {
    const ssize_t n = read(err_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    log.append(buf, n);
    std::smatch m;
    if (std::regex_search(log, m, std::regex(R"(127\.0\.0\.1:(\d+))"))) port = std::stoi(m[1]);
  }
  ASSERT_GT(port, 0) << log;
  std::atomic<bool> first_event{false};
  Stream st;
  std::thread client([&] {
    SseParser parser;
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = R"({"prompt":"Once","max_tokens":40,"ignore_eos":true,"stream":true})";
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      for (auto& e : parser.Feed(std::string_view(d, n))) st.events.push_back(e);
      first_event = true;
      return true;
    };
    auto r = c.send(req);
    if (r) st.status = r->status;
  });
  ASSERT_TRUE(WaitFor([&] { return first_event.load(); }));
  kill(pid, SIGTERM);
  client.join();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(err_pipe[0]);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(st.status, 200);
  ASSERT_FALSE(st.events.empty());
  EXPECT_EQ(st.events.back(), "[DONE]");
  json finish = json::parse(st.events[st.events.size() - 2]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");  // finished, not cut off
}

}  // namespace
}  // namespace akv::server
