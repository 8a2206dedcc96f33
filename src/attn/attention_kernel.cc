// The fused mixed-precision attention kernel (Highway, runtime dispatch).
//
// Unit of work: one key tile (32 slots of one segment) x one register block of up to 8 query
// rows (row = one query head of one query; the GQA heads of a group share each tile). Per tile
// and block:
//   1. scores  s[r][32] = q_r . k_slot  -- keys are channel-major, so each channel's 32 slots are
//      2 vectors (16 lanes) de-quantized in registers and FMA'd with the broadcast q_r[c]; no
//      horizontal sums. Per-token groups accumulate q.codes per group, then apply the slots'
//      scale and zero: s += scale * acc + zero * sum(q over the group). Per-channel (KIVI) groups
//      fold the scale into q and the zero into a bias once per tile.
//   2. mask (unused slots, causal positions), online softmax update of (m, d), p = exp(s - m).
//   3. values o_r = o_r * alpha_r + sum_t p[r][t] * v_t  -- a value tile holds, per unit of 16/32
//      channels, the 32 slots' units back to back: the rows' accumulators for those channels stay
//      in registers while the slots stream through, de-quantized in registers.
// Scores and p live in a 32-float-per-row stack buffer: the only "score matrix" is one tile's.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "attn/attention_kernel.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kv/codecs/simd_codes-inl.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "attn/attention_internal.h"
#include "kv/codecs/page_layout.h"

#ifndef AKV_ATTN_KERNEL_CONSTANTS_
#define AKV_ATTN_KERNEL_CONSTANTS_
namespace akv {
// Rows (query heads x queries) per register block, and the largest head_dim of the stack buffers.
constexpr int kBlockRows = 8;
constexpr int kKernelMaxHeadDim = 512;
enum class KeyKind { kF16, kBF16, kToken8, kToken4, kToken2, kChannel8, kChannel4, kChannel2 };
enum class ValueKind { kF16, kBF16, kInt8, kInt4, kInt2 };

inline KeyKind KeyKindOf(const CodecSpec& c) {
  const bool channel = c.grouping == KeyGrouping::kPerChannel;
  switch (c.format) {
    case KvFormat::kF16: return KeyKind::kF16;
    case KvFormat::kBF16: return KeyKind::kBF16;
    case KvFormat::kInt8: return channel ? KeyKind::kChannel8 : KeyKind::kToken8;
    case KvFormat::kInt4: return channel ? KeyKind::kChannel4 : KeyKind::kToken4;
    case KvFormat::kInt2: return channel ? KeyKind::kChannel2 : KeyKind::kToken2;
  }
  return KeyKind::kF16;
}
inline ValueKind ValueKindOf(const CodecSpec& c) {
  switch (c.format) {
    case KvFormat::kF16: return ValueKind::kF16;
    case KvFormat::kBF16: return ValueKind::kBF16;
    case KvFormat::kInt8: return ValueKind::kInt8;
    case KvFormat::kInt4: return ValueKind::kInt4;
    case KvFormat::kInt2: return ValueKind::kInt2;
  }
  return ValueKind::kF16;
}
}  // namespace akv
#endif

