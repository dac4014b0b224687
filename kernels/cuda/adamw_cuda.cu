// CUDA backend: launches of the fused AdamW kernel for one parameter group.
// Table building and splitting live in adamw_table.h (shared with the CPU
// emulation tests); this file adds what needs the CUDA runtime: grid sizing
// from the device, the launches, and error checks.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "adamw_cuda.h"
#include "adamw_kernel.cuh"

namespace fused_adamw {
namespace cuda {
namespace {

thread_local std::string t_error;  // the last message of this thread (returned by pointer)

const char* cuda_failure(const char* what, cudaError_t e) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s failed: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
  t_error = buf;
  return t_error.c_str();
}

// Resident blocks the device holds at once (SMs x blocks per SM for this
// kernel), cached per device: the queries do not synchronise, but need not be
// repeated every step.
constexpr int kCachedDevices = 64;
std::atomic<int> g_device_blocks[kCachedDevices];

const char* device_blocks(int* out) {
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return cuda_failure("cudaGetDevice", e);
  if (device >= 0 && device < kCachedDevices) {
    *out = g_device_blocks[device].load(std::memory_order_relaxed);
    if (*out > 0) return nullptr;
  }
  int sms = 0, per_sm = 0;
  e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return cuda_failure("cudaDeviceGetAttribute(MultiProcessorCount)", e);
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, adamw_kernel, kBlockThreads, 0);
  if (e != cudaSuccess) return cuda_failure("cudaOccupancyMaxActiveBlocksPerMultiprocessor(adamw_kernel)", e);
  *out = sms * (per_sm > 0 ? per_sm : 1);
  if (device >= 0 && device < kCachedDevices) g_device_blocks[device].store(*out, std::memory_order_relaxed);
  return nullptr;
}

}  // namespace

const char* adamw_step_async(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq,
                             const float* lr, const float* weight_decay, const int32_t* step,
                             const float* hyper, float* status, void* stream) {
  int blocks = 0;
  if (const char* err = device_blocks(&blocks)) return err;
  thread_local AdamWTable table;  // 32 KB of scratch reused by every step of this thread
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  int launch_index = 0;
  return run_group(tensors, count, exp_avg, exp_avg_sq, lr, weight_decay, step, hyper, status,
                   kMaxTensors, blocks, &table, [&](const AdamWTable& t, int grid) -> const char* {
                     adamw_kernel<<<grid, kBlockThreads, 0, s>>>(t);
                     const cudaError_t e = cudaGetLastError();  // launch errors; does not synchronise
                     if (e == cudaSuccess) {
                       ++launch_index;
                       return nullptr;
                     }
                     char what[160];
                     std::snprintf(what, sizeof what, "launch %d of adamw_kernel (%d tensors, grid %d x %d)",
                                   launch_index + 1, t.count, grid, kBlockThreads);
                     return cuda_failure(what, e);
                   });
}

}  // namespace cuda
}  // namespace fused_adamw
