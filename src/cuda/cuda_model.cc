// CudaModel (weights on the device) and CudaSession (one sequence: KV tiers, scratch, the decode
// graph). The forward pass mirrors Model::ForwardBatch (model/model.cc) step for step:
//   x = embed(tokens)
//   per layer: h = norm(x); qkv = h W_qkv (+ bias); q/k norm (qwen3); RoPE; append K/V to the
//              cache; attention; x += attn W_o; h = norm(x); gu = h W_gu; x += swiglu(gu) W_down
//   logits = norm(x) W_out
// Matrices: decode (1 token) uses the GEMV kernels; prefill uses cuBLAS (f16/bf16/f32 weights,
// f32 accumulation) or the quantized GEMV over the chunk (Q8_0/Q4_0: activations quantized to
// Q8_0 as the CPU does). Q/K/V and gate/up are fused into one matrix each when their types match.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_util.h"
#include "cuda/kernels.h"
#include "cuda/kv_tiers.h"
#include "cuda/linear.h"
#include "model/model.h"

namespace akv::cuda {

namespace {

constexpr int kMaxBatch = 512;  // tokens per forward chunk (as Model::kMaxBatch)

// A matrix region of the fused output: rows [offset, offset + m.rows) of y.
struct Part {
  DevMatrix m;
  int64_t offset = 0;
};

}  // namespace

// ------------------------------------------------------------------------------------------------

struct CudaModel::Impl {
  DeviceInfo dev;
  ModelConfig cfg;
  std::vector<DeviceBuffer> buffers;
  DevMatrix tok_embd, output;
  float* output_norm = nullptr;
  struct Layer {
    std::vector<Part> qkv, gu;
    DevMatrix wo, wdown;
    float* attn_norm = nullptr;
    float* ffn_norm = nullptr;
    float* bqkv = nullptr;
    float* q_norm = nullptr;
    float* k_norm = nullptr;
  };
  std::vector<Layer> layers;
  RopeParams rope;
  int64_t weight_bytes = 0;
  std::string weight_types;
  int64_t max_cols = 0;
  int gemv_variant = 0;
  cublasHandle_t cublas = nullptr;

  ~Impl() {
    if (cublas) cublasDestroy(cublas);
  }

  StatusOr<void*> Alloc(size_t bytes, const char* what) {
    DeviceBuffer b;
    AKV_RETURN_IF_ERROR(b.Allocate(bytes, what));
    void* p = b.get();
    buffers.push_back(std::move(b));
    return p;
  }

  StatusOr<float*> UploadVector(const std::vector<float>& v, const char* what) {
    AKV_ASSIGN_OR_RETURN(void* p, Alloc(v.size() * sizeof(float), what));
    AKV_CUDA_RETURN(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    return static_cast<float*>(p);
  }

  StatusOr<DevMatrix> UploadMatrix(const std::vector<const WeightMatrix*>& parts, const std::string& what) {
    AKV_ASSIGN_OR_RETURN(DevMatrix m, ::akv::cuda::UploadMatrix(parts, what, &buffers, &weight_bytes));
    max_cols = std::max(max_cols, m.cols);
    return m;
  }

  // Fused when the types agree, else one part per matrix.
  StatusOr<std::vector<Part>> UploadFused(const std::vector<const WeightMatrix*>& ws, const std::string& what) {
    std::vector<Part> parts;
    bool same = true;
    for (const WeightMatrix* w : ws) same &= w->type == ws[0]->type && w->cols == ws[0]->cols;
    if (same) {
      AKV_ASSIGN_OR_RETURN(DevMatrix m, UploadMatrix(ws, what));
      parts.push_back({m, 0});
      return parts;
    }
    int64_t off = 0;
    for (const WeightMatrix* w : ws) {
      AKV_ASSIGN_OR_RETURN(DevMatrix m, UploadMatrix({w}, what));
      parts.push_back({m, off});
      off += w->rows;
    }
    return parts;
  }

  Status SetupRope(const std::vector<float>& freq_factors) {
    std::vector<float> inv;
    rope = MakeRopeParams(cfg.rope, freq_factors, &inv);
    AKV_ASSIGN_OR_RETURN(rope.inv_freq, UploadVector(inv, "rope frequencies"));
    return Status::Ok();
  }

  Status Validate() const {
    if (cfg.head_dim != 64 && cfg.head_dim != 128)
      return Unsupported("CUDA: head_dim " + std::to_string(cfg.head_dim) +
                         " is not supported by the GPU attention kernels (64 or 128)");
    if (cfg.n_head % cfg.n_head_kv != 0 || !DecodeAttentionSupports(cfg.head_dim, cfg.n_q_per_kv(), 16))
      return Unsupported("CUDA: " + std::to_string(cfg.n_q_per_kv()) +
                         " query heads per KV head is not supported by the GPU attention kernels (1, 2, 3, 4, 6, 8)");
    if (cfg.rope.n_dims % 2 != 0 || cfg.rope.n_dims > cfg.head_dim)
      return Unsupported("CUDA: rotary dimension " + std::to_string(cfg.rope.n_dims) + " is not supported");
    return Status::Ok();
  }

  // The one-token GEMV variant: timed once on the widest float projection of the first layer.
  Status Tune() {
    const DevMatrix* w = nullptr;
    for (const Part& p : layers[0].gu)
      if (!w || p.m.rows * p.m.cols > w->rows * w->cols) w = &p.m;
    if (!w) return Status::Ok();
    AKV_ASSIGN_OR_RETURN(gemv_variant, TuneGemv(*w));
    return Status::Ok();
  }

  Status InitCommon() {
    AKV_ASSIGN_OR_RETURN(dev, QueryDevice(dev.index));
    if (cublasCreate(&cublas) != CUBLAS_STATUS_SUCCESS) return Internal("cuBLAS: cannot create a handle");
    return Status::Ok();
  }
};

CudaModel::CudaModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaModel::~CudaModel() = default;
const ModelConfig& CudaModel::config() const { return impl_->cfg; }
int64_t CudaModel::weight_bytes() const { return impl_->weight_bytes; }
std::string CudaModel::weight_types() const { return impl_->weight_types; }
const DeviceInfo& CudaModel::device() const { return impl_->dev; }

StatusOr<std::unique_ptr<CudaModel>> CudaModel::Upload(const Model& model, int device) {
  auto m = std::make_unique<Impl>();
  m->dev.index = device;
  m->cfg = model.config();
  AKV_RETURN_IF_ERROR(m->Validate());
  AKV_RETURN_IF_ERROR(m->InitCommon());
  const ModelWeights& w = model.weights();
  const ModelConfig& c = m->cfg;
  AKV_ASSIGN_OR_RETURN(m->tok_embd, m->UploadMatrix({&w.token_embd}, "token_embd.weight"));
  if (w.output.data == w.token_embd.data) {
    m->output = m->tok_embd;
  } else {
    AKV_ASSIGN_OR_RETURN(m->output, m->UploadMatrix({&w.output}, "output.weight"));
  }
  AKV_ASSIGN_OR_RETURN(m->output_norm, m->UploadVector(w.output_norm, "output_norm.weight"));
  m->layers.resize(c.n_layer);
  std::vector<std::string> types;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = w.layers[l];
    Impl::Layer& D = m->layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    AKV_ASSIGN_OR_RETURN(D.qkv, m->UploadFused({&L.wq, &L.wk, &L.wv}, p + "attn_qkv"));
    AKV_ASSIGN_OR_RETURN(D.wo, m->UploadMatrix({&L.wo}, p + "attn_output.weight"));
    AKV_ASSIGN_OR_RETURN(D.gu, m->UploadFused({&L.w_gate, &L.w_up}, p + "ffn_gate_up"));
    AKV_ASSIGN_OR_RETURN(D.wdown, m->UploadMatrix({&L.w_down}, p + "ffn_down.weight"));
    AKV_ASSIGN_OR_RETURN(D.attn_norm, m->UploadVector(L.attn_norm, "attn_norm"));
    AKV_ASSIGN_OR_RETURN(D.ffn_norm, m->UploadVector(L.ffn_norm, "ffn_norm"));
    if (c.qkv_bias) {
      std::vector<float> b = L.bq;
      b.insert(b.end(), L.bk.begin(), L.bk.end());
      b.insert(b.end(), L.bv.begin(), L.bv.end());
      AKV_ASSIGN_OR_RETURN(D.bqkv, m->UploadVector(b, "qkv bias"));
    }
    if (c.qk_norm) {
      AKV_ASSIGN_OR_RETURN(D.q_norm, m->UploadVector(L.q_norm, "q_norm"));
      AKV_ASSIGN_OR_RETURN(D.k_norm, m->UploadVector(L.k_norm, "k_norm"));
    }
    for (const WeightMatrix* wm : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      const std::string t = TypeName(wm->type);
      if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
    }
  }
  for (size_t i = 0; i < types.size(); ++i) m->weight_types += (i ? " + " : "") + types[i];
  AKV_RETURN_IF_ERROR(m->SetupRope(w.rope_freq_factors));
  AKV_RETURN_IF_ERROR(m->Tune());
  return std::unique_ptr<CudaModel>(new CudaModel(std::move(m)));
}

StatusOr<std::unique_ptr<CudaModel>> CudaModel::Random(const ModelConfig& config, GgmlType type, uint64_t seed,
                                                       int device) {
  if (type != GgmlType::F16 && type != GgmlType::BF16 && type != GgmlType::F32)
    return Unsupported(std::string("CUDA: random weights of type ") + TypeName(type) + " (use f16, bf16 or f32)");
  if (config.n_vocab <= 0) return InvalidArgument("CUDA: random model needs n_vocab");
  auto m = std::make_unique<Impl>();
  m->dev.index = device;
  m->cfg = config;
  AKV_RETURN_IF_ERROR(m->Validate());
  AKV_RETURN_IF_ERROR(m->InitCommon());
  const ModelConfig& c = m->cfg;
  const int elem = type == GgmlType::F32 ? 4 : 2;
  uint64_t stream_id = seed * 1000003ull;
  // std 0.02 (uniform amplitude 0.02 * sqrt(3)): activations stay O(1) through the norms.
  const float amp = 0.02f * std::sqrt(3.0f);
  auto random_matrix = [&](int64_t rows, int64_t cols, const char* what) -> StatusOr<DevMatrix> {
    AKV_ASSIGN_OR_RETURN(void* p, m->Alloc(static_cast<size_t>(rows * cols) * elem, what));
    AKV_CUDA_RETURN(LaunchRandomFill(p, type, rows * cols, ++stream_id, amp, nullptr));
    m->weight_bytes += rows * cols * elem;
    m->max_cols = std::max(m->max_cols, cols);
    DevMatrix d;
    d.type = type;
    d.rows = rows;
    d.cols = cols;
    d.data = p;
    return d;
  };
  auto ones = [&](int64_t n, const char* what) -> StatusOr<float*> {
    AKV_ASSIGN_OR_RETURN(void* p, m->Alloc(static_cast<size_t>(n) * 4, what));
    AKV_CUDA_RETURN(LaunchFillF32(static_cast<float*>(p), n, 1.0f, nullptr));
    return static_cast<float*>(p);
  };
  AKV_ASSIGN_OR_RETURN(m->tok_embd, random_matrix(c.n_vocab, c.n_embd, "token_embd"));
  AKV_ASSIGN_OR_RETURN(m->output, random_matrix(c.n_vocab, c.n_embd, "output"));
  AKV_ASSIGN_OR_RETURN(m->output_norm, ones(c.n_embd, "output_norm"));
  m->layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    Impl::Layer& D = m->layers[l];
    AKV_ASSIGN_OR_RETURN(DevMatrix qkv, random_matrix(c.q_dim() + 2 * c.kv_dim(), c.n_embd, "qkv"));
    D.qkv.push_back({qkv, 0});
    AKV_ASSIGN_OR_RETURN(D.wo, random_matrix(c.n_embd, c.q_dim(), "wo"));
    AKV_ASSIGN_OR_RETURN(DevMatrix gu, random_matrix(2 * static_cast<int64_t>(c.n_ff), c.n_embd, "gate_up"));
    D.gu.push_back({gu, 0});
    AKV_ASSIGN_OR_RETURN(D.wdown, random_matrix(c.n_embd, c.n_ff, "down"));
    AKV_ASSIGN_OR_RETURN(D.attn_norm, ones(c.n_embd, "attn_norm"));
    AKV_ASSIGN_OR_RETURN(D.ffn_norm, ones(c.n_embd, "ffn_norm"));
  }
  m->weight_types = std::string(TypeName(type)) + " (random)";
  AKV_RETURN_IF_ERROR(m->SetupRope({}));
  AKV_CUDA_RETURN(cudaDeviceSynchronize());
  AKV_RETURN_IF_ERROR(m->Tune());
  return std::unique_ptr<CudaModel>(new CudaModel(std::move(m)));
}

