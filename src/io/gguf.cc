#include "io/gguf.h"

#include <cstring>
#include <limits>
#include <sstream>

namespace akv {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian cursor over the file image.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return Truncated(what);
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* out, const char* what) {
    uint64_t n = 0;
    AKV_RETURN_IF_ERROR(Read(&n, what));
    if (n > remaining()) {
      return Corrupt(std::string(what) + ": string length " + std::to_string(n) + " at offset " +
                     std::to_string(pos_ - 8) + " exceeds the " + std::to_string(remaining()) +
                     " bytes left in the file");
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::Ok();
  }

  Status Truncated(const char* what) const {
    return Corrupt(std::string("file truncated while reading ") + what + " at offset " +
                   std::to_string(pos_) + " (file size " + std::to_string(size_) + ")");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

size_t ScalarSize(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool: return 1;
    case GgufType::kUint16:
    case GgufType::kInt16: return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32: return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64: return 8;
    case GgufType::kString: return 8;  // at least its length prefix
    case GgufType::kArray: return 12;  // at least type + count
  }
  return 0;
}

bool ValidType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

Status ReadValue(Reader& r, GgufType type, GgufValue* v, const std::string& key, int depth);

// Reads one scalar of `type` into the value's u/i/f fields.
Status ReadScalar(Reader& r, GgufType type, GgufValue* v, const std::string& key) {
  const char* what = "metadata value";
  switch (type) {
    case GgufType::kUint8: { uint8_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->u = x; v->i = x; return Status::Ok(); }
    case GgufType::kInt8: { int8_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->i = x; v->u = static_cast<uint64_t>(x); return Status::Ok(); }
    case GgufType::kUint16: { uint16_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->u = x; v->i = x; return Status::Ok(); }
    case GgufType::kInt16: { int16_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->i = x; v->u = static_cast<uint64_t>(x); return Status::Ok(); }
    case GgufType::kUint32: { uint32_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->u = x; v->i = x; return Status::Ok(); }
    case GgufType::kInt32: { int32_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->i = x; v->u = static_cast<uint64_t>(x); return Status::Ok(); }
    case GgufType::kUint64: { uint64_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->u = x; v->i = static_cast<int64_t>(x); return Status::Ok(); }
    case GgufType::kInt64: { int64_t x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->i = x; v->u = static_cast<uint64_t>(x); return Status::Ok(); }
    case GgufType::kFloat32: { float x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->f = x; return Status::Ok(); }
    case GgufType::kFloat64: { double x = 0; AKV_RETURN_IF_ERROR(r.Read(&x, what)); v->f = x; return Status::Ok(); }
    case GgufType::kBool: {
      uint8_t x;
      AKV_RETURN_IF_ERROR(r.Read(&x, what));
      if (x > 1) return Corrupt("key '" + key + "': bool value " + std::to_string(x) + " is not 0 or 1");
      v->u = x;
      v->i = x;
      return Status::Ok();
    }
    case GgufType::kString: return r.ReadString(&v->s, "metadata string");
    case GgufType::kArray: break;
  }
  return Internal("ReadScalar on array");
}

Status ReadArray(Reader& r, GgufValue* v, const std::string& key, int depth) {
  if (depth >= kMaxArrayDepth) return Corrupt("key '" + key + "': arrays nested too deeply");
  uint32_t et = 0;
  uint64_t n = 0;
  AKV_RETURN_IF_ERROR(r.Read(&et, "array element type"));
  if (!ValidType(et)) {
    return Corrupt("key '" + key + "': unknown array element type " + std::to_string(et));
  }
  AKV_RETURN_IF_ERROR(r.Read(&n, "array length"));
  v->elem_type = static_cast<GgufType>(et);
  const size_t min_size = ScalarSize(v->elem_type);
  if (n > r.remaining() / min_size) {
    return Corrupt("key '" + key + "': array of " + std::to_string(n) + " " +
                   GgufTypeName(v->elem_type) + " elements cannot fit in the " +
                   std::to_string(r.remaining()) + " bytes left in the file");
  }
  GgufValue tmp;
  switch (v->elem_type) {
    case GgufType::kString:
      v->strings.resize(n);
      for (uint64_t k = 0; k < n; ++k) AKV_RETURN_IF_ERROR(r.ReadString(&v->strings[k], "array string"));
      break;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      v->floats.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        AKV_RETURN_IF_ERROR(ReadScalar(r, v->elem_type, &tmp, key));
        v->floats[k] = tmp.f;
      }
      break;
    case GgufType::kArray:
      v->arrays.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        v->arrays[k].type = GgufType::kArray;
        AKV_RETURN_IF_ERROR(ReadArray(r, &v->arrays[k], key, depth + 1));
      }
      break;
    default:
      v->ints.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        AKV_RETURN_IF_ERROR(ReadScalar(r, v->elem_type, &tmp, key));
        v->ints[k] = tmp.i;
      }
  }
  return Status::Ok();
}