HWY_BEFORE_NAMESPACE();
namespace akv {
namespace HWY_NAMESPACE {

constexpr int kLanes = static_cast<int>(hn::MaxLanes(DF()));
constexpr int kVecs = kTileSlots / kLanes;  // vectors per tile row of 32 slots
// Vector registers of the target: the inner loops split their accumulators into passes so that
// they stay in registers (spilled accumulators put a store-to-load round trip into every FMA
// chain: on AVX2, 3 rows x 4 vectors of scores plus the 4 code vectors need 18 of the 16 ymm).
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr int kVectorRegs = 16;
#else
constexpr int kVectorRegs = 32;
#endif
// Smallest pass count (dividing n) with rows x (n / passes) accumulators, n / passes operand
// vectors and `extra` broadcasts or constants in registers.
constexpr int PassesFor(int rows, int n, int extra) {
  for (int p = 1; p < n; p *= 2)
    if (n % p == 0 && rows * (n / p) + n / p + extra <= kVectorRegs) return p;
  return n;
}

// One tile's sections.
struct TileView {
  const uint8_t* key_tile = nullptr;
  const f16_t* key_scales = nullptr;  // per-token: this tile's [D/G][32]; per-channel: the block's [D]
  const f16_t* key_zeros = nullptr;
  const uint8_t* value_tile = nullptr;  // [D / U units][32 slots][unit bytes]
  const f16_t* value_scales = nullptr;  // [32][D/G] from the tile's first slot
  const f16_t* value_zeros = nullptr;
  int n_valid = 0;
  int head_dim = 0;
  int key_group = 0;
  int value_group = 0;
};

// Query rows of one register block, in the key domain the segment needs.
struct RowBlock {
  const float* q[kBlockRows];
  const float* qsum[kBlockRows];  // per 32-channel chunk
};

using ScoreFn = void (*)(const TileView&, const RowBlock&, float* HWY_RESTRICT scores);
using ValueFn = void (*)(const TileView&, const float* HWY_RESTRICT p, const float* HWY_RESTRICT alpha,
                         float* const* o_rows);

// ---------------------------------------------------------------------------------- scores

template <int kRows>
HWY_INLINE void StoreScores(const VF (&s)[kRows][kVecs], float* HWY_RESTRICT scores) {
  const DF df;
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) hn::Store(s[r][v], df, scores + r * kTileSlots + v * kLanes);
}

// Adds q_r[c] * k[v] for channels [c_begin, c_end); load(c, v) returns the de-quantized (or code)
// vector of slots [v * N, v * N + N) of channel c.
// Pass kPass of kPasses covers the vectors kPass, kPass + kPasses, ...: with 4-bit codes on AVX2
// (2 passes) vectors v and v + 2 are the low and high fields of the same 8 bytes, so one pass
// loads each byte once.
template <int kRows, int kPasses, int kPass, class LoadKey>
HWY_INLINE void DotChannelsPass(const float* const* q, int c_begin, int c_end, const LoadKey& load,
                                VF (&acc)[kRows][kVecs]) {
  const DF df;
  constexpr int kPer = kVecs / kPasses;
  VF a[kRows][kPer];
  for (int r = 0; r < kRows; ++r)
    for (int i = 0; i < kPer; ++i) a[r][i] = acc[r][kPass + kPasses * i];
  for (int c = c_begin; c < c_end; ++c) {
    VF k[kPer];
    for (int i = 0; i < kPer; ++i) k[i] = load(c, kPass + kPasses * i);
    for (int r = 0; r < kRows; ++r) {
      const VF qv = hn::Set(df, q[r][c]);
      for (int i = 0; i < kPer; ++i) a[r][i] = hn::MulAdd(qv, k[i], a[r][i]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int i = 0; i < kPer; ++i) acc[r][kPass + kPasses * i] = a[r][i];
}

template <int kRows, class LoadKey>
HWY_INLINE void DotChannels(const float* const* q, int c_begin, int c_end, const LoadKey& load,
                            VF (&acc)[kRows][kVecs]) {
  constexpr int kPasses = PassesFor(kRows, kVecs, 2);
  [&]<int... kPass>(std::integer_sequence<int, kPass...>) {
    (DotChannelsPass<kRows, kPasses, kPass>(q, c_begin, c_end, load, acc), ...);
  }(std::make_integer_sequence<int, kPasses>{});
}

#if HWY_TARGET <= HWY_AVX3
// 2-bit keys on AVX-512, two channels per vector: a channel's unit is 8 bytes (slot 8f + i in
// byte i, field f), so one 16-lane vector of two interleaved units serves four fields, and one
// 64-bit broadcast (q[c], q[c+1]) multiplies both channels. Per two channels (16 FMAs): one
// unpack, one expand, 3 shifts and 4 table look-ups, against 12 such operations one channel at a
// time (1.38 -> 1.14 ns per channel in L1, 4 rows, head_dim 128).
// acc[r][v] += sum_{c in [c_begin, c_end)} q_r[c] * code(c, slot 16v + lane); c_begin is even.
template <int kRows>
HWY_INLINE void DotChannelPairsInt2(const float* const* q, int c_begin, int c_end, const uint8_t* HWY_RESTRICT tile,
                                    VF (&acc)[kRows][kVecs]) {
  static_assert(kRows <= 4 && kLanes == 16, "registers: 4 fields x rows accumulators");
  const __m512 table = CodeValueTable<2>().raw;
  __m512 a[kRows][4];
  for (int r = 0; r < kRows; ++r)
    for (int f = 0; f < 4; ++f) a[r][f] = _mm512_setzero_ps();
  for (int c = c_begin; c < c_end; c += 2) {
    const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(tile + c * 8));
    const __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(tile + c * 8 + 8));
    // Lane 2i: byte i of channel c; lane 2i + 1: byte i of channel c + 1.
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
    __m512 k[4];
    k[0] = _mm512_permutexvar_ps(bytes, table);  // vpermps reads the low 4 bits; the table maps i -> i & 3
    k[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 2), table);
    k[2] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);
    k[3] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 6), table);
    for (int r = 0; r < kRows; ++r) {
      double pair;
      std::memcpy(&pair, q[r] + c, sizeof(pair));
      const __m512 qv = _mm512_castpd_ps(_mm512_set1_pd(pair));
      for (int f = 0; f < 4; ++f) a[r][f] = _mm512_fmadd_ps(qv, k[f], a[r][f]);
    }
  }
  // Lanes 2i and 2i + 1 of a[r][f] are slot 8f + i (even and odd channels): add the pairs and put
  // fields 2v, 2v + 1 in slot order.
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) {
      const __m512 e = _mm512_permutex2var_ps(a[r][2 * v], even, a[r][2 * v + 1]);
      const __m512 o = _mm512_permutex2var_ps(a[r][2 * v], odd, a[r][2 * v + 1]);
      acc[r][v] = VF{_mm512_add_ps(acc[r][v].raw, _mm512_add_ps(e, o))};
    }
}
#endif

// acc[r][v] += q_r . codes over channels [c_begin, c_end) of a packed-code key tile.
template <int kRows, int kBits>
HWY_INLINE void DotCodeChannels(const float* const* q, int c_begin, int c_end, const uint8_t* HWY_RESTRICT tile,
                                VF (&acc)[kRows][kVecs]) {
#if HWY_TARGET <= HWY_AVX3
  if constexpr (kBits == 2 && kRows <= 4) {
    DotChannelPairsInt2<kRows>(q, c_begin, c_end, tile, acc);
    return;
  }
#endif
  constexpr int kUnitBytes = kUnitValues * kBits / 8;
  auto load = [tile](int c, int v) { return LoadUnitCodesF32<kBits>(tile + c * kUnitBytes, v * kLanes); };
  DotChannels<kRows>(q, c_begin, c_end, load, acc);
}

template <int kRows, bool kBF16>
void ScoreHalfTile(const TileView& t, const RowBlock& rb, float* HWY_RESTRICT scores) {
  const DF df;
  const uint16_t* tile = reinterpret_cast<const uint16_t*>(t.key_tile);
  VF s[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) s[r][v] = hn::Zero(df);
  auto load = [tile](int c, int v) {
    const uint16_t* p = tile + c * kTileSlots + v * kLanes;
    if constexpr (kBF16) return LoadBF16AsF32(p);
    else return LoadF16AsF32(p);
  };
  DotChannels<kRows>(rb.q, 0, t.head_dim, load, s);
  StoreScores<kRows>(s, scores);
}

