// akv: command-line front end. One binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"akv: long-context LLM inference with an adaptive mixed-precision KV cache", "akv"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "akv 0.1.0");
  akv::cli::RegisterRun(app);
  akv::cli::RegisterPerplexity(app);
  akv::cli::RegisterInspect(app);
  akv::cli::RegisterBench(app);
  akv::cli::RegisterCacheHelp(app);
  akv::cli::RegisterServe(app);
  akv::cli::RegisterEval(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
