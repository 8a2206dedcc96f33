// Test helper: writes GGUF v3 files, e.g. a shared model with metadata or tensors changed, so
// tests can build model variants (another architecture, scaled weights) without fixtures.
#pragma once

#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/half.h"
#include "io/gguf.h"

namespace akv::test {

class GgufWriter {
 public:
  // Starts from every key and tensor of `src`.
  explicit GgufWriter(const GgufFile& src) {
    for (const std::string& k : src.keys()) kv_.push_back({k, *src.Find(k)});
    for (const GgufTensor& t : src.tensors())
      tensors_.push_back({t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.bytes)});
  }
  void SetString(const std::string& key, const std::string& value) {
    GgufValue v;
    v.type = GgufType::kString;
    v.s = value;
    Set(key, v);
  }
  void RenameKeyPrefix(const std::string& from, const std::string& to) {
    for (auto& [k, v] : kv_)
      if (k.rfind(from, 0) == 0) k = to + k.substr(from.size());
  }
  void RemoveTensor(const std::string& name) {
    std::erase_if(tensors_, [&](const Tensor& t) { return t.name == name; });
  }
  // Adds an f32 tensor of `n` copies of `value`.
  void AddF32(const std::string& name, int64_t n, float value) {
    std::vector<uint8_t> bytes(n * 4);
    for (int64_t i = 0; i < n; ++i) std::memcpy(&bytes[i * 4], &value, 4);
    tensors_.push_back({name, GgmlType::F32, {n}, bytes});
  }
  // Multiplies every element of an F16 tensor by `factor`.
  void ScaleF16(const std::string& name, float factor) {
    for (Tensor& t : tensors_) {
      if (t.name != name) continue;
      uint16_t* p = reinterpret_cast<uint16_t*>(t.data.data());
      for (size_t i = 0; i < t.data.size() / 2; ++i) p[i] = F32ToF16(F16ToF32(p[i]) * factor);
    }
  }
  bool Write(const std::string& path) const {
    std::vector<uint8_t> b;
    auto put = [&](const void* p, size_t n) { b.insert(b.end(), (const uint8_t*)p, (const uint8_t*)p + n); };
    auto u32 = [&](uint32_t v) { put(&v, 4); };
    auto u64 = [&](uint64_t v) { put(&v, 8); };
    auto str = [&](const std::string& s) { u64(s.size()); put(s.data(), s.size()); };
    u32(0x46554747);
    u32(3);
    u64(tensors_.size());
    u64(kv_.size());
    for (const auto& [k, v] : kv_) {
      str(k);
      u32(static_cast<uint32_t>(v.type));
      PutValue(b, v);
    }
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const Tensor& t : tensors_) {
      str(t.name);
      u32(static_cast<uint32_t>(t.dims.size()));
      for (int64_t d : t.dims) u64(static_cast<uint64_t>(d));
      u32(static_cast<uint32_t>(t.type));
      u64(offset);
      offsets.push_back(offset);
      offset += (t.data.size() + 31) / 32 * 32;
    }
    while (b.size() % 32) b.push_back(0);
    for (const Tensor& t : tensors_) {
      put(t.data.data(), t.data.size());
      while (b.size() % 32) b.push_back(0);
    }
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), b.size());
    return static_cast<bool>(out);
  }

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  void Set(const std::string& key, const GgufValue& v) {
    for (auto& [k, old] : kv_)
      if (k == key) {
        old = v;
        return;
      }
    kv_.push_back({key, v});
  }
  static void PutScalar(std::vector<uint8_t>& b, GgufType t, uint64_t u, int64_t i, double f) {
    auto put = [&](const void* p, size_t n) { b.insert(b.end(), (const uint8_t*)p, (const uint8_t*)p + n); };
    switch (t) {
      case GgufType::kUint8: case GgufType::kBool: { uint8_t x = static_cast<uint8_t>(u); put(&x, 1); break; }
      case GgufType::kInt8: { int8_t x = static_cast<int8_t>(i); put(&x, 1); break; }
      case GgufType::kUint16: { uint16_t x = static_cast<uint16_t>(u); put(&x, 2); break; }
      case GgufType::kInt16: { int16_t x = static_cast<int16_t>(i); put(&x, 2); break; }
      case GgufType::kUint32: { uint32_t x = static_cast<uint32_t>(u); put(&x, 4); break; }
      case GgufType::kInt32: { int32_t x = static_cast<int32_t>(i); put(&x, 4); break; }
      case GgufType::kUint64: put(&u, 8); break;
      case GgufType::kInt64: put(&i, 8); break;
      case GgufType::kFloat32: { float x = static_cast<float>(f); put(&x, 4); break; }
      case GgufType::kFloat64: put(&f, 8); break;
      default: break;
    }
  }
  static void PutValue(std::vector<uint8_t>& b, const GgufValue& v) {
    auto put = [&](const void* p, size_t n) { b.insert(b.end(), (const uint8_t*)p, (const uint8_t*)p + n); };
    auto str = [&](const std::string& s) { uint64_t n = s.size(); put(&n, 8); put(s.data(), s.size()); };
    if (v.type == GgufType::kString) return str(v.s);
    if (v.type != GgufType::kArray) return PutScalar(b, v.type, v.u, v.i, v.f);
    uint32_t et = static_cast<uint32_t>(v.elem_type);
    uint64_t n = v.ArraySize();
    put(&et, 4);
    put(&n, 8);
    for (const auto& s : v.strings) str(s);
    for (double f : v.floats) PutScalar(b, v.elem_type, 0, 0, f);
    for (int64_t i : v.ints) PutScalar(b, v.elem_type, static_cast<uint64_t>(i), i, 0);
    for (const auto& a : v.arrays) PutValue(b, a);
  }
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace akv::test