// At most 4 rows: each row needs a group accumulator and a score per vector of slots.
template <int kRows, int kBits>
HWY_INLINE void ScoreTokenGroupRows(const TileView& t, const RowBlock& rb, float* HWY_RESTRICT scores) {
  static_assert(kRows <= 4, "registers: 2 x rows x vectors accumulators");
  const DF df;
  const uint8_t* tile = t.key_tile;
  VF s[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) s[r][v] = hn::Zero(df);
  const int group = t.key_group;
  for (int g0 = 0, gi = 0; g0 < t.head_dim; g0 += group, ++gi) {
    VF acc[kRows][kVecs];
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVecs; ++v) acc[r][v] = hn::Zero(df);
    DotCodeChannels<kRows, kBits>(rb.q, g0, g0 + group, tile, acc);
    float qs[kRows];
    for (int r = 0; r < kRows; ++r) {
      qs[r] = 0;
      for (int u = g0 / kUnitValues; u < (g0 + group) / kUnitValues; ++u) qs[r] += rb.qsum[r][u];
    }
    for (int v = 0; v < kVecs; ++v) {
      const VF scale = LoadF16AsF32(t.key_scales + gi * kTileSlots + v * kLanes);
      const VF zero = LoadF16AsF32(t.key_zeros + gi * kTileSlots + v * kLanes);
      for (int r = 0; r < kRows; ++r)
        s[r][v] = hn::MulAdd(scale, acc[r][v], hn::MulAdd(zero, hn::Set(df, qs[r]), s[r][v]));
    }
  }
  StoreScores<kRows>(s, scores);
}

template <int kRows, int kBits>
void ScoreTokenGroupTile(const TileView& t, const RowBlock& rb, float* HWY_RESTRICT scores) {
  if constexpr (kRows <= 4) {
    ScoreTokenGroupRows<kRows, kBits>(t, rb, scores);
  } else {
    // Two passes over the tile (the second from L1): rows [0, 4) and [4, kRows).
    ScoreTokenGroupRows<4, kBits>(t, rb, scores);
    RowBlock rest;
    for (int r = 0; r + 4 < kBlockRows; ++r) {
      rest.q[r] = rb.q[r + 4];
      rest.qsum[r] = rb.qsum[r + 4];
    }
    ScoreTokenGroupRows<kRows - 4, kBits>(t, rest, scores + 4 * kTileSlots);
  }
}

template <int kRows, int kBits>
void ScoreChannelGroupTile(const TileView& t, const RowBlock& rb, float* HWY_RESTRICT scores) {
  const DF df;
  const int dim = t.head_dim;
  // q.(code * scale + zero) = (q * scale).code + q.zero: fold the block's per-channel scale into
  // q and its zero into one bias per row.
  HWY_ALIGN float folded[kRows][kKernelMaxHeadDim];
  const float* qf[kRows];
  VF bias[kRows];
  for (int r = 0; r < kRows; ++r) bias[r] = hn::Zero(df);
  for (int c = 0; c < dim; c += kLanes) {
    const VF scale = LoadF16AsF32(t.key_scales + c), zero = LoadF16AsF32(t.key_zeros + c);
    for (int r = 0; r < kRows; ++r) {
      const VF qv = hn::LoadU(df, rb.q[r] + c);
      hn::Store(hn::Mul(qv, scale), df, folded[r] + c);
      bias[r] = hn::MulAdd(qv, zero, bias[r]);
    }
  }
  VF s[kRows][kVecs];
  for (int r = 0; r < kRows; ++r) {
    qf[r] = folded[r];
    const VF b = hn::Set(df, hn::GetLane(hn::SumOfLanes(df, bias[r])));
    for (int v = 0; v < kVecs; ++v) s[r][v] = b;
  }
  DotCodeChannels<kRows, kBits>(qf, 0, dim, t.key_tile, s);
  StoreScores<kRows>(s, scores);
}

// ---------------------------------------------------------------------------------- values

