// Weight upload (ggml blocks split into aligned codes + scales) and the y = W x dispatcher shared
// by the model and the tests: GEMV kernels for few tokens and for Q8_0/Q4_0 (activations quantized
// to Q8_0 like the CPU MatMul), cuBLAS (f32 accumulation) for float weights and longer chunks.
#pragma once

#include <cublas_v2.h>

#include <string>
#include <vector>

#include "core/status.h"
#include "cpu/matmul.h"
#include "model/hparams.h"
#include "cuda/cuda_util.h"
#include "cuda/kernels.h"

namespace akv::cuda {

bool IsQuantWeight(GgmlType t);

// Rows of `parts` (same type and width) concatenated into one device matrix, stored in a new
// buffer appended to `storage`; `bytes` (may be null) grows by its size.
StatusOr<DevMatrix> UploadMatrix(const std::vector<const WeightMatrix*>& parts, const std::string& what,
                                 std::vector<DeviceBuffer>* storage, int64_t* bytes);

// RoPE kernel parameters for `config` (model/rope.cc's frequencies and YaRN corrections);
// inv_freq receives the host table to upload (RopeParams::inv_freq is left for the caller).
RopeParams MakeRopeParams(const RopeConfig& config, const std::vector<float>& freq_factors,
                          std::vector<float>* inv_freq);

// Times the one-token GEMV variants on `w` (f32 input) and returns the fastest (median of a few
// runs each); 0 when w is not a float matrix.
StatusOr<int> TuneGemv(const DevMatrix& w);
// Median GB/s (weight bytes / time) of one-token GEMVs of `variant` on w.
StatusOr<double> GemvGBps(const DevMatrix& w, int variant, int iters);

class LinearRunner {
 public:
  // Scratch for up to max_tokens rows of up to max_cols inputs.
  Status Init(int64_t max_tokens, int64_t max_cols);
  // y[t][r] (+)= sum_i W[r][i] x[t][i]. Float weights use the GEMV kernel for n <= gemv_max_tokens.
  Status Run(cublasHandle_t cublas, const DevMatrix& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy,
             bool accumulate, cudaStream_t stream, int gemv_max_tokens = 4);
  // The one-token float GEMV variant (LaunchGemvFloat), picked by TuneGemv.
  void set_gemv_variant(int v) { gemv_variant_ = v; }

 private:
  int gemv_variant_ = 0;
  DeviceBuffer conv_, xq_, xs_;
};

}  // namespace akv::cuda
