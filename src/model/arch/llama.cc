// Llama 1/2/3/3.x, Mistral, SmolLM (GGUF "llama"): RMSNorm, SwiGLU, GQA, adjacent-pair RoPE
// (convert_hf_to_gguf permutes the q/k rows so that this "normal" RoPE matches HF's halves).
#include "model/arch/arch.h"

namespace akv {
const ArchSpec kLlamaArch = {"llama", RopeStyle::kNorm, /*qkv_bias=*/false, /*qk_norm=*/false};
}  // namespace akv
