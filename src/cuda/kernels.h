// Launchers of the CUDA kernels and the plain-old-data views they take. Internal to src/cuda
// (includes the CUDA runtime); the rest of the engine uses cuda_backend.h.
//
// Conventions: activations are f32 row-major [n_tokens][dim] with an explicit row stride (ld);
// every launcher returns the launch error (cudaGetLastError) and never synchronizes.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/ggml_types.h"

namespace akv::cuda {

// ---- Weights -----------------------------------------------------------------------------------

// A weight matrix on the device, y = W x with W [rows][cols]. F32/F16/BF16: row-major elements.
// Q8_0: int8 codes [rows][cols] plus f16 scales [rows][cols / 32]. Q4_0: bytes [rows][cols / 2],
// byte j of block b holding elements 32b + j (low nibble) and 32b + j + 16 (high nibble), as in
// ggml, plus scales [rows][cols / 32]. (ggml's 34/18-byte blocks are split at upload so every
// load is aligned.)
struct DevMatrix {
  GgmlType type = GgmlType::F16;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;
  const __half* scales = nullptr;
};

// Activations quantized to Q8_0 (llama.cpp rounding, as the CPU MatMul does for Q8_0/Q4_0
// weights): codes [n][cols], f16 scales [n][cols / 32].
cudaError_t LaunchQuantizeQ8(const float* x, int64_t ldx, int64_t cols, int n, int8_t* codes, __half* scales,
                             cudaStream_t stream);
// y[t][r] (+)= sum_i W[r][i] x[t][i] for t < n. Float types: f32 x, f32 accumulation. Quantized
// types: xq/xs from LaunchQuantizeQ8, integer dot products per block.
// `variant` (one token, 16-byte aligned rows): 0 the general kernel; 1, 2, 3 the one-token kernel
// with 1, 2 or 4 rows per warp (CudaModel times them once and keeps the fastest).
cudaError_t LaunchGemvFloat(const DevMatrix& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy,
                            bool accumulate, cudaStream_t stream, int variant = 0);
cudaError_t LaunchGemvQuant(const DevMatrix& w, const int8_t* xq, const __half* xs, int n, float* y, int64_t ldy,
                            bool accumulate, cudaStream_t stream);

// ---- Element-wise ------------------------------------------------------------------------------

// x[t][:] = row tokens[t] of the embedding matrix (any DevMatrix type), as f32.
cudaError_t LaunchEmbed(const DevMatrix& emb, const int32_t* tokens, int n, float* x, int64_t ldx, cudaStream_t stream);
// Rows r < n_rows of `dim` elements: row r lives at base + (r / per_group) * group_stride +
// (r % per_group) * dim (tokens x heads inside a fused qkv buffer; per_group = 1 for plain rows).
// out = x / sqrt(mean(x^2) + eps) * w; out may alias x.
cudaError_t LaunchRmsNorm(const float* x, float* out, int64_t group_stride, int per_group, int n_rows, int dim,
                          const float* w, float eps, cudaStream_t stream);
// out[t][i] = silu(gu[t][i]) * gu[t][n_ff + i].
cudaError_t LaunchSwiGlu(const float* gu, int64_t ldgu, int n_ff, int n, float* out, int64_t ldo, cudaStream_t stream);
// y[t][i] += b[i].
cudaError_t LaunchAddBias(float* y, int64_t ldy, const float* b, int dim, int n, cudaStream_t stream);
// f32 -> f16 / bf16 rows (cuBLAS inputs).
cudaError_t LaunchConvertRows(const float* x, int64_t ldx, int cols, int n, void* out, GgmlType out_type,
                              cudaStream_t stream);

// Where this step's tokens sit: token i of the step has position pos0 + i (a device struct, so a
// captured decode graph reads the current step's values).
struct StepParams {
  int32_t pos0 = 0;
  int32_t n_new = 0;
  int32_t warm_base = 0;  // warm slot of position p: p - n_sink - warm_base (pages demoted to cold)
};

// A decode step's StepParams and token written by a one-thread kernel (the values travel as kernel
// parameters): no host-to-device copy, which would queue behind a cold-tier promotion on the copy
// engine. tokens may be null.
cudaError_t LaunchSetDecodeStep(StepParams* step, int32_t* tokens, const StepParams& value, int32_t token,
                                cudaStream_t stream);
// dst[i] = src[i] on the SMs (a device-to-device cudaMemcpy in a graph may use a copy engine).
cudaError_t LaunchCopyF32(const float* src, float* dst, int64_t n, cudaStream_t stream);

// RoPE as model/rope.cc computes it (normal / NEOX pairs, linear / YaRN scaling, freq factors),
// on `n_heads` heads of `head_dim` at x + t * ld + h * head_dim, token t at position pos0 + t.
struct RopeParams {
  int n_dims = 0;
  bool neox = false;
  bool scaled = false;  // linear or YaRN
  bool yarn = false;
  float freq_scale = 1, ext_factor = 0, attn_factor = 1, corr_low = 0, corr_high = 0;
  const float* inv_freq = nullptr;  // device [n_dims / 2], freq factors applied
};
cudaError_t LaunchRope(float* x, int64_t ld, int n_heads, int head_dim, int max_tokens, const StepParams* step,
                       const RopeParams& p, cudaStream_t stream);

// ---- KV tiers ----------------------------------------------------------------------------------

// One tier's page geometry: the byte layout of kv/codecs/page_layout.h (same offsets, same
// packing, so a page moves between host and device without re-packing). Keys and values share
// the format; groups are per token.
struct DevPageLayout {
  int head_dim = 0;
  int capacity = 0;   // slots per page, a multiple of 32
  int bits = 16;      // 16 (f16), 8, 4, 2
  int key_group = 0;  // channels per (scale, zero); 0 for f16
  int value_group = 0;
  uint32_t positions_offset = 0, key_data_offset = 0, key_scales_offset = 0, key_zeros_offset = 0;
  uint32_t value_data_offset = 0, value_scales_offset = 0, value_zeros_offset = 0;
  uint32_t key_min_offset = 0, key_max_offset = 0;
  uint32_t total_bytes = 0;
};

// A tier seen by the kernels: "jobs" are (sequence, KV head) pairs. Job j's slots are
// [0, n_slots[j]) in pages page_table[j][0..]; every page but the last is full, so slot s lives in
// page s / capacity. Page id p starts at pool + p * page_bytes.
struct DevTier {
  DevPageLayout layout;
  uint8_t* pool = nullptr;
  size_t page_bytes = 0;
  const int32_t* page_table = nullptr;  // [n_jobs][max_pages]
  int max_pages = 0;
  int32_t* n_slots = nullptr;           // [n_jobs]
  bool ordered = false;                 // slot s holds position s (a plain f16 cache): lets prefill skip tiles
};

// How a step's tokens are placed (computed on the device from StepParams):
//   window <= 0: one tier, slot = position (the f16 cache).
//   else: positions < n_sink and the last `window` positions of the sequence are hot (f16; the
//   window is a ring: slot n_sink + (pos - n_sink) % window); every other position p is warm,
//   slot p - n_sink - step->warm_base, quantized on append (warm_base > 0 once the session moved
//   the oldest warm pages to the cold tier and rotated the warm page table). Tokens leaving the window are demoted (f16 -> warm
//   codec) before the new tokens are written.
struct PlacementPolicy {
  int n_sink = 0;
  int window = 0;
};

// Appends the step's tokens of jobs [job0, job0 + n_kv): k and v rows at k + i * ld + g * D.
// `warm` may be null when policy.window <= 0. Updates n_slots of both tiers.
cudaError_t LaunchKvAppend(const DevTier& hot, const DevTier* warm, const PlacementPolicy& policy, int job0, int n_kv,
                           const float* k, const float* v, int64_t ld, int max_tokens, const StepParams* step,
                           cudaStream_t stream);

// Quantizes rows into explicit slots of a tier (tests, synthetic fills): token i of job
// job0 + g goes to slot slots[i] (device array), position positions[i].
cudaError_t LaunchKvWriteSlots(const DevTier& tier, int job0, int n_kv, const float* k, const float* v, int64_t ld,
                               int n_tokens, const int32_t* slots, const int32_t* positions, cudaStream_t stream);

// Re-encodes page `src_page` (index into each job's page table) of jobs [0, n_jobs) of `src`, all
// `n_slots` slots, into page 0 of jobs [dst_job0, dst_job0 + n_jobs) of `dst` (same head_dim and
// capacity, any codecs): de-quantized as the CPU does (fma(code, scale, zero)), quantized as
// KvPage::Append does, and the destination page's key summary (per-channel [min, max] of the
// de-quantized stored keys, rounded outward to f16) written. Demotion warm -> cold (int4 -> int2).
// src_pages (device, [n_jobs], may be null): a table index per job instead of src_page.
cudaError_t LaunchKvConvertPage(const DevTier& src, int src_page, const DevTier& dst, int dst_job0, int n_jobs,
                                int n_slots, cudaStream_t stream, const int32_t* src_pages = nullptr);

// Page scores of the score-driven demotion: for each job j < n_jobs of `tier`, every page's score
// (indexed by page id: scores[j * max_pages + p] for the job's pages) decays by `decay`, then each
// slot's attention mass (mass[j * mass_stride + slot], LaunchAttentionMass) is added to its page.
cudaError_t LaunchPageScores(const DevTier& tier, int n_jobs, const float* mass, int mass_stride, float decay,
                             float* scores, cudaStream_t stream);

// Key-summary bounds of cold pages for the promotion choice, as GroupQkUpperBound
// (attn/key_summary.h) computes them but in f32: bounds[J][p] = max over the R query heads h of
// sum_c max(q_c min_c, q_c max_c) for pages p < n_pages of job J = l * n_kv + g (layer l, KV
// head g); the query of head g R + h at q + l * q_stride + (g R + h) D; summaries f16
// [n_layer * n_kv][max_pages][2][D] (min row, then max row).
cudaError_t LaunchPageBounds(const float* q, int64_t q_stride, const uint16_t* summaries, int n_layer, int n_kv, int R,
                             int D, int max_pages, int n_pages, float* bounds, cudaStream_t stream);

// ---- Attention ---------------------------------------------------------------------------------

// Decode: one query per job row; partial softmax states per split, merged by LaunchAttentionMerge.
struct DecodeAttnArgs {
  const float* q = nullptr;  // [n_jobs * R][D] (query head h of job j at row j * R + h)
  int n_jobs = 0;
  int R = 1;                 // query heads per KV head
  float scale = 0;           // logit scale (1 / sqrt(D))
  float* part_m = nullptr;   // [n_jobs * R][S_total]  (log2 domain)
  float* part_d = nullptr;   // [n_jobs * R][S_total]
  float* part_o = nullptr;   // [n_jobs * R][S_total][D]
  int split_base = 0;        // this tier's first split index
  int n_splits = 1;          // this tier's splits per job (fixed: the grid does not depend on n_slots)
  int S_total = 1;
  float* mass_logits = nullptr;  // optional [n_jobs][R][max_pages * capacity] (log2-domain logits)
};
// Kernels exist for D in {64, 128}, R in {1, 2, 3, 4, 6, 8} and bits in {16, 8, 4, 2}.
bool DecodeAttentionSupports(int head_dim, int R, int bits);
// Resident warps per multiprocessor of that kernel (occupancy), for sizing the split grid.
int DecodeAttentionWarpsPerSm(int head_dim, int R, int bits);
cudaError_t LaunchDecodeAttention(const DevTier& tier, const DecodeAttnArgs& a, cudaStream_t stream);

// Merges S_total partial states per row: out[row][D] = o / d; merged_m (log2) / merged_d per row
// (for the mass); stats (optional, natural-log m and d per row, attn/online_softmax.h).
cudaError_t LaunchAttentionMerge(const float* part_m, const float* part_d, const float* part_o, int n_rows,
                                 int S_total, int D, float* out, int64_t ld_out, int rows_per_token,
                                 float* merged_m, float* merged_d, float* stats_m, float* stats_d,
                                 cudaStream_t stream);
// mass[j][s] = sum_h exp2(L[j][h][s] - M[j*R+h]) / D[j*R+h] for s < n_slots[j].
cudaError_t LaunchAttentionMass(const DevTier& tier, const float* mass_logits, const float* merged_m,
                                const float* merged_d, int n_jobs, int R, float* mass, cudaStream_t stream);

// Prefill (flash attention on CUDA cores): the step's queries of one sequence (jobs
// [job0, job0 + n_kv)) against every slot of up to 3 tiers with position <= the query's.
struct PrefillAttnArgs {
  const float* q = nullptr;  // token t, head h at q + t * ldq + h * D
  int64_t ldq = 0;
  float* out = nullptr;      // same indexing with ldo
  int64_t ldo = 0;
  int job0 = 0, n_kv = 0, R = 1;
  float scale = 0;
  int max_tokens = 0;        // grid size; tokens >= step->n_new are skipped
  const StepParams* step = nullptr;
};
struct DevTierSet {
  DevTier t[3];
  int n = 0;
};
bool PrefillAttentionSupports(int head_dim, int R);
cudaError_t LaunchPrefillAttention(const DevTierSet& tiers, const PrefillAttnArgs& a, cudaStream_t stream);

// ---- Random data (benchmarks; weights of a given shape without uploading them) ------------------

// out[i] = (uniform in [-1, 1)) * amplitude, from a counter hash of (seed, i).
cudaError_t LaunchRandomFill(void* out, GgmlType type, int64_t n, uint64_t seed, float amplitude, cudaStream_t stream);
cudaError_t LaunchFillF32(float* out, int64_t n, float value, cudaStream_t stream);

// The architecture of the code the runtime picked for the current device (10 * major + minor of
// the machine code, and of the PTX it came from); fails when the build has nothing for the device.
cudaError_t ProbeKernelImage(int* binary_version, int* ptx_version);

}  // namespace akv::cuda
