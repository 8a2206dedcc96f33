// The tensor element types that appear in GGUF files, with their block layouts.
// Values are the on-disk ids (ggml_type); names match llama.cpp's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace akv {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeTraits {
  const char* name;   // "q4_0"; nullptr for ids we do not know
  int block_size;     // elements per block
  size_t block_bytes; // bytes per block
  bool supported;     // can be loaded (dequantized or computed on)
};

// Traits for a raw id; `name == nullptr` when the id is unknown.
GgmlTypeTraits GetTypeTraits(uint32_t raw_type);
inline GgmlTypeTraits GetTypeTraits(GgmlType t) { return GetTypeTraits(static_cast<uint32_t>(t)); }
const char* TypeName(GgmlType t);

// Bytes of one row of `n` elements; 0 when `n` is not a multiple of the block size.
size_t RowBytes(GgmlType t, int64_t n);

}  // namespace akv