Status ReadValue(Reader& r, GgufType type, GgufValue* v, const std::string& key, int depth) {
  v->type = type;
  if (type == GgufType::kArray) return ReadArray(r, v, key, depth);
  return ReadScalar(r, type, v, key);
}

bool MulOverflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

const char* GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kUint8: return "uint8";
    case GgufType::kInt8: return "int8";
    case GgufType::kUint16: return "uint16";
    case GgufType::kInt16: return "int16";
    case GgufType::kUint32: return "uint32";
    case GgufType::kInt32: return "int32";
    case GgufType::kFloat32: return "float32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "uint64";
    case GgufType::kInt64: return "int64";
    case GgufType::kFloat64: return "float64";
  }
  return "unknown";
}

bool GgufValue::IsInteger() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64: return true;
    default: return false;
  }
}

size_t GgufValue::ArraySize() const {
  if (type != GgufType::kArray) return 0;
  return ints.size() + floats.size() + strings.size() + arrays.size();
}

std::string GgufValue::ToString(size_t max_items) const {
  std::ostringstream os;
  switch (type) {
    case GgufType::kString: {
      std::string t = s.size() > 80 ? s.substr(0, 77) + "..." : s;
      for (char& c : t) if (c == '\n') c = ' ';
      os << '"' << t << '"';
      break;
    }
    case GgufType::kBool: os << (u ? "true" : "false"); break;
    case GgufType::kFloat32:
    case GgufType::kFloat64: os << f; break;
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64: os << u; break;
    case GgufType::kArray: {
      os << GgufTypeName(elem_type) << "[" << ArraySize() << "] {";
      size_t n = std::min(max_items, ArraySize());
      for (size_t k = 0; k < n; ++k) {
        if (k) os << ", ";
        if (!strings.empty()) os << '"' << strings[k] << '"';
        else if (!floats.empty()) os << floats[k];
        else if (!ints.empty()) os << ints[k];
        else os << arrays[k].ToString(2);
      }
      if (ArraySize() > n) os << ", ...";
      os << "}";
      break;
    }
    default: os << i;
  }
  return os.str();
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string GgufTensor::ShapeString() const {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  AKV_ASSIGN_OR_RETURN(auto mf, MappedFile::Open(path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->file_ = std::move(mf);
  Status st = f->Parse();
  if (!st.ok()) return Status(st.code(), "'" + path + "': " + st.message());
  return f;
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::vector<uint8_t> bytes) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->file_ = MappedFile::FromBytes(std::move(bytes));
  AKV_RETURN_IF_ERROR(f->Parse());
  return f;
}

Status GgufFile::Parse() {
  Reader r(file_->data(), file_->size());
  uint32_t magic;
  if (file_->size() < 4) return Corrupt("not a GGUF file (" + std::to_string(file_->size()) + " bytes)");
  AKV_RETURN_IF_ERROR(r.Read(&magic, "magic"));
  if (magic != kMagic) return Corrupt("not a GGUF file (bad magic)");
  AKV_RETURN_IF_ERROR(r.Read(&version_, "version"));
  if (version_ == 1) return Unsupported("GGUF version 1 is not supported (re-convert the model)");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xFFFF) == 0 && (version_ >> 24) <= 3)
      return Unsupported("big-endian GGUF files are not supported");
    return Unsupported("unknown GGUF version " + std::to_string(version_));
  }
  uint64_t n_tensors, n_kv;
  AKV_RETURN_IF_ERROR(r.Read(&n_tensors, "tensor count"));
  AKV_RETURN_IF_ERROR(r.Read(&n_kv, "metadata count"));
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 24.
  if (n_kv > r.remaining() / 13) return Corrupt("metadata count " + std::to_string(n_kv) + " is impossible for the file size");
  if (n_tensors > r.remaining() / 24) return Corrupt("tensor count " + std::to_string(n_tensors) + " is impossible for the file size");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    AKV_RETURN_IF_ERROR(r.ReadString(&key, "metadata key"));
    uint32_t type;
    AKV_RETURN_IF_ERROR(r.Read(&type, "metadata type"));
    if (!ValidType(type)) return Corrupt("key '" + key + "': unknown value type " + std::to_string(type));
    GgufValue v;
    AKV_RETURN_IF_ERROR(ReadValue(r, static_cast<GgufType>(type), &v, key, 0));
    if (kv_.count(key)) return Corrupt("duplicate metadata key '" + key + "'");
    key_order_.push_back(key);
    kv_.emplace(key, std::move(v));
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (!a->IsInteger() || a->u == 0 || a->u > (1u << 20) || (a->u & (a->u - 1)) != 0)
      return Corrupt("general.alignment must be a power of two, got " + a->ToString());
    alignment_ = static_cast<uint32_t>(a->u);
  }

  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    AKV_RETURN_IF_ERROR(r.ReadString(&t.name, "tensor name"));
    uint32_t n_dims;
    AKV_RETURN_IF_ERROR(r.Read(&n_dims, "tensor dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims)
      return Corrupt("tensor '" + t.name + "': " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    int64_t n = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t dim;
      AKV_RETURN_IF_ERROR(r.Read(&dim, "tensor dimension"));
      if (dim < 0) return Corrupt("tensor '" + t.name + "': negative dimension " + std::to_string(dim));
      if (MulOverflows(n, dim, &n)) return Corrupt("tensor '" + t.name + "': element count overflows");
      t.dims.push_back(dim);
    }
    uint32_t type;
    AKV_RETURN_IF_ERROR(r.Read(&type, "tensor type"));
    GgmlTypeTraits tr = GetTypeTraits(type);
    if (!tr.name) return Unsupported("tensor '" + t.name + "': unknown tensor type id " + std::to_string(type));
    t.type = static_cast<GgmlType>(type);
    if (t.dims[0] % tr.block_size != 0)
      return Corrupt("tensor '" + t.name + "': row length " + std::to_string(t.dims[0]) +
                     " is not a multiple of the " + tr.name + " block size " + std::to_string(tr.block_size));
    int64_t bytes;
    if (MulOverflows(n / tr.block_size, static_cast<int64_t>(tr.block_bytes), &bytes))
      return Corrupt("tensor '" + t.name + "': byte size overflows");
    t.bytes = static_cast<size_t>(bytes);
    AKV_RETURN_IF_ERROR(r.Read(&t.offset, "tensor offset"));
    if (t.offset % alignment_ != 0)
      return Corrupt("tensor '" + t.name + "': offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    if (tensor_index_.count(t.name)) return Corrupt("duplicate tensor name '" + t.name + "'");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  size_t data_start = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_start > file_->size())
    return Corrupt("file truncated before the tensor data section");
  data_offset_ = data_start;
  size_t data_size = file_->size() > data_start ? file_->size() - data_start : 0;
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      return Corrupt("tensor '" + t.name + "' (" + std::to_string(t.bytes) + " bytes at data offset " +
                     std::to_string(t.offset) + ") runs past the end of the file (data section is " +
                     std::to_string(data_size) + " bytes; file truncated?)");
    }
    t.data = file_->data() + data_start + t.offset;
  }
  return Status::Ok();
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {
Status WrongType(const std::string& key, const char* want, const GgufValue& v) {
  std::string got = GgufTypeName(v.type);
  if (v.type == GgufType::kArray) got += std::string(" of ") + GgufTypeName(v.elem_type);
  return Corrupt("metadata key '" + key + "' should be " + want + " but is " + got);
}
Status Missing(const std::string& key) { return NotFound("missing metadata key '" + key + "'"); }
}  // namespace

StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufType::kString) return WrongType(key, "a string", *v);
  return v->s;
}