ModelConfig Llama2_7BConfig() {
  ModelConfig c;
  c.arch = "llama";
  c.name = "llama-2-7b-shape (random)";
  c.n_layer = 32;
  c.n_embd = 4096;
  c.n_head = 32;
  c.n_head_kv = 32;
  c.head_dim = 128;
  c.n_ff = 11008;
  c.n_vocab = 32000;
  c.n_ctx_train = 4096;
  c.rms_eps = 1e-5f;
  c.rope.n_dims = 128;
  c.rope.freq_base = 10000.f;
  return c;
}

namespace {

// The named GPU presets (no keys).
std::optional<KvPreset> NamedPreset(const std::string& name) {
  KvPreset p;
  p.name = name;
  if (name == "f16" || name == "full") {
    p.name = "f16";
    return p;
  }
  if (name == "akv-balanced" || name == "akv:balanced" || name == "akv" || name == "akv-int2" || name == "akv-cold") {
    p.n_sink = 32;
    p.window = 480;
    p.warm_bits = name == "akv-int2" ? 2 : 4;
    p.warm_group = 32;
    if (name == "akv-cold") p.warm_tokens = 4096;
    return p;
  }
  return std::nullopt;
}

// Applies "key=value,key=value" to p (the explicit spec's keys), then checks the result.
Status ApplyPresetKeys(const std::string& name, const std::string& keys, KvPreset* p) {
  size_t at = 0;
  while (at < keys.size()) {
    size_t comma = keys.find(',', at);
    if (comma == std::string::npos) comma = keys.size();
    const std::string kv = keys.substr(at, comma - at);
    at = comma + 1;
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return InvalidArgument("KV preset '" + name + "': '" + kv + "' is not key=value");
    const std::string k = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (k == "demote") {
      if (value != "age" && value != "mass") return InvalidArgument("KV preset '" + name + "': demote must be age or mass");
      p->demote_by_mass = value == "mass";
      continue;
    }
    int v = 0;
    try {
      size_t used = 0;
      v = std::stoi(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (...) {
      return InvalidArgument("KV preset '" + name + "': '" + kv + "' has no integer value");
    }
    if (k == "sink") p->n_sink = v;
    else if (k == "window") p->window = v;
    else if (k == "bits") p->warm_bits = v;
    else if (k == "group") p->warm_group = v;
    else if (k == "warm") p->warm_tokens = v;
    else if (k == "cold_bits") p->cold_bits = v;
    else if (k == "promote") p->promote_pages = v;
    else if (k == "interval") p->promote_interval = v;
    else
      return InvalidArgument("KV preset '" + name + "': unknown key '" + k +
                             "' (sink, window, bits, group, warm, cold_bits, promote, interval, demote)");
  }
  if (p->window <= 0 || p->n_sink < 0) return InvalidArgument("KV preset '" + name + "': window must be > 0");
  if (p->warm_bits != 8 && p->warm_bits != 4 && p->warm_bits != 2)
    return InvalidArgument("KV preset '" + name + "': bits must be 8, 4 or 2");
  if (p->warm_group != 32 && p->warm_group != 64 && p->warm_group != 128)
    return InvalidArgument("KV preset '" + name + "': group must be 32, 64 or 128");
  if (p->warm_tokens < 0) return InvalidArgument("KV preset '" + name + "': warm must be >= 0 (0: no cold tier)");
  if (p->cold_bits != 8 && p->cold_bits != 4 && p->cold_bits != 2)
    return InvalidArgument("KV preset '" + name + "': cold_bits must be 8, 4 or 2");
  if (p->promote_pages < 1 || p->promote_interval < 1)
    return InvalidArgument("KV preset '" + name + "': promote and interval must be >= 1");
  return Status::Ok();
}

}  // namespace

StatusOr<KvPreset> KvPresetByName(const std::string& name) {
  if (auto p = NamedPreset(name)) return *p;
  // "akv:key=value,...": the balanced placement with those keys; "<tiered preset>,key=value,...":
  // that preset with those keys.
  const size_t comma = name.find(',');
  if (name.rfind("akv:", 0) == 0 && !NamedPreset(name.substr(0, comma))) {
    KvPreset p = *NamedPreset("akv-balanced");
    p.name = name;
    AKV_RETURN_IF_ERROR(ApplyPresetKeys(name, name.substr(4), &p));
    return p;
  }
  if (comma != std::string::npos) {
    auto base = NamedPreset(name.substr(0, comma));
    if (base && base->window > 0) {
      KvPreset p = *base;
      p.name = name;
      AKV_RETURN_IF_ERROR(ApplyPresetKeys(name, name.substr(comma + 1), &p));
      return p;
    }
  }
  return InvalidArgument("unknown GPU KV cache '" + name +
                         "' (f16, akv-balanced, akv-int2, akv-cold, a tiered preset followed by ,key=value..., or "
                         "akv:sink=S,window=W,bits=B,group=G[,warm=N,cold_bits=C,promote=K,interval=I,demote=age|mass])");
}

// ------------------------------------------------------------------------------------------------

struct CudaSession::Impl {
  CudaModel::Impl* m = nullptr;
  SessionOptions opt;
  cudaStream_t stream = nullptr;
  int n_ctx = 0;
  int64_t n_past = 0;
  std::vector<float> last_logits;

  // Activations.
  DeviceBuffer x, h, qkv, attn, gu, act, logits;
  LinearRunner linear;
  DeviceBuffer tokens_dev, step_dev;
  PinnedBuffer staging, logits_host;  // staging: StepParams then tokens [kMaxBatch]

  // KV tiers.
  PlacementPolicy policy;
  bool tiered = false;
  std::vector<TierPool> hot, warm;
  DeviceBuffer counts;  // int32 [2][n_layer][n_kv]: hot then warm slot counts
  int hot_cap = 0, warm_cap = 0;
  int S_hot = 0, S_warm = 0;
  DeviceBuffer part_m, part_d, part_o, merged_m, merged_d;
  DeviceBuffer mass_logits_hot, mass_logits_warm, mass_hot, mass_warm;
  DeviceBuffer mass_logits_cold, mass_cold;  // the promoted pages (promote_cap slots per job)

  // Cold tier (KvPreset::cold()): the warm tier holds warm_cap slots per job; when a step's tokens
  // would not fit, one page per job (the oldest, or with demote=mass the least attended:
  // ChooseVictims) is re-encoded into the cold codec in `stage`, copied to the next host page of the layer's ColdTier on the copy stream, and moved to
  // the end of the table (warm_base grows by a page). Every promote_interval decode steps the
  // step's queries (q_stash, copied inside the graph) choose the promote_pages cold pages per job
  // with the largest GroupQkUpperBound; they are copied into the promotion buffer the graph does not
  // read (1 - active) while the next step runs, and the step after switches to it (one graph per
  // buffer). Prefill chunks promote synchronously after each chunk. The bounds are computed on the
  // device (LaunchPageBounds) from a copy of every cold page's key summary (`summaries`).
  bool cold = false;
  bool mass = false;         // decode computes per-token attention mass (asked for, or demote=mass)
  bool mass_policy = false;  // demote=mass: page scores from the mass choose the warm page to demote
  DeviceBuffer page_scores;  // f32 [n_layer][n_kv * warm pages], by page id
  DeviceBuffer victims;      // int32 [n_layer * n_kv]: the table index each job demotes
  int32_t warm_base = 0;
  int n_cold_pages = 0, host_pages = 0;
  std::vector<ColdTier> cold_tiers;  // per layer
  TierPool stage;                    // [n_layer * n_kv] jobs, one page each (cold codec)
  std::vector<std::vector<int32_t>> warm_tables;  // per layer [n_kv][pages]: the device tables
  cudaStream_t copy_stream = nullptr;
  CudaEvent staged, demoted, promoted;
  int active = 0;
  bool pending = false, pending_skip = false;
  int steps_since_promote = 0;
  std::atomic<int64_t> promotions{0};
  mutable std::thread promoter;  // the periodic promotion choice (Promote)
  Status promoter_status;
  int S_cold = 0;
  int promote_cap = 0;  // promoted slots per job
  DeviceBuffer q_stash;    // f32 [n_layer][q_dim]: the last token's queries, after RoPE
  DeviceBuffer summaries;  // f16 [n_layer * n_kv][host_pages][2][D]: key min / max of each cold page
  DeviceBuffer bounds;     // f32 [n_layer * n_kv][host_pages]
  PinnedBuffer bounds_host;

  cudaGraphExec_t graphs[2] = {nullptr, nullptr};

  ~Impl() {
    if (promoter.joinable()) promoter.join();
    for (cudaGraphExec_t g : graphs)
      if (g) cudaGraphExecDestroy(g);
    if (stream) cudaStreamDestroy(stream);
    if (copy_stream) cudaStreamDestroy(copy_stream);
  }

  const ModelConfig& cfg() const { return m->cfg; }
  int n_kv() const { return cfg().n_head_kv; }
  int32_t* hot_counts(int l) const { return counts.get<int32_t>() + static_cast<size_t>(l) * n_kv(); }
  int32_t* warm_counts(int l) const {
    return counts.get<int32_t>() + static_cast<size_t>(cfg().n_layer + l) * n_kv();
  }
  DevTier HotTier(int l) const { return hot[l].View(hot_counts(l), !tiered); }
  DevTier WarmTier(int l) const { return warm[l].View(warm_counts(l), false); }
  DevTier PromotedTier(int l) const { return cold_tiers[l].PromotedView(active); }
  int warm_pages() const { return warm_cap / opt.page_slots; }  // per job
  // The host mirror of the warm page tables as TierPool::Init writes them (page p of job j: j * pages + p).
  void IdentityWarmTables() {
    for (auto& t : warm_tables)
      for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>(i);
  }
  StepParams* step() const { return step_dev.get<StepParams>(); }

  Status Init(CudaModel::Impl* model, const SessionOptions& o) {
    m = model;
    opt = o;
    const ModelConfig& c = cfg();
    if (o.n_ctx <= 0) return InvalidArgument("CUDA session: n_ctx must be positive");
    if (o.page_slots <= 0 || o.page_slots % 32 != 0) return InvalidArgument("CUDA session: page_slots must be a multiple of 32");
    n_ctx = o.n_ctx;
    AKV_CUDA_RETURN(cudaSetDevice(m->dev.index));
    AKV_CUDA_RETURN(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const int64_t B = kMaxBatch;
    const int64_t qkvd = c.q_dim() + 2 * c.kv_dim();
    const int64_t widest = std::max<int64_t>({c.n_embd, c.q_dim(), c.n_ff, m->max_cols});
    AKV_RETURN_IF_ERROR(x.Allocate(B * c.n_embd * 4, "activations"));
    AKV_RETURN_IF_ERROR(h.Allocate(B * c.n_embd * 4, "activations"));
    AKV_RETURN_IF_ERROR(qkv.Allocate(B * qkvd * 4, "activations"));
    AKV_RETURN_IF_ERROR(attn.Allocate(B * c.q_dim() * 4, "activations"));
    AKV_RETURN_IF_ERROR(gu.Allocate(B * 2 * static_cast<int64_t>(c.n_ff) * 4, "activations"));
    AKV_RETURN_IF_ERROR(act.Allocate(B * c.n_ff * 4, "activations"));
    AKV_RETURN_IF_ERROR(linear.Init(B, widest));
    linear.set_gemv_variant(m->gemv_variant);
    AKV_RETURN_IF_ERROR(logits.Allocate(B * static_cast<int64_t>(c.n_vocab) * 4, "logits"));
    AKV_RETURN_IF_ERROR(tokens_dev.Allocate(B * 4, "tokens"));
    AKV_RETURN_IF_ERROR(step_dev.Allocate(sizeof(StepParams), "step"));
    AKV_RETURN_IF_ERROR(staging.Allocate(sizeof(StepParams) + B * 4, "staging"));
    AKV_RETURN_IF_ERROR(logits_host.Allocate(static_cast<size_t>(c.n_vocab) * 4, "logits"));
    last_logits.assign(c.n_vocab, 0.0f);

    // KV tiers.
    const KvPreset& p = o.cache;
    tiered = p.window > 0;
    const int ps = o.page_slots;
    auto round_up = [ps](int64_t n) { return static_cast<int>((n + ps - 1) / ps * ps); };
    if (tiered) {
      policy.n_sink = p.n_sink;
      policy.window = p.window;
      hot_cap = round_up(std::min<int64_t>(n_ctx, p.n_sink + p.window));
      warm_cap = round_up(std::max<int64_t>(1, n_ctx - p.n_sink - p.window));
      if (p.cold()) {
        // At least a prefill chunk and a page, so a chunk's new warm tokens always fit once whole
        // pages are demoted (MakeWarmRoom). A context that fits the warm tier needs no cold tier.
        const int bounded = std::max(round_up(p.warm_tokens), round_up(kMaxBatch) + ps);
        if (bounded < warm_cap) {
          cold = true;
          warm_cap = bounded;
        }
      }
    } else {
      hot_cap = round_up(n_ctx);
    }
    AKV_ASSIGN_OR_RETURN(PageLayout hot_layout, TierPageLayout(16, 32, c.head_dim, ps));
    hot.resize(c.n_layer);
    for (int l = 0; l < c.n_layer; ++l)
      AKV_RETURN_IF_ERROR(hot[l].Init(hot_layout, n_kv(), hot_cap / ps, "the f16 KV tier"));
    if (tiered) {
      AKV_ASSIGN_OR_RETURN(PageLayout warm_layout, TierPageLayout(p.warm_bits, p.warm_group, c.head_dim, ps));
      warm.resize(c.n_layer);
      for (int l = 0; l < c.n_layer; ++l)
        AKV_RETURN_IF_ERROR(warm[l].Init(warm_layout, n_kv(), warm_cap / ps, "the warm KV tier"));
    }
    AKV_RETURN_IF_ERROR(counts.Allocate(static_cast<size_t>(2) * c.n_layer * n_kv() * 4, "slot counts"));
    AKV_CUDA_RETURN(cudaMemset(counts.get(), 0, counts.bytes()));

    const int R = c.n_q_per_kv();
    S_hot = DecodeSplits(hot_cap, n_kv(), m->dev.sm_count, DecodeAttentionWarpsPerSm(c.head_dim, R, 16));
    S_warm = tiered ? DecodeSplits(warm_cap, n_kv(), m->dev.sm_count, DecodeAttentionWarpsPerSm(c.head_dim, R, p.warm_bits))
                    : 0;
    if (cold) AKV_RETURN_IF_ERROR(InitCold());
    mass_policy = cold && p.demote_by_mass;
    mass = o.attention_mass || mass_policy;
    const int64_t rows = static_cast<int64_t>(c.n_head);
    const int S = S_hot + S_warm + S_cold;
    AKV_RETURN_IF_ERROR(part_m.Allocate(rows * S * 4, "attention partials"));
    AKV_RETURN_IF_ERROR(part_d.Allocate(rows * S * 4, "attention partials"));
    AKV_RETURN_IF_ERROR(part_o.Allocate(rows * S * c.head_dim * 4, "attention partials"));
    AKV_RETURN_IF_ERROR(merged_m.Allocate(rows * 4, "attention partials"));
    AKV_RETURN_IF_ERROR(merged_d.Allocate(rows * 4, "attention partials"));
    if (mass) {
      AKV_RETURN_IF_ERROR(mass_logits_hot.Allocate(static_cast<size_t>(n_kv()) * R * hot_cap * 4, "attention mass"));
      AKV_RETURN_IF_ERROR(mass_hot.Allocate(static_cast<size_t>(c.n_layer) * n_kv() * hot_cap * 4, "attention mass"));
      if (tiered) {
        AKV_RETURN_IF_ERROR(mass_logits_warm.Allocate(static_cast<size_t>(n_kv()) * R * warm_cap * 4, "attention mass"));
        AKV_RETURN_IF_ERROR(mass_warm.Allocate(static_cast<size_t>(c.n_layer) * n_kv() * warm_cap * 4, "attention mass"));
      }
      if (cold) {
        AKV_RETURN_IF_ERROR(
            mass_logits_cold.Allocate(static_cast<size_t>(n_kv()) * R * promote_cap * 4, "attention mass"));
        AKV_RETURN_IF_ERROR(
            mass_cold.Allocate(static_cast<size_t>(c.n_layer) * n_kv() * promote_cap * 4, "attention mass"));
      }
    }
    // The zero-fills above ran on the legacy stream, which this non-blocking stream does not wait for.
    AKV_CUDA_RETURN(cudaDeviceSynchronize());
    return Status::Ok();
  }

  Status InitCold() {
    const ModelConfig& c = cfg();
    const KvPreset& p = opt.cache;
    const int ps = opt.page_slots, R = c.n_q_per_kv();
    if (!DecodeAttentionSupports(c.head_dim, R, p.cold_bits))
      return Unsupported("CUDA: no decode attention kernel for a " + std::to_string(p.cold_bits) + "-bit cold tier");
    AKV_ASSIGN_OR_RETURN(PageLayout layout, TierPageLayout(p.cold_bits, p.warm_group, c.head_dim, ps));
    // Demotion keeps the warm tier above warm_cap - ps slots, so at most this many pages go cold.
    host_pages = CeilDiv(std::max<int64_t>(0, n_ctx - p.n_sink - p.window - warm_cap), ps) + 1;
    const int K = std::min(p.promote_pages, host_pages);
    cold_tiers.resize(c.n_layer);
    for (ColdTier& t : cold_tiers) AKV_RETURN_IF_ERROR(t.Init(layout, n_kv(), host_pages, K, 2));
    AKV_RETURN_IF_ERROR(stage.Init(layout, c.n_layer * n_kv(), 1, "cold demotion staging"));
    warm_tables.assign(c.n_layer, std::vector<int32_t>(static_cast<size_t>(n_kv()) * warm_pages()));
    IdentityWarmTables();
    promote_cap = K * ps;
    S_cold = DecodeSplits(promote_cap, n_kv(), m->dev.sm_count, DecodeAttentionWarpsPerSm(c.head_dim, R, p.cold_bits));
    AKV_RETURN_IF_ERROR(q_stash.Allocate(static_cast<size_t>(c.n_layer) * c.q_dim() * 4, "query stash"));
    const size_t cold_pages = static_cast<size_t>(c.n_layer) * n_kv() * host_pages;
    AKV_RETURN_IF_ERROR(summaries.Allocate(cold_pages * 2 * c.head_dim * 2, "cold key summaries"));
    AKV_RETURN_IF_ERROR(bounds.Allocate(cold_pages * 4, "cold page bounds"));
    AKV_RETURN_IF_ERROR(bounds_host.Allocate(cold_pages * 4, "cold page bounds"));
    AKV_CUDA_RETURN(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
    AKV_RETURN_IF_ERROR(staged.Create());
    AKV_RETURN_IF_ERROR(demoted.Create());
    AKV_RETURN_IF_ERROR(promoted.Create());
    if (p.demote_by_mass) {
      AKV_RETURN_IF_ERROR(
          page_scores.Allocate(static_cast<size_t>(c.n_layer) * n_kv() * warm_pages() * 4, "warm page scores"));
      AKV_CUDA_RETURN(cudaMemset(page_scores.get(), 0, page_scores.bytes()));
      AKV_RETURN_IF_ERROR(victims.Allocate(static_cast<size_t>(c.n_layer) * n_kv() * 4, "demotion choices"));
    }
    return Status::Ok();
  }

  // Chooses the warm page each layer and KV head demotes (table indices): the oldest, or with
  // demote=mass the full page with the least decayed attention mass (ties: the older); the newest
  // page (last in the table) is never chosen. The chosen pages' scores restart at 0 (they are
  // reused for the newest tokens).
  Status ChooseVictims(std::vector<int32_t>* out) {
    const ModelConfig& c = cfg();
    const int pages = warm_pages(), nkv = n_kv();
    out->assign(static_cast<size_t>(c.n_layer) * nkv, 0);
    if (!mass_policy) return Status::Ok();
    std::vector<float> scores(page_scores.bytes() / 4);
    AKV_CUDA_RETURN(cudaMemcpyAsync(scores.data(), page_scores.get(), page_scores.bytes(), cudaMemcpyDeviceToHost, stream));
    AKV_CUDA_RETURN(cudaStreamSynchronize(stream));
    for (int l = 0; l < c.n_layer; ++l) {
      const std::vector<int32_t>& t = warm_tables[l];
      float* sc = scores.data() + static_cast<size_t>(l) * nkv * pages;
      for (int g = 0; g < nkv; ++g) {
        const int32_t* row = t.data() + static_cast<size_t>(g) * pages;
        int best = 0;
        for (int i = 1; i < pages - 1; ++i)
          if (sc[row[i]] < sc[row[best]]) best = i;
        (*out)[static_cast<size_t>(l) * nkv + g] = best;
        sc[row[best]] = 0;
      }
    }
    AKV_CUDA_RETURN(cudaMemcpyAsync(page_scores.get(), scores.data(), page_scores.bytes(), cudaMemcpyHostToDevice, stream));
    AKV_CUDA_RETURN(cudaMemcpyAsync(victims.get(), out->data(), out->size() * 4, cudaMemcpyHostToDevice, stream));
    return Status::Ok();
  }

  // Demotes one warm page of every layer and KV head to the cold tier (see `cold`, ChooseVictims).
  Status DemoteWarmPage() {
    const ModelConfig& c = cfg();
    const int ps = opt.page_slots, nkv = n_kv();
    if (n_cold_pages >= host_pages) return Internal("CUDA session: the cold tier is full");
    std::vector<int32_t> chosen;
    AKV_RETURN_IF_ERROR(ChooseVictims(&chosen));
    // The staging pages are free once the previous demotion's copy has left them.
    AKV_CUDA_RETURN(cudaStreamWaitEvent(stream, demoted.get(), 0));
    const DevTier st = stage.View(nullptr, false);
    for (int l = 0; l < c.n_layer; ++l)
      AKV_CUDA_RETURN(LaunchKvConvertPage(WarmTier(l), 0, st, l * nkv, nkv, ps, stream,
                                          mass_policy ? victims.get<int32_t>() + l * nkv : nullptr));
    // The new pages' key summaries into column n_cold_pages of `summaries` (min row, max row).
    const size_t row = static_cast<size_t>(c.head_dim) * 2;  // bytes of one f16 row
    for (int side = 0; side < 2; ++side)
      AKV_CUDA_RETURN(cudaMemcpy2DAsync(
          summaries.get<uint8_t>() + (static_cast<size_t>(n_cold_pages) * 2 + side) * row, host_pages * 2 * row,
          stage.pool.get<uint8_t>() + (side ? stage.layout.key_max_offset : stage.layout.key_min_offset),
          PageStride(stage.layout), row, static_cast<size_t>(c.n_layer) * nkv, cudaMemcpyDeviceToDevice, stream));
    AKV_CUDA_RETURN(cudaEventRecord(staged.get(), stream));
    AKV_CUDA_RETURN(cudaStreamWaitEvent(copy_stream, staged.get(), 0));
    std::vector<void*> dsts;
    std::vector<const void*> srcs;
    const size_t stride = PageStride(stage.layout);
    for (int l = 0; l < c.n_layer; ++l)
      for (int g = 0; g < nkv; ++g) {
        dsts.push_back(cold_tiers[l].host_page(g, n_cold_pages));
        srcs.push_back(stage.pool.get<uint8_t>() + static_cast<size_t>(l * nkv + g) * stride);
        cold_tiers[l].page_slots(g, n_cold_pages) = ps;
      }
    AKV_RETURN_IF_ERROR(CopyBlocksAsync(dsts, srcs, stage.layout.total_bytes, copy_stream));
    AKV_CUDA_RETURN(cudaEventRecord(demoted.get(), copy_stream));
    // The demoted page becomes the last of each job's table (the next ones to fill), the pages
    // after it move up one: their slots shift down by a page, as warm_base grows by one. Stream
    // order puts the table update after the conversion read the page.
    const int pages = warm_pages();
    for (int l = 0; l < c.n_layer; ++l) {
      std::vector<int32_t>& t = warm_tables[l];
      for (int g = 0; g < nkv; ++g) {
        auto row = t.begin() + g * pages;
        std::rotate(row + chosen[static_cast<size_t>(l) * nkv + g], row + chosen[static_cast<size_t>(l) * nkv + g] + 1,
                    row + pages);
      }
      AKV_CUDA_RETURN(cudaMemcpyAsync(warm[l].table.get(), t.data(), t.size() * 4, cudaMemcpyHostToDevice, stream));
    }
    warm_base += ps;
    ++n_cold_pages;
    return Status::Ok();
  }

  // Before a step of n_new tokens: demote whole warm pages until its warm tokens fit. Pages that
  // went cold are candidates at once: with `promote`, the previous step's queries (q_stash) choose
  // the promoted pages again before the step runs.
  Status MakeWarmRoom(int n_new, bool promote) {
    if (!cold) return Status::Ok();
    const int64_t warm_after = std::max<int64_t>(0, n_past + n_new - policy.n_sink - policy.window);
    const int before = n_cold_pages;
    if (warm_after - warm_base > warm_cap) AKV_RETURN_IF_ERROR(JoinPromoter());  // it reads n_cold_pages
    while (warm_after - warm_base > warm_cap) AKV_RETURN_IF_ERROR(DemoteWarmPage());
    if (promote && n_cold_pages != before && n_past > 0) {
      AKV_RETURN_IF_ERROR(FetchBounds());
      AKV_RETURN_IF_ERROR(Promote(/*now=*/true));
    }
    return Status::Ok();
  }

  // Chooses, from the bounds in bounds_host, the cold pages to attend and copies them into the
  // buffer the graph does not read. now: the compute stream waits for them and switches at once;
  // otherwise the next step still reads the current buffer (the copy overlaps it) and the one after
  // switches.
  // The periodic choice runs on a worker thread (ranking 10^5 pages and submitting a few thousand
  // page copies takes milliseconds of host time), so the next step's launch does not wait for it.
  Status Promote(bool now) {
    AKV_RETURN_IF_ERROR(JoinPromoter());
    const int b = 1 - active;
    steps_since_promote = 0;
    if (now) {
      AKV_RETURN_IF_ERROR(ChooseAndCopy(b));
      AKV_CUDA_RETURN(cudaStreamWaitEvent(stream, promoted.get(), 0));
      active = b;
      pending = false;
    } else {
      promoter = std::thread([this, b] { promoter_status = ChooseAndCopy(b); });
      pending = true;
      pending_skip = true;
    }
    return Status::Ok();
  }
  Status JoinPromoter() {
    if (promoter.joinable()) promoter.join();
    Status st = promoter_status;
    promoter_status = Status::Ok();
    return st;
  }

  // Ranks the cold pages by bounds_host and copies the best into promotion buffer b (copy stream;
  // `promoted` recorded after them). The copies read host pages that demotions write on the same
  // stream (ordered there).
  Status ChooseAndCopy(int b) {
    const ModelConfig& c = cfg();
    const int nkv = n_kv();
    std::vector<std::pair<float, int>> bound(n_cold_pages);
    for (int l = 0; l < c.n_layer; ++l) {
      ColdTier& t = cold_tiers[l];
      std::vector<std::vector<int>> pages(nkv);
      const int k = std::min(n_cold_pages, t.promote_pages_per_job());
      for (int g = 0; g < nkv && k > 0; ++g) {
        const float* row = bounds_host.get<float>() + static_cast<size_t>(l * nkv + g) * host_pages;
        for (int i = 0; i < n_cold_pages; ++i) bound[i] = {row[i], i};
        std::partial_sort(bound.begin(), bound.begin() + k, bound.end(), [](const auto& x, const auto& y) {
          return x.first != y.first ? x.first > y.first : x.second < y.second;
        });
        for (int i = 0; i < k; ++i) pages[g].push_back(bound[i].second);
        promotions.fetch_add(k, std::memory_order_relaxed);
      }
      AKV_RETURN_IF_ERROR(t.PromoteAsync(pages, copy_stream, nullptr, b));
    }
    AKV_CUDA_RETURN(cudaEventRecord(promoted.get(), copy_stream));
    return Status::Ok();
  }

  // Enqueues the bounds of every cold page for the last token's queries (q_stash) and their copy
  // to bounds_host (complete after the next synchronization of the stream).
  Status EnqueueBounds() {
    AKV_RETURN_IF_ERROR(JoinPromoter());  // it reads bounds_host
    const ModelConfig& c = cfg();
    AKV_CUDA_RETURN(LaunchPageBounds(q_stash.get<float>(), c.q_dim(), summaries.get<uint16_t>(), c.n_layer, n_kv(),
                                     c.n_q_per_kv(), c.head_dim, host_pages, n_cold_pages, bounds.get<float>(), stream));
    AKV_CUDA_RETURN(cudaMemcpyAsync(bounds_host.get(), bounds.get(), bounds.bytes(), cudaMemcpyDeviceToHost, stream));
    return Status::Ok();
  }
  Status FetchBounds() {
    AKV_RETURN_IF_ERROR(EnqueueBounds());
    AKV_CUDA_RETURN(cudaStreamSynchronize(stream));
    return Status::Ok();
  }

  // y[:, rows of part] (+)= W x for n tokens; x f32 with row stride ldx.
  Status Linear(const std::vector<Part>& parts, const float* xin, int64_t ldx, int n, float* y, int64_t ldy,
                bool accumulate) {
    for (const Part& p : parts) AKV_RETURN_IF_ERROR(Linear(p.m, xin, ldx, n, y + p.offset, ldy, accumulate));
    return Status::Ok();
  }
  Status Linear(const DevMatrix& w, const float* xin, int64_t ldx, int n, float* y, int64_t ldy, bool accumulate) {
    return linear.Run(m->cublas, w, xin, ldx, n, y, ldy, accumulate, stream);
  }

  Status Attention(int l, int n, bool decode) {
    const ModelConfig& c = cfg();
    const int D = c.head_dim, R = c.n_q_per_kv();
    const int64_t qkvd = c.q_dim() + 2 * c.kv_dim();
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    if (!decode) {
      DevTierSet set;
      set.t[set.n++] = HotTier(l);
      if (tiered) set.t[set.n++] = WarmTier(l);
      if (cold) set.t[set.n++] = PromotedTier(l);
      PrefillAttnArgs a;
      a.q = qkv.get<float>();
      a.ldq = qkvd;
      a.out = attn.get<float>();
      a.ldo = c.q_dim();
      a.job0 = 0;
      a.n_kv = n_kv();
      a.R = R;
      a.scale = scale;
      a.max_tokens = n;
      a.step = step();
      AKV_CUDA_RETURN(LaunchPrefillAttention(set, a, stream));
      return Status::Ok();
    }
    DecodeAttnArgs a;
    a.q = qkv.get<float>();
    a.n_jobs = n_kv();
    a.R = R;
    a.scale = scale;
    a.part_m = part_m.get<float>();
    a.part_d = part_d.get<float>();
    a.part_o = part_o.get<float>();
    a.S_total = S_hot + S_warm + S_cold;
    a.split_base = 0;
    a.n_splits = S_hot;
    a.mass_logits = mass ? mass_logits_hot.get<float>() : nullptr;
    const DevTier hot_t = HotTier(l);
    AKV_CUDA_RETURN(LaunchDecodeAttention(hot_t, a, stream));
    DevTier warm_t;
    if (tiered) {
      warm_t = WarmTier(l);
      a.split_base = S_hot;
      a.n_splits = S_warm;
      a.mass_logits = mass ? mass_logits_warm.get<float>() : nullptr;
      AKV_CUDA_RETURN(LaunchDecodeAttention(warm_t, a, stream));
    }
    if (cold) {  // the promoted cold pages
      a.split_base = S_hot + S_warm;
      a.n_splits = S_cold;
      a.mass_logits = mass ? mass_logits_cold.get<float>() : nullptr;
      AKV_CUDA_RETURN(LaunchDecodeAttention(PromotedTier(l), a, stream));
    }
    AKV_CUDA_RETURN(LaunchAttentionMerge(part_m.get<float>(), part_d.get<float>(), part_o.get<float>(), c.n_head,
                                         S_hot + S_warm + S_cold, D, attn.get<float>(), c.q_dim(), c.n_head,
                                         merged_m.get<float>(), merged_d.get<float>(), nullptr, nullptr, stream));
    if (mass) {
      AKV_CUDA_RETURN(LaunchAttentionMass(hot_t, mass_logits_hot.get<float>(), merged_m.get<float>(),
                                          merged_d.get<float>(), n_kv(), R,
                                          mass_hot.get<float>() + static_cast<size_t>(l) * n_kv() * hot_cap, stream));
      if (tiered)
        AKV_CUDA_RETURN(LaunchAttentionMass(warm_t, mass_logits_warm.get<float>(), merged_m.get<float>(),
                                            merged_d.get<float>(), n_kv(), R,
                                            mass_warm.get<float>() + static_cast<size_t>(l) * n_kv() * warm_cap,
                                            stream));
      if (cold)
        AKV_CUDA_RETURN(LaunchAttentionMass(PromotedTier(l), mass_logits_cold.get<float>(), merged_m.get<float>(),
                                            merged_d.get<float>(), n_kv(), R,
                                            mass_cold.get<float>() + static_cast<size_t>(l) * n_kv() * promote_cap,
                                            stream));
      if (mass_policy)  // decay 0.95 per step, as the CPU scorer's default (CacheConfig::decay)
        AKV_CUDA_RETURN(LaunchPageScores(warm_t, n_kv(), mass_warm.get<float>() + static_cast<size_t>(l) * n_kv() * warm_cap,
                                         warm_cap, 0.95f,
                                         page_scores.get<float>() + static_cast<size_t>(l) * n_kv() * warm_pages(),
                                         stream));
    }
    return Status::Ok();
  }

  // The kernels of one forward chunk of n tokens (tokens and step already on the device). With
  // decode (n == 1) nothing here depends on host values that change between steps, so it can be
  // captured once as a graph.
  Status Enqueue(int n, bool decode, bool all_logits) {
    const ModelConfig& c = cfg();
    const int64_t d = c.n_embd, qkvd = c.q_dim() + 2 * c.kv_dim();
    float* X = x.get<float>();
    float* H = h.get<float>();
    float* QKV = qkv.get<float>();
    AKV_CUDA_RETURN(LaunchEmbed(m->tok_embd, tokens_dev.get<int32_t>(), n, X, d, stream));
    for (int l = 0; l < c.n_layer; ++l) {
      const CudaModel::Impl::Layer& L = m->layers[l];
      AKV_CUDA_RETURN(LaunchRmsNorm(X, H, d, 1, n, static_cast<int>(d), L.attn_norm, c.rms_eps, stream));
      AKV_RETURN_IF_ERROR(Linear(L.qkv, H, d, n, QKV, qkvd, false));
      if (L.bqkv) AKV_CUDA_RETURN(LaunchAddBias(QKV, qkvd, L.bqkv, static_cast<int>(qkvd), n, stream));
      if (L.q_norm) {
        AKV_CUDA_RETURN(LaunchRmsNorm(QKV, QKV, qkvd, c.n_head, n * c.n_head, c.head_dim, L.q_norm, c.rms_eps, stream));
        AKV_CUDA_RETURN(LaunchRmsNorm(QKV + c.q_dim(), QKV + c.q_dim(), qkvd, c.n_head_kv, n * c.n_head_kv,
                                      c.head_dim, L.k_norm, c.rms_eps, stream));
      }
      AKV_CUDA_RETURN(LaunchRope(QKV, qkvd, c.n_head + c.n_head_kv, c.head_dim, n, step(), m->rope, stream));
      if (cold)
        AKV_CUDA_RETURN(LaunchCopyF32(QKV + static_cast<int64_t>(n - 1) * qkvd,
                                      q_stash.get<float>() + static_cast<size_t>(l) * c.q_dim(), c.q_dim(), stream));
      const DevTier hot_t = HotTier(l);
      const DevTier warm_t = tiered ? WarmTier(l) : DevTier{};
      AKV_CUDA_RETURN(LaunchKvAppend(hot_t, tiered ? &warm_t : nullptr, policy, 0, n_kv(), QKV + c.q_dim(),
                                     QKV + c.q_dim() + c.kv_dim(), qkvd, n, step(), stream));
      AKV_RETURN_IF_ERROR(Attention(l, n, decode));
      AKV_RETURN_IF_ERROR(Linear(L.wo, attn.get<float>(), c.q_dim(), n, X, d, true));
      AKV_CUDA_RETURN(LaunchRmsNorm(X, H, d, 1, n, static_cast<int>(d), L.ffn_norm, c.rms_eps, stream));
      AKV_RETURN_IF_ERROR(Linear(L.gu, H, d, n, gu.get<float>(), 2 * static_cast<int64_t>(c.n_ff), false));
      AKV_CUDA_RETURN(LaunchSwiGlu(gu.get<float>(), 2 * static_cast<int64_t>(c.n_ff), c.n_ff, n, act.get<float>(), c.n_ff,
                                   stream));
      AKV_RETURN_IF_ERROR(Linear(L.wdown, act.get<float>(), c.n_ff, n, X, d, true));
    }
    const int first = all_logits ? 0 : n - 1;
    const int rows = n - first;
    AKV_CUDA_RETURN(LaunchRmsNorm(X + static_cast<int64_t>(first) * d, H, d, 1, rows, static_cast<int>(d), m->output_norm,
                                  c.rms_eps, stream));
    return Linear(m->output, H, d, rows, logits.get<float>(), c.n_vocab, false);
  }

  Status Upload(const int32_t* tokens, int n) {
    // The pinned staging buffer is reused: the previous step's copies must have left it.
    AKV_CUDA_RETURN(cudaStreamSynchronize(stream));
    const StepParams sp = NextStep(n);
    uint8_t* st = staging.get<uint8_t>();
    std::memcpy(st, &sp, sizeof sp);
    if (tokens) std::memcpy(st + sizeof sp, tokens, static_cast<size_t>(n) * 4);
    AKV_CUDA_RETURN(cudaMemcpyAsync(step_dev.get(), st, sizeof sp, cudaMemcpyHostToDevice, stream));
    if (tokens)
      AKV_CUDA_RETURN(cudaMemcpyAsync(tokens_dev.get(), st + sizeof sp, static_cast<size_t>(n) * 4, cudaMemcpyHostToDevice,
                                      stream));
    return Status::Ok();
  }

  // A decode step's parameters and token, written on the device by a kernel: a host-to-device
  // copy would wait behind a promotion's copy on the copy engine and serialize the two.
  Status UploadDecode(int32_t token) {
    AKV_CUDA_RETURN(LaunchSetDecodeStep(step(), tokens_dev.get<int32_t>(), NextStep(1), token, stream));
    return Status::Ok();
  }
  // Where the next n tokens go.
  StepParams NextStep(int n) const {
    StepParams sp;
    sp.pos0 = static_cast<int32_t>(n_past);
    sp.n_new = n;
    sp.warm_base = warm_base;
    return sp;
  }

  Status CheckTokens(std::span<const int32_t> tokens) const {
    for (int32_t t : tokens)
      if (t < 0 || t >= cfg().n_vocab)
        return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                               std::to_string(cfg().n_vocab - 1) + ")");
    if (n_past + static_cast<int64_t>(tokens.size()) > n_ctx)
      return OutOfRange("CUDA session: " + std::to_string(n_past + tokens.size()) + " tokens do not fit in the context of " +
                        std::to_string(n_ctx));
    return Status::Ok();
  }

  Status FetchLastLogits() {
    const int V = cfg().n_vocab;
    AKV_CUDA_RETURN(cudaMemcpyAsync(logits_host.get(), logits.get(), static_cast<size_t>(V) * 4, cudaMemcpyDeviceToHost,
                                    stream));
    AKV_CUDA_RETURN(cudaStreamSynchronize(stream));
    std::memcpy(last_logits.data(), logits_host.get(), static_cast<size_t>(V) * 4);
    return Status::Ok();
  }
};

CudaSession::CudaSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaSession::~CudaSession() = default;

StatusOr<std::unique_ptr<CudaSession>> CudaModel::NewSession(const SessionOptions& options) {
  auto s = std::make_unique<CudaSession::Impl>();
  AKV_RETURN_IF_ERROR(s->Init(impl_.get(), options));
  return std::unique_ptr<CudaSession>(new CudaSession(std::move(s)));
}

Status CudaSession::Prefill(std::span<const int32_t> tokens, float* all_logits) {
  Impl& s = *impl_;
  AKV_RETURN_IF_ERROR(s.CheckTokens(tokens));
  const int V = s.cfg().n_vocab;
  for (size_t b = 0; b < tokens.size(); b += kMaxBatch) {
    const int n = static_cast<int>(std::min<size_t>(kMaxBatch, tokens.size() - b));
    const bool last = b + n == tokens.size();
    AKV_RETURN_IF_ERROR(s.MakeWarmRoom(n, /*promote=*/true));
    AKV_RETURN_IF_ERROR(s.Upload(tokens.data() + b, n));
    AKV_RETURN_IF_ERROR(s.Enqueue(n, /*decode=*/false, all_logits != nullptr));
    s.n_past += n;
    if (s.cold) {  // the chunk's last queries choose the cold pages the next chunk and step attend
      AKV_RETURN_IF_ERROR(s.FetchBounds());
      AKV_RETURN_IF_ERROR(s.Promote(/*now=*/true));
    }
    if (all_logits) {
      AKV_CUDA_RETURN(cudaMemcpyAsync(all_logits + b * V, s.logits.get(), static_cast<size_t>(n) * V * 4,
                                      cudaMemcpyDeviceToHost, s.stream));
      AKV_CUDA_RETURN(cudaStreamSynchronize(s.stream));
      if (last) std::memcpy(s.last_logits.data(), all_logits + (b + n - 1) * V, static_cast<size_t>(V) * 4);
    } else if (last) {
      AKV_RETURN_IF_ERROR(s.FetchLastLogits());
    }
  }
  return Status::Ok();
}

Status CudaSession::Decode(int32_t token) {
  Impl& s = *impl_;
  AKV_RETURN_IF_ERROR(s.CheckTokens(std::span<const int32_t>(&token, 1)));
  AKV_RETURN_IF_ERROR(s.MakeWarmRoom(1, /*promote=*/true));
  AKV_RETURN_IF_ERROR(s.UploadDecode(token));
  if (s.pending) {
    if (s.pending_skip) {
      s.pending_skip = false;  // this step overlaps the copy
    } else {
      AKV_RETURN_IF_ERROR(s.JoinPromoter());
      AKV_CUDA_RETURN(cudaStreamWaitEvent(s.stream, s.promoted.get(), 0));
      s.active = 1 - s.active;
      s.pending = false;
    }
  }
  cudaGraphExec_t& graph = s.graphs[s.cold ? s.active : 0];
  if (!s.opt.use_graphs) {
    AKV_RETURN_IF_ERROR(s.Enqueue(1, /*decode=*/true, false));
  } else {
    if (!graph) {
      cudaGraph_t g = nullptr;
      AKV_CUDA_RETURN(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal));
      Status st = s.Enqueue(1, /*decode=*/true, false);
      cudaError_t end = cudaStreamEndCapture(s.stream, &g);
      if (!st.ok()) {
        if (g) cudaGraphDestroy(g);
        return st;
      }
      AKV_CUDA_RETURN(end);
      cudaError_t inst = cudaGraphInstantiate(&graph, g, 0);
      cudaGraphDestroy(g);
      AKV_CUDA_RETURN(inst);
    }
    AKV_CUDA_RETURN(cudaGraphLaunch(graph, s.stream));
  }
  s.n_past += 1;
  const bool promote = s.cold && !s.pending && ++s.steps_since_promote >= s.opt.cache.promote_interval;
  if (promote) AKV_RETURN_IF_ERROR(s.EnqueueBounds());
  AKV_RETURN_IF_ERROR(s.FetchLastLogits());
  if (promote) AKV_RETURN_IF_ERROR(s.Promote(/*now=*/false));
  return Status::Ok();
}

std::span<const float> CudaSession::last_logits() const { return impl_->last_logits; }

Status CudaSession::FillRandom(int n_tokens, uint64_t seed) {
  Impl& s = *impl_;
  if (n_tokens < 0 || s.n_past + n_tokens > s.n_ctx)
    return OutOfRange("CUDA session: " + std::to_string(s.n_past + n_tokens) + " tokens do not fit in the context of " +
                      std::to_string(s.n_ctx));
  const ModelConfig& c = s.cfg();
  const int64_t qkvd = c.q_dim() + 2 * c.kv_dim();
  float* QKV = s.qkv.get<float>();
  for (int b = 0; b < n_tokens; b += kMaxBatch) {
    const int n = std::min(kMaxBatch, n_tokens - b);
    AKV_RETURN_IF_ERROR(s.MakeWarmRoom(n, /*promote=*/false));  // random K/V: no queries
    AKV_RETURN_IF_ERROR(s.Upload(nullptr, n));
    for (int l = 0; l < c.n_layer; ++l) {
      AKV_CUDA_RETURN(LaunchRandomFill(QKV, GgmlType::F32, static_cast<int64_t>(n) * qkvd,
                                       seed * 7919 + static_cast<uint64_t>(l) * 104729 + s.n_past, 2.0f, s.stream));
      const DevTier hot_t = s.HotTier(l);
      const DevTier warm_t = s.tiered ? s.WarmTier(l) : DevTier{};
      AKV_CUDA_RETURN(LaunchKvAppend(hot_t, s.tiered ? &warm_t : nullptr, s.policy, 0, s.n_kv(), QKV + c.q_dim(),
                                     QKV + c.q_dim() + c.kv_dim(), qkvd, n, s.step(), s.stream));
    }
    s.n_past += n;
    AKV_CUDA_RETURN(cudaStreamSynchronize(s.stream));
  }
  // No queries yet: the first decode step chooses the cold pages.
  s.steps_since_promote = s.opt.cache.promote_interval;
  return Status::Ok();
}

StatusOr<std::vector<float>> CudaSession::LastAttentionMass(int layer) const {
  const Impl& s = *impl_;
  const ModelConfig& c = s.cfg();
  if (!s.mass) return InvalidArgument("CUDA session: attention_mass was not enabled");
  if (layer < 0 || layer >= c.n_layer) return InvalidArgument("CUDA session: no layer " + std::to_string(layer));
  AKV_CUDA_RETURN(cudaStreamSynchronize(s.stream));
  const int nkv = s.n_kv();
  const int64_t n = s.n_past;
  std::vector<float> out(static_cast<size_t>(nkv) * n, 0.0f);
  // Each tier's mass per slot, scattered to positions read from its pages' position sections
  // (slot order is not position order in the hot ring, after warm demotions, or in promoted pages).
  auto scatter = [&](const DevTier& t, const float* mass_dev, int cap) -> Status {
    std::vector<float> mass(static_cast<size_t>(nkv) * cap);
    AKV_CUDA_RETURN(cudaMemcpy(mass.data(), mass_dev, mass.size() * 4, cudaMemcpyDeviceToHost));
    std::vector<int32_t> table(static_cast<size_t>(nkv) * t.max_pages), counts(nkv);
    AKV_CUDA_RETURN(cudaMemcpy(table.data(), t.page_table, table.size() * 4, cudaMemcpyDeviceToHost));
    AKV_CUDA_RETURN(cudaMemcpy(counts.data(), t.n_slots, counts.size() * 4, cudaMemcpyDeviceToHost));
    const int ps = t.layout.capacity;
    std::vector<int32_t> pos(ps);
    for (int g = 0; g < nkv; ++g) {
      const int used = counts[g];
      for (int p = 0; p * ps < used; ++p) {
        const uint8_t* page = t.pool + static_cast<size_t>(table[static_cast<size_t>(g) * t.max_pages + p]) * t.page_bytes;
        AKV_CUDA_RETURN(cudaMemcpy(pos.data(), page + t.layout.positions_offset, ps * 4, cudaMemcpyDeviceToHost));
        for (int i = 0; i < ps && p * ps + i < used; ++i)
          if (pos[i] >= 0 && pos[i] < n) out[static_cast<size_t>(g) * n + pos[i]] = mass[static_cast<size_t>(g) * cap + p * ps + i];
      }
    }
    return Status::Ok();
  };
  AKV_RETURN_IF_ERROR(scatter(s.HotTier(layer), s.mass_hot.get<float>() + static_cast<size_t>(layer) * nkv * s.hot_cap,
                              s.hot_cap));
  if (s.tiered)
    AKV_RETURN_IF_ERROR(scatter(s.WarmTier(layer),
                                s.mass_warm.get<float>() + static_cast<size_t>(layer) * nkv * s.warm_cap, s.warm_cap));
  if (s.cold)  // the pages the last step attended; cold tokens that were not promoted get 0
    AKV_RETURN_IF_ERROR(scatter(s.PromotedTier(layer),
                                s.mass_cold.get<float>() + static_cast<size_t>(layer) * nkv * s.promote_cap,
                                s.promote_cap));
  return out;
}

StatusOr<std::vector<uint8_t>> CudaSession::PageBytes(int tier, int layer, int job, int page) const {
  const Impl& s = *impl_;
  const ModelConfig& c = s.cfg();
  if (layer < 0 || layer >= c.n_layer || job < 0 || job >= s.n_kv() || page < 0)
    return InvalidArgument("CUDA session: no page " + std::to_string(page) + " of layer " + std::to_string(layer) +
                           ", KV head " + std::to_string(job));
  if (s.promoter.joinable()) s.promoter.join();
  AKV_CUDA_RETURN(cudaStreamSynchronize(s.stream));
  if (s.copy_stream) AKV_CUDA_RETURN(cudaStreamSynchronize(s.copy_stream));
  if (tier == 3) {
    if (!s.cold || page >= s.n_cold_pages) return InvalidArgument("CUDA session: no cold page " + std::to_string(page));
    const ColdTier& t = s.cold_tiers[layer];
    const uint8_t* p = t.host_page(job, page);
    return std::vector<uint8_t>(p, p + t.layout().total_bytes);
  }
  std::optional<DevTier> v;
  if (tier == 0) v = s.HotTier(layer);
  if (tier == 1 && s.tiered) v = s.WarmTier(layer);
  if (tier == 2 && s.cold) v = s.PromotedTier(layer);
  if (!v || page >= v->max_pages) return InvalidArgument("CUDA session: no such tier or page");
  int32_t id = 0;
  AKV_CUDA_RETURN(cudaMemcpy(&id, v->page_table + static_cast<size_t>(job) * v->max_pages + page, 4,
                             cudaMemcpyDeviceToHost));
  std::vector<uint8_t> out(v->layout.total_bytes);
  AKV_CUDA_RETURN(cudaMemcpy(out.data(), v->pool + static_cast<size_t>(id) * v->page_bytes, out.size(),
                             cudaMemcpyDeviceToHost));
  return out;
}

int64_t CudaSession::n_past() const { return impl_->n_past; }
int64_t CudaSession::n_ctx() const { return impl_->n_ctx; }

KvMemory CudaSession::kv_memory() const {
  const Impl& s = *impl_;
  if (s.promoter.joinable()) s.promoter.join();  // its page count; its status stays for the next step
  KvMemory k;
  for (const TierPool& t : s.hot) k.hot_bytes += t.bytes();
  for (const TierPool& t : s.warm) k.warm_bytes += t.bytes();
  if (s.tiered) {
    k.hot_tokens = std::min<int64_t>(s.n_past, s.policy.n_sink + s.policy.window);
    k.warm_tokens = s.n_past - k.hot_tokens - s.warm_base;
    k.cold_tokens = s.warm_base;
  } else {
    k.hot_tokens = s.n_past;
  }
  for (const ColdTier& t : s.cold_tiers) {
    k.promoted_bytes += t.device_bytes();
    k.cold_host_bytes += t.host_bytes();
  }
  if (s.cold) k.promoted_bytes += s.stage.bytes();
  k.promotions = s.promotions.load(std::memory_order_relaxed);
  k.bytes_per_token = static_cast<double>(k.total_bytes()) / s.n_ctx;
  return k;
}

void CudaSession::Reset() {
  Impl& s = *impl_;
  s.n_past = 0;
  cudaMemsetAsync(s.counts.get(), 0, s.counts.bytes(), s.stream);
  if (s.cold) {
    (void)s.JoinPromoter();
    cudaStreamSynchronize(s.copy_stream);
    s.warm_base = 0;
    s.n_cold_pages = 0;
    s.pending = s.pending_skip = false;
    s.steps_since_promote = 0;
    s.IdentityWarmTables();
    for (size_t l = 0; l < s.warm_tables.size(); ++l)
      cudaMemcpyAsync(s.warm[l].table.get(), s.warm_tables[l].data(), s.warm_tables[l].size() * 4,
                      cudaMemcpyHostToDevice, s.stream);
    if (s.mass_policy) cudaMemsetAsync(s.page_scores.get(), 0, s.page_scores.bytes(), s.stream);
    // Nothing promoted in either buffer.
    const std::vector<std::vector<int>> none(s.n_kv());
    for (ColdTier& t : s.cold_tiers)
      for (int b = 0; b < t.n_buffers(); ++b) (void)t.PromoteAsync(none, s.copy_stream, nullptr, b);
    cudaStreamSynchronize(s.copy_stream);
  }
  cudaStreamSynchronize(s.stream);
}

}  // namespace akv::cuda
