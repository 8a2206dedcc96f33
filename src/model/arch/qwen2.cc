// Qwen2 / Qwen2.5 (GGUF "qwen2"): like llama plus q/k/v biases, NEOX-style (halves) RoPE.
#include "model/arch/arch.h"

namespace akv {
const ArchSpec kQwen2Arch = {"qwen2", RopeStyle::kNeox, /*qkv_bias=*/true, /*qk_norm=*/false};
}  // namespace akv
