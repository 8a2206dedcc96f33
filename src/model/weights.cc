#include "model/weights.h"

#include <cstring>

#include "core/half.h"
#include "cpu/quants.h"

namespace akv {

namespace {

std::string Dims(int64_t a, int64_t b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + "]"; }

// Packs m into the CPU kernels' panel layout where this CPU has one (Q8_0 with AVX-512 VNNI):
// decode then runs without repacking or horizontal sums (docs/KERNELS.md). The GGUF bytes stay
// mapped for embedding look-ups and other backends; the kernels no longer read them.
Status PackForCpu(WeightMatrix* m, ModelWeights* w) {
  const size_t bytes = PanelBytes(*m);
  if (bytes == 0) return Status::Ok();
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!buf) return Status(StatusCode::kResourceExhausted, "cannot allocate " + std::to_string(bytes) + " bytes for weight panels");
  w->panels.emplace_back(buf);
  PackPanels(*m, buf);
  m->panels = buf;
  w->panel_bytes += bytes;
  return Status::Ok();
}

// A matrix stored with ggml dims [cols, rows]. Types MatMul does not compute on are converted
// to F16 once here. `multiplied`: the matrix is used in MatMul (not only for row look-ups).
StatusOr<WeightMatrix> LoadMatrix(const GgufFile& g, const std::string& name, int64_t cols, int64_t rows,
                                  ModelWeights* w, bool multiplied = true) {
  AKV_ASSIGN_OR_RETURN(const GgufTensor* t, g.GetTensor(name));
  if (t->dims.size() > 2 || t->dims[0] != cols || (t->dims.size() == 2 ? t->dims[1] : 1) != rows)
    return Corrupt("tensor '" + name + "' has shape " + t->ShapeString() + ", expected " + Dims(cols, rows));
  GgmlTypeTraits tr = GetTypeTraits(t->type);
  if (!tr.supported) return Unsupported("tensor '" + name + "' has type " + tr.name + ", which akv cannot load");
  WeightMatrix m;
  m.rows = rows;
  m.cols = cols;
  if (MatMulSupports(t->type)) {
    m.type = t->type;
    m.data = t->data;
    m.row_bytes = RowBytes(t->type, cols);
    if (multiplied) AKV_RETURN_IF_ERROR(PackForCpu(&m, w));
    return m;
  }
  auto buf = std::make_unique<std::vector<uint8_t>>(static_cast<size_t>(rows * cols) * 2);
  std::vector<float> row(cols);
  const size_t src_row = RowBytes(t->type, cols);
  f16_t* dst = reinterpret_cast<f16_t*>(buf->data());
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(t->type, t->data + r * src_row, row.data(), cols);
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = F32ToF16(row[c]);
  }
  m.type = GgmlType::F16;
  m.data = buf->data();
  m.row_bytes = static_cast<size_t>(cols) * 2;
  w->load_notes.push_back(std::string("converted ") + name + " from " + tr.name + " to f16 at load");
  w->owned.push_back(std::move(buf));
  return m;
}

StatusOr<std::vector<float>> LoadVector(const GgufFile& g, const std::string& name, int64_t n) {
  AKV_ASSIGN_OR_RETURN(const GgufTensor* t, g.GetTensor(name));
  if (t->n_elements() != n || t->dims[0] != n)
    return Corrupt("tensor '" + name + "' has shape " + t->ShapeString() + ", expected [" + std::to_string(n) + "]");
  if (!GetTypeTraits(t->type).supported)
    return Unsupported("tensor '" + name + "' has unsupported type " + TypeName(t->type));
  std::vector<float> v(n);
  DequantizeRow(t->type, t->data, v.data(), n);
  return v;
}

}  // namespace

StatusOr<std::unique_ptr<ModelWeights>> LoadWeights(const GgufFile& g, const ModelConfig& c) {
  auto w = std::make_unique<ModelWeights>();
  const bool tied = g.FindTensor("output.weight") == nullptr;
  AKV_ASSIGN_OR_RETURN(w->token_embd, LoadMatrix(g, "token_embd.weight", c.n_embd, c.n_vocab, w.get(), tied));
  AKV_ASSIGN_OR_RETURN(w->output_norm, LoadVector(g, "output_norm.weight", c.n_embd));
  if (!tied) {
    AKV_ASSIGN_OR_RETURN(w->output, LoadMatrix(g, "output.weight", c.n_embd, c.n_vocab, w.get()));
  } else {
    w->output = w->token_embd;
    w->load_notes.push_back("output projection tied to token_embd.weight");
  }
  if (g.FindTensor("rope_freqs.weight")) {
    AKV_ASSIGN_OR_RETURN(w->rope_freq_factors, LoadVector(g, "rope_freqs.weight", c.rope.n_dims / 2));
  }
  w->layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w->layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    AKV_ASSIGN_OR_RETURN(L.attn_norm, LoadVector(g, p + "attn_norm.weight", c.n_embd));
    AKV_ASSIGN_OR_RETURN(L.wq, LoadMatrix(g, p + "attn_q.weight", c.n_embd, c.q_dim(), w.get()));
    AKV_ASSIGN_OR_RETURN(L.wk, LoadMatrix(g, p + "attn_k.weight", c.n_embd, c.kv_dim(), w.get()));
    AKV_ASSIGN_OR_RETURN(L.wv, LoadMatrix(g, p + "attn_v.weight", c.n_embd, c.kv_dim(), w.get()));
    AKV_ASSIGN_OR_RETURN(L.wo, LoadMatrix(g, p + "attn_output.weight", c.q_dim(), c.n_embd, w.get()));
    if (c.qkv_bias) {
      AKV_ASSIGN_OR_RETURN(L.bq, LoadVector(g, p + "attn_q.bias", c.q_dim()));
      AKV_ASSIGN_OR_RETURN(L.bk, LoadVector(g, p + "attn_k.bias", c.kv_dim()));
      AKV_ASSIGN_OR_RETURN(L.bv, LoadVector(g, p + "attn_v.bias", c.kv_dim()));
    }
    if (c.qk_norm) {
      AKV_ASSIGN_OR_RETURN(L.q_norm, LoadVector(g, p + "attn_q_norm.weight", c.head_dim));
      AKV_ASSIGN_OR_RETURN(L.k_norm, LoadVector(g, p + "attn_k_norm.weight", c.head_dim));
    }
    AKV_ASSIGN_OR_RETURN(L.ffn_norm, LoadVector(g, p + "ffn_norm.weight", c.n_embd));
    AKV_ASSIGN_OR_RETURN(L.w_gate, LoadMatrix(g, p + "ffn_gate.weight", c.n_embd, c.n_ff, w.get()));
    AKV_ASSIGN_OR_RETURN(L.w_up, LoadMatrix(g, p + "ffn_up.weight", c.n_embd, c.n_ff, w.get()));
    AKV_ASSIGN_OR_RETURN(L.w_down, LoadMatrix(g, p + "ffn_down.weight", c.n_ff, c.n_embd, w.get()));
  }
  if (w->panel_bytes > 0)
    w->load_notes.push_back("packed the Q8_0 matrices into 32-row panels for the VNNI kernels (" +
                            std::to_string(w->panel_bytes >> 20) + " MiB)");
  return w;
}

}  // namespace akv
