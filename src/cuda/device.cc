// Device discovery and the "was this build made for this GPU" check.
#include <cuda_runtime.h>

#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_util.h"
#include "cuda/kernels.h"

#ifndef AKV_CUDA_ARCH_LIST
#define AKV_CUDA_ARCH_LIST "unknown"
#endif

namespace akv::cuda {

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

std::string BuiltArchitectures() { return AKV_CUDA_ARCH_LIST; }

StatusOr<DeviceInfo> QueryDevice(int device) {
  const int n = DeviceCount();
  if (n == 0) return Unsupported("CUDA: no CUDA device is available (no GPU or no driver)");
  if (device < 0 || device >= n)
    return InvalidArgument("CUDA: device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                           " present)");
  cudaDeviceProp prop{};
  AKV_CUDA_RETURN(cudaGetDeviceProperties(&prop, device));
  DeviceInfo info;
  info.index = device;
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.l2_bytes = prop.l2CacheSize;
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  info.driver_version = std::to_string(drv / 1000) + "." + std::to_string((drv % 1000) / 10);
  info.runtime_version = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
  const std::string cc = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
  if (prop.major < 8)
    return Unsupported("CUDA: device " + std::to_string(device) + " (" + info.name + ", " + cc +
                       ") is older than sm_80, the oldest architecture akv supports; this build carries " +
                       BuiltArchitectures());
  AKV_CUDA_RETURN(cudaSetDevice(device));
  int binary = 0, ptx = 0;
  cudaError_t e = ProbeKernelImage(&binary, &ptx);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return Unsupported("CUDA: this build has no code for device " + std::to_string(device) + " (" + info.name + ", " +
                       cc + "): it carries " + BuiltArchitectures() + " (" + cudaGetErrorString(e) +
                       "); rebuild with -DCMAKE_CUDA_ARCHITECTURES including " + std::to_string(prop.major) +
                       std::to_string(prop.minor));
  }
  size_t free_b = 0, total_b = 0;
  AKV_CUDA_RETURN(cudaMemGetInfo(&free_b, &total_b));
  info.free_bytes = static_cast<int64_t>(free_b);
  info.total_bytes = static_cast<int64_t>(total_b);
  return info;
}

StatusOr<int64_t> DeviceBytesInUse(int device) {
  AKV_CUDA_RETURN(cudaSetDevice(device));
  size_t free_b = 0, total_b = 0;
  AKV_CUDA_RETURN(cudaMemGetInfo(&free_b, &total_b));
  return static_cast<int64_t>(total_b - free_b);
}

}  // namespace akv::cuda
