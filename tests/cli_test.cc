// The akv binary end to end: exit codes and one-line errors for bad usage, and the subcommands'
// happy paths on the smallest shared model.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

#include "test_util.h"

namespace {

struct Result {
  int code;
  std::string out;  // stdout + stderr
};

Result RunCli(const std::string& args) {
  std::string cmd = std::string(AKV_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(Cli, HelpAndBadFlags) {
  EXPECT_EQ(RunCli("--help").code, 0);
  for (const char* sub : {"run", "perplexity", "inspect", "bench"}) {
    Result r = RunCli(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find("--"), std::string::npos) << sub;
  }
  Result r = RunCli("run --no-such-flag -m x.gguf -p hi");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("no-such-flag"), std::string::npos) << r.out;
  r = RunCli("frobnicate");
  EXPECT_NE(r.code, 0);
}

TEST(Cli, MissingModelIsOneLineError) {
  Result r = RunCli("run -m /no/such.gguf -p hi");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("akv: error:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/no/such.gguf"), std::string::npos) << r.out;
}

TEST(Cli, RunInspectPerplexityBench) {
  AKV_REQUIRE_SHARED();
  const std::string m = akv::test::ModelPath("stories260K.gguf");
  Result r = RunCli("run -m " + m + " -p 'Once upon a time' -n 8 --temp 0 -t 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("time to first token"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tok/s"), std::string::npos) << r.out;

  r = RunCli("run -m " + m + " -p 'Once upon a time' -n 8 -c 4");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("context"), std::string::npos) << r.out;

  r = RunCli("inspect " + m);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("general.architecture"), std::string::npos);
  EXPECT_NE(r.out.find("blk.0.attn_q.weight"), std::string::npos);

  r = RunCli("perplexity -m " + m + " -f " + akv::test::SharedDir() + "/data/treasure_island.txt -c 128 --chunks 2");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("PPL = "), std::string::npos) << r.out;

  r = RunCli("bench -m " + m + " -p 32 -n 8 -d 0,64 -r 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("tg8"), std::string::npos) << r.out;
}

}  // namespace
