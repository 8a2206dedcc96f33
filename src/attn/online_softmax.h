// The online-softmax state of one query row over a set of keys, and the rule that merges two
// states over disjoint key sets:
//   m = max logit seen, d = sum exp(logit - m), o = sum exp(logit - m) * v   (o un-normalized)
//   merge: m = max(m1, m2), d = d1 e^(m1-m) + d2 e^(m2-m), o = o1 e^(m1-m) + o2 e^(m2-m)
// The attention output is o / d. An empty state (no visible key) has m = -inf, d = 0, o = 0; it
// is the identity of the merge, and its output is defined as 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

namespace akv {

struct SoftmaxStats {
  float max_logit = -std::numeric_limits<float>::infinity();  // m (scaled logits)
  float sum_exp = 0;                                           // d
};

// Folds (m2, d2, o2[n]) into (m1, d1, o1[n]).
inline void MergeSoftmaxState(SoftmaxStats& a, float* o_a, const SoftmaxStats& b, const float* o_b, int n) {
  if (b.max_logit == -std::numeric_limits<float>::infinity()) return;
  if (a.max_logit == -std::numeric_limits<float>::infinity()) {
    a = b;
    for (int i = 0; i < n; ++i) o_a[i] = o_b[i];
    return;
  }
  const float m = std::max(a.max_logit, b.max_logit);
  const float ca = std::exp(a.max_logit - m), cb = std::exp(b.max_logit - m);
  a.sum_exp = a.sum_exp * ca + b.sum_exp * cb;
  a.max_logit = m;
  for (int i = 0; i < n; ++i) o_a[i] = o_a[i] * ca + o_b[i] * cb;
}

// out[n] = o / d (0 for an empty state).
inline void FinishSoftmaxState(const SoftmaxStats& s, const float* o, int n, float* out) {
  const float inv = s.sum_exp > 0 ? 1.0f / s.sum_exp : 0.0f;
  for (int i = 0; i < n; ++i) out[i] = o[i] * inv;
}

}  // namespace akv
