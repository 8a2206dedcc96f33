// AVX-512 register shuffles shared by the matmul kernels (src/cpu/matmul_float.cc,
// matmul_quant.cc): a 16 x 16 transpose for packing weight panels, and 16 horizontal sums at once
// for GEMV rows.
//
// Included inside `namespace HWY_NAMESPACE` once per Highway target, under
// `#if HWY_TARGET <= HWY_AVX3`; deliberately without an include guard. AKV_SIMD_ATTR is the
// functions' target attribute: HWY_ATTR unless the includer needs more (matmul_quant.cc adds
// avx512vnni so that its row lambdas inline into SumRows16).
#ifndef AKV_SIMD_ATTR
#define AKV_SIMD_ATTR HWY_ATTR
#endif

// 16 x 16 transpose of 32-bit lanes (64 shuffles): r[i][k] -> r[k][i].
HWY_INLINE AKV_SIMD_ATTR void Transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int i = 0; i < 2; ++i) {
    for (int c = 0; c < 4; ++c) {
      t[8 * i + c] = _mm512_shuffle_f32x4(r[8 * i + c], r[8 * i + 4 + c], 0x88);
      t[8 * i + 4 + c] = _mm512_shuffle_f32x4(r[8 * i + c], r[8 * i + 4 + c], 0xDD);
    }
  }
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
  }
}

// Horizontal sums of 16 vectors at once (a transposing add tree, 46 ops for 16 rows instead
// of a serial 8-op reduction per row). Level 1: (A, B) -> [A.q0+A.q2, A.q1+A.q3, B.q0+B.q2,
// B.q1+B.q3] in 128-bit quarters; level 2: four rows, one per quarter; levels 3-4 finish inside
// the quarters, leaving sum(row 4s + q) in lane 4q + s.
HWY_INLINE AKV_SIMD_ATTR __m512 SumL1(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}
HWY_INLINE AKV_SIMD_ATTR __m512 SumL2(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
}
HWY_INLINE AKV_SIMD_ATTR __m512 SumL3(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}
HWY_INLINE AKV_SIMD_ATTR __m512 SumL4(__m512 a, __m512 b) {
  // Moves pairs of floats as one 64-bit element; the add itself is in f32.
  const __m512d x = _mm512_castps_pd(a), y = _mm512_castps_pd(b);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}
// v[0..15] -> lane i = sum of v[i].
template <typename RowFn>
HWY_INLINE AKV_SIMD_ATTR __m512 SumRows16(const RowFn& row) {
  // Rows are evaluated strictly in order (not as call arguments, whose order is unspecified):
  // GEMV rows are then read in memory order, which the prefetchers need (reversed pairs cost
  // ~2x from DRAM).
  auto quad = [&](int i) AKV_SIMD_ATTR __attribute__((always_inline)) {
    const __m512 r0 = row(i);
    const __m512 r1 = row(i + 1);
    const __m512 t0 = SumL1(r0, r1);
    const __m512 r2 = row(i + 2);
    const __m512 r3 = row(i + 3);
    return SumL2(t0, SumL1(r2, r3));
  };
  const __m512 u0 = quad(0);
  const __m512 u1 = quad(4);
  const __m512 v0 = SumL3(u0, u1);
  const __m512 u2 = quad(8);
  const __m512 u3 = quad(12);
  const __m512 v1 = SumL3(u2, u3);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, SumL4(v0, v1));
}
