// Report writers: JSON round trip, summaries and the bar check, Markdown tables, SVG charts,
// and the HTML report rendered in headless Chromium (screenshot non-trivial, charts in the
// DOM, no console errors).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eval/eval_report.h"
#include "eval/eval_summary.h"
#include "eval/svg_chart.h"

namespace akv {
namespace {

namespace fs = std::filesystem;

EvalRecord Recall(const std::string& method, const std::string& budget, int ctx, double depth, int trial, bool ok,
                  double fraction) {
  EvalRecord r;
  r.task = "recall";
  r.method = method;
  r.budget = budget;
  r.budget_fraction = budget.empty() ? 1 : 0.25;
  r.cache_spec = method;
  r.n_ctx = ctx;
  r.depth = depth;
  r.trial = trial;
  QueryOutcome q;
  q.expected = "73915";
  q.answer = ok ? "73915" : "7391";
  q.generated = " " + q.answer + ".";
  q.correct = ok;
  q.target_depth = depth;
  q.depth = depth + 0.001;
  r.queries.push_back(q);
  r.f16_bytes = static_cast<int64_t>(ctx) * 4096;
  r.kv_bytes = static_cast<int64_t>(fraction * r.f16_bytes);
  r.memory_fraction = fraction;
  r.bits_per_value = method == "full" ? 16 : 4.2;
  r.n_positions = ctx;
  return r;
}

EvalRecord Ppl(const std::string& method, const std::string& budget, int ctx, double ppl, double fraction) {
  EvalRecord r;
  r.task = "ppl";
  r.method = method;
  r.budget = budget;
  r.budget_fraction = budget.empty() ? 1 : 0.25;
  r.cache_spec = method;
  r.n_ctx = ctx;
  r.ppl = ppl;
  r.reference_ppl = 30.0;
  r.mean_kl = method == "full" ? 0 : 0.01;
  r.top1_agreement = method == "full" ? 1 : 0.9;
  r.f16_bytes = static_cast<int64_t>(ctx) * 4096;
  r.kv_bytes = static_cast<int64_t>(fraction * r.f16_bytes);
  r.memory_fraction = fraction;
  r.bits_per_value = 4;
  return r;
}

// full: always right; akv: wrong once at 95% of 2K; h2o: wrong at 5% everywhere.
EvalRun SampleRun(bool akv_lowest_ppl = true) {
  EvalRun run;
  run.meta = {{"model", "test-model"}, {"seed", 1}};
  for (int ctx : {1024, 2048})
    for (int trial = 0; trial < 2; ++trial)
      for (double d : {0.05, 0.5, 0.95}) {
        run.records.push_back(Recall("full", "", ctx, d, trial, true, 1.0));
        run.records.push_back(Recall("akv:balanced", "0.25", ctx, d, trial, !(ctx == 2048 && d == 0.95 && trial == 1), 0.24));
        run.records.push_back(Recall("h2o", "0.25", ctx, d, trial, d > 0.1, 0.26));
      }
  EvalRecord missing = Recall("snapkv", "0.25", 2048, 0.05, 0, false, 0);
  missing.queries.clear();
  missing.error = "invalid argument: unknown KV cache 'snapkv'";
  run.records.push_back(missing);
  for (int ctx : {1024, 2048}) {
    run.records.push_back(Ppl("full", "", ctx, 30.0, 1.0));
    run.records.push_back(Ppl("akv:balanced", "0.25", ctx, akv_lowest_ppl ? 30.5 : 32.0, 0.24));
    run.records.push_back(Ppl("kivi", "0.25", ctx, 31.0, 0.28));
  }
  return run;
}

TEST(EvalResults, JsonRoundTrip) {
  const EvalRun run = SampleRun();
  const std::string path = (fs::temp_directory_path() / ("akv_eval_rt_" + std::to_string(getpid()) + ".json")).string();
  ASSERT_TRUE(WriteRunJson(run, path).ok());
  auto back = ReadRunJson(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ToJson(*back).dump(), ToJson(run).dump());
  std::ofstream(path) << "{\"records\": [{\"task\": \"recall\"}]}";
  EXPECT_FALSE(ReadRunJson(path).ok()) << "a record without method/ctx is refused";
  std::ofstream(path) << "not json";
  EXPECT_FALSE(ReadRunJson(path).ok());
  fs::remove(path);
  EXPECT_FALSE(ReadRunJson(path).ok());
}

TEST(EvalSummary, AccuracyPerDepthAndMemory) {
  const EvalSummary s = Summarize(SampleRun().records);
  EXPECT_EQ(s.contexts, (std::vector<int>{1024, 2048}));
  const RecallRow* akv = s.FindRecall("recall", "akv:balanced @0.25", 2048);
  ASSERT_NE(akv, nullptr);
  EXPECT_EQ(akv->all.total, 6);
  EXPECT_EQ(akv->all.correct, 5);
  EXPECT_DOUBLE_EQ(akv->by_depth.at(DepthKey(0.95)).accuracy(), 0.5);
  EXPECT_NEAR(akv->cache.memory_fraction, 0.24, 1e-6);
  const RecallRow* h2o = s.FindRecall("recall", "h2o @0.25", 1024);
  ASSERT_NE(h2o, nullptr);
  EXPECT_EQ(h2o->by_depth.at(DepthKey(0.05)).correct, 0);
  const RecallRow* snap = s.FindRecall("recall", "snapkv @0.25", 2048);
  ASSERT_NE(snap, nullptr);
  EXPECT_FALSE(snap->error.empty());
  const PplRow* kivi = s.FindPpl("kivi @0.25", 2048);
  ASSERT_NE(kivi, nullptr);
  EXPECT_DOUBLE_EQ(kivi->ppl, 31.0);
}

TEST(EvalSummary, BarCheck) {
  {
    const auto bars = CheckBar(Summarize(SampleRun().records), 1024, "0.25");
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_TRUE(bars[0].recall_within);
    EXPECT_TRUE(bars[0].ahead_at_shallowest);
    EXPECT_EQ(bars[0].eviction_compared, (std::vector<std::string>{"h2o @0.25"}));
    EXPECT_TRUE(bars[0].lowest_ppl);
    EXPECT_TRUE(bars[0].passed());
  }
  {
    // At 2K AKV misses one of two answers at 95%: 50 points behind full.
    const auto bars = CheckBar(Summarize(SampleRun().records), 2048, "0.25");
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_FALSE(bars[0].recall_within);
    EXPECT_DOUBLE_EQ(bars[0].worst_gap_points, 50);
    EXPECT_FALSE(bars[0].passed());
  }
  {
    const auto bars = CheckBar(Summarize(SampleRun(/*akv_lowest_ppl=*/false).records), 1024, "0.25");
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_FALSE(bars[0].lowest_ppl);
    EXPECT_FALSE(bars[0].passed());
  }
  EXPECT_TRUE(CheckBar(Summarize(SampleRun().records), 1024, "0.5").empty()) << "no AKV run at that budget";
  {
    // Over its budget, AKV cannot meet the bar whatever its accuracy.
    EvalRun run = SampleRun();
    for (auto& r : run.records)
      if (r.method == "akv:balanced") r.memory_fraction = 0.30, r.kv_bytes = static_cast<int64_t>(0.30 * r.f16_bytes);
    const auto bars = CheckBar(Summarize(run.records), 1024, "0.25");
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_FALSE(bars[0].fits);
    EXPECT_TRUE(bars[0].recall_within);
    EXPECT_FALSE(bars[0].passed());
  }
}

TEST(EvalReport, MarkdownTables) {
  const std::string md = RenderMarkdown(SampleRun(), ReportOptions{});
  EXPECT_NE(md.find("# akv eval results"), std::string::npos);
  EXPECT_NE(md.find("| method | budget | ctx | 5% | 50% | 95% | all | n | bits/value | KV MiB | of f16 | in budget |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 24.0% | yes |"), std::string::npos) << "akv at 24% of f16 is within 0.25";
  EXPECT_NE(md.find("| 26.0% | yes |"), std::string::npos) << "h2o at 26% is within the 5% slack";
  EXPECT_NE(md.find("| akv:balanced | 0.25 | 2K | 100 | 100 | 50 | 83 | 6 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| h2o | 0.25 | 1K | 0 | 100 | 100 | 67 | 6 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| kivi | 0.25 | 2K |"), std::string::npos);
  EXPECT_NE(md.find("unknown KV cache 'snapkv'"), std::string::npos);
  EXPECT_NE(md.find("## At equal KV memory: recall of the fact at 5% depth"), std::string::npos);
  EXPECT_NE(md.find("| h2o | 0.25 | 0 (26%) | 0 (26%) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| akv:balanced @0.25 | 24.0% | yes | no | 50.0 |"), std::string::npos) << "bar at the largest context";
}

TEST(EvalReport, SvgChart) {
  ChartSpec c;
  c.title = "t <&>";
  c.series.push_back({"a", {{5, 100}, {50, 50}, {95, 0}}, false});
  c.series.push_back({"b", {{5, 20}}, true});
  const std::string svg = RenderSvgChart(c);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("t &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find("<path d=\"M"), std::string::npos);
  size_t circles = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1)) ++circles;
  EXPECT_EQ(circles, 4u);
  EXPECT_EQ(RenderSvgChart(ChartSpec{}).find("<circle"), std::string::npos);
  EXPECT_NE(RenderSvgChart(ChartSpec{}).find("no data"), std::string::npos);
}

