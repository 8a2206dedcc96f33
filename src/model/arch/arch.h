// Registry of supported architectures. Each lives in its own file (llama.cc, qwen2.cc, qwen3.cc)
// and says how its GGUF keys and tensors map onto the shared decoder (model/transformer).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "io/gguf.h"
#include "model/hparams.h"

namespace akv {

struct ArchSpec {
  const char* name;  // general.architecture value
  RopeStyle rope_style;
  bool qkv_bias;  // attn_{q,k,v}.bias tensors
  bool qk_norm;   // attn_{q,k}_norm.weight tensors
};

const ArchSpec* FindArch(const std::string& name);
std::vector<std::string> SupportedArchNames();

// Reads every hyper-parameter from the "<arch>.*" keys (shared by all decoder architectures).
StatusOr<ModelConfig> ReadModelConfig(const GgufFile& gguf);

// Per-architecture specs, defined in their files.
extern const ArchSpec kLlamaArch;
extern const ArchSpec kQwen2Arch;
extern const ArchSpec kQwen3Arch;

}  // namespace akv
