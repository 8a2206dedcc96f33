#include "kv/cache_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <variant>

namespace akv {

namespace {

using Member = std::variant<double CacheConfig::*, int CacheConfig::*, bool CacheConfig::*, std::string CacheConfig::*>;

struct Field {
  const char* key;
  Member member;
  const char* help;
};

// The one declaration of every key: parsing, ToString and Help all read this table.
const Field kFields[] = {
    {"hot_budget", &CacheConfig::hot_budget, "f16 tokens per sequence (count if > 1, else fraction of stored tokens)"},
    {"warm_budget", &CacheConfig::warm_budget, "warm (quantized) tokens; the rest goes cold (count or fraction)"},
    {"max_total", &CacheConfig::max_total, "evict beyond this many tokens (0: never evict)"},
    {"kv_budget_mb", &CacheConfig::kv_budget_mb, "byte budget per sequence in MiB (0: none); demotes further to meet it"},
    {"hot_budget_layers", &CacheConfig::hot_budget_layers, "per-layer hot budgets, colon-separated (e.g. 256:128:64), overriding hot_budget"},
    {"warm_bits", &CacheConfig::warm_bits, "bits of warm keys/values: 8, 4 or 2"},
    {"cold_bits", &CacheConfig::cold_bits, "bits of cold keys/values: 8, 4 or 2"},
    {"warm_value_bits", &CacheConfig::warm_value_bits, "bits of warm values if different from the keys (0: warm_bits)"},
    {"cold_value_bits", &CacheConfig::cold_value_bits, "bits of cold values if different from the keys (0: cold_bits)"},
    {"group_size", &CacheConfig::group_size, "values per quantization group: 32, 64 or 128"},
    {"kivi_keys", &CacheConfig::kivi_keys, "quantize warm/cold keys per channel over blocks of group_size tokens (KIVI)"},
    {"cold_key_block", &CacheConfig::cold_key_block, "> 0: cold keys per channel over blocks of this many tokens (32, 64, 128); warm stays per token and stages them"},
    {"symmetric_values", &CacheConfig::symmetric_values, "quantized values keep a scale only, zero = -scale * (2^bits - 1) / 2 (saves 16 bits per group)"},
    {"hadamard", &CacheConfig::hadamard, "rotate keys (and queries) by a Hadamard transform before quantizing"},
    {"page_size", &CacheConfig::page_size, "token slots per page (multiple of 32; 0: auto, context/16 as a power of two in [64, 256], on the tokens a max_total / kv_budget_mb buys in f16 when fewer)"},
    {"cold_attend_all", &CacheConfig::cold_attend_all, "attention reads every cold page (else only promoted ones)"},
    {"n_anchors", &CacheConfig::n_anchors, "first tokens always hot (attention sinks, BOS, system prompt)"},
    {"protect_recent", &CacheConfig::protect_recent, "last tokens always hot"},
    {"decay", &CacheConfig::decay, "score decay per step, in [0, 1]"},
    {"w_attn", &CacheConfig::w_attn, "weight of the attention mass in the score"},
    {"w_recency", &CacheConfig::w_recency, "weight of the recency bonus in the score"},
    {"observation_window", &CacheConfig::observation_window, "prefill: last queries whose attention seeds the scores"},
    {"pool_kernel", &CacheConfig::pool_kernel, "prefill: max-pool width over positions (odd; 1 = none)"},
    {"gamma", &CacheConfig::gamma, "AKCB heavy-hitter score: mean + gamma * std of attention"},
    {"layer_adaptive", &CacheConfig::layer_adaptive, "per-layer hot/warm ratios from prefill attention statistics"},
    {"layer_stats", &CacheConfig::layer_stats,
     "layer_adaptive rule: entropy (threshold bands of the normalized entropy) or arkv (entropy^(1/tau1) * "
     "variance^(1/tau2) * kurtosis^(1/tau3) over the layers' max)"},
    {"tau1", &CacheConfig::tau1, "AKCB/ARKV tau1 (tau1 < tau2 < tau3): entropy threshold or entropy exponent 1/tau1"},
    {"tau2", &CacheConfig::tau2, "tau2: entropy threshold or variance exponent 1/tau2"},
    {"tau3", &CacheConfig::tau3, "tau3: entropy threshold or kurtosis exponent 1/tau3"},
    {"score_mode", &CacheConfig::score_mode, "importance: attn (decayed attention mass), pivotal (ScissorHands), akcb (mean + gamma*std)"},
    {"rank_by_recency", &CacheConfig::rank_by_recency, "demote/evict oldest first instead of by score (StreamingLLM, KIVI)"},
    {"evict_in_decode", &CacheConfig::evict_in_decode, "apply max_total during decoding too (false: only to the prompt, SnapKV)"},
    {"pyramid", &CacheConfig::pyramid, "PyramidKV: per-layer budgets from 1.5x (first layer) down to 0.5x (last)"},
    {"migrate_interval", &CacheConfig::migrate_interval, "decode steps between policy runs (also run when over budget)"},
    {"promote_k", &CacheConfig::promote_k, "cold pages promoted per KV head per check"},
    {"promote_interval", &CacheConfig::promote_interval, "decode steps between promotion checks"},
    {"prefill_chunk", &CacheConfig::prefill_chunk, "most tokens appended per forward pass before the policy runs"},
};

struct Preset {
  const char* method;
  const char* name;      // first preset of a method is its default
  const char* settings;  // applied over the struct defaults
  const char* help;
};

// Eviction baselines keep max_total tokens (25% of the stored tokens by default) in f16.
#define AKV_EVICT_BASE "warm_budget=0,hot_budget=1,max_total=0.25,layer_adaptive=false,hadamard=false,"
const Preset kPresets[] = {
    {"akv", "balanced", "hot_budget=0.04,warm_budget=0.49,warm_bits=4,cold_bits=4,cold_value_bits=2,group_size=64",
     "f16 sinks + recent + heavy hitters, the next 49% int4, the rest int4 keys / int2 values: <= 4.5 bits/value"},
    {"akv", "quality", "hot_budget=0.05,warm_budget=1,warm_bits=4,cold_bits=4,cold_value_bits=0,group_size=32",
     "sinks + recent + 5% heavy hitters in f16, every other token int4 (groups of 32): ~5.6 bits/value"},
    {"akv", "aggressive", "hot_budget=0.03,warm_budget=0.3,warm_bits=4,cold_bits=2,warm_value_bits=2,cold_value_bits=0,group_size=64",
     "f16 sinks + recent, 30% int4 keys / int2 values, the rest int2: ~3.3 bits/value"},
    {"akv", "lean", "hot_budget=0.015,warm_budget=0.1,warm_bits=4,cold_bits=4,cold_value_bits=2,cold_key_block=128,"
     "symmetric_values=true,group_size=64",
     "f16 sinks + recent + heavy hitters (1.5%), the next 10% int4, the rest int4 keys per channel over 128-token "
     "blocks / int2 values (scale only): int4 keys everywhere at ~3.5 bits/value, ~26% of the f16 bytes at 4K"},
    {"akv", "compact", "hot_budget=0,warm_budget=0,warm_bits=4,cold_bits=2,cold_value_bits=2,cold_key_block=128,"
     "symmetric_values=true,group_size=64,n_anchors=4,protect_recent=8,layer_adaptive=false,rank_by_recency=true",
     "f16 sinks + the last 8 tokens, an int4 staging block, the rest int2 (keys per channel over 128 tokens, "
     "values symmetric): ~2.45 bits/value at 2K"},
    {"window", "default", AKV_EVICT_BASE "rank_by_recency=true,n_anchors=4,protect_recent=0",
     "StreamingLLM: 4 attention sinks + the most recent tokens, the rest evicted"},
    {"streamingllm", "default", AKV_EVICT_BASE "rank_by_recency=true,n_anchors=4,protect_recent=0", "alias of window"},
    {"h2o", "default", AKV_EVICT_BASE "decay=1,n_anchors=0,protect_recent=64,pool_kernel=1,observation_window=1",
     "H2O: heavy hitters by accumulated attention + recent tokens, the rest evicted"},
    {"snapkv", "default", AKV_EVICT_BASE "decay=0,n_anchors=0,protect_recent=32,observation_window=32,pool_kernel=7,evict_in_decode=false",
     "SnapKV: prompt tokens chosen by the pooled attention of the last 32 queries; decoding keeps all new tokens"},
    {"pyramidkv", "default", AKV_EVICT_BASE "decay=0,n_anchors=0,protect_recent=32,observation_window=32,pool_kernel=7,evict_in_decode=false,pyramid=true",
     "PyramidKV: SnapKV selection with per-layer budgets shrinking with depth"},
    {"scissorhands", "default", AKV_EVICT_BASE "score_mode=pivotal,decay=0.99,n_anchors=0,protect_recent=32,pool_kernel=1,observation_window=1",
     "ScissorHands: pivotal tokens (attention above average, counted over a history window) + recent"},
    {"kivi", "2", "hot_budget=0,warm_budget=1,warm_bits=2,cold_bits=2,cold_value_bits=0,kivi_keys=true,group_size=32,hadamard=false,"
     "rank_by_recency=true,n_anchors=0,protect_recent=128,layer_adaptive=false",
     "KIVI-2: keys per channel, values per token, 2 bits, the last 128 tokens in f16"},
    {"kivi", "4", "hot_budget=0,warm_budget=1,warm_bits=4,cold_bits=4,cold_value_bits=0,kivi_keys=true,group_size=32,hadamard=false,"
     "rank_by_recency=true,n_anchors=0,protect_recent=128,layer_adaptive=false",
     "KIVI-4: as KIVI-2 at 4 bits"},
    {"uniform", "int4", "hot_budget=0,warm_budget=1,warm_bits=4,cold_bits=4,cold_value_bits=0,group_size=32,hadamard=false,"
     "n_anchors=0,protect_recent=0,rank_by_recency=true,layer_adaptive=false,prefill_chunk=16",
     "every token int4 (groups of 32, asymmetric), like llama.cpp's q4_1 KV cache"},
    {"uniform", "int8", "hot_budget=0,warm_budget=1,warm_bits=8,cold_bits=8,cold_value_bits=0,group_size=32,hadamard=false,"
     "n_anchors=0,protect_recent=0,rank_by_recency=true,layer_adaptive=false,prefill_chunk=16",
     "every token int8 (groups of 32)"},
    {"uniform", "int2", "hot_budget=0,warm_budget=1,warm_bits=2,cold_bits=2,cold_value_bits=0,group_size=32,hadamard=false,"
     "n_anchors=0,protect_recent=0,rank_by_recency=true,layer_adaptive=false,prefill_chunk=16",
     "every token int2 (groups of 32)"},
    {"akcb", "mix", "score_mode=akcb,gamma=1,layer_adaptive=true,n_anchors=0,protect_recent=128,hot_budget=0.15,warm_budget=1,"
     "max_total=0.5,warm_bits=4,cold_bits=4,cold_value_bits=0,group_size=32,hadamard=false",
     "AKCB/ARKV mix: per-layer full / int4 / evicted ratios from attention statistics, heavy hitters = mean + gamma*std"},
    {"akcb", "quant", "score_mode=akcb,n_anchors=0,protect_recent=128,hot_budget=128,warm_budget=1,warm_bits=4,cold_bits=4,"
     "cold_value_bits=0,group_size=32,hadamard=false,layer_adaptive=false,rank_by_recency=true",
     "AKCB quant: the window in f16, everything else int4"},
    {"akcb", "origin", AKV_EVICT_BASE "score_mode=akcb,gamma=1,n_anchors=0,protect_recent=128",
     "AKCB origin: full precision heavy hitters (mean + gamma*std) + window within the budget, the rest evicted"},
    {"akcb", "window", AKV_EVICT_BASE "rank_by_recency=true,n_anchors=0,protect_recent=0",
     "AKCB window: a sliding window of the most recent tokens"},
};
#undef AKV_EVICT_BASE

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

Status SetField(CacheConfig& c, const std::string& key, const std::string& value) {
  for (const Field& f : kFields) {
    if (key != f.key) continue;
    auto bad = [&](const char* want) {
      return InvalidArgument("cache option '" + key + "': '" + value + "' is not " + want);
    };
    if (auto m = std::get_if<double CacheConfig::*>(&f.member)) {
      double v;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || p != value.data() + value.size() || !std::isfinite(v)) return bad("a number");
      c.*(*m) = v;
    } else if (auto m = std::get_if<int CacheConfig::*>(&f.member)) {
      int v;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || p != value.data() + value.size()) return bad("an integer");
      c.*(*m) = v;
    } else if (auto str = std::get_if<std::string CacheConfig::*>(&f.member)) {
      c.*(*str) = value;
    } else {
      auto b = std::get<bool CacheConfig::*>(f.member);
      if (value == "1" || value == "true" || value == "on") c.*b = true;
      else if (value == "0" || value == "false" || value == "off") c.*b = false;
      else return bad("a boolean (true/false)");
    }
    return Status::Ok();
  }
  std::string keys;
  for (const Field& f : kFields) keys += std::string(keys.empty() ? "" : ", ") + f.key;
  return InvalidArgument("unknown cache option '" + key + "' (options: " + keys + ")");
}