// --- Headless Chromium ---------------------------------------------------------------------

std::string Chromium() {
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"}) {
    const std::string probe = std::string("command -v ") + c + " >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return c;
  }
  return "";
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs Chromium headless on a file; extra flags decide what it does. stdout -> out, stderr -> err.
int RunChromium(const std::string& bin, const fs::path& dir, const std::string& flags, const fs::path& page,
                const fs::path& out, const fs::path& err) {
  const fs::path profile = dir / ("profile" + std::to_string(std::rand()));
  const std::string cmd = "timeout 120 " + bin +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                          "--disable-background-networking --disable-component-update --disable-sync "
                          "--user-data-dir=" + profile.string() + " --window-size=1200,900 " + flags + " 'file://" +
                          page.string() + "' >'" + out.string() + "' 2>'" + err.string() + "'";
  return std::system(cmd.c_str());
}

// Console messages and failed loads Chromium logs with --enable-logging=stderr.
std::vector<std::string> ConsoleProblems(const std::string& log) {
  std::vector<std::string> bad;
  std::stringstream ss(log);
  for (std::string line; std::getline(ss, line);)
    if (line.find("CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos ||
        line.find("Failed to load resource") != std::string::npos)
      bad.push_back(line);
  return bad;
}

struct PngSize {
  uint32_t w = 0, h = 0;
};
PngSize ReadPngSize(const std::string& png) {
  if (png.size() < 24 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return {};
  auto be = [&](size_t at) {
    return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
           (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
  };
  return {be(16), be(20)};
}

TEST(EvalReport, RendersInHeadlessChromium) {
  const std::string bin = Chromium();
  if (bin.empty()) GTEST_SKIP() << "chromium not installed (scripts/install_deps.sh installs Debian's chromium)";
  const fs::path dir = fs::temp_directory_path() / ("akv_eval_html_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const EvalRun run = SampleRun();
  ASSERT_TRUE(WriteReports(run, dir.string(), ReportOptions{}).ok());
  ASSERT_TRUE(fs::exists(dir / "results.json"));
  ASSERT_TRUE(fs::exists(dir / "results.md"));
  const fs::path html = dir / "report.html";
  const std::string source = ReadAll(html);
  EXPECT_EQ(source.find("http://"), source.find("http://www.w3.org/2000/svg")) << "no external resources";
  EXPECT_EQ(source.find("https://"), std::string::npos);

  // A blank page of the same size: a uniform screenshot compresses to almost nothing, so the
  // report's screenshot must be several times larger to count as drawn.
  const fs::path blank = dir / "blank.html";
  std::ofstream(blank) << "<!DOCTYPE html><html><body></body></html>";
  ASSERT_EQ(RunChromium(bin, dir, "--screenshot=" + (dir / "blank.png").string(), blank, dir / "o0", dir / "e0"), 0)
      << ReadAll(dir / "e0");
  ASSERT_EQ(RunChromium(bin, dir, "--screenshot=" + (dir / "report.png").string(), html, dir / "o1", dir / "e1"), 0)
      << ReadAll(dir / "e1");
  const std::string png = ReadAll(dir / "report.png"), blank_png = ReadAll(dir / "blank.png");
  const PngSize size = ReadPngSize(png);
  EXPECT_EQ(size.w, 1200u);
  EXPECT_EQ(size.h, 900u);
  EXPECT_GT(png.size(), 20000u);
  EXPECT_GT(png.size(), 4 * blank_png.size()) << "report " << png.size() << " B, blank page " << blank_png.size() << " B";

  // The DOM after load: every chart is an <svg> with drawn paths and markers; no console errors.
  ASSERT_EQ(RunChromium(bin, dir, "--dump-dom --enable-logging=stderr --v=0", html, dir / "dom.html", dir / "e2"), 0);
  const std::string dom = ReadAll(dir / "dom.html");
  size_t svgs = 0;
  for (size_t at = dom.find("<svg"); at != std::string::npos; at = dom.find("<svg", at + 1)) {
    ++svgs;
    const std::string one = dom.substr(at, dom.find("</svg>", at) - at);
    EXPECT_NE(one.find("<path"), std::string::npos);
    EXPECT_NE(one.find("<rect"), std::string::npos);
  }
  // recall at 1K and 2K (budget 0.25), perplexity at 1K and 2K, memory vs context.
  EXPECT_EQ(svgs, 5u);
  EXPECT_NE(dom.find("<circle"), std::string::npos);
  EXPECT_TRUE(ConsoleProblems(ReadAll(dir / "e2")).empty()) << ReadAll(dir / "e2");

  // The console check itself: a page with a script error must be caught.
  const fs::path broken = dir / "broken.html";
  std::ofstream(broken) << "<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>";
  RunChromium(bin, dir, "--dump-dom --enable-logging=stderr --v=0", broken, dir / "o3", dir / "e3");
  EXPECT_FALSE(ConsoleProblems(ReadAll(dir / "e3")).empty()) << "the console check would miss errors";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace akv