StatusOr<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (!v->IsInteger()) return WrongType(key, "an integer", *v);
  if (v->type == GgufType::kUint64 && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Corrupt("metadata key '" + key + "' value " + std::to_string(v->u) + " is out of range");
  return v->i;
}

StatusOr<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->IsFloat()) return v->f;
  if (v->IsInteger()) return static_cast<double>(v->i);
  return WrongType(key, "a number", *v);
}

StatusOr<bool> GgufFile::GetBool(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufType::kBool) return WrongType(key, "a bool", *v);
  return v->u != 0;
}

StatusOr<std::vector<std::string>> GgufFile::GetStringArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) return WrongType(key, "an array of strings", *v);
  return v->strings;
}

StatusOr<std::vector<double>> GgufFile::GetFloatArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufType::kArray) return WrongType(key, "an array of numbers", *v);
  if (!v->floats.empty() || v->ArraySize() == 0) return v->floats;
  if (!v->ints.empty()) return std::vector<double>(v->ints.begin(), v->ints.end());
  return WrongType(key, "an array of numbers", *v);
}

StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufType::kArray || (!v->ints.empty() ? false : v->ArraySize() != 0))
    return WrongType(key, "an array of integers", *v);
  return v->ints;
}

StatusOr<int64_t> GgufFile::GetIntOr(const std::string& key, int64_t fallback) const {
  return Has(key) ? GetInt(key) : StatusOr<int64_t>(fallback);
}
StatusOr<double> GgufFile::GetFloatOr(const std::string& key, double fallback) const {
  return Has(key) ? GetFloat(key) : StatusOr<double>(fallback);
}
StatusOr<bool> GgufFile::GetBoolOr(const std::string& key, bool fallback) const {
  return Has(key) ? GetBool(key) : StatusOr<bool>(fallback);
}
StatusOr<std::string> GgufFile::GetStringOr(const std::string& key, const std::string& fallback) const {
  return Has(key) ? GetString(key) : StatusOr<std::string>(fallback);
}

const GgufTensor* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<const GgufTensor*> GgufFile::GetTensor(const std::string& name) const {
  const GgufTensor* t = FindTensor(name);
  if (!t) return NotFound("missing tensor '" + name + "'");
  return t;
}

}  // namespace akv