// o_r[c0, c0 + kChunks * N) = o_r * alpha_r + sum_t p[r][t] * v_t[...]; load(t, c) returns the
// de-quantized channels [c, c + N) of the tile's slot t.
template <int kRows, int kChunks, class LoadValue>
HWY_INLINE void AccumulateChunks(int c0, int n_valid, const float* HWY_RESTRICT p,
                                 const float* HWY_RESTRICT alpha, float* const* o, const LoadValue& load) {
  const DF df;
  VF acc[kRows][kChunks];
  for (int r = 0; r < kRows; ++r) {
    const VF a = hn::Set(df, alpha[r]);
    for (int k = 0; k < kChunks; ++k) acc[r][k] = hn::Mul(hn::LoadU(df, o[r] + c0 + k * kLanes), a);
  }
  for (int t = 0; t < n_valid; ++t) {
    VF v[kChunks];
    for (int k = 0; k < kChunks; ++k) v[k] = load(t, c0 + k * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const VF w = hn::Set(df, p[r * kTileSlots + t]);
      for (int k = 0; k < kChunks; ++k) acc[r][k] = hn::MulAdd(w, v[k], acc[r][k]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int k = 0; k < kChunks; ++k) hn::StoreU(acc[r][k], df, o[r] + c0 + k * kLanes);
}

template <int kRows, class LoadValue>
HWY_INLINE void AccumulateRow(const TileView& t, const float* HWY_RESTRICT p,
                              const float* HWY_RESTRICT alpha, float* const* o, const LoadValue& load) {
  // Enough independent accumulators (rows x chunks) to hide the FMA latency, few enough to stay
  // in registers with the chunks' values and the weight, and as many chunks per broadcast weight
  // as that allows (AVX2, 3 rows: 2 chunks; 4 chunks would spill one accumulator).
  constexpr int kChunks = kRows * 4 + 4 + 1 <= kVectorRegs && kRows < 5 ? 4 : kRows * 2 + 2 + 1 <= kVectorRegs ? 2 : 1;
  int c = 0;
  for (; c + kChunks * kLanes <= t.head_dim; c += kChunks * kLanes)
    AccumulateChunks<kRows, kChunks>(c, t.n_valid, p, alpha, o, load);
  for (; c < t.head_dim; c += kLanes) AccumulateChunks<kRows, 1>(c, t.n_valid, p, alpha, o, load);
}

template <int kRows, bool kBF16>
void AccumulateHalfValues(const TileView& t, const float* HWY_RESTRICT p, const float* HWY_RESTRICT alpha,
                          float* const* o) {
  // Units of 16 channels: channels [c, c + N) of slot s at unit c / 16, lane c % 16.
  const uint16_t* tile = reinterpret_cast<const uint16_t*>(t.value_tile);
  auto load = [tile](int slot, int c) {
    const uint16_t* at = tile + ((c >> 4) * kTileSlots + slot) * 16 + (c & 15);
    if constexpr (kBF16) return LoadBF16AsF32(at);
    else return LoadF16AsF32(at);
  };
  AccumulateRow<kRows>(t, p, alpha, o, load);
}

// Pass kPass of kPasses: the chunks kPass, kPass + kPasses, ... (of 32 kUnits / N). With 4-bit
// values on AVX2 (2 passes) chunks k and k + 2 are the two fields of the same 8 bytes.
template <int kRows, int kBits, int kUnits, int kPasses, int kPass>
HWY_INLINE void AccumulateQuantUnitsPass(const TileView& t, int c0, const float* HWY_RESTRICT scales,
                                         const float* HWY_RESTRICT zeros, int groups, const float* HWY_RESTRICT p,
                                         const float* HWY_RESTRICT alpha, float* const* o, bool rescale) {
  const DF df;
  constexpr int kUnitBytes = kUnitValues * kBits / 8;
  constexpr int kChunks = kUnits * kUnitValues / kLanes;
  constexpr int kUnitChunks = kUnitValues / kLanes;
  constexpr int kPer = kChunks / kPasses;
  VF acc[kRows][kPer];
  for (int r = 0; r < kRows; ++r) {
    const VF a = hn::Set(df, alpha[r]);
    for (int i = 0; i < kPer; ++i) {
      acc[r][i] = hn::LoadU(df, o[r] + c0 + (kPass + kPasses * i) * kLanes);
      if (rescale) acc[r][i] = hn::Mul(acc[r][i], a);
    }
  }
  const uint8_t* units[kUnits];
  int g[kUnits];
  for (int u = 0; u < kUnits; ++u) {
    units[u] = t.value_tile + size_t(c0 / kUnitValues + u) * kTileSlots * kUnitBytes;
    g[u] = (c0 + u * kUnitValues) / t.value_group;
  }
  for (int slot = 0; slot < t.n_valid; ++slot) {
    VF v[kPer];
    VF scale[kUnits], zero[kUnits];
    for (int u = 0; u < kUnits; ++u) {
      scale[u] = hn::Set(df, scales[slot * groups + g[u]]);
      zero[u] = hn::Set(df, zeros[slot * groups + g[u]]);
    }
    for (int i = 0; i < kPer; ++i) {
      const int chunk = kPass + kPasses * i, u = chunk / kUnitChunks, k = chunk % kUnitChunks;
      v[i] = LoadUnitDequantized<kBits>(units[u] + slot * kUnitBytes, k * kLanes, scale[u], zero[u]);
    }
    for (int r = 0; r < kRows; ++r) {
      const VF w = hn::Set(df, p[r * kTileSlots + slot]);
      for (int i = 0; i < kPer; ++i) acc[r][i] = hn::MulAdd(w, v[i], acc[r][i]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int i = 0; i < kPer; ++i) hn::StoreU(acc[r][i], df, o[r] + c0 + (kPass + kPasses * i) * kLanes);
}

// o_r[c0, c0 + 32 kUnits) for kUnits packed units (32 channels each) from c0 of every slot: a
// slot's (scale, zero) is shared by a unit's 32 channels (G >= 32), so each unit's de-quantization
// table is built once per slot; with two units per pass (head_dim 64, at most 4 rows) the rows'
// weights are broadcast once per slot for both.
template <int kRows, int kBits, int kUnits>
HWY_INLINE void AccumulateQuantUnits(const TileView& t, int c0, const float* HWY_RESTRICT scales,
                                     const float* HWY_RESTRICT zeros, int groups, const float* HWY_RESTRICT p,
                                     const float* HWY_RESTRICT alpha, float* const* o) {
  constexpr int kChunks = kUnits * kUnitValues / kLanes;
  constexpr int kPasses = PassesFor(kRows, kChunks, 1 + 2 * kUnits);
  bool rescale = false;
  for (int r = 0; r < kRows; ++r) rescale |= alpha[r] != 1.0f;
  [&]<int... kPass>(std::integer_sequence<int, kPass...>) {
    (AccumulateQuantUnitsPass<kRows, kBits, kUnits, kPasses, kPass>(t, c0, scales, zeros, groups, p, alpha, o, rescale),
     ...);
  }(std::make_integer_sequence<int, kPasses>{});
}

template <int kRows, int kBits>
void AccumulateQuantValues(const TileView& t, const float* HWY_RESTRICT p, const float* HWY_RESTRICT alpha,
                           float* const* o) {
  const DF df;
  const int dim = t.head_dim;
  const int groups = dim / t.value_group;
  // The tile's scales and zeros as f32: [slot][group].
  HWY_ALIGN float scales[kTileSlots * kKernelMaxHeadDim / 32];
  HWY_ALIGN float zeros[kTileSlots * kKernelMaxHeadDim / 32];
  const int count = t.n_valid * groups;  // only the tile's valid slots exist for a partial tile
  int i = 0;
  if (t.value_zeros) {
    for (; i + kLanes <= count; i += kLanes) {
      hn::Store(LoadF16AsF32(t.value_scales + i), df, scales + i);
      hn::Store(LoadF16AsF32(t.value_zeros + i), df, zeros + i);
    }
    for (; i < count; ++i) {
      scales[i] = F16ToF32(t.value_scales[i]);
      zeros[i] = F16ToF32(t.value_zeros[i]);
    }
  } else {  // symmetric values: zero = SymmetricZero(scale), the same f32 product as the codec's
    const VF factor = hn::Set(df, -0.5f * static_cast<float>(MaxCode(kBits)));
    for (; i + kLanes <= count; i += kLanes) {
      const VF s = LoadF16AsF32(t.value_scales + i);
      hn::Store(s, df, scales + i);
      hn::Store(hn::Mul(s, factor), df, zeros + i);
    }
    for (; i < count; ++i) {
      scales[i] = F16ToF32(t.value_scales[i]);
      zeros[i] = SymmetricZero(scales[i], kBits);
    }
  }
  int c0 = 0;
  if constexpr (kRows <= 4 && kUnitValues / kLanes <= 2) {
    for (; c0 + 2 * kUnitValues <= dim; c0 += 2 * kUnitValues)
      AccumulateQuantUnits<kRows, kBits, 2>(t, c0, scales, zeros, groups, p, alpha, o);
  }
  for (; c0 < dim; c0 += kUnitValues) AccumulateQuantUnits<kRows, kBits, 1>(t, c0, scales, zeros, groups, p, alpha, o);
}

// ---------------------------------------------------------------------------------- softmax

// Visibility of a tile's lanes for one row: lane < n_valid and (no mask or position <= row's).
HWY_INLINE hn::Mask<DF> VisibleLanes(int v, int n_valid, const int32_t* HWY_RESTRICT slot_pos,
                                     int32_t row_pos) {
  const DF df;
  const DI32 di32;
  auto valid = hn::FirstN(df, size_t(std::clamp(n_valid - v * kLanes, 0, kLanes)));
  if (slot_pos) {
    const auto pos = hn::Load(di32, slot_pos + v * kLanes);
    valid = hn::AndNot(hn::RebindMask(df, hn::Gt(pos, hn::Set(di32, row_pos))), valid);
  }
  return valid;
}

// exp(x) for x <= 0 (-inf allowed: the caller zeroes hidden lanes): 2^n * 2^f with n = round(x
// log2 e), |f| <= 1/2, 2^f by its degree-6 Taylor polynomial (relative error < 2e-7). Cheaper than
// hn::Exp, which also handles overflow and a wider range.
HWY_INLINE VF ExpNonPositive(VF x) {
  const DF df;
  const DI32 di32;
  const VF t = hn::Max(hn::Mul(x, hn::Set(df, 1.44269504088896341f)), hn::Set(df, -126.0f));
  const VF n = hn::Round(t);
  const VF f = hn::Sub(t, n);
  // ln2^k / k!, k = 6 .. 0
  VF poly = hn::Set(df, 1.5403530393381606e-4f);
  poly = hn::MulAdd(poly, f, hn::Set(df, 1.3333558146428443e-3f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 9.6181291076284772e-3f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 5.5504108664821580e-2f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 2.4022650695910071e-1f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 6.9314718055994531e-1f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 1.0f));
  const auto bits = hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di32, n), hn::Set(di32, 127)));
  return hn::Mul(poly, hn::BitCast(df, bits));
}

// exp(logit - m) for logits <= m (the row's final max), exactly 0 for hidden slots (-inf).
HWY_INLINE VF ExpOfLogit(VF logit, VF m) {
  const DF df;
  const auto visible = hn::Gt(logit, hn::Set(df, -std::numeric_limits<float>::infinity()));
  return hn::IfThenElseZero(visible, ExpNonPositive(hn::Sub(logit, m)));
}

// Online softmax update of rows [0, kRows) with one tile of scores; writes p and alpha and adds
// to the rows' running sums, kept as vectors d_vec[r][kLanes] (summed across lanes once, at the
// end). The tile's maximum is reduced across lanes only when some logit exceeds the running max m
// (after the first tiles, rarely), so m stays the exact maximum.
// Returns false when no row sees any slot of the tile (nothing to accumulate).
template <int kRows>
HWY_INLINE bool SoftmaxUpdate(const float* HWY_RESTRICT scores, int n_valid, const int32_t* slot_pos,
                              const int32_t* row_pos, float* HWY_RESTRICT m, float* HWY_RESTRICT d_vec,
                              float* HWY_RESTRICT alpha, float* HWY_RESTRICT p) {
  const DF df;
  const VF neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  bool any = false;
  const bool masked = slot_pos != nullptr || n_valid < kTileSlots;
  for (int r = 0; r < kRows; ++r) {
    VF s[kVecs];
    hn::Mask<DF> visible[kVecs];
    for (int v = 0; v < kVecs; ++v) {
      s[v] = hn::Load(df, scores + r * kTileSlots + v * kLanes);
      if (masked) {
        visible[v] = VisibleLanes(v, n_valid, slot_pos, slot_pos ? row_pos[r] : 0);
        s[v] = hn::IfThenElse(visible[v], s[v], neg_inf);
      }
    }
    VF mx = s[0];
    for (int v = 1; v < kVecs; ++v) mx = hn::Max(mx, s[v]);
    float m_new = m[r];
    if (!hn::AllFalse(df, hn::Lt(hn::Set(df, m_new), mx))) m_new = hn::GetLane(hn::MaxOfLanes(df, mx));
    if (m_new == -std::numeric_limits<float>::infinity()) {  // nothing visible so far
      alpha[r] = 1.0f;
      for (int v = 0; v < kVecs; ++v) hn::Store(hn::Zero(df), df, p + r * kTileSlots + v * kLanes);
      continue;
    }
    any = true;
    // 0 for the first visible tile (m = -inf); 1 without a call once the maximum has settled.
    alpha[r] = m_new == m[r] ? 1.0f : std::exp(m[r] - m_new);
    const VF mv = hn::Set(df, m_new);
    VF sum = hn::LoadU(df, d_vec + r * kLanes);
    if (alpha[r] != 1.0f) sum = hn::Mul(sum, hn::Set(df, alpha[r]));
    for (int v = 0; v < kVecs; ++v) {
      VF e = ExpNonPositive(hn::Sub(s[v], mv));
      if (masked) e = hn::IfThenElseZero(visible[v], e);
      hn::Store(e, df, p + r * kTileSlots + v * kLanes);
      sum = hn::Add(sum, e);
    }
    hn::StoreU(sum, df, d_vec + r * kLanes);
    m[r] = m_new;
  }
  return any;
}

// ---------------------------------------------------------------------------------- dispatch tables

template <int kRows>
ScoreFn ScoreFnFor(KeyKind kind) {
  switch (kind) {
    case KeyKind::kF16: return &ScoreHalfTile<kRows, false>;
    case KeyKind::kBF16: return &ScoreHalfTile<kRows, true>;
    case KeyKind::kToken8: return &ScoreTokenGroupTile<kRows, 8>;
    case KeyKind::kToken4: return &ScoreTokenGroupTile<kRows, 4>;
    case KeyKind::kToken2: return &ScoreTokenGroupTile<kRows, 2>;
    case KeyKind::kChannel8: return &ScoreChannelGroupTile<kRows, 8>;
    case KeyKind::kChannel4: return &ScoreChannelGroupTile<kRows, 4>;
    case KeyKind::kChannel2: return &ScoreChannelGroupTile<kRows, 2>;
  }
  return nullptr;
}

template <int kRows>
ValueFn ValueFnFor(ValueKind kind) {
  switch (kind) {
    case ValueKind::kF16: return &AccumulateHalfValues<kRows, false>;
    case ValueKind::kBF16: return &AccumulateHalfValues<kRows, true>;
    case ValueKind::kInt8: return &AccumulateQuantValues<kRows, 8>;
    case ValueKind::kInt4: return &AccumulateQuantValues<kRows, 4>;
    case ValueKind::kInt2: return &AccumulateQuantValues<kRows, 2>;
  }
  return nullptr;
}

using SoftmaxFn = bool (*)(const float*, int, const int32_t*, const int32_t*, float*, float*, float*, float*);

struct SegmentFns {
  ScoreFn score[kBlockRows];
  ValueFn value[kBlockRows];
};

template <size_t... kIndex>
SegmentFns MakeFns(KeyKind k, ValueKind v, std::index_sequence<kIndex...>) {
  return {{ScoreFnFor<int(kIndex) + 1>(k)...}, {ValueFnFor<int(kIndex) + 1>(v)...}};
}

SegmentFns FnsFor(const KvSegment& seg) {
  return MakeFns(KeyKindOf(seg.key_codec), ValueKindOf(seg.value_codec), std::make_index_sequence<kBlockRows>());
}

template <size_t... kIndex>
constexpr std::array<SoftmaxFn, kBlockRows> MakeSoftmaxFns(std::index_sequence<kIndex...>) {
  return {&SoftmaxUpdate<int(kIndex) + 1>...};
}
constexpr std::array<SoftmaxFn, kBlockRows> kSoftmaxFns = MakeSoftmaxFns(std::make_index_sequence<kBlockRows>());

// ---------------------------------------------------------------------------------- tiles

// Positions of a tile's slots, padded to 32 (padding never visible: lanes >= n_valid are masked).
struct TilePositions {
  HWY_ALIGN int32_t pos[kTileSlots];
  int32_t min_pos = INT32_MAX;
  int32_t max_pos = INT32_MIN;
};

// Per-segment constants of the tile addressing, computed once per span instead of per tile (and
// again per prefetch).
struct TileGeometry {
  int head_dim = 0;
  size_t key_tile_bytes = 0, value_tile_bytes = 0;
  bool key_quantized = false, key_per_channel = false, value_quantized = false;
  size_t key_scales_per_tile = 0;    // per-token keys: (D/G) * 32 f16 per tile
  size_t key_scale_count = 0;        // f16 scales (and zeros) a tile reads
  size_t value_scales_per_slot = 0;  // D / G
};

TileGeometry MakeTileGeometry(const KvSegment& seg, int head_dim) {
  TileGeometry g;
  g.head_dim = head_dim;
  g.key_tile_bytes = KeyTileBytes(seg.key_codec, head_dim);
  g.value_tile_bytes = ValueTileBytes(seg.value_codec, head_dim);
  g.key_quantized = IsQuantized(seg.key_codec.format);
  g.key_per_channel = seg.key_codec.grouping == KeyGrouping::kPerChannel;
  g.value_quantized = IsQuantized(seg.value_codec.format);
  if (g.key_quantized) {
    g.key_scales_per_tile = size_t(head_dim / seg.key_codec.group_size) * kTileSlots;
    g.key_scale_count = g.key_per_channel ? size_t(head_dim) : g.key_scales_per_tile;
  }
  if (g.value_quantized) g.value_scales_per_slot = size_t(head_dim / seg.value_codec.group_size);
  return g;
}

TileView MakeTileView(const KvSegment& seg, const TileGeometry& g, int tile, TilePositions* positions) {
  const int first = tile * kTileSlots;
  TileView t;
  t.n_valid = std::min(kTileSlots, seg.n_slots - first);
  t.head_dim = g.head_dim;
  t.key_group = seg.key_codec.group_size;
  t.value_group = seg.value_codec.group_size;
  t.key_tile = static_cast<const uint8_t*>(seg.key_data) + g.key_tile_bytes * tile;
  if (g.key_quantized) {
    const size_t at = g.key_per_channel ? size_t(first / seg.key_codec.group_size) * g.head_dim
                                        : size_t(tile) * g.key_scales_per_tile;
    t.key_scales = seg.key_scales + at;
    t.key_zeros = seg.key_zeros + at;
  }
  t.value_tile = static_cast<const uint8_t*>(seg.value_data) + g.value_tile_bytes * tile;
  if (g.value_quantized) {
    const size_t at = size_t(first) * g.value_scales_per_slot;
    t.value_scales = seg.value_scales + at;
    t.value_zeros = seg.value_zeros ? seg.value_zeros + at : nullptr;  // null: symmetric
  }
  if (positions) {
    for (int j = 0; j < t.n_valid; ++j) {
      const int32_t p = seg.positions[first + j];
      positions->pos[j] = p;
      positions->min_pos = std::min(positions->min_pos, p);
      positions->max_pos = std::max(positions->max_pos, p);
    }
    for (int j = t.n_valid; j < kTileSlots; ++j) positions->pos[j] = INT32_MAX;
  }
  return t;
}

// Software prefetch of one tile's sections (codes, scales, zeros of K and V). The hardware
// prefetchers lose the short per-tile runs of the scale and zero sections and restart at every
// page, so the quantized tiers streamed from DRAM at a third of their in-cache speed. f16 tiles
// are consumed 3-5x faster than quantized ones and go to L1 (prefetcht0); quantized tiles go to
// L2 (prefetcht2), which measured 10-20% faster for them, L1 being better for f16.
template <int kLocality>
HWY_INLINE void PrefetchBytes(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, kLocality);
}

