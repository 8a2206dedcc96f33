// akv perplexity: llama.cpp-convention perplexity of a text file.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.h"
#include "eval/perplexity.h"

namespace akv::cli {

namespace {

struct PplFlags {
  ModelFlags model;
  std::string file;
  int chunks = -1;
  std::string json;
  std::string kl_vs;
};

int Run(const PplFlags& f) {
  std::ifstream in(f.file, std::ios::binary);
  if (!in) return ReportError(NotFound("cannot read text file '" + f.file + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto engine = f.model.LoadEngine();
  if (!engine) return 1;
  PerplexityOptions o;
  o.n_ctx = f.model.ctx > 0 ? f.model.ctx : 2048;
  o.n_chunks = f.chunks;
  o.cache = f.model.cache;
  o.reference_cache = f.kl_vs;
  const bool tty = isatty(STDERR_FILENO);
  o.progress = [&](int done, int total, double ppl) {
    const int width = 30, filled = width * done / total;
    std::fprintf(stderr, "%s[%.*s%*s] %d/%d chunks, ppl %.4f%s", tty ? "\r" : "", filled,
                 "##############################", width - filled, "", done, total, ppl, tty ? "" : "\n");
    std::fflush(stderr);
  };
  const std::string where = engine->on_gpu() ? engine->device() : std::to_string(engine->n_threads()) + " threads";
  std::fprintf(stderr, "akv: perplexity of %s, ctx %d, cache %s, %s\n", f.file.c_str(), o.n_ctx, o.cache.c_str(),
               where.c_str());
  auto r = ComputePerplexity(*engine, ss.str(), o);
  if (tty) std::fputc('\n', stderr);
  if (!r.ok()) return ReportError(r.status());
  std::printf("PPL = %.4f +/- %.4f (mean NLL %.5f over %lld tokens, %d chunks of %d; %.0f tok/s)\n", r->ppl,
              r->ppl * r->nll_stderr, r->mean_nll, static_cast<long long>(r->n_scored), r->n_chunks, o.n_ctx,
              r->tokens_per_s);
  if (o.cache != "full")
    std::printf("cache: %s, %s of KV\n", TierSummary(r->cache).c_str(), HumanBytes(r->cache.total_bytes()).c_str());
  if (!o.reference_cache.empty())
    std::printf("vs %s: PPL %.4f (%+.2f%%), KL %.5f nats/token, top-1 agreement %.2f%%\n", o.reference_cache.c_str(),
                r->reference_ppl, 100.0 * (r->ppl / r->reference_ppl - 1), r->mean_kl, 100.0 * r->top1_agreement);
  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << "{\"model\":\"" << f.model.model << "\",\"file\":\"" << f.file << "\",\"ctx\":" << o.n_ctx
        << ",\"chunks\":" << r->n_chunks << ",\"cache\":\"" << o.cache << "\",\"ppl\":" << r->ppl
        << ",\"mean_nll\":" << r->mean_nll << ",\"n_scored\":" << r->n_scored
        << ",\"bits_per_value\":" << r->cache.bits_per_value << ",\"bits_per_value_total\":" << r->cache.bits_per_value_total
        << ",\"kv_bytes\":" << r->cache.total_bytes() << ",\"reference_cache\":\"" << o.reference_cache
        << "\",\"reference_ppl\":" << r->reference_ppl << ",\"mean_kl\":" << r->mean_kl
        << ",\"top1_agreement\":" << r->top1_agreement << ",\"seconds\":" << r->seconds << "}\n";
    if (!out) return ReportError(IoError("cannot write '" + f.json + "'"));
  }
  return 0;
}

}  // namespace

void RegisterPerplexity(CLI::App& app) {
  auto f = std::make_shared<PplFlags>();
  CLI::App* sub = app.add_subcommand("perplexity", "Perplexity of a text file (llama.cpp convention: chunks of --ctx, second half scored)");
  f->model.AddTo(sub);
  sub->add_option("-f,--file", f->file, "Text file")->required();
  sub->add_option("--chunks", f->chunks, "Chunks to evaluate (default: all)");
  sub->add_option("--json", f->json, "Also write the result as JSON to this file");
  sub->add_option("--kl-vs", f->kl_vs, "Also evaluate with this cache (e.g. full) and report KL divergence and top-1 agreement");
  sub->callback([f] {
    int rc = Run(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace akv::cli
