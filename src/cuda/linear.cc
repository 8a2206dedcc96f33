#include "cuda/linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/quants.h"

namespace akv::cuda {

namespace {

int64_t DataBytes(GgmlType t, int64_t rows, int64_t cols) {
  switch (t) {
    case GgmlType::F32: return rows * cols * 4;
    case GgmlType::F16:
    case GgmlType::BF16: return rows * cols * 2;
    case GgmlType::Q8_0: return rows * cols;
    case GgmlType::Q4_0: return rows * cols / 2;
    default: return 0;
  }
}

Status CublasStatus(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return Internal(std::string("cuBLAS: ") + what + " failed (status " + std::to_string(static_cast<int>(s)) + ")");
}

}  // namespace

RopeParams MakeRopeParams(const RopeConfig& c, const std::vector<float>& freq_factors, std::vector<float>* inv) {
  const int half = c.n_dims / 2;
  inv->assign(half, 0.0f);
  const double theta_scale = std::pow(static_cast<double>(c.freq_base), -2.0 / c.n_dims);
  double t = 1.0;
  for (int i = 0; i < half; ++i) {
    float f = static_cast<float>(t);
    if (!freq_factors.empty()) f /= freq_factors[i];
    (*inv)[i] = f;
    t *= theta_scale;
  }
  RopeParams r;
  r.n_dims = c.n_dims;
  r.neox = c.style == RopeStyle::kNeox;
  r.scaled = c.scaling != RopeScaling::kNone;
  r.yarn = c.scaling == RopeScaling::kYarn;
  r.freq_scale = c.freq_scale;
  r.ext_factor = c.yarn_ext_factor;
  r.attn_factor = c.yarn_attn_factor;
  if (r.yarn) {
    auto corr = [&](float n_rot) {
      return c.n_dims * std::log(c.n_ctx_orig / (n_rot * 2 * static_cast<float>(M_PI))) / (2 * std::log(c.freq_base));
    };
    r.corr_low = std::max(0.f, std::floor(corr(c.yarn_beta_fast)));
    r.corr_high = std::min(static_cast<float>(c.n_dims - 1), std::ceil(corr(c.yarn_beta_slow)));
  }
  return r;
}

bool IsQuantWeight(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0; }

StatusOr<DevMatrix> UploadMatrix(const std::vector<const WeightMatrix*>& parts, const std::string& what,
                                 std::vector<DeviceBuffer>* storage, int64_t* bytes) {
  const GgmlType type = parts[0]->type;
  const int64_t cols = parts[0]->cols;
  int64_t rows = 0;
  for (const WeightMatrix* w : parts) {
    if (w->type != type || w->cols != cols)
      return InvalidArgument("CUDA: weights fused into '" + what + "' differ in type or width");
    rows += w->rows;
  }
  if (type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::BF16 && !IsQuantWeight(type))
    return Unsupported("CUDA: weight '" + what + "' has type " + TypeName(type) + ", which the GPU kernels do not take");
  if (IsQuantWeight(type) && cols % 32 != 0) return Corrupt("CUDA: weight '" + what + "' width is not a multiple of 32");
  const size_t data_bytes = static_cast<size_t>(DataBytes(type, rows, cols));
  const size_t row_data = rows ? data_bytes / rows : 0;
  const size_t scale_off = (data_bytes + 255) & ~size_t(255);
  const size_t total = IsQuantWeight(type) ? scale_off + static_cast<size_t>(rows * (cols / 32)) * 2 : data_bytes;
  std::vector<uint8_t> host(total);
  int64_t r0 = 0;
  for (const WeightMatrix* w : parts) {
    for (int64_t r = 0; r < w->rows; ++r) {
      const uint8_t* src = w->data + r * w->row_bytes;
      const int64_t row = r0 + r;
      if (!IsQuantWeight(type)) {
        std::memcpy(host.data() + row * row_data, src, row_data);
        continue;
      }
      uint16_t* scales = reinterpret_cast<uint16_t*>(host.data() + scale_off) + row * (cols / 32);
      for (int64_t b = 0; b < cols / 32; ++b) {
        if (type == GgmlType::Q8_0) {
          const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(src) + b;
          scales[b] = blk->d;
          std::memcpy(host.data() + row * cols + b * 32, blk->qs, 32);
        } else {
          const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(src) + b;
          scales[b] = blk->d;
          std::memcpy(host.data() + row * (cols / 2) + b * 16, blk->qs, 16);
        }
      }
    }
    r0 += w->rows;
  }
  DeviceBuffer buf;
  AKV_RETURN_IF_ERROR(buf.Allocate(total, what.c_str()));
  AKV_CUDA_RETURN(cudaMemcpy(buf.get(), host.data(), total, cudaMemcpyHostToDevice));
  if (bytes) *bytes += static_cast<int64_t>(total);
  DevMatrix m;
  m.type = type;
  m.rows = rows;
  m.cols = cols;
  m.data = buf.get();
  m.scales = IsQuantWeight(type) ? reinterpret_cast<const __half*>(buf.get<uint8_t>() + scale_off) : nullptr;
  storage->push_back(std::move(buf));
  return m;
}

StatusOr<double> GemvGBps(const DevMatrix& w, int variant, int iters) {
  DeviceBuffer x, y;
  AKV_RETURN_IF_ERROR(x.Allocate(static_cast<size_t>(w.cols) * 4, "gemv x"));
  AKV_RETURN_IF_ERROR(y.Allocate(static_cast<size_t>(w.rows) * 4, "gemv y"));
  AKV_CUDA_RETURN(LaunchRandomFill(x.get(), GgmlType::F32, w.cols, 3, 1.0f, nullptr));
  for (int i = 0; i < 2; ++i)
    AKV_CUDA_RETURN(LaunchGemvFloat(w, x.get<float>(), w.cols, 1, y.get<float>(), w.rows, false, nullptr, variant));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(e0);
    cudaError_t e = LaunchGemvFloat(w, x.get<float>(), w.cols, 1, y.get<float>(), w.rows, false, nullptr, variant);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    if (e != cudaSuccess) {
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      return CudaStatus(e, "gemv");
    }
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  const double bytes = static_cast<double>(w.rows) * w.cols * (w.type == GgmlType::F32 ? 4 : 2);
  return bytes / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

StatusOr<int> TuneGemv(const DevMatrix& w) {
  if (w.type != GgmlType::F16 && w.type != GgmlType::BF16 && w.type != GgmlType::F32) return 0;
  int best = 0;
  double best_gbps = 0;
  for (int v = 0; v <= 3; ++v) {
    AKV_ASSIGN_OR_RETURN(double g, GemvGBps(w, v, 5));
    if (g > best_gbps) {
      best_gbps = g;
      best = v;
    }
  }
  return best;
}

Status LinearRunner::Init(int64_t max_tokens, int64_t max_cols) {
  AKV_RETURN_IF_ERROR(conv_.Allocate(static_cast<size_t>(max_tokens * max_cols) * 2, "activations"));
  AKV_RETURN_IF_ERROR(xq_.Allocate(static_cast<size_t>(max_tokens * max_cols), "activations"));
  AKV_RETURN_IF_ERROR(xs_.Allocate(static_cast<size_t>(max_tokens * (max_cols / 32 + 1)) * 2, "activations"));
  return Status::Ok();
}

Status LinearRunner::Run(cublasHandle_t cublas, const DevMatrix& w, const float* x, int64_t ldx, int n, float* y,
                         int64_t ldy, bool accumulate, cudaStream_t stream, int gemv_max_tokens) {
  if (IsQuantWeight(w.type)) {
    AKV_CUDA_RETURN(LaunchQuantizeQ8(x, ldx, w.cols, n, xq_.get<int8_t>(), xs_.get<__half>(), stream));
    AKV_CUDA_RETURN(LaunchGemvQuant(w, xq_.get<int8_t>(), xs_.get<__half>(), n, y, ldy, accumulate, stream));
    return Status::Ok();
  }
  if (n <= gemv_max_tokens) {
    AKV_CUDA_RETURN(LaunchGemvFloat(w, x, ldx, n, y, ldy, accumulate, stream, n == 1 ? gemv_variant_ : 0));
    return Status::Ok();
  }
  // Column-major view: Y^T [rows x n] = (W stored as cols x rows)^T * X^T [cols x n].
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const void* b = x;
  int64_t ldb = ldx;
  cudaDataType_t ab = CUDA_R_32F;
  if (w.type != GgmlType::F32) {
    AKV_CUDA_RETURN(LaunchConvertRows(x, ldx, static_cast<int>(w.cols), n, conv_.get(), w.type, stream));
    b = conv_.get();
    ldb = w.cols;
    ab = w.type == GgmlType::F16 ? CUDA_R_16F : CUDA_R_16BF;
  }
  AKV_RETURN_IF_ERROR(CublasStatus(cublasSetStream(cublas, stream), "set stream"));
  return CublasStatus(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), n, static_cast<int>(w.cols),
                                   &alpha, w.data, ab, static_cast<int>(w.cols), b, ab, static_cast<int>(ldb), &beta, y,
                                   CUDA_R_32F, static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "GemmEx");
}

}  // namespace akv::cuda