template <int kLocality>
HWY_INLINE void PrefetchTileSections(const KvSegment& seg, const TileGeometry& g, int tile) {
  const TileView t = MakeTileView(seg, g, tile, nullptr);
  PrefetchBytes<kLocality>(t.key_tile, g.key_tile_bytes);
  PrefetchBytes<kLocality>(t.value_tile, g.value_tile_bytes);
  if (t.key_scales) {
    PrefetchBytes<kLocality>(t.key_scales, g.key_scale_count * sizeof(f16_t));
    PrefetchBytes<kLocality>(t.key_zeros, g.key_scale_count * sizeof(f16_t));
  }
  if (t.value_scales) {
    const size_t n = size_t(t.n_valid) * g.value_scales_per_slot;
    PrefetchBytes<kLocality>(t.value_scales, n * sizeof(f16_t));
    if (t.value_zeros) PrefetchBytes<kLocality>(t.value_zeros, n * sizeof(f16_t));
  }
}

HWY_INLINE void PrefetchTile(const KvSegment& seg, const TileGeometry& g, int tile) {
  if (g.key_quantized) PrefetchTileSections<1>(seg, g, tile);
  else PrefetchTileSections<3>(seg, g, tile);
}

inline int PrefetchDistance() {
  static const int d = [] { const char* e = std::getenv("AKV_ATTN_PREFETCH"); return e ? std::atoi(e) : 1; }();
  return d;
}

