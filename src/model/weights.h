// Model weights: views into the mmapped GGUF where MatMul computes on the stored type, owned
// buffers where a type had to be converted at load (said in the load log).
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "cpu/matmul.h"
#include "io/gguf.h"
#include "model/hparams.h"

namespace akv {

struct LayerWeights {
  std::vector<float> attn_norm;           // [n_embd]
  WeightMatrix wq, wk, wv, wo;            // [q_dim x n_embd], [kv_dim x n_embd] x2, [n_embd x q_dim]
  std::vector<float> bq, bk, bv;          // qwen2 biases (empty otherwise)
  std::vector<float> q_norm, k_norm;      // qwen3 per-head norms [head_dim] (empty otherwise)
  std::vector<float> ffn_norm;            // [n_embd]
  WeightMatrix w_gate, w_up, w_down;      // [n_ff x n_embd] x2, [n_embd x n_ff]
};

struct ModelWeights {
  WeightMatrix token_embd;  // [n_vocab x n_embd]; rows are looked up, any supported type
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm;  // [n_embd]
  WeightMatrix output;             // [n_vocab x n_embd]; token_embd when tied
  std::vector<float> rope_freq_factors;  // llama3-style rope_freqs.weight [n_rot/2], or empty
  std::vector<std::string> load_notes;   // conversions done at load, for the log
  std::vector<std::unique_ptr<std::vector<uint8_t>>> owned;  // converted tensors' storage
  struct FreeBytes {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t[], FreeBytes>> panels;  // WeightMatrix::panels storage
  size_t panel_bytes = 0;
};

// Checks every tensor's presence, type and shape against `config`; errors name the tensor.
StatusOr<std::unique_ptr<ModelWeights>> LoadWeights(const GgufFile& gguf, const ModelConfig& config);

}  // namespace akv
