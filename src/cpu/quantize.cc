// Reference quantizers with llama.cpp's rounding (quantize_row_q8_0_ref / q4_0_ref), so that
// activations quantized here give the same integers as llama.cpp's.
#include <algorithm>
#include <cassert>
#include <cmath>

#include "cpu/quants.h"

namespace akv {

// Q8_0: d = max|x| / 127, q = round(x / d) (round half away from zero, as roundf).
void QuantizeRowQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// Q4_0: d = (the value of largest magnitude, with its sign) / -8, so that value maps to
// q = 0 exactly; q = min(15, trunc(x / d + 8.5)).
void QuantizeRowQ4_0(const float* x, BlockQ4_0* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, int(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, int(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

}  // namespace akv
