// Options and helpers shared by the akv subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "akv/akv.hpp"

namespace akv::cli {

// -m/--model, -t/--threads, -c/--ctx, --cache, --device: declared once, added to every subcommand.
struct ModelFlags {
  std::string model;
  int threads = 0;
  int ctx = 0;
  std::string cache = "full";
  std::string device = "cpu";
  bool verbose = false;
  bool no_pin = false;

  void AddTo(CLI::App* app, bool with_ctx = true, bool with_cache = true);
  // Loads the engine; on failure prints "akv: error: ..." and returns null.
  std::unique_ptr<Engine> LoadEngine() const;
};

// Prints "akv: error: <message>" to stderr and returns the exit code for the status.
int ReportError(const Status& status);
std::string HumanBytes(double bytes);
// "[hot=1024 warm=3072 cold=12288 | 3.1 bits/value]" (tokens per sequence).
std::string TierSummary(const CacheStats& s);

void RegisterRun(CLI::App& app);
void RegisterPerplexity(CLI::App& app);
void RegisterInspect(CLI::App& app);
void RegisterBench(CLI::App& app);
void RegisterCacheHelp(CLI::App& app);
void RegisterServe(CLI::App& app);
void RegisterEval(CLI::App& app);

}  // namespace akv::cli
