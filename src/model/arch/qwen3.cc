// Qwen3 (GGUF "qwen3"): no q/k/v biases, per-head RMSNorm of q and k before RoPE, NEOX RoPE,
// head_dim from attention.key_length (may differ from n_embd / n_head).
#include "model/arch/arch.h"

namespace akv {
const ArchSpec kQwen3Arch = {"qwen3", RopeStyle::kNeox, /*qkv_bias=*/false, /*qk_norm=*/true};
}  // namespace akv