RowBlock MakeRowBlock(const KernelRows& rows, bool rotated, int row0, int n) {
  RowBlock rb;
  const int chunks = rows.head_dim / kUnitValues;
  const float* q = rotated ? rows.q_rot : rows.q;
  const float* qsum = rotated ? rows.qsum_rot : rows.qsum;
  for (int r = 0; r < kBlockRows; ++r) {
    const int row = row0 + std::min(r, n - 1);
    rb.q[r] = q + size_t(row) * rows.head_dim;
    rb.qsum[r] = qsum + size_t(row) * chunks;
  }
  return rb;
}

// Causal visibility of a tile for a block of rows: 0 hidden, 1 partly visible, 2 fully visible.
int TileVisibility(const KernelRows& rows, int row0, int n, const TilePositions& tp) {
  if (!rows.positions) return 2;
  int32_t lo = INT32_MAX, hi = INT32_MIN;
  for (int r = row0; r < row0 + n; ++r) {
    lo = std::min(lo, rows.positions[r]);
    hi = std::max(hi, rows.positions[r]);
  }
  if (tp.min_pos > hi) return 0;
  return tp.max_pos <= lo ? 2 : 1;
}

// mass[0, n) = decay * mass + weight * tile (decay 0, weight 1: a plain copy).
HWY_INLINE void StoreMass(const float* HWY_RESTRICT tile, int n, const MassUpdate& update, float* HWY_RESTRICT mass) {
  if (update.decay == 0.0f && update.weight == 1.0f) {
    std::memcpy(mass, tile, sizeof(float) * n);
    return;
  }
  const DF df;
  const VF decay = hn::Set(df, update.decay), weight = hn::Set(df, update.weight);
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    hn::StoreU(hn::MulAdd(decay, hn::LoadU(df, mass + i), hn::Mul(weight, hn::LoadU(df, tile + i))), df, mass + i);
  for (; i < n; ++i) mass[i] = update.decay * mass[i] + update.weight * tile[i];
}

