// Model hyper-parameters, read from GGUF keys "<arch>.*".
#pragma once

#include <cstdint>
#include <string>

namespace akv {

enum class RopeStyle { kNorm, kNeox };  // adjacent pairs (llama) vs halves (qwen2/neox)
enum class RopeScaling { kNone, kLinear, kYarn };

struct RopeConfig {
  RopeStyle style = RopeStyle::kNorm;
  int n_dims = 0;            // rotated dimensions per head (<= head_dim)
  float freq_base = 10000.f;
  RopeScaling scaling = RopeScaling::kNone;
  float freq_scale = 1.f;    // 1 / scaling factor
  int n_ctx_orig = 0;        // original training context (YaRN)
  float yarn_ext_factor = 0.f;
  float yarn_attn_factor = 1.f;
  float yarn_beta_fast = 32.f;
  float yarn_beta_slow = 1.f;
};

struct ModelConfig {
  std::string arch;   // GGUF general.architecture
  std::string name;   // general.name
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  RopeConfig rope;
  bool qkv_bias = false;   // qwen2
  bool qk_norm = false;    // qwen3: RMSNorm of each q/k head before RoPE
  bool tied_output = false;

  int n_q_per_kv() const { return n_head / n_head_kv; }
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

}  // namespace akv
