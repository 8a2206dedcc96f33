// Internal helpers of the CUDA backend: error checking that turns CUDA errors into Status,
// and an owning device buffer. Only src/cuda includes this (it pulls in the CUDA runtime).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "core/status.h"

namespace akv::cuda {

inline Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  const StatusCode code = e == cudaErrorMemoryAllocation ? StatusCode::kResourceExhausted : StatusCode::kInternal;
  return Status(code, std::string("CUDA: ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

#define AKV_CUDA_RETURN(expr)                                        \
  do {                                                               \
    cudaError_t _akv_ce = (expr);                                    \
    if (_akv_ce != cudaSuccess) return ::akv::cuda::CudaStatus(_akv_ce, #expr); \
  } while (0)

// After a kernel launch: launch-configuration errors (and sticky earlier errors).
#define AKV_CUDA_LAUNCH_CHECK(what) AKV_CUDA_RETURN(cudaGetLastError())

// An owning device allocation (cudaMalloc; never managed memory).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  Status Allocate(size_t bytes, const char* what) {
    Reset();
    if (bytes == 0) return Status::Ok();
    cudaError_t e = cudaMalloc(&ptr_, bytes);
    if (e != cudaSuccess) {
      ptr_ = nullptr;
      (void)cudaGetLastError();
      return Status(StatusCode::kResourceExhausted, std::string("CUDA: cannot allocate ") + std::to_string(bytes) +
                                                        " bytes of device memory for " + what + ": " +
                                                        cudaGetErrorString(e));
    }
    bytes_ = bytes;
    return Status::Ok();
  }
  void Reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  template <typename T = void>
  T* get() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// An owning pinned (page-locked) host allocation: the cold tier and asynchronous copies.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Reset(); }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  Status Allocate(size_t bytes, const char* what) {
    Reset();
    if (bytes == 0) return Status::Ok();
    cudaError_t e = cudaMallocHost(&ptr_, bytes);
    if (e != cudaSuccess) {
      ptr_ = nullptr;
      (void)cudaGetLastError();
      return Status(StatusCode::kResourceExhausted, std::string("CUDA: cannot allocate ") + std::to_string(bytes) +
                                                        " bytes of pinned host memory for " + what + ": " +
                                                        cudaGetErrorString(e));
    }
    bytes_ = bytes;
    return Status::Ok();
  }
  void Reset() {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  template <typename T = void>
  T* get() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// An owning CUDA event (timing disabled): ordering between streams and host waits.
class CudaEvent {
 public:
  CudaEvent() = default;
  ~CudaEvent() { Reset(); }
  CudaEvent(CudaEvent&& o) noexcept : ev_(std::exchange(o.ev_, nullptr)) {}
  CudaEvent& operator=(CudaEvent&& o) noexcept {
    if (this != &o) {
      Reset();
      ev_ = std::exchange(o.ev_, nullptr);
    }
    return *this;
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  Status Create() {
    Reset();
    cudaError_t e = cudaEventCreateWithFlags(&ev_, cudaEventDisableTiming);
    if (e != cudaSuccess) {
      ev_ = nullptr;
      (void)cudaGetLastError();
      return Internal(std::string("CUDA: cannot create an event: ") + cudaGetErrorString(e));
    }
    return Status::Ok();
  }
  void Reset() {
    if (ev_) cudaEventDestroy(ev_);
    ev_ = nullptr;
  }
  cudaEvent_t get() const { return ev_; }

 private:
  cudaEvent_t ev_ = nullptr;
};

inline int CeilDiv(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace akv::cuda
