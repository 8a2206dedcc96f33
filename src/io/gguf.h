// GGUF reader (versions 2 and 3): metadata key/values and tensor infos, with tensor data
// left in the memory map. Every length, count, offset and size read from the file is checked
// against the file's bounds before use; malformed input yields a Status naming the problem.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ggml_types.h"
#include "core/status.h"
#include "io/mapped_file.h"

namespace akv {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* GgufTypeName(GgufType t);

// One metadata value. Scalars keep their exact integer or float value; arrays keep their
// element type and elements (nested arrays are allowed by the format).
struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u = 0;     // unsigned integers and bool
  int64_t i = 0;      // signed integers
  double f = 0;       // floats
  std::string s;      // string
  GgufType elem_type = GgufType::kUint8;  // arrays
  std::vector<int64_t> ints;              // integer / bool array elements (uint64 values > INT64_MAX wrap)
  std::vector<double> floats;             // float array elements
  std::vector<std::string> strings;       // string array elements
  std::vector<GgufValue> arrays;          // nested arrays

  bool IsInteger() const;
  bool IsFloat() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  size_t ArraySize() const;
  // Short human-readable form for `akv inspect` (arrays abbreviated).
  std::string ToString(size_t max_items = 8) const;
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  uint64_t offset = 0;        // relative to the data section
  size_t bytes = 0;
  const uint8_t* data = nullptr;  // inside the map
  int64_t n_elements() const;
  int64_t rows() const { return dims.empty() ? 0 : n_elements() / dims[0]; }
  std::string ShapeString() const;  // "[384, 32000]"
};

class GgufFile {
 public:
  static StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses an in-memory image (tests, fuzzing).
  static StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::vector<uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // File offset where tensor data begins (the header ends before it).
  size_t data_offset() const { return data_offset_; }
  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }

  const std::vector<std::string>& keys() const { return key_order_; }
  const GgufValue* Find(const std::string& key) const;
  bool Has(const std::string& key) const { return Find(key) != nullptr; }

  // Typed getters; errors name the key and what was found.
  StatusOr<std::string> GetString(const std::string& key) const;
  StatusOr<int64_t> GetInt(const std::string& key) const;   // any integer type
  StatusOr<double> GetFloat(const std::string& key) const;  // float, or integer converted
  StatusOr<bool> GetBool(const std::string& key) const;
  StatusOr<std::vector<std::string>> GetStringArray(const std::string& key) const;
  StatusOr<std::vector<double>> GetFloatArray(const std::string& key) const;
  StatusOr<std::vector<int64_t>> GetIntArray(const std::string& key) const;
  // Optional variants: `fallback` when absent, error when present with the wrong type.
  StatusOr<int64_t> GetIntOr(const std::string& key, int64_t fallback) const;
  StatusOr<double> GetFloatOr(const std::string& key, double fallback) const;
  StatusOr<bool> GetBoolOr(const std::string& key, bool fallback) const;
  StatusOr<std::string> GetStringOr(const std::string& key, const std::string& fallback) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(const std::string& name) const;
  // Error "missing tensor 'x'" when absent.
  StatusOr<const GgufTensor*> GetTensor(const std::string& name) const;

 private:
  GgufFile() = default;
  Status Parse();

  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<std::string> key_order_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace akv