Status ApplySettings(CacheConfig& c, const std::string& list) {
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = Trim(item);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos) return InvalidArgument("cache option '" + item + "' needs a value (key=value)");
    AKV_RETURN_IF_ERROR(SetField(c, Trim(item.substr(0, eq)), Trim(item.substr(eq + 1))));
  }
  return Status::Ok();
}

std::string FieldValue(const CacheConfig& c, const Field& f) {
  std::ostringstream os;
  if (auto m = std::get_if<double CacheConfig::*>(&f.member)) os << c.*(*m);
  else if (auto m = std::get_if<int CacheConfig::*>(&f.member)) os << c.*(*m);
  else if (auto str = std::get_if<std::string CacheConfig::*>(&f.member)) os << c.*(*str);
  else os << (c.*std::get<bool CacheConfig::*>(f.member) ? "true" : "false");
  return os.str();
}

}  // namespace

Status CacheConfig::ApplyPreset(const std::string& name) {
  bool known_method = false;
  std::string names;
  for (const Preset& p : kPresets) {
    if (method != p.method) continue;
    known_method = true;
    names += std::string(names.empty() ? "" : ", ") + p.name;
    if (name.empty() || name == p.name) {
      preset = p.name;
      return ApplySettings(*this, p.settings);
    }
  }
  if (!known_method) {
    std::string methods = "full";
    for (const auto& m : Methods()) methods += ", " + m.first;
    return InvalidArgument("unknown KV cache method '" + method + "' (methods: " + methods + ")");
  }
  return InvalidArgument("unknown preset '" + name + "' for cache method '" + method + "' (presets: " + names + ")");
}

