// akv eval: accuracy and quality of KV caches on one model: perplexity and KL vs the full
// cache, delayed recall (one fact, several facts, several queries), the classic pass-key
// prompt; over a grid of methods x budgets x contexts x depths x trials. Writes results.json
// (every raw result), results.md and a self-contained report.html to --out.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common.h"
#include "eval/eval_grid.h"
#include "eval/eval_report.h"
#include "eval/eval_runner.h"
#include "eval/progress_bar.h"

namespace akv::cli {

namespace {

struct EvalFlags {
  std::string model;
  int threads = 0;
  std::string device = "cpu";
  std::vector<std::string> tasks = {"recall"};
  std::vector<std::string> methods = {"full", "akv:balanced"};
  std::vector<std::string> budgets = {"0.25"};
  std::vector<int> contexts = {1024};
  std::vector<std::string> depths = {"0.05", "0.25", "0.5", "0.75", "0.95"};
  int trials = 3;
  uint64_t seed = 1;
  int facts = 4;
  int digits = 5;
  std::string templates;
  std::vector<std::string> filler;
  std::string text;
  int chunks = 1;
  std::string out = "eval-out";
  std::vector<std::string> report_from;
  std::string title = "akv eval results";
  std::string intro_file;
  std::string md;
  int bar_ctx = 0;
  std::string bar_budget = "0.25";
};

std::string SharedDir() {
  const char* env = std::getenv("AKV_SHARED");
  return env ? env : "../shared";
}

StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

StatusOr<double> ParseDepth(const std::string& s) {
  const bool pct = !s.empty() && s.back() == '%';
  const std::string num = pct ? s.substr(0, s.size() - 1) : s;
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size()) return InvalidArgument("bad depth '" + s + "' (0.05 or 5%)");
  const double d = pct ? v / 100 : v;
  if (!(d >= 0 && d <= 1)) return InvalidArgument("depth '" + s + "' is outside 0..1 (0%..100%)");
  return d;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

int WriteOut(const EvalRun& run, const EvalFlags& f) {
  ReportOptions ro;
  ro.title = f.title;
  ro.bar_ctx = f.bar_ctx;
  ro.bar_budget = f.bar_budget;
  if (!f.intro_file.empty()) {
    auto intro = ReadText(f.intro_file);
    if (!intro.ok()) return ReportError(intro.status());
    ro.intro = *intro;
    while (!ro.intro.empty() && ro.intro.back() == '\n') ro.intro.pop_back();
  }
  if (Status st = WriteReports(run, f.out, ro); !st.ok()) return ReportError(st);
  const std::string md = RenderMarkdown(run, ro);
  if (!f.md.empty()) {
    std::ofstream out(f.md, std::ios::binary);
    out << md;
    if (!out) return ReportError(IoError("cannot write '" + f.md + "'"));
  }
  std::fputs(md.c_str(), stdout);
  std::fprintf(stderr, "akv: wrote %s/results.json, %s/results.md, %s/report.html%s\n", f.out.c_str(), f.out.c_str(),
               f.out.c_str(), f.md.empty() ? "" : (" and " + f.md).c_str());
  return 0;
}

int Run(const EvalFlags& f) {
  if (!f.report_from.empty()) {
    // Several runs (e.g. recall and perplexity grids run separately) merge into one report;
    // the first run's meta heads it, the others' are kept under "merged".
    EvalRun merged;
    for (const std::string& path : f.report_from) {
      auto run = ReadRunJson(path);
      if (!run.ok()) return ReportError(run.status());
      if (merged.meta.is_null() || merged.meta.empty()) {
        merged.meta = run->meta;
      } else {
        merged.meta["merged"].push_back(run->meta);
      }
      for (auto& r : run->records) merged.records.push_back(std::move(r));
    }
    return WriteOut(merged, f);
  }
  if (f.model.empty()) return ReportError(InvalidArgument("--model is required (or set AKV_MODEL), unless --report-from"));
  GridSpec grid;
  grid.tasks.clear();
  for (const auto& t : f.tasks) {
    auto task = ParseTask(t);
    if (!task.ok()) return ReportError(task.status());
    grid.tasks.push_back(*task);
  }
  grid.methods = SplitMethodList(f.methods);
  grid.budgets = f.budgets;
  grid.contexts = f.contexts;
  grid.depths.clear();
  for (const auto& d : f.depths) {
    auto v = ParseDepth(d);
    if (!v.ok()) return ReportError(v.status());
    grid.depths.push_back(*v);
  }
  grid.trials = f.trials;
  grid.seed = f.seed;

  EvalOptions o;
  o.n_facts = f.facts;
  o.value_digits = f.digits;
  auto templates = SelectTemplates(f.templates);
  if (!templates.ok()) return ReportError(templates.status());
  o.templates = *templates;
  o.ppl_chunks = f.chunks;
  bool need_filler = false, need_text = false;
  for (EvalTask t : grid.tasks) {
    need_text |= t == EvalTask::kPerplexity;
    need_filler |= t == EvalTask::kRecall || t == EvalTask::kMultiFact || t == EvalTask::kMultiQuery;
  }
  const std::string shared = SharedDir();
  std::vector<std::string> filler_files = f.filler;
  if (filler_files.empty()) filler_files = {shared + "/data/treasure_island.txt", shared + "/data/secret_garden.txt"};
  const std::string text_file = f.text.empty() ? shared + "/data/treasure_island.txt" : f.text;
  FillerCorpus corpus;
  if (need_filler) {
    auto c = FillerCorpus::Load(filler_files);
    if (!c.ok()) return ReportError(c.status());
    corpus = std::move(*c);
    o.filler = &corpus;
  }
  if (need_text) {
    auto t = ReadText(text_file);
    if (!t.ok()) return ReportError(t.status());
    o.ppl_text = std::move(*t);
  }

  auto engine = Engine::Load({.model_path = f.model, .n_threads = f.threads, .device = f.device});
  if (!engine.ok()) return ReportError(engine.status());
  Engine& eng = **engine;
  auto items = ExpandGrid(grid, GeometryOf(eng));
  if (!items.ok()) return ReportError(items.status());
  std::fprintf(stderr, "akv: eval %s on %s: %zu runs, %d threads\n", Join(f.tasks).c_str(), eng.info().name.c_str(),
               items->size(), eng.n_threads());

  ProgressBar bar(stderr, isatty(STDERR_FILENO), items->size());
  o.progress = [&](size_t done, size_t, const EvalRecord& r) {
    char note[256];
    std::string result;
    if (!r.error.empty()) {
      result = "not available";
    } else if (r.task == "ppl") {
      char b[64];
      std::snprintf(b, sizeof b, "ppl %.3f", r.ppl);
      result = b;
    } else {
      result = std::to_string(r.correct()) + "/" + std::to_string(r.queries.size()) + " correct";
    }
    std::snprintf(note, sizeof note, "%s ctx=%d%s t=%d %s: %s", r.task.c_str(), r.n_ctx,
                  r.depth >= 0 ? (" d=" + std::to_string(r.depth).substr(0, 4)).c_str() : "", r.trial, r.Label().c_str(),
                  result.c_str());
    bar.Update(done, note);
  };
  bar.Update(0, "");
  const auto t0 = std::chrono::steady_clock::now();
  auto records = RunGrid(eng, grid, *items, o);
  bar.Finish();
  if (!records.ok()) return ReportError(records.status());

  EvalRun run;
  run.records = std::move(*records);
  std::vector<std::string> contexts;
  for (int c : f.contexts) contexts.push_back(std::to_string(c));
  run.meta = {{"model", eng.info().name + " (" + f.model.substr(f.model.find_last_of('/') + 1) + ")"},
              {"tasks", Join(f.tasks)},
              {"methods", Join(grid.methods)},
              {"budgets", Join(f.budgets)},
              {"contexts", Join(contexts)},
              {"depths", Join(f.depths)},
              {"trials", f.trials},
              {"seed", f.seed},
              {"threads", eng.n_threads()},
              {"device", eng.on_gpu() ? eng.device() : std::string("cpu")},
              {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  if (need_filler) run.meta["filler"] = Join(filler_files);
  if (need_text) {
    run.meta["ppl_text"] = text_file;
    run.meta["ppl_chunks"] = f.chunks;
  }
  if (need_filler) {
    run.meta["templates"] = f.templates.empty() ? "all" : f.templates;
    run.meta["value_digits"] = f.digits;
    run.meta["facts"] = f.facts;
  }
  return WriteOut(run, f);
}

}  // namespace

void RegisterEval(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* sub = app.add_subcommand(
      "eval", "KV cache accuracy: perplexity/KL vs full, delayed recall, multi-fact, multi-query, pass-key; a grid of "
              "methods x budgets x contexts x depths; writes results.json, results.md, report.html");
  if (const char* env = std::getenv("AKV_MODEL")) f->model = env;
  sub->add_option("-m,--model", f->model, "GGUF model file (default: $AKV_MODEL)");
  sub->add_option("-t,--threads", f->threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
  sub->add_option("--device", f->device,
                  "cpu, or cuda / cuda:N (builds with AKV_CUDA): the GPU caches (full, akv-balanced, akv-int2, akv-cold, "
                  "akv:sink=..,warm=..) run as given, use --budgets none")
      ->capture_default_str();
  sub->add_option("--task", f->tasks, "Tasks: ppl, recall, multifact, multiquery, passkey (comma list)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--methods", f->methods,
                  "Cache specs (comma list): full, akv[:preset], h2o, snapkv, window, kivi, uniform, ...; key=value "
                  "pieces belong to the method before them (akv:balanced,group_size=128,h2o); a spec with its own "
                  "budget (kivi:2, h2o,max_total=512) runs as given")
      ->capture_default_str();
  sub->add_option("--budgets", f->budgets,
                  "KV memory budgets: fraction of the f16 cache (0.25 or 25%), f16 tokens (1024t) or bits per value (4b); "
                  "eviction methods get max_total, akv kv_budget_mb, kivi/uniform the bit width that fits; none: every "
                  "method as given")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-c,--ctx", f->contexts, "Context lengths in tokens (comma list)")->delimiter(',')->capture_default_str();
  sub->add_option("--depths", f->depths, "Depths of the planted fact (0.05 or 5%, comma list)")->delimiter(',')->capture_default_str();
  sub->add_option("--trials", f->trials, "Prompts per (context, depth)")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seed", f->seed, "Seed of the prompts (same seed: same prompts and results)")->capture_default_str();
  sub->add_option("--facts", f->facts, "multifact: facts in the context (one asked)")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--digits", f->digits, "Digits of each value")->check(CLI::Range(1, 10))->capture_default_str();
  sub->add_option("--templates", f->templates, "Fact templates (comma list of quote, card, phone, room; default: all)");
  sub->add_option("--filler", f->filler, "Filler text files (default: $AKV_SHARED/data/{treasure_island,secret_garden}.txt)")
      ->delimiter(',');
  sub->add_option("-f,--text", f->text, "ppl: text file (default: $AKV_SHARED/data/treasure_island.txt)");
  sub->add_option("--chunks", f->chunks, "ppl: chunks per context")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-o,--out", f->out, "Output folder")->capture_default_str();
  sub->add_option("--report-from", f->report_from, "Only write the reports, from these results.json files (comma list: merged)")
      ->delimiter(',');
  sub->add_option("--title", f->title, "Report title")->capture_default_str();
  sub->add_option("--intro-file", f->intro_file, "Markdown put after the title");
  sub->add_option("--md", f->md, "Also write the Markdown report to this path");
  sub->add_option("--bar-ctx", f->bar_ctx, "Context of the AKV bar check (default: the largest)");
  sub->add_option("--bar-budget", f->bar_budget, "Budget of the AKV bar check")->capture_default_str();
  sub->callback([f] {
    int rc = Run(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace akv::cli