void RunAttentionTaskSimd(const AttentionTask& task) {
  const KernelRows& rows = task.rows;
  const int dim = rows.head_dim;
  for (int r = 0; r < rows.n_rows; ++r) {
    task.m[r] = -std::numeric_limits<float>::infinity();
    task.d[r] = 0;
  }
  std::fill(task.o, task.o + size_t(rows.n_rows) * dim, 0.0f);
  HWY_ALIGN float scores[kBlockRows * kTileSlots];
  HWY_ALIGN float p[kBlockRows * kTileSlots];
  float alpha[kBlockRows];
  float* weights = task.weights;
  float* tile_max = task.tile_max;
  // Running sums of the rows as vectors: [n_rows][kLanes].
  thread_local std::vector<float> d_vec_buffer;
  d_vec_buffer.assign(size_t(rows.n_rows) * kLanes, 0.0f);
  float* d_vec = d_vec_buffer.data();
  const int ahead = PrefetchDistance();
  for (size_t si = 0; si < task.spans.size(); ++si) {
    const TileSpan& span = task.spans[si];
    const KvSegment& seg = *span.segment;
    const SegmentFns fns = FnsFor(seg);
    const bool rotated = seg.key_codec.hadamard;
    const TileGeometry geometry = MakeTileGeometry(seg, dim);
    TileGeometry next_geometry;
    if (ahead > 0 && si + 1 < task.spans.size()) next_geometry = MakeTileGeometry(*task.spans[si + 1].segment, dim);
    for (int tile = span.tile_begin; tile < span.tile_end; ++tile) {
      if (ahead > 0) {
        // The tile `ahead` tiles later, in this span or the next one.
        if (tile + ahead < span.tile_end) {
          PrefetchTile(seg, geometry, tile + ahead);
        } else if (si + 1 < task.spans.size()) {
          const TileSpan& next = task.spans[si + 1];
          const int at = next.tile_begin + (tile + ahead - span.tile_end);
          if (at < next.tile_end) PrefetchTile(*next.segment, next_geometry, at);
        }
      }
      TilePositions tp;
      // Positions are read only under a causal mask.
      const TileView t = MakeTileView(seg, geometry, tile, rows.positions ? &tp : nullptr);
      for (int row0 = 0; row0 < rows.n_rows; row0 += kBlockRows) {
        const int n = std::min(kBlockRows, rows.n_rows - row0);
        const int visibility = TileVisibility(rows, row0, n, tp);
        if (visibility == 0) {
          if (weights) {
            std::fill(weights + row0 * kTileSlots, weights + (row0 + n) * kTileSlots, 0.0f);
            std::fill(tile_max + row0, tile_max + row0 + n, -std::numeric_limits<float>::infinity());
          }
          continue;
        }
        const RowBlock rb = MakeRowBlock(rows, rotated, row0, n);
        fns.score[n - 1](t, rb, scores);
        const int32_t* slot_pos = visibility == 1 ? tp.pos : nullptr;
        const int32_t* row_pos = rows.positions ? rows.positions + row0 : nullptr;
        // With mass, the weights go straight to the item's buffer (p of every row, 0 where
        // hidden; 64-byte aligned), with the max they are relative to.
        float* p_rows = weights ? weights + row0 * kTileSlots : p;
        const bool any = kSoftmaxFns[n - 1](scores, t.n_valid, slot_pos, row_pos, task.m + row0,
                                            d_vec + size_t(row0) * kLanes, alpha, p_rows);
        if (weights) std::copy(task.m + row0, task.m + row0 + n, tile_max + row0);
        if (!any) continue;
        float* o_rows[kBlockRows];
        for (int r = 0; r < kBlockRows; ++r) o_rows[r] = task.o + size_t(row0 + std::min(r, n - 1)) * dim;
        fns.value[n - 1](t, p_rows, alpha, o_rows);
      }
      if (weights) {
        weights += size_t(rows.n_rows) * kTileSlots;
        tile_max += rows.n_rows;
      }
    }
  }
  const DF df;
  for (int r = 0; r < rows.n_rows; ++r) task.d[r] = hn::GetLane(hn::SumOfLanes(df, hn::LoadU(df, d_vec + size_t(r) * kLanes)));
}

