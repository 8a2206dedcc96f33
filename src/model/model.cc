#include "model/model.h"

#include <algorithm>
#include <cstring>

#include "cpu/quants.h"
#include "cpu/vec_ops.h"
#include "model/arch/arch.h"

namespace akv {

StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path, std::vector<std::string>* log) {
  std::unique_ptr<Model> m(new Model());
  AKV_ASSIGN_OR_RETURN(m->gguf_, GgufFile::Open(path));
  auto fail = [&](const Status& st) { return Status(st.code(), "'" + path + "': " + st.message()); };
  auto cfg = ReadModelConfig(*m->gguf_);
  if (!cfg.ok()) return fail(cfg.status());
  m->config_ = *cfg;
  const GgufTensor* embd = m->gguf_->FindTensor("token_embd.weight");
  if (!embd || embd->dims.size() != 2) return fail(NotFound("missing 2-D tensor 'token_embd.weight'"));
  m->config_.n_vocab = static_cast<int>(embd->dims[1]);
  m->config_.tied_output = m->gguf_->FindTensor("output.weight") == nullptr;
  auto tok = Tokenizer::FromGguf(*m->gguf_);
  if (!tok.ok()) return fail(tok.status());
  m->tokenizer_ = std::move(*tok);
  if (m->tokenizer_->n_vocab() != m->config_.n_vocab)
    return fail(Corrupt("tokenizer has " + std::to_string(m->tokenizer_->n_vocab()) + " tokens but token_embd.weight has " +
                        std::to_string(m->config_.n_vocab) + " rows"));
  auto w = LoadWeights(*m->gguf_, m->config_);
  if (!w.ok()) return fail(w.status());
  m->weights_ = std::move(*w);
  if (log) for (const auto& n : m->weights_->load_notes) log->push_back(n);
  return m;
}

KvShape Model::kv_shape() const {
  KvShape s;
  s.n_layer = config_.n_layer;
  s.n_head_kv = config_.n_head_kv;
  s.head_dim = config_.head_dim;
  s.n_q_per_kv = config_.n_q_per_kv();
  return s;
}

Status Model::Forward(const int32_t* tokens, const int32_t* positions, int64_t n, KvCache& cache,
                      ThreadPool& pool, ForwardScratch& s, float* logits, bool all_logits) const {
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.n_vocab)
      return InvalidArgument("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                             std::to_string(config_.n_vocab - 1) + ")");
  }
  const int64_t max_batch = std::max<int64_t>(1, std::min(kMaxBatch, cache.max_batch()));
  for (int64_t b = 0; b < n; b += max_batch) {
    const int64_t nb = std::min(max_batch, n - b);
    const bool last = b + nb == n;
    float* out = nullptr;
    if (logits && all_logits) out = logits + b * config_.n_vocab;
    if (logits && !all_logits && last) out = logits;
    KvCache* c = &cache;
    AKV_RETURN_IF_ERROR(ForwardRows(tokens + b, positions + b, nb, &c, /*one_cache=*/true, pool, s, out, all_logits));
  }
  return Status::Ok();
}

Status Model::ForwardMulti(const int32_t* tokens, const int32_t* positions, KvCache* const* caches, int64_t n,
                           ThreadPool& pool, ForwardScratch& s, float* logits) const {
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.n_vocab)
      return InvalidArgument("token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
  }
  for (int64_t b = 0; b < n; b += kMaxBatch) {
    const int64_t nb = std::min(kMaxBatch, n - b);
    AKV_RETURN_IF_ERROR(ForwardRows(tokens + b, positions + b, nb, caches + b, /*one_cache=*/false, pool, s,
                                    logits ? logits + b * config_.n_vocab : nullptr, true));
  }
  return Status::Ok();
}

