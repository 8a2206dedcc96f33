#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace akv {

namespace {
// YaRN: the dimension index where the rotation count over the original context equals n_rot.
float CorrDim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * static_cast<float>(M_PI))) / (2 * std::log(base));
}
}  // namespace

Rope::Rope(const RopeConfig& c, std::vector<float> freq_factors) : c_(c) {
  const int half = c.n_dims / 2;
  inv_freq_.resize(half);
  const double theta_scale = std::pow(static_cast<double>(c.freq_base), -2.0 / c.n_dims);
  double t = 1.0;
  for (int i = 0; i < half; ++i) {
    float f = static_cast<float>(t);
    if (!freq_factors.empty()) f /= freq_factors[i];
    inv_freq_[i] = f;
    t *= theta_scale;
  }
  if (c.scaling == RopeScaling::kYarn) {
    corr_low_ = std::max(0.f, std::floor(CorrDim(c.n_dims, c.n_ctx_orig, c.yarn_beta_fast, c.freq_base)));
    corr_high_ = std::min(static_cast<float>(c.n_dims - 1),
                          std::ceil(CorrDim(c.n_dims, c.n_ctx_orig, c.yarn_beta_slow, c.freq_base)));
  }
}

void Rope::Prepare(const int32_t* positions, int64_t n) {
  const int half = c_.n_dims / 2;
  cos_.resize(n * half);
  sin_.resize(n * half);
  const bool scaled = c_.scaling != RopeScaling::kNone;
  for (int64_t t = 0; t < n; ++t) {
    for (int i = 0; i < half; ++i) {
      const float theta_extrap = static_cast<float>(positions[t]) * inv_freq_[i];
      float theta = scaled ? theta_extrap * c_.freq_scale : theta_extrap;
      float mscale = 1.f;
      if (c_.scaling == RopeScaling::kYarn) {
        mscale = c_.yarn_attn_factor;
        const float y = (i - corr_low_) / std::max(0.001f, corr_high_ - corr_low_);
        const float ramp = (1 - std::min(1.f, std::max(0.f, y))) * c_.yarn_ext_factor;
        theta = theta * (1 - ramp) + theta_extrap * ramp;
        mscale *= 1.0f + 0.1f * std::log(1.0f / c_.freq_scale);
      }
      cos_[t * half + i] = std::cos(theta) * mscale;
      sin_[t * half + i] = std::sin(theta) * mscale;
    }
  }
}

void Rope::Apply(float* x, int64_t n, int n_heads, int head_dim) const {
  const int half = c_.n_dims / 2;
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = &cos_[t * half];
    const float* sn = &sin_[t * half];
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      if (c_.style == RopeStyle::kNorm) {
        for (int i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * cs[i] - b * sn[i];
          v[2 * i + 1] = a * sn[i] + b * cs[i];
        }
      } else {
        for (int i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = a * sn[i] + b * cs[i];
        }
      }
    }
  }
}

}  // namespace akv
