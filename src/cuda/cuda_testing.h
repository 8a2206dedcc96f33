// Host-level entry points to single GPU kernels, for the tests (tests/cuda_*_test.cc) and the
// kernel benchmarks: each uploads its inputs, runs the kernel, synchronizes and returns the
// results on the host. No CUDA header is included.
#pragma once

#include <cstdint>
#include <vector>

#include "attn/online_softmax.h"
#include "core/status.h"
#include "cpu/matmul.h"
#include "kv/page/kv_page.h"
#include "model/hparams.h"

namespace akv::cuda {

// y [n][w.rows] = x [n][w.cols] W^T through the backend's dispatcher: `gemv_max_tokens` decides
// GEMV kernel vs cuBLAS for float weights (quantized weights always use the Q8_0 GEMV).
StatusOr<std::vector<float>> GpuMatMul(const WeightMatrix& w, const float* x, int n, int gemv_max_tokens);

// out[r] = RmsNorm(x[r]) * w over n_rows rows of dim.
StatusOr<std::vector<float>> GpuRmsNorm(const float* x, const float* w, float eps, int n_rows, int dim);
// silu(gate) * up, n values.
StatusOr<std::vector<float>> GpuSwiGlu(const float* gate, const float* up, int n);
// RoPE of x [n][n_heads][head_dim], token t at position pos0 + t.
StatusOr<std::vector<float>> GpuRope(const RopeConfig& config, const std::vector<float>& freq_factors, const float* x,
                                     int n, int n_heads, int head_dim, int pos0);

// Writes keys / values [n][head_dim] of one KV head into slots `slots[i]` (positions[i]) of a
// zeroed page of `capacity` slots with the tier codec (bits 16 / 8 / 4 / 2, group), on the GPU;
// returns the page bytes (PageLayout of kv/codecs/page_layout.h).
StatusOr<std::vector<uint8_t>> GpuWritePage(int bits, int group, int head_dim, int capacity, const float* keys,
                                            const float* values, const std::vector<int32_t>& slots,
                                            const std::vector<int32_t>& positions);

// Re-encodes each page (any tier codec) into a page of the codec (bits, group) with
// LaunchKvConvertPage (the cold tier's demotion): returns the new pages' bytes, key summary
// included.
StatusOr<std::vector<std::vector<uint8_t>>> GpuConvertPages(const std::vector<const KvPage*>& pages, int bits,
                                                            int group);

// LaunchPageBounds on the GPU: q [n_layer][n_kv * R][D], summaries f16 [n_layer * n_kv][max_pages][2][D];
// returns bounds [n_layer * n_kv][max_pages] (pages >= n_pages untouched: 0).
StatusOr<std::vector<float>> GpuPageBounds(const std::vector<float>& q, const std::vector<uint16_t>& summaries,
                                           int n_layer, int n_kv, int R, int D, int max_pages, int n_pages);

// Attention over tiers. A tier: pages of one layout per job (job = KV head), in slot order, all but
// the last full. The pages' bytes are copied to the device as they are.
struct GpuTierInput {
  std::vector<std::vector<const KvPage*>> pages;  // [n_jobs][pages]
};
struct GpuAttentionOutput {
  std::vector<float> out;                  // [n_jobs * R][head_dim]
  std::vector<SoftmaxStats> stats;         // [n_jobs * R]
  std::vector<std::vector<float>> mass;    // per tier: [n_jobs][slots of the job], concatenated
};
// Decode: one query per query head (q [n_jobs * R][head_dim]); `splits` per tier (0: automatic).
StatusOr<GpuAttentionOutput> GpuDecodeAttention(int head_dim, int R, const float* q,
                                                const std::vector<GpuTierInput>& tiers, bool want_mass, int splits);
// Prefill: queries q [n_q][n_jobs * R][head_dim] at positions pos0 + t, causal over slot positions.
StatusOr<std::vector<float>> GpuPrefillAttention(int head_dim, int R, const float* q, int n_q, int pos0,
                                                 const std::vector<GpuTierInput>& tiers);

// Cold tier: `cold[j]` (pages of one layout, int2 in the presets) are copied byte for byte into a
// ColdTier's pinned host pages; promote[j] (indices into cold[j]) are promoted by the copy engine
// on a copy stream while the hot tier's attention runs on the compute stream, which then waits for
// the copy and attends to the promoted pages; one merged result over hot + promoted pages.
StatusOr<std::vector<float>> GpuColdPromotionAttention(int head_dim, int R, const float* q, const GpuTierInput& hot,
                                                       const std::vector<std::vector<const KvPage*>>& cold,
                                                       const std::vector<std::vector<int>>& promote);

// ---- Kernel benchmarks ------------------------------------------------------------------------

// Decode attention over `batch` sequences x n_kv heads, `context` tokens each: either one tier of
// `bits` (16 / 8 / 4 / 2, group) or, with hot_tokens > 0, hot_tokens in f16 plus the rest in
// `bits`. Data are random, written on the device by the append kernels. Timed with CUDA events
// around `iters` launches (attention kernels + merge), after warm-up.
struct AttnBenchConfig {
  int batch = 8, n_kv = 32, R = 1, head_dim = 128, context = 32768;
  int bits = 16, group = 32;
  int hot_tokens = 0;
  int page_slots = 256;
  bool mass = false;
  int splits = 0;  // per tier; 0: automatic
};
struct AttnBenchResult {
  double ms_median = 0, ms_min = 0;
  double kv_bytes = 0;       // K and V bytes the kernels read (codes + scales + zeros)
  double other_bytes = 0;    // queries, partial states, mass
  double gbps = 0;           // (kv_bytes + other_bytes) / median time
  int splits = 0;
};
StatusOr<AttnBenchResult> BenchDecodeAttention(const AttnBenchConfig& config, int iters);
// One-token GEMV on random weights [rows][cols] of `type` (f16 / bf16 / f32), `variant` of
// LaunchGemvFloat: GB/s of weight bytes.
StatusOr<double> BenchGemv(int64_t rows, int64_t cols, GgmlType type, int variant, int iters);

// Promotion of cold int2 pages (pinned host -> device, copy stream) against f16 decode attention
// on the compute stream: each alone and both at once (batch x n_kv jobs, `context` f16 tokens,
// `promote_pages` pages of `page_slots` int2-g32 slots per job).
struct ColdBenchResult {
  double copy_ms = 0, copy_gbps = 0, attention_ms = 0, both_ms = 0;
  double promoted_bytes = 0;
};
StatusOr<ColdBenchResult> BenchColdPromotion(int batch, int n_kv, int head_dim, int context, int promote_pages,
                                             int page_slots, int iters);

// Device-to-device cudaMemcpy of `bytes`, median over iters: GB/s counting bytes read + written.
StatusOr<double> BenchDeviceCopyGBps(size_t bytes, int iters);

}  // namespace akv::cuda