std::vector<std::pair<std::string, std::string>> CacheConfig::Methods() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Preset& p : kPresets) {
    bool seen = false;
    for (const auto& m : out) seen |= m.first == p.method;
    if (!seen) out.push_back({p.method, p.help});
  }
  return out;
}

StatusOr<CacheConfig> CacheConfig::Parse(const std::string& spec) {
  CacheConfig c;
  std::string head = spec, rest;
  if (size_t comma = spec.find(','); comma != std::string::npos) {
    head = spec.substr(0, comma);
    rest = spec.substr(comma + 1);
  }
  head = Trim(head);
  std::string preset;
  if (size_t colon = head.find(':'); colon != std::string::npos) {
    preset = Trim(head.substr(colon + 1));
    head = Trim(head.substr(0, colon));
  }
  if (head.empty()) return InvalidArgument("empty cache spec");
  c.method = head;
  AKV_RETURN_IF_ERROR(c.ApplyPreset(preset));
  AKV_RETURN_IF_ERROR(ApplySettings(c, rest));
  AKV_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status CacheConfig::Validate() const {
  auto bits_ok = [](int b) { return b == 2 || b == 4 || b == 8; };
  if (!bits_ok(warm_bits)) return InvalidArgument("warm_bits must be 8, 4 or 2, got " + std::to_string(warm_bits));
  if (!bits_ok(cold_bits)) return InvalidArgument("cold_bits must be 8, 4 or 2, got " + std::to_string(cold_bits));
  if (warm_value_bits != 0 && !bits_ok(warm_value_bits))
    return InvalidArgument("warm_value_bits must be 0, 8, 4 or 2, got " + std::to_string(warm_value_bits));
  if (cold_value_bits != 0 && !bits_ok(cold_value_bits))
    return InvalidArgument("cold_value_bits must be 0, 8, 4 or 2, got " + std::to_string(cold_value_bits));
  if (cold_bits > warm_bits)
    return InvalidArgument("cold_bits (" + std::to_string(cold_bits) + ") must not exceed warm_bits (" + std::to_string(warm_bits) + ")");
  if (group_size != 32 && group_size != 64 && group_size != 128)
    return InvalidArgument("group_size must be 32, 64 or 128, got " + std::to_string(group_size));
  if (page_size != 0 && (page_size < 32 || page_size % 32 != 0 || page_size > 4096))
    return InvalidArgument("page_size must be 0 (auto) or a multiple of 32 in [32, 4096], got " +
                           std::to_string(page_size));
  if (kivi_keys && page_size != 0 && page_size % group_size != 0)
    return InvalidArgument("kivi_keys needs page_size to be a multiple of group_size");
  if (kivi_keys && !rank_by_recency)
    return InvalidArgument("kivi_keys quantizes keys in blocks of consecutive tokens: it needs rank_by_recency=true");
  if (cold_key_block && kivi_keys)
    return InvalidArgument("cold_key_block and kivi_keys both set how keys are grouped: use one");
  if (kivi_keys && (warm_budget < 1 || max_total > 0))
    return InvalidArgument("kivi_keys keeps every quantized token warm: it needs warm_budget=1 and no max_total");
  if (cold_key_block != 0 && cold_key_block != 32 && cold_key_block != 64 && cold_key_block != 128)
    return InvalidArgument("cold_key_block must be 0 (off), 32, 64 or 128, got " + std::to_string(cold_key_block));
  if (cold_key_block && page_size != 0 && page_size % cold_key_block != 0)
    return InvalidArgument("cold_key_block needs page_size to be a multiple of it");
  // A per-channel block shares its scales: its slots can neither leave one by one (promotion,
  // eviction) nor be compacted into another page.
  if (cold_key_block && (!cold_attend_all || max_total > 0))
    return InvalidArgument("cold_key_block keeps cold blocks whole: it needs cold_attend_all=true and no max_total");
  if (!(hot_budget >= 0)) return InvalidArgument("hot_budget must be >= 0");
  if (score_mode != "attn" && score_mode != "pivotal" && score_mode != "akcb")
    return InvalidArgument("score_mode must be attn, pivotal or akcb, got '" + score_mode + "'");
  if (!(warm_budget >= 0)) return InvalidArgument("warm_budget must be >= 0");
  if (max_total < 0) return InvalidArgument("max_total must be >= 0 (0 = no eviction)");
  if (max_total > 1 && max_total < n_anchors + protect_recent)
    return InvalidArgument("impossible budget: max_total (" + std::to_string(static_cast<int64_t>(max_total)) +
                           ") is smaller than n_anchors + protect_recent (" + std::to_string(n_anchors + protect_recent) +
                           "), which are never evicted");
  if (kv_budget_mb < 0) return InvalidArgument("kv_budget_mb must be >= 0");
  if (!hot_budget_layers.empty()) {
    auto parsed = LayerHotBudgets();
    if (!parsed.ok()) return parsed.status();
  }
  if (n_anchors < 0 || protect_recent < 0) return InvalidArgument("n_anchors and protect_recent must be >= 0");
  if (hot_budget > 1 && hot_budget < n_anchors + protect_recent)
    return InvalidArgument("impossible budget: hot_budget (" + std::to_string(static_cast<int64_t>(hot_budget)) +
                           ") is smaller than n_anchors + protect_recent (" + std::to_string(n_anchors + protect_recent) +
                           "), which are always hot");
  if (!(decay >= 0 && decay <= 1)) return InvalidArgument("decay must be in [0, 1]");
  if (w_attn < 0 || w_recency < 0 || gamma < 0) return InvalidArgument("w_attn, w_recency and gamma must be >= 0");
  if (observation_window < 1) return InvalidArgument("observation_window must be >= 1");
  if (pool_kernel < 1 || pool_kernel % 2 == 0) return InvalidArgument("pool_kernel must be odd and >= 1");
  if (layer_stats != "entropy" && layer_stats != "arkv")
    return InvalidArgument("layer_stats must be entropy or arkv, got '" + layer_stats + "'");
  if (layer_stats == "arkv" && !(tau1 > 0)) return InvalidArgument("layer_stats=arkv needs tau1 > 0 (exponents 1/tau)");
  if (!(tau1 < tau2 && tau2 < tau3))
    return InvalidArgument("thresholds must satisfy tau1 < tau2 < tau3 (got " + std::to_string(tau1) + ", " +
                           std::to_string(tau2) + ", " + std::to_string(tau3) + ")");
  if (migrate_interval < 1 || promote_interval < 1) return InvalidArgument("migrate_interval and promote_interval must be >= 1");
  if (promote_k < 0) return InvalidArgument("promote_k must be >= 0");
  if (prefill_chunk < 1) return InvalidArgument("prefill_chunk must be >= 1");
  return Status::Ok();
}

std::string CacheConfig::ToString() const {
  CacheConfig base;
  base.method = method;
  (void)base.ApplyPreset(preset);
  // (base starts from the struct defaults, like Parse does.)
  std::string s = method + ":" + preset;
  for (const Field& f : kFields) {
    std::string v = FieldValue(*this, f);
    if (v != FieldValue(base, f)) s += std::string(",") + f.key + "=" + v;
  }
  return s;
}

std::string CacheConfig::Help() {
  std::ostringstream os;
  CacheConfig d;
  (void)d.ApplyPreset("balanced");
  os << "Cache spec: METHOD[:PRESET][,key=value...]   e.g. akv:balanced,hot_budget=256, h2o,max_total=512\n\n";
  os << "Methods and presets (the first preset of a method is its default):\n  full: f16, every token (no options)\n";
  for (const Preset& p : kPresets) os << "  " << p.method << ":" << p.name << ": " << p.help << "\n      " << p.settings << "\n";
  os << "\nOptions (defaults of the balanced preset):\n";
  for (const Field& f : kFields) os << "  " << f.key << "=" << FieldValue(d, f) << "  " << f.help << "\n";
  return os.str();
}

StatusOr<std::vector<double>> CacheConfig::LayerHotBudgets() const {
  std::vector<double> out;
  std::stringstream ss(hot_budget_layers);
  std::string item;
  while (std::getline(ss, item, ':')) {
    double v;
    item = Trim(item);
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || p != item.data() + item.size() || !(v > 0))
      return InvalidArgument("hot_budget_layers: '" + item + "' is not a positive budget");
    out.push_back(v);
  }
  return out;
}

int64_t CacheConfig::BudgetTokens(double budget, int64_t n_stored) {
  if (budget > 1) return static_cast<int64_t>(budget);
  return static_cast<int64_t>(std::ceil(budget * static_cast<double>(n_stored)));
}

int CacheConfig::PageSizeFor(int64_t context, double f16_bytes_per_token) const {
  if (page_size != 0) return page_size;
  // Under a budget the partly filled pages (one per tier and KV head) are paid from the budget:
  // size pages on the tokens it buys in f16, when that is fewer than the context.
  int64_t sized = context;
  if (max_total > 0) sized = std::min(sized, BudgetTokens(max_total, context));
  if (kv_budget_mb > 0 && f16_bytes_per_token > 0)
    sized = std::min(sized, static_cast<int64_t>(KvBudgetBytes() / f16_bytes_per_token));
  int size = 64;
  while (size < 256 && size < sized / 16) size *= 2;
  if (kivi_keys) size = std::max(size, group_size);
  size = std::max(size, cold_key_block);
  return size;
}

}  // namespace akv
