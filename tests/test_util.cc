#include "test_util.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace akv::test {

namespace {
bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

std::string SharedDir() {
  if (const char* env = std::getenv("AKV_SHARED"); env && *env) return IsDir(env) ? env : "";
#ifdef AKV_DEFAULT_SHARED
  if (IsDir(AKV_DEFAULT_SHARED)) return AKV_DEFAULT_SHARED;
#endif
  return "";
}

std::string ModelPath(const std::string& file_name) { return SharedDir() + "/models/" + file_name; }

std::string ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::string s = ReadFileToString(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

double RelL2(const float* a, const float* b, size_t n) {
  double e = 0, s = 0;
  for (size_t i = 0; i < n; ++i) {
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    s += double(b[i]) * b[i];
  }
  return std::sqrt(e / std::max(s, 1e-300));
}

}  // namespace akv::test
