#include "eval/eval_grid.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "eval/eval_rng.h"

namespace akv {

namespace {

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  const std::string str(s);
  char* end = nullptr;
  *out = std::strtod(str.c_str(), &end);
  return end == str.c_str() + str.size() && std::isfinite(*out);
}

std::string Num(double x, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, x);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

bool HasKey(std::string_view spec, std::string_view key) {
  for (size_t at = spec.find(key); at != std::string_view::npos; at = spec.find(key, at + 1)) {
    const bool starts = at > 0 && (spec[at - 1] == ',' || spec[at - 1] == ':');
    const size_t after = at + key.size();
    if (starts && after < spec.size() && spec[after] == '=') return true;
  }
  return false;
}

enum class Family { kReference, kEviction, kBytes, kQuant, kOther };

Family FamilyOf(const std::string& name, std::string_view spec) {
  static const char* eviction[] = {"h2o", "snapkv", "window", "streamingllm", "scissorhands", "pyramidkv"};
  if (name == "full") return Family::kReference;
  for (const char* e : eviction)
    if (name == e) return Family::kEviction;
  // AKCB's origin and window modes keep f16 tokens and evict; mix and quant keep int4 tiers.
  if (name == "akcb") {
    const bool evicts = spec.starts_with("akcb:origin") || spec.starts_with("akcb:window");
    return evicts ? Family::kEviction : Family::kBytes;
  }
  if (name == "akv") return Family::kBytes;
  if (name == "kivi" || name == "uniform") return Family::kQuant;
  return Family::kOther;
}

}  // namespace

StatusOr<Budget> Budget::Parse(std::string_view text) {
  Budget b;
  b.label = std::string(text);
  double v = 0;
  const auto bad = [&](const char* why) {
    return InvalidArgument("bad budget '" + std::string(text) + "': " + why +
                           " (a fraction of the f16 cache 0.25 or 25%, tokens 1024t, or bits per value 4b)");
  };
  if (text.empty()) return bad("empty");
  if (text == "none") return b;  // every method runs as given (e.g. the GPU presets, which have no budget keys)
  const char last = text.back();
  if (last == '%') {
    if (!ParseDouble(text.substr(0, text.size() - 1), &v) || v <= 0 || v > 100) return bad("percent must be in (0, 100]");
    b.kind = Kind::kFraction;
    b.value = v / 100;
  } else if (last == 't') {
    if (!ParseDouble(text.substr(0, text.size() - 1), &v) || v < 1) return bad("token count must be >= 1");
    b.kind = Kind::kTokens;
    b.value = v;
  } else if (last == 'b') {
    if (!ParseDouble(text.substr(0, text.size() - 1), &v) || v <= 0 || v > 16) return bad("bits must be in (0, 16]");
    b.kind = Kind::kBits;
    b.value = v;
  } else {
    if (!ParseDouble(text, &v) || v <= 0 || v > 1) return bad("a fraction must be in (0, 1]");
    b.kind = Kind::kFraction;
    b.value = v;
  }
  return b;
}

double Budget::Fraction(int n_ctx) const {
  switch (kind) {
    case Kind::kFraction: return value;
    case Kind::kTokens: return std::min(1.0, value / std::max(1, n_ctx));
    case Kind::kBits: return value / 16.0;
    case Kind::kNone: return 1.0;
  }
  return 1.0;
}

std::vector<std::string> SplitMethodList(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& arg : args) {
    size_t start = 0;
    while (start <= arg.size()) {
      const size_t end = std::min(arg.find(',', start), arg.size());
      const std::string piece = arg.substr(start, end - start);
      if (piece.find('=') != std::string::npos && !out.empty()) {
        out.back() += "," + piece;
      } else if (!piece.empty()) {
        out.push_back(piece);
      }
      start = end + 1;
    }
  }
  return out;
}

std::string MethodName(std::string_view method) { return std::string(method.substr(0, method.find_first_of(":,"))); }

