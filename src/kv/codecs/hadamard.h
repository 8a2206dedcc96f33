// Orthogonal Hadamard rotation of keys (and of queries, so q.k is unchanged) before quantization:
// it spreads the energy of outlier channels over all channels of a block, so one large channel no
// longer stretches the scale of its whole group.
//
//   R = H * S:  S = diag(+-1) fixed pseudo-random channel signs,
//               H = block-diagonal normalized Walsh-Hadamard transform, blocks the binary
//                   decomposition of n, largest first (128 -> {128}; 96 -> {64, 32}; 80 -> {64, 16}).
// R is orthogonal: R^T R = I, so (R q).(R k) = q.k and R^-1 = S * H.
#pragma once

#include "core/status.h"

namespace akv {

// +1 or -1: the sign S applies to channel c (a fixed hash of c).
float HadamardSign(int c);

// x <- R x, in place, n a positive multiple of 16. SIMD (runtime dispatch).
Status HadamardRotate(float* x, int n);
// x <- R^-1 x = R^T x.
Status HadamardRotateInverse(float* x, int n);

// Scalar references (bit-identical results).
Status HadamardRotateReference(float* x, int n);
Status HadamardRotateInverseReference(float* x, int n);

}  // namespace akv
