// Tensor-core (mma.sync m16n8k16, f16 in, f32 accumulate) decode attention for the int4 and int2
// tiers: internal to src/cuda, used by LaunchDecodeAttention (attention_decode.cu) when it applies.
#pragma once

#include <cuda_runtime.h>

#include "cuda/kernels.h"

namespace akv::cuda {

// D in {64, 128}, bits in {4, 2}, R in {1, 2, 4, 8}, key group == value group in {32, 64, 128}
// (<= D), and the switch AKV_CUDA_DECODE_MMA is not 0.
bool DecodeAttentionMmaApplies(const DevPageLayout& layout, int R);
// Same check without a layout (groups of 32 assumed), for sizing the split grid.
bool DecodeAttentionMmaApplies(int head_dim, int R, int bits);
cudaError_t LaunchDecodeAttentionMma(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t stream);
// Resident warps per multiprocessor of the kernel for groups of 32 (the largest stage).
int DecodeAttentionMmaWarpsPerSm(int head_dim, int R, int bits);

}  // namespace akv::cuda
