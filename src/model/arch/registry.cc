#include <cmath>

#include "model/arch/arch.h"

namespace akv {

namespace {
const ArchSpec* const kArchs[] = {&kLlamaArch, &kQwen2Arch, &kQwen3Arch};

StatusOr<int> PositiveInt(const GgufFile& g, const std::string& key) {
  AKV_ASSIGN_OR_RETURN(int64_t v, g.GetInt(key));
  if (v <= 0 || v > (1 << 30)) return Corrupt("metadata key '" + key + "' = " + std::to_string(v) + " is out of range");
  return static_cast<int>(v);
}
}  // namespace

const ArchSpec* FindArch(const std::string& name) {
  for (const ArchSpec* a : kArchs)
    if (name == a->name) return a;
  return nullptr;
}

std::vector<std::string> SupportedArchNames() {
  std::vector<std::string> out;
  for (const ArchSpec* a : kArchs) out.push_back(a->name);
  return out;
}

StatusOr<ModelConfig> ReadModelConfig(const GgufFile& g) {
  ModelConfig c;
  AKV_ASSIGN_OR_RETURN(c.arch, g.GetString("general.architecture"));
  const ArchSpec* spec = FindArch(c.arch);
  if (!spec) {
    std::string names;
    for (const auto& n : SupportedArchNames()) names += (names.empty() ? "" : ", ") + n;
    return Unsupported("unknown model architecture '" + c.arch + "' (supported: " + names + ")");
  }
  AKV_ASSIGN_OR_RETURN(c.name, g.GetStringOr("general.name", c.arch));
  const std::string p = c.arch + ".";
  AKV_ASSIGN_OR_RETURN(c.n_layer, PositiveInt(g, p + "block_count"));
  AKV_ASSIGN_OR_RETURN(c.n_embd, PositiveInt(g, p + "embedding_length"));
  AKV_ASSIGN_OR_RETURN(c.n_head, PositiveInt(g, p + "attention.head_count"));
  c.n_head_kv = c.n_head;
  if (g.Has(p + "attention.head_count_kv")) {
    AKV_ASSIGN_OR_RETURN(c.n_head_kv, PositiveInt(g, p + "attention.head_count_kv"));
  }
  if (c.n_head % c.n_head_kv != 0)
    return Corrupt("attention.head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  c.head_dim = c.n_embd / c.n_head;
  if (g.Has(p + "attention.key_length")) {
    AKV_ASSIGN_OR_RETURN(c.head_dim, PositiveInt(g, p + "attention.key_length"));
  }
  if (g.Has(p + "attention.value_length")) {
    AKV_ASSIGN_OR_RETURN(int vl, PositiveInt(g, p + "attention.value_length"));
    if (vl != c.head_dim) return Unsupported("attention.value_length != key_length is not supported");
  }
  if (c.head_dim % 2 != 0) return Corrupt("head dimension " + std::to_string(c.head_dim) + " is odd");
  AKV_ASSIGN_OR_RETURN(c.n_ff, PositiveInt(g, p + "feed_forward_length"));
  AKV_ASSIGN_OR_RETURN(int64_t ctx, g.GetIntOr(p + "context_length", 2048));
  c.n_ctx_train = static_cast<int>(ctx);
  AKV_ASSIGN_OR_RETURN(double eps, g.GetFloatOr(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rms_eps = static_cast<float>(eps);
  c.qkv_bias = spec->qkv_bias;
  c.qk_norm = spec->qk_norm;

  RopeConfig& r = c.rope;
  r.style = spec->rope_style;
  AKV_ASSIGN_OR_RETURN(int64_t rd, g.GetIntOr(p + "rope.dimension_count", c.head_dim));
  if (rd <= 0 || rd > c.head_dim || rd % 2) return Corrupt("rope.dimension_count " + std::to_string(rd) + " is invalid for head_dim " + std::to_string(c.head_dim));
  r.n_dims = static_cast<int>(rd);
  AKV_ASSIGN_OR_RETURN(double base, g.GetFloatOr(p + "rope.freq_base", 10000.0));
  r.freq_base = static_cast<float>(base);
  if (!(r.freq_base > 0)) return Corrupt("rope.freq_base must be positive");
  AKV_ASSIGN_OR_RETURN(std::string scaling, g.GetStringOr(p + "rope.scaling.type", "none"));
  double factor = 0;
  if (g.Has(p + "rope.scaling.factor")) {
    AKV_ASSIGN_OR_RETURN(factor, g.GetFloat(p + "rope.scaling.factor"));
  } else if (g.Has(p + "rope.scale_linear")) {
    AKV_ASSIGN_OR_RETURN(factor, g.GetFloat(p + "rope.scale_linear"));
    if (scaling == "none") scaling = "linear";
  }
  if (scaling == "none" || factor == 0.0 || factor == 1.0) {
    r.scaling = RopeScaling::kNone;
  } else if (scaling == "linear") {
    r.scaling = RopeScaling::kLinear;
    r.freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling == "yarn") {
    r.scaling = RopeScaling::kYarn;
    r.freq_scale = static_cast<float>(1.0 / factor);
    AKV_ASSIGN_OR_RETURN(int64_t orig, g.GetIntOr(p + "rope.scaling.original_context_length", c.n_ctx_train));
    r.n_ctx_orig = static_cast<int>(orig);
    r.yarn_ext_factor = 1.0f;
    AKV_ASSIGN_OR_RETURN(double af, g.GetFloatOr(p + "rope.scaling.attn_factor", 1.0));
    r.yarn_attn_factor = static_cast<float>(af);
  } else {
    return Unsupported("rope scaling type '" + scaling + "' is not supported (none, linear, yarn)");
  }
  if (!(factor >= 0) || (r.scaling != RopeScaling::kNone && factor < 1e-3))
    return Corrupt("rope.scaling.factor " + std::to_string(factor) + " is invalid");
  if (r.n_ctx_orig == 0) r.n_ctx_orig = c.n_ctx_train;
  return c;
}

}  // namespace akv