Status Model::ForwardRows(const int32_t* tokens, const int32_t* positions, int64_t n, KvCache* const* caches,
                          bool one_cache, ThreadPool& pool, ForwardScratch& s, float* logits, bool all_logits) const {
  const ModelConfig& c = config_;
  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.n_ff;
  s.x.resize(n * d);
  s.h.resize(n * std::max(d, qd));
  s.q.resize(n * qd);
  s.k.resize(n * kvd);
  s.v.resize(n * kvd);
  s.attn.resize(n * qd);
  s.gate.resize(n * ff);
  s.up.resize(n * ff);
  if (!s.rope) s.rope = std::make_unique<Rope>(c.rope, weights_->rope_freq_factors);
  s.rope->Prepare(positions, n);

  const WeightMatrix& emb = weights_->token_embd;
  for (int64_t t = 0; t < n; ++t)
    DequantizeRow(emb.type, emb.data + static_cast<size_t>(tokens[t]) * emb.row_bytes, &s.x[t * d], d);

  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = weights_->layers[l];
    // Attention block: h = norm(x); q, k, v projections; RoPE; cache; output projection.
    for (int64_t t = 0; t < n; ++t) RmsNorm(&s.x[t * d], L.attn_norm.data(), c.rms_eps, &s.h[t * d], d);
    MatMul(L.wq, s.h.data(), d, n, s.q.data(), qd, pool);
    MatMul(L.wk, s.h.data(), d, n, s.k.data(), kvd, pool);
    MatMul(L.wv, s.h.data(), d, n, s.v.data(), kvd, pool);
    if (c.qkv_bias) {
      for (int64_t t = 0; t < n; ++t) {
        AddInPlace(&s.q[t * qd], L.bq.data(), qd);
        AddInPlace(&s.k[t * kvd], L.bk.data(), kvd);
        AddInPlace(&s.v[t * kvd], L.bv.data(), kvd);
      }
    }
    if (c.qk_norm) {
      for (int64_t r = 0; r < n * c.n_head; ++r)
        RmsNorm(&s.q[r * c.head_dim], L.q_norm.data(), c.rms_eps, &s.q[r * c.head_dim], c.head_dim);
      for (int64_t r = 0; r < n * c.n_head_kv; ++r)
        RmsNorm(&s.k[r * c.head_dim], L.k_norm.data(), c.rms_eps, &s.k[r * c.head_dim], c.head_dim);
    }
    s.rope->Apply(s.q.data(), n, c.n_head, c.head_dim);
    s.rope->Apply(s.k.data(), n, c.n_head_kv, c.head_dim);
    // Attention per run of rows that share a cache (all rows for a single sequence).
    for (int64_t r0 = 0; r0 < n;) {
      int64_t r1 = one_cache ? n : r0 + 1;
      while (!one_cache && r1 < n && caches[r1] == caches[r0]) ++r1;
      KvCache& cache = *caches[one_cache ? 0 : r0];
      AKV_RETURN_IF_ERROR(cache.Append(l, &s.k[r0 * kvd], &s.v[r0 * kvd], positions + r0, r1 - r0));
      AKV_RETURN_IF_ERROR(cache.Attend(l, &s.q[r0 * qd], positions + r0, r1 - r0, &s.attn[r0 * qd], pool));
      r0 = r1;
    }
    MatMul(L.wo, s.attn.data(), qd, n, s.h.data(), d, pool);
    for (int64_t t = 0; t < n; ++t) AddInPlace(&s.x[t * d], &s.h[t * d], d);

    // Feed-forward block: x += down(silu(gate(h)) * up(h)), h = norm(x).
    for (int64_t t = 0; t < n; ++t) RmsNorm(&s.x[t * d], L.ffn_norm.data(), c.rms_eps, &s.h[t * d], d);
    MatMul(L.w_gate, s.h.data(), d, n, s.gate.data(), ff, pool);
    MatMul(L.w_up, s.h.data(), d, n, s.up.data(), ff, pool);
    SwiGlu(s.gate.data(), s.up.data(), s.gate.data(), n * ff);
    MatMul(L.w_down, s.gate.data(), ff, n, s.h.data(), d, pool);
    for (int64_t t = 0; t < n; ++t) AddInPlace(&s.x[t * d], &s.h[t * d], d);
  }
  for (int64_t r = 0; r < (one_cache ? 1 : n); ++r)
    if (r == 0 || caches[r] != caches[r - 1]) caches[r]->EndStep(pool);

  if (!logits) return Status::Ok();
  // Output: only the rows asked for go through the (vocabulary-sized) projection.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t t = first; t < n; ++t)
    RmsNorm(&s.x[t * d], weights_->output_norm.data(), c.rms_eps, &s.h[(t - first) * d], d);
  MatMul(weights_->output, s.h.data(), d, rows, logits, c.n_vocab, pool);
  return Status::Ok();
}

}  // namespace akv