void RunMassFromWeightsSimd(const MassFromWeightsTask& task) {
  const DF df;
  const float* weights = task.weights;
  const float* tile_max = task.tile_max;
  for (const TileSpan& span : task.spans) {
    for (int tile = span.tile_begin; tile < span.tile_end;
         ++tile, weights += size_t(task.n_rows) * kTileSlots, tile_max += task.n_rows) {
      if (!span.mass) continue;
      VF mass[kVecs];
      for (int v = 0; v < kVecs; ++v) mass[v] = hn::Zero(df);
      for (int r = 0; r < task.n_rows; ++r) {
        // p was exp(logit - m_tile): exp(logit - m) / d = p * exp(m_tile - m) / d (1 once the
        // row's max has settled). Rows that had seen nothing (m_tile = -inf) have p = 0.
        if (task.m[r] == -std::numeric_limits<float>::infinity() ||
            tile_max[r] == -std::numeric_limits<float>::infinity())
          continue;
        const float factor = (tile_max[r] == task.m[r] ? 1.0f : std::exp(tile_max[r] - task.m[r])) * task.inv_d[r];
        const VF f = hn::Set(df, factor);
        for (int v = 0; v < kVecs; ++v) mass[v] = hn::MulAdd(hn::LoadU(df, weights + r * kTileSlots + v * kLanes), f, mass[v]);
      }
      HWY_ALIGN float out[kTileSlots];
      for (int v = 0; v < kVecs; ++v) hn::Store(mass[v], df, out + v * kLanes);
      const int n_valid = std::min(kTileSlots, span.segment->n_slots - tile * kTileSlots);
      StoreMass(out, n_valid, task.update, span.mass + size_t(tile) * kTileSlots);
    }
  }
}

void RunMassTaskSimd(const MassTask& task) {
  const DF df;
  const KernelRows& rows = task.rows;
  const int dim = rows.head_dim;
  HWY_ALIGN float scores[kBlockRows * kTileSlots];
  const VF neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (const TileSpan& span : task.spans) {
    if (!span.mass) continue;
    const KvSegment& seg = *span.segment;
    const SegmentFns fns = FnsFor(seg);
    const bool rotated = seg.key_codec.hadamard;
    const TileGeometry geometry = MakeTileGeometry(seg, dim);
    for (int tile = span.tile_begin; tile < span.tile_end; ++tile) {
      TilePositions tp;
      const TileView t = MakeTileView(seg, geometry, tile, rows.positions ? &tp : nullptr);
      VF mass[kVecs];
      for (int v = 0; v < kVecs; ++v) mass[v] = hn::Zero(df);
      for (int row0 = 0; row0 < rows.n_rows; row0 += kBlockRows) {
        const int n = std::min(kBlockRows, rows.n_rows - row0);
        const int visibility = TileVisibility(rows, row0, n, tp);
        if (visibility == 0) continue;
        fns.score[n - 1](t, MakeRowBlock(rows, rotated, row0, n), scores);
        for (int r = 0; r < n; ++r) {
          const int row = row0 + r;
          if (task.m[row] == -std::numeric_limits<float>::infinity()) continue;
          const VF m = hn::Set(df, task.m[row]), inv_d = hn::Set(df, task.inv_d[row]);
          for (int v = 0; v < kVecs; ++v) {
            const auto visible = VisibleLanes(v, t.n_valid, visibility == 1 ? tp.pos : nullptr,
                                              rows.positions ? rows.positions[row] : 0);
            const VF s = hn::IfThenElse(visible, hn::Load(df, scores + r * kTileSlots + v * kLanes), neg_inf);
            mass[v] = hn::MulAdd(ExpOfLogit(s, m), inv_d, mass[v]);
          }
        }
      }
      HWY_ALIGN float out[kTileSlots];
      for (int v = 0; v < kVecs; ++v) hn::Store(mass[v], df, out + v * kLanes);
      StoreMass(out, t.n_valid, task.update, span.mass + size_t(tile) * kTileSlots);
    }
  }
}

const char* KernelTargetNameSimd() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace akv
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace akv {

HWY_EXPORT(RunAttentionTaskSimd);
HWY_EXPORT(RunMassTaskSimd);
HWY_EXPORT(RunMassFromWeightsSimd);
HWY_EXPORT(KernelTargetNameSimd);

const char* AttentionKernelTarget() { return HWY_DYNAMIC_DISPATCH(KernelTargetNameSimd)(); }

void RunAttentionTask(const AttentionTask& task) { HWY_DYNAMIC_DISPATCH(RunAttentionTaskSimd)(task); }
void RunMassTask(const MassTask& task) { HWY_DYNAMIC_DISPATCH(RunMassTaskSimd)(task); }
void RunMassFromWeights(const MassFromWeightsTask& task) { HWY_DYNAMIC_DISPATCH(RunMassFromWeightsSimd)(task); }

}  // namespace akv
#endif  // HWY_ONCE
