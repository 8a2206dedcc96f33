// akv run: generate text from a prompt, streaming tokens to stdout.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common.h"

namespace akv::cli {

namespace {

struct RunFlags {
  ModelFlags model;
  std::string prompt;
  std::string file;
  int n_predict = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool stats = false;
  bool ignore_eos = false;
  bool no_special = false;
};

StatusOr<std::string> ReadPrompt(const RunFlags& f) {
  if (!f.prompt.empty() && !f.file.empty()) return InvalidArgument("give the prompt with -p or -f, not both");
  if (!f.prompt.empty()) return f.prompt;
  if (!f.file.empty() && f.file != "-") {
    std::ifstream in(f.file, std::ios::binary);
    if (!in) return NotFound("cannot read prompt file '" + f.file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  if (f.file.empty() && isatty(STDIN_FILENO)) return InvalidArgument("no prompt: use -p TEXT, -f FILE, or pipe it on stdin");
  std::stringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

int Run(const RunFlags& f) {
  auto prompt = ReadPrompt(f);
  if (!prompt.ok()) return ReportError(prompt.status());
  auto engine = f.model.LoadEngine();
  if (!engine) return 1;
  auto session = engine->NewSession({.n_ctx = f.model.ctx, .cache = f.model.cache});
  if (!session.ok()) return ReportError(session.status());
  GenerateOptions opts;
  opts.max_tokens = f.n_predict;
  opts.sampling = f.sampling;
  opts.stop = f.stop;
  opts.stop_at_eos = !f.ignore_eos;
  opts.add_special = !f.no_special;
  std::fputs(prompt->c_str(), stdout);
  std::fflush(stdout);
  auto res = (*session)->Stream(*prompt, opts, [&](const TokenEvent& ev) {
    std::fputs(ev.piece.c_str(), stdout);
    if (f.stats && ev.cache && (ev.index + 1) % 32 == 0) std::fprintf(stderr, "\n%s\n", TierSummary(*ev.cache).c_str());
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!res.ok()) return ReportError(res.status());
  const GenerationStats& s = res->stats;
  std::fprintf(stderr,
               "\nakv: prompt %d tokens, %.1f tok/s | time to first token %.1f ms | generated %d tokens, %.1f tok/s | "
               "finish: %s\n",
               s.n_prompt, s.prefill_tokens_per_s(), s.ttft_ms, s.n_generated, s.decode_tokens_per_s(),
               res->finish_reason.c_str());
  if (f.stats) {
    const CacheStats& c = s.cache;
    std::fprintf(stderr, "akv: cache %s, %s of KV; %lld promotions, %lld demotions, %lld evictions\n",
                 TierSummary(c).c_str(), HumanBytes(c.total_bytes()).c_str(), static_cast<long long>(c.promotions),
                 static_cast<long long>(c.demotions), static_cast<long long>(c.evicted));
    const int64_t heads = std::max(1, c.n_head_kv);
    const bool policy = c.layer_policy.size() == c.hot_per_layer.size();
    std::fprintf(stderr, "akv: %-5s %8s %8s %8s %12s%s\n", "layer", "hot", "warm", "cold", "bytes",
                 policy ? "  entropy  variance  kurtosis  hot x" : "");
    for (size_t l = 0; l < c.hot_per_layer.size(); ++l) {
      const int64_t bytes = c.hot_per_layer[l].bytes + c.warm_per_layer[l].bytes + c.cold_per_layer[l].bytes;
      char extra[96] = "";
      if (policy)
        std::snprintf(extra, sizeof extra, "  %7.3f %9.2f %9.1f %6.2f", c.layer_policy[l].entropy, c.layer_policy[l].variance,
                      c.layer_policy[l].kurtosis, c.layer_policy[l].hot_scale);
      std::fprintf(stderr, "akv: %-5zu %8lld %8lld %8lld %12s%s\n", l, static_cast<long long>(c.hot_per_layer[l].tokens / heads),
                   static_cast<long long>(c.warm_per_layer[l].tokens / heads),
                   static_cast<long long>(c.cold_per_layer[l].tokens / heads), HumanBytes(bytes).c_str(), extra);
    }
  }
  return 0;
}

}  // namespace

void RegisterRun(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt (argument, file or stdin), streaming it");
  f->model.AddTo(sub);
  sub->add_option("-p,--prompt", f->prompt, "Prompt text");
  sub->add_option("-f,--file", f->file, "Read the prompt from a file ('-' for stdin)");
  sub->add_option("-n,--n-predict", f->n_predict, "Tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--temp", f->sampling.temperature, "Temperature (0: greedy)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--top-k", f->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", f->sampling.top_p, "Top-p (1: off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  sub->add_option("--min-p", f->sampling.min_p, "Min-p (0: off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  sub->add_option("--repeat-penalty", f->sampling.repeat_penalty, "Repeat penalty (1: off)")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--repeat-last-n", f->sampling.repeat_last_n, "Tokens the repeat penalty looks back over")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("-s,--seed", f->sampling.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--stop", f->stop, "Stop string (repeatable)");
  sub->add_flag("--ignore-eos", f->ignore_eos, "Keep generating after end-of-sequence tokens");
  sub->add_flag("--no-special", f->no_special, "Do not add BOS/EOS to the prompt");
  sub->add_flag("--stats", f->stats, "Print KV cache tier summaries while streaming");
  sub->callback([f] {
    int rc = Run(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace akv::cli
