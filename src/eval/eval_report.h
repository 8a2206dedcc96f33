// Reports of an eval run: results.json (every raw record), results.md (tables) and report.html
// (the tables plus inline SVG charts: accuracy vs depth per method, perplexity vs bits per
// value, KV memory vs context). The HTML needs no script and no network.
#pragma once

#include <string>

#include "eval/eval_results.h"

namespace akv {

struct ReportOptions {
  std::string title = "akv eval results";
  std::string intro;      // Markdown paragraph(s) after the title (HTML: shown as preformatted text)
  int bar_ctx = 0;        // context of the bar check (0: the largest in the run)
  std::string bar_budget = "0.25";
};

std::string RenderMarkdown(const EvalRun& run, const ReportOptions& options);
std::string RenderHtml(const EvalRun& run, const ReportOptions& options);
// Writes dir/results.json, dir/results.md and dir/report.html (dir is created).
Status WriteReports(const EvalRun& run, const std::string& dir, const ReportOptions& options);

}  // namespace akv
