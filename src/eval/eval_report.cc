#include "eval/eval_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "eval/eval_summary.h"
#include "eval/svg_chart.h"

namespace akv {

namespace {

std::string F(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string Mib(double bytes) { return F("%.2f", bytes / (1024.0 * 1024.0)); }

std::string Pct(const AccuracyCell& c) { return c.total ? F("%.0f", 100.0 * c.accuracy()) : "-"; }

// "yes" when the measured bytes are within the budget (see WithinBudget), "no" when over it.
std::string InBudget(const std::string& budget, double fraction, double budget_fraction) {
  if (budget.empty()) return "-";
  return WithinBudget(fraction, budget_fraction) ? "yes" : "no";
}

std::string CtxName(int n) { return n % 1024 == 0 ? std::to_string(n / 1024) + "K" : std::to_string(n); }

std::string TaskTitle(const std::string& t) {
  if (t == "recall") return "Delayed recall (one fact, queried at the end)";
  if (t == "multifact") return "Multi-fact recall (several facts, one queried)";
  if (t == "multiquery") return "Multi-query recall (context compressed once, every fact asked in turn)";
  if (t == "passkey") return "Pass-key retrieval (classic prompt)";
  return t;
}

// One table, rendered as Markdown or HTML.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

// A section of the report: a heading, paragraphs, tables and (HTML only) charts.
struct Section {
  std::string heading;
  int level = 2;
  std::vector<std::string> paragraphs;
  std::vector<Table> tables;
  std::vector<ChartSpec> charts;
};

std::vector<double> DepthsOf(const EvalSummary& s, const std::string& task, int ctx) {
  std::vector<double> d;
  for (const auto& r : s.recall)
    if (r.task == task && r.n_ctx == ctx)
      for (const auto& [k, c] : r.by_depth)
        if (std::find(d.begin(), d.end(), k) == d.end()) d.push_back(k);
  std::sort(d.begin(), d.end());
  return d;
}

std::vector<Section> BuildSections(const EvalRun& run, const ReportOptions& o) {
  const EvalSummary s = Summarize(run.records);
  std::vector<Section> out;

  // Recall tasks: one table per (task, context); one chart per (task, context, budget).
  for (const std::string& task : s.tasks) {
    Section sec;
    sec.heading = TaskTitle(task);
    sec.paragraphs.push_back(
        "Accuracy (%) = exact match of the greedy answer's digits, by the planted fact's depth in the context. "
        "Memory is measured when the first answer was given: KV bytes (every page, metadata included), payload "
        "bits per value, and the bytes as a fraction of the f16 cache of the same tokens.");
    for (int ctx : s.contexts) {
      const std::vector<double> depths = DepthsOf(s, task, ctx);
      if (depths.empty()) continue;
      Table t;
      t.header = {"method", "budget", "ctx"};
      for (double d : depths) t.header.push_back(F("%g%%", 100 * d));
      t.header.insert(t.header.end(), {"all", "n", "bits/value", "KV MiB", "of f16", "in budget"});
      for (const RecallRow& r : s.recall) {
        if (r.task != task || r.n_ctx != ctx) continue;
        std::vector<std::string> row = {r.method, r.budget.empty() ? "-" : r.budget, CtxName(ctx)};
        if (!r.error.empty()) {
          for (size_t i = 0; i < depths.size(); ++i) row.push_back("n/a");
          row.insert(row.end(), {"n/a", "0", "-", "-", "-", "-"});
        } else {
          for (double d : depths) {
            auto it = r.by_depth.find(d);
            row.push_back(it == r.by_depth.end() ? "-" : Pct(it->second));
          }
          row.insert(row.end(), {Pct(r.all), std::to_string(r.all.total), F("%.2f", r.cache.bits_per_value),
                                 Mib(r.cache.kv_bytes), F("%.1f%%", 100 * r.cache.memory_fraction),
                                 InBudget(r.budget, r.cache.memory_fraction, r.budget_fraction)});
        }
        t.rows.push_back(std::move(row));
      }
      sec.tables.push_back(std::move(t));
      for (const std::string& budget : s.budgets) {
        if (budget.empty() && s.budgets.size() > 1) continue;  // the reference joins each budget's chart
        ChartSpec c;
        c.title = task + ", " + CtxName(ctx) + " context" + (budget.empty() ? "" : ", budget " + budget);
        c.x_label = "depth of the fact (% of the context)";
        c.y_label = "accuracy (%)";
        c.y_min = 0, c.y_max = 100, c.y_format = "%.0f";
        for (const RecallRow& r : s.recall) {
          if (r.task != task || r.n_ctx != ctx || !r.error.empty() || !(r.budget == budget || r.budget.empty())) continue;
          ChartSeries ser;
          ser.name = r.label;
          ser.dashed = r.budget.empty();
          for (const auto& [d, cell] : r.by_depth) ser.points.push_back({100 * d, 100 * cell.accuracy()});
          c.series.push_back(std::move(ser));
        }
        if (!c.series.empty()) sec.charts.push_back(std::move(c));
      }
    }
    out.push_back(std::move(sec));
  }

  // Perplexity.
  if (!s.ppl.empty()) {
    Section sec;
    sec.heading = "Perplexity and KL divergence vs the full cache";
    sec.paragraphs.push_back(
        "llama.cpp convention (chunks of the context, second half scored). KL = mean KL(full || method) per scored "
        "token in nats; top-1 = positions where both caches rank the same next token first. bits/context value = "
        "16 x KV bytes / f16 bytes of the same tokens: what the cache costs per value of the context, evicted "
        "tokens included.");
    Table t;
    t.header = {"method", "budget", "ctx", "bits/value", "bits/context value", "KV MiB", "of f16", "in budget", "PPL", "vs full", "KL", "top-1"};
    for (const PplRow& r : s.ppl) {
      if (!r.error.empty()) {
        t.rows.push_back({r.method, r.budget.empty() ? "-" : r.budget, CtxName(r.n_ctx), "n/a", "n/a", "n/a", "n/a", "-", "n/a", "n/a", "n/a", "n/a"});
        continue;
      }
      t.rows.push_back({r.method, r.budget.empty() ? "-" : r.budget, CtxName(r.n_ctx), F("%.2f", r.cache.bits_per_value),
                        F("%.2f", 16 * r.cache.memory_fraction), Mib(r.cache.kv_bytes), F("%.1f%%", 100 * r.cache.memory_fraction),
                        InBudget(r.budget, r.cache.memory_fraction, r.budget_fraction), F("%.3f", r.ppl), F("%+.2f%%", 100 * (r.ppl / r.reference_ppl - 1)), F("%.4f", r.mean_kl),
                        F("%.1f%%", 100 * r.top1)});
    }
    sec.tables.push_back(std::move(t));
    for (int ctx : s.contexts) {
      ChartSpec c;
      c.title = "Perplexity vs bits per context value, " + CtxName(ctx) + " context";
      c.x_label = "bits per context value (16 x KV bytes / f16 bytes)";
      c.y_label = "perplexity";
      c.y_format = "%.1f";
      std::map<std::string, ChartSeries> by_method;
      std::vector<std::string> order;
      for (const PplRow& r : s.ppl) {
        if (r.n_ctx != ctx || !r.error.empty()) continue;
        if (!by_method.count(r.method)) order.push_back(r.method);
        ChartSeries& ser = by_method[r.method];
        ser.name = r.method;
        ser.points.push_back({16 * r.cache.memory_fraction, r.ppl});
      }
      for (const std::string& m : order) {
        ChartSeries ser = by_method[m];
        std::sort(ser.points.begin(), ser.points.end());
        c.series.push_back(std::move(ser));
      }
      if (!c.series.empty()) sec.charts.push_back(std::move(c));
    }
    out.push_back(std::move(sec));
  }

  // Memory vs context.
  if (s.contexts.size() >= 1 && !s.memory.empty()) {
    Section sec;
    sec.heading = "KV memory vs context";
    sec.paragraphs.push_back("Mean KV bytes per sequence (MiB) over every run of the method at that context, and the "
                             "fraction of the f16 cache of the same tokens.");
    Table t;
    t.header = {"method", "budget"};
    for (int ctx : s.contexts) t.header.push_back(CtxName(ctx) + " MiB (of f16)");
    for (const std::string& label : s.labels) {
      const auto& by_ctx = s.memory.at(label);
      const std::string method = label.substr(0, label.find(" @"));
      std::vector<std::string> row = {method, label.size() > method.size() ? label.substr(method.size() + 2) : "-"};
      bool any = false;
      for (int ctx : s.contexts) {
        auto it = by_ctx.find(ctx);
        if (it == by_ctx.end() || it->second.n == 0) {
          row.push_back("-");
        } else {
          any = true;
          row.push_back(Mib(it->second.kv_bytes) + " (" + F("%.0f%%", 100 * it->second.memory_fraction) + ")");
        }
      }
      if (any) t.rows.push_back(std::move(row));
    }
    sec.tables.push_back(std::move(t));
    for (const std::string& budget : s.budgets) {
      if (budget.empty() && s.budgets.size() > 1) continue;
      ChartSpec c;
      c.title = "KV memory vs context" + (budget.empty() ? "" : ", budget " + budget);
      c.x_label = "context (tokens)";
      c.y_label = "KV MiB per sequence";
      c.x_log2 = true;
      c.y_from_zero = true;
      c.y_format = "%.1f";
      for (const std::string& label : s.labels) {
        const bool ref = label.find(" @") == std::string::npos;
        if (!(ref || label.substr(label.find(" @") + 2) == budget)) continue;
        ChartSeries ser;
        ser.name = label;
        ser.dashed = ref;
        for (const auto& [ctx, m] : s.memory.at(label))
          if (m.n > 0) ser.points.push_back({static_cast<double>(ctx), m.kv_bytes / (1024.0 * 1024.0)});
        if (!ser.points.empty()) c.series.push_back(std::move(ser));
      }
      if (!c.series.empty()) sec.charts.push_back(std::move(c));
    }
    out.push_back(std::move(sec));
  }

  // The comparison that motivates AKV: at one memory budget, the fact furthest from the query.
  for (const std::string& task : s.tasks) {
    if (task != "recall") continue;
    double shallow = 2;
    for (const RecallRow& r : s.recall)
      if (r.task == task && !r.by_depth.empty()) shallow = std::min(shallow, r.by_depth.begin()->first);
    if (shallow > 1) continue;
    Section sec;
    sec.heading = "At equal KV memory: recall of the fact at " + F("%g%%", 100 * shallow) + " depth";
    sec.paragraphs.push_back("Accuracy (%) on the fact furthest from the question, per context; in brackets the "
                             "measured KV memory as a fraction of the f16 cache.");
    Table t;
    t.header = {"method", "budget"};
    for (int ctx : s.contexts) t.header.push_back(CtxName(ctx));
    for (const std::string& label : s.labels) {
      std::vector<std::string> row;
      bool any = false;
      for (int ctx : s.contexts) {
        const RecallRow* r = s.FindRecall(task, label, ctx);
        if (!r || !r->error.empty() || !r->by_depth.count(shallow)) {
          row.push_back("-");
          continue;
        }
        any = true;
        row.push_back(Pct(r->by_depth.at(shallow)) + " (" + F("%.0f%%", 100 * r->cache.memory_fraction) + ")");
      }
      if (!any) continue;
      const std::string method = label.substr(0, label.find(" @"));
      row.insert(row.begin(), {method, label.size() > method.size() ? label.substr(method.size() + 2) : "-"});
      t.rows.push_back(std::move(row));
    }
    sec.tables.push_back(std::move(t));
    out.push_back(std::move(sec));
  }

  // The bar.
  const int bar_ctx = o.bar_ctx > 0 ? o.bar_ctx : (s.contexts.empty() ? 0 : s.contexts.back());
  const std::vector<BarCheck> bars = CheckBar(s, bar_ctx, o.bar_budget);
  if (!bars.empty()) {
    Section sec;
    sec.heading = "The AKV bar at " + CtxName(bar_ctx) + " context, budget " + o.bar_budget + " of the f16 cache";
    sec.paragraphs.push_back("Bar: measured KV memory within the budget, delayed-recall accuracy within 2 points of the full "
                             "cache at every depth, ahead of every eviction baseline (H2O, SnapKV, StreamingLLM, ...) at the "
                             "shallowest depth, and the lowest perplexity of all methods run at the budget.");
    Table t;
    t.header = {"AKV method", "KV of f16", "within budget", "recall within 2 pts of full", "worst gap (pts)", "ahead at shallowest depth", "lowest PPL", "bar"};
    for (const BarCheck& b : bars) {
      const auto yn = [](bool have, bool v) { return have ? (v ? "yes" : "no") : "not measured"; };
      std::string ahead = b.eviction_compared.empty() ? "not measured" : (b.ahead_at_shallowest ? "yes" : "no");
      if (!b.eviction_compared.empty()) {
        ahead += " (vs ";
        for (size_t i = 0; i < b.eviction_compared.size(); ++i) ahead += (i ? ", " : "") + b.eviction_compared[i];
        ahead += ")";
      }
      std::string ppl = yn(b.have_ppl, b.lowest_ppl);
      if (b.have_ppl && b.ppl_compared.empty()) ppl = "no other method";
      t.rows.push_back({b.label, F("%.1f%%", 100 * b.memory_fraction), b.fits ? "yes" : "no", yn(b.have_recall, b.recall_within), b.have_recall ? F("%.1f", b.worst_gap_points) : "-", ahead,
                        ppl, b.passed() ? "met" : "not met"});
      for (const std::string& n : b.notes) sec.paragraphs.push_back(b.label + ": " + n + ".");
    }
    sec.tables.push_back(std::move(t));
    out.push_back(std::move(sec));
  }

  // Methods that did not run.
  std::vector<std::string> missing;
  for (const EvalRecord& r : run.records)
    if (!r.error.empty()) {
      const std::string line = "`" + r.cache_spec + "`: " + r.error;
      if (std::find(missing.begin(), missing.end(), line) == missing.end()) missing.push_back(line);
    }
  if (!missing.empty()) {
    Section sec;
    sec.heading = "Methods that did not run";
    Table t;
    t.header = {"cache spec: error"};
    for (const auto& m : missing) t.rows.push_back({m});
    sec.tables.push_back(std::move(t));
    out.push_back(std::move(sec));
  }
  return out;
}

std::string MetaLines(const nlohmann::json& m) {
  std::string s;
  if (!m.is_object()) return s;
  auto add = [&](const char* key, const char* name) {
    if (!m.contains(key)) return;
    const auto& v = m.at(key);
    s += std::string("- ") + name + ": " + (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
  };
  add("model", "model");
  add("command", "command");
  add("tasks", "tasks");
  add("methods", "methods");
  add("budgets", "budgets (fraction of the f16 KV cache)");
  add("contexts", "contexts");
  add("depths", "depths");
  add("trials", "trials per point");
  add("seed", "seed");
  add("filler", "filler");
  add("ppl_text", "perplexity text");
  add("ppl_chunks", "perplexity chunks per context");
  add("threads", "threads");
  add("device", "device");
  add("seconds", "wall time (s)");
  if (m.contains("merged") && m.at("merged").is_array())
    for (const auto& other : m.at("merged")) s += "\nMerged with the run:\n" + MetaLines(other);
  return s;
}

std::string MdCell(std::string s) {
  for (size_t at = s.find('|'); at != std::string::npos; at = s.find('|', at + 2)) s.replace(at, 1, "\\|");
  return s;
}

}  // namespace

std::string RenderMarkdown(const EvalRun& run, const ReportOptions& o) {
  std::string md = "# " + o.title + "\n\n";
  if (!o.intro.empty()) md += o.intro + "\n\n";
  const std::string meta = MetaLines(run.meta);
  if (!meta.empty()) md += meta + "\n";
  for (const Section& sec : BuildSections(run, o)) {
    md += std::string(sec.level, '#') + " " + sec.heading + "\n\n";
    for (const auto& p : sec.paragraphs) md += p + "\n\n";
    for (const Table& t : sec.tables) {
      md += "|";
      for (const auto& h : t.header) md += " " + MdCell(h) + " |";
      md += "\n|";
      for (size_t i = 0; i < t.header.size(); ++i) md += i < 3 ? " --- |" : " ---: |";
      md += "\n";
      for (const auto& row : t.rows) {
        md += "|";
        for (const auto& c : row) md += " " + MdCell(c) + " |";
        md += "\n";
      }
      md += "\n";
    }
  }
  return md;
}

std::string RenderHtml(const EvalRun& run, const ReportOptions& o) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + HtmlEscape(o.title) +
      "</title>\n<style>\n"
      "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}\n"
      "table{border-collapse:collapse;margin:8px 0 18px}\n"
      "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}\n"
      "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}\n"
      ".charts{display:flex;flex-wrap:wrap;gap:12px}\n.chart{border:1px solid #ddd}\n"
      "pre{background:#f7f7f7;padding:8px;white-space:pre-wrap}\n"
      "</style>\n</head>\n<body>\n<h1>" + HtmlEscape(o.title) + "</h1>\n";
  if (!o.intro.empty()) h += "<pre>" + HtmlEscape(o.intro) + "</pre>\n";
  const std::string meta = MetaLines(run.meta);
  if (!meta.empty()) h += "<pre class=\"meta\">" + HtmlEscape(meta) + "</pre>\n";
  for (const Section& sec : BuildSections(run, o)) {
    const std::string tag = "h" + std::to_string(sec.level);
    h += "<" + tag + ">" + HtmlEscape(sec.heading) + "</" + tag + ">\n";
    for (const auto& p : sec.paragraphs) h += "<p>" + HtmlEscape(p) + "</p>\n";
    if (!sec.charts.empty()) {
      h += "<div class=\"charts\">\n";
      for (const ChartSpec& c : sec.charts) h += RenderSvgChart(c);
      h += "</div>\n";
    }
    for (const Table& t : sec.tables) {
      h += "<table>\n<tr>";
      for (const auto& c : t.header) h += "<th>" + HtmlEscape(c) + "</th>";
      h += "</tr>\n";
      for (const auto& row : t.rows) {
        h += "<tr>";
        for (const auto& c : row) h += "<td>" + HtmlEscape(c) + "</td>";
        h += "</tr>\n";
      }
      h += "</table>\n";
    }
  }
  h += "</body>\n</html>\n";
  return h;
}

Status WriteReports(const EvalRun& run, const std::string& dir, const ReportOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create '" + dir + "': " + ec.message());
  AKV_RETURN_IF_ERROR(WriteRunJson(run, dir + "/results.json"));
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"results.md", RenderMarkdown(run, o)},
                                   {"report.html", RenderHtml(run, o)}}) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out << text;
    if (!out) return IoError("cannot write '" + dir + "/" + name + "'");
  }
  return Status::Ok();
}

}  // namespace akv
