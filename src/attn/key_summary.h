// Page key summaries: per-channel [min, max] of a segment's stored keys, so an upper bound of
// q.k over every key of a page costs D multiply-adds and no page read. The tiered cache uses it
// to choose which cold pages to promote for a query.
//
// Bounds are over the keys as attention sees them: de-quantized, in the stored domain (after the
// codec's Hadamard rotation), and rounded outward to f16, so they never under-cover a key.
#pragma once

#include "attn/segment.h"
#include "core/half.h"
#include "core/status.h"
#include "kv/codecs/codec.h"

namespace akv {

// An empty summary (min = +inf, max = -inf): the bound of an empty page is -inf.
void ResetKeySummary(int head_dim, f16_t* key_min, f16_t* key_max);
// Widens [key_min, key_max] to cover `key` (stored domain). SIMD; the scalar reference is
// bit-identical.
void ExtendKeySummary(const float* key, int head_dim, f16_t* key_min, f16_t* key_max);
void ExtendKeySummaryReference(const float* key, int head_dim, f16_t* key_min, f16_t* key_max);
// Summary of all slots of a segment, from its de-quantized keys.
Status ComputeKeySummary(const KvSegment& segment, int head_dim, f16_t* key_min, f16_t* key_max);

// The query in the key codec's stored domain (Hadamard-rotated when the codec rotates keys);
// the bound below takes queries in that domain.
Status QueryInKeyDomain(const CodecSpec& key_codec, const float* q, int head_dim, float* out);

// max over keys k with key_min <= k <= key_max (per channel) of q.k = sum_c max(q_c min_c, q_c max_c),
// in double; -inf for an empty summary. Multiply by the logit scale for a logit bound.
double QkUpperBound(const float* q, const f16_t* key_min, const f16_t* key_max, int head_dim);
// The bound for the n_q query heads of a KV group (q [n_q][head_dim], key domain): the largest of
// their QkUpperBound, i.e. how much any of them could want a key of the page. Ranks cold pages for
// promotion (CPU TieredCache, GPU sessions).
double GroupQkUpperBound(const float* q, int n_q, const f16_t* key_min, const f16_t* key_max, int head_dim);

}  // namespace akv