ResolvedSpec ResolveCacheSpec(std::string_view method, const Budget& budget, int n_ctx, const KvGeometry& kv) {
  const std::string m(method);
  const std::string name = MethodName(method);
  const Family family = FamilyOf(name, method);
  if (family == Family::kReference) return {m, false, "reference"};
  if (budget.kind == Budget::Kind::kNone || family == Family::kOther) return {m, false, "as given"};
  const double f = budget.Fraction(n_ctx);
  switch (family) {
    case Family::kEviction: {
      if (HasKey(m, "max_total")) return {m, false, "as given"};
      const int64_t tokens = std::max<int64_t>(1, std::llround(f * n_ctx));
      return {m + ",max_total=" + std::to_string(tokens), true, "max_total"};
    }
    case Family::kBytes: {
      if (HasKey(m, "kv_budget_mb")) return {m, false, "as given"};
      const double mb = f * static_cast<double>(kv.F16Bytes(n_ctx)) / (1024.0 * 1024.0);
      return {m + ",kv_budget_mb=" + Num(mb, 6), true, "kv_budget_mb"};
    }
    case Family::kQuant: {
      if (m.find(':') != std::string::npos) return {m, false, "as given"};
      // KIVI comes at 4 and 2 bits, uniform at 8, 4 and 2; both keep an f16 scale and zero per
      // group of 32 values, one more bit per value, which must fit in the budget too (int4 is
      // 5 bits: 31% of f16, over a 25% budget).
      const double avail = 16 * f - 1;
      const int bits = avail >= 8 && name == "uniform" ? 8 : avail >= 4 ? 4 : 2;
      const std::string rest = m.substr(name.size());  // ",key=value..." if any
      return {name + (name == "uniform" ? ":int" : ":") + std::to_string(bits) + rest, true, "bits"};
    }
    default: return {m, false, "as given"};
  }
}

const char* TaskName(EvalTask t) {
  switch (t) {
    case EvalTask::kPerplexity: return "ppl";
    case EvalTask::kRecall: return "recall";
    case EvalTask::kMultiFact: return "multifact";
    case EvalTask::kMultiQuery: return "multiquery";
    case EvalTask::kPasskey: return "passkey";
  }
  return "?";
}

StatusOr<EvalTask> ParseTask(std::string_view name) {
  for (EvalTask t : {EvalTask::kPerplexity, EvalTask::kRecall, EvalTask::kMultiFact, EvalTask::kMultiQuery, EvalTask::kPasskey})
    if (name == TaskName(t)) return t;
  return InvalidArgument("unknown task '" + std::string(name) + "' (ppl, recall, multifact, multiquery, passkey)");
}

StatusOr<std::vector<GridItem>> ExpandGrid(const GridSpec& g, const KvGeometry& kv) {
  if (g.tasks.empty()) return InvalidArgument("no task given");
  if (g.methods.empty()) return InvalidArgument("no method given");
  if (g.contexts.empty()) return InvalidArgument("no context length given");
  if (g.trials < 1) return InvalidArgument("trials must be >= 1, got " + std::to_string(g.trials));
  for (int c : g.contexts)
    if (c < 64) return InvalidArgument("context " + std::to_string(c) + " is too small (at least 64 tokens)");
  for (double d : g.depths)
    if (!(d >= 0 && d <= 1)) return InvalidArgument("depth " + Num(d, 4) + " is outside [0, 1]");
  std::vector<Budget> budgets;
  for (const auto& s : g.budgets) {
    AKV_ASSIGN_OR_RETURN(Budget b, Budget::Parse(s));
    budgets.push_back(b);
  }
  if (budgets.empty()) budgets.push_back(Budget{});
  std::vector<GridItem> items;
  for (EvalTask task : g.tasks) {
    const bool per_depth = task == EvalTask::kRecall || task == EvalTask::kMultiFact || task == EvalTask::kPasskey;
    if (per_depth && g.depths.empty()) return InvalidArgument(std::string(TaskName(task)) + " needs at least one depth");
    if (task == EvalTask::kMultiQuery && g.depths.empty()) return InvalidArgument("multiquery needs at least one depth");
    const int trials = task == EvalTask::kPerplexity ? 1 : g.trials;
    const std::vector<double> depths = per_depth ? g.depths : std::vector<double>{-1};
    for (int ctx : g.contexts) {
      for (int trial = 0; trial < trials; ++trial) {
        const uint64_t seed = MixSeed(g.seed, {static_cast<uint64_t>(task), static_cast<uint64_t>(ctx), static_cast<uint64_t>(trial)});
        for (double depth : depths) {
          std::vector<std::string> seen;  // specs already in this point (a method run as given, once)
          for (const Budget& b : budgets) {
            for (const std::string& m : g.methods) {
              GridItem it;
              it.task = task;
              it.method = m;
              it.cache = ResolveCacheSpec(m, b, ctx, kv);
              if (std::find(seen.begin(), seen.end(), it.cache.spec) != seen.end()) continue;
              seen.push_back(it.cache.spec);
              it.budget = it.cache.budgeted ? b.label : "";
              it.budget_fraction = it.cache.budgeted ? b.Fraction(ctx) : 1.0;
              it.n_ctx = ctx;
              it.depth = depth;
              it.trial = trial;
              it.seed = seed;
              items.push_back(std::move(it));
            }
          }
        }
      }
    }
  }
  return items;
}

}  // namespace akv
