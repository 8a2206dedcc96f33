// Scalar reference of the Hadamard rotation; the SIMD path performs the same butterflies in the
// same order, so results are bit-identical.
#include <cmath>
#include <cstdint>
#include <string>

#include "kv/codecs/hadamard.h"

namespace akv {

float HadamardSign(int c) {
  const uint32_t h = (uint32_t(c) * 0x9E3779B1u) >> 15;
  return (h & 1u) ? -1.0f : 1.0f;
}

namespace {

Status CheckLength(int n) {
  if (n > 0 && n % 16 == 0) return Status::Ok();
  return InvalidArgument("Hadamard rotation: length " + std::to_string(n) +
                         " is not a positive multiple of 16");
}

// Unnormalized fast Walsh-Hadamard transform of one block of `len` (a power of two), then scaling
// by 1/sqrt(len).
void TransformBlock(float* x, int len) {
  for (int h = 1; h < len; h *= 2)
    for (int i = 0; i < len; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  const float norm = float(1.0 / std::sqrt(double(len)));
  for (int j = 0; j < len; ++j) x[j] *= norm;
}

void TransformBlocks(float* x, int n) {
  int offset = 0;
  for (int len = 1 << 30; len >= 1; len >>= 1)
    if (n - offset >= len) {
      TransformBlock(x + offset, len);
      offset += len;
    }
}

}  // namespace

Status HadamardRotateReference(float* x, int n) {
  AKV_RETURN_IF_ERROR(CheckLength(n));
  for (int c = 0; c < n; ++c) x[c] *= HadamardSign(c);
  TransformBlocks(x, n);
  return Status::Ok();
}

Status HadamardRotateInverseReference(float* x, int n) {
  AKV_RETURN_IF_ERROR(CheckLength(n));
  TransformBlocks(x, n);
  for (int c = 0; c < n; ++c) x[c] *= HadamardSign(c);
  return Status::Ok();
}

}  // namespace akv
