#include "core/ggml_types.h"

namespace akv {

GgmlTypeTraits GetTypeTraits(uint32_t raw) {
  switch (static_cast<GgmlType>(raw)) {
    case GgmlType::F32: return {"f32", 1, 4, true};
    case GgmlType::F16: return {"f16", 1, 2, true};
    case GgmlType::BF16: return {"bf16", 1, 2, true};
    case GgmlType::Q4_0: return {"q4_0", 32, 18, true};
    case GgmlType::Q4_1: return {"q4_1", 32, 20, true};
    case GgmlType::Q5_0: return {"q5_0", 32, 22, true};
    case GgmlType::Q5_1: return {"q5_1", 32, 24, true};
    case GgmlType::Q8_0: return {"q8_0", 32, 34, true};
    case GgmlType::Q8_1: return {"q8_1", 32, 36, false};
    case GgmlType::Q2_K: return {"q2_k", 256, 84, false};
    case GgmlType::Q3_K: return {"q3_k", 256, 110, false};
    case GgmlType::Q4_K: return {"q4_k", 256, 144, true};
    case GgmlType::Q5_K: return {"q5_k", 256, 176, true};
    case GgmlType::Q6_K: return {"q6_k", 256, 210, true};
    case GgmlType::Q8_K: return {"q8_k", 256, 292, false};
    case GgmlType::I8: return {"i8", 1, 1, false};
    case GgmlType::I16: return {"i16", 1, 2, false};
    case GgmlType::I32: return {"i32", 1, 4, false};
    case GgmlType::I64: return {"i64", 1, 8, false};
    case GgmlType::F64: return {"f64", 1, 8, false};
  }
  return {nullptr, 0, 0, false};
}

const char* TypeName(GgmlType t) {
  const char* n = GetTypeTraits(t).name;
  return n ? n : "unknown";
}

size_t RowBytes(GgmlType t, int64_t n) {
  GgmlTypeTraits tr = GetTypeTraits(t);
  if (!tr.name || tr.block_size == 0 || n % tr.block_size != 0) return 0;
  return static_cast<size_t>(n / tr.block_size) * tr.block_bytes;
}

}  // namespace akv
