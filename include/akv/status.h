// Status and StatusOr: library code reports bad input through these, never by aborting.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace akv {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad flag, config, or request
  kNotFound,         // missing file, tensor, key
  kCorrupt,          // malformed file contents
  kUnsupported,      // valid input we do not handle (architecture, tensor type)
  kOutOfRange,       // e.g. prompt longer than the context
  kResourceExhausted,
  kIo,
  kInternal,
  kCancelled,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: tensor 'blk.0.attn_q.weight' data runs past end of file".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIo, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : value_(std::move(value)) {}          // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace akv

#define AKV_CONCAT_INNER(a, b) a##b
#define AKV_CONCAT(a, b) AKV_CONCAT_INNER(a, b)

#define AKV_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::akv::Status _akv_st = (expr);        \
    if (!_akv_st.ok()) return _akv_st;     \
  } while (0)

#define AKV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#define AKV_ASSIGN_OR_RETURN(lhs, expr) \
  AKV_ASSIGN_OR_RETURN_IMPL(AKV_CONCAT(_akv_so_, __LINE__), lhs, expr)
