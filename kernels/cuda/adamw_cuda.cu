// CUDA backend: launches of the fused AdamW kernel and of the gradient-norm
// kernels for one parameter group. Table building and splitting live in
// adamw_table.h / grad_norm_table.h (shared with the CPU emulation tests); this
// file adds what needs the CUDA runtime: grid sizing from the device, scratch
// memory, the launches, and error checks.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "adamw_cuda.h"
#include "adamw_kernel.cuh"
#include "grad_norm_kernel.cuh"

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
// kernel), cached per device and variant: the queries do not synchronise, but
// need not be repeated every step.
constexpr int kCachedDevices = 64;
std::atomic<int> g_device_blocks[kCachedDevices][kNumVariantFlags];

const char* device_blocks(unsigned flags, KernelFn kernel, int* out) {
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return cuda_failure("cudaGetDevice", e);
  const bool cached = device >= 0 && device < kCachedDevices;
  if (cached) {
    *out = g_device_blocks[device][flags].load(std::memory_order_relaxed);
    if (*out > 0) return nullptr;
  }
  int sms = 0, per_sm = 0;
  e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return cuda_failure("cudaDeviceGetAttribute(MultiProcessorCount)", e);
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kBlockThreads, 0);
  if (e != cudaSuccess) return cuda_failure("cudaOccupancyMaxActiveBlocksPerMultiprocessor(adamw_kernel)", e);
  *out = sms * (per_sm > 0 ? per_sm : 1);
  if (cached) g_device_blocks[device][flags].store(*out, std::memory_order_relaxed);
  return nullptr;
}

}  // namespace

const char* adamw_step_async(unsigned flags, const TensorRef* tensors, int count, const GroupStates& states,
                             const StepValues& values, void* stream) {
  const KernelFn kernel = flags < kNumVariantFlags ? kernel_for(flags) : nullptr;
  if (kernel == nullptr) {
    t_error = "invalid variant flags " + std::to_string(flags);
    return t_error.c_str();
  }
  int blocks = 0;
  if (const char* err = device_blocks(flags, kernel, &blocks)) return err;
  thread_local AdamWTable table;  // 32 KB of scratch reused by every step of this thread
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  int launch_index = 0;
  return run_group(tensors, count, states, flags, values, kMaxTensors, blocks, &table,
                   [&](const AdamWTable& t, int grid) -> const char* {
                     kernel<<<grid, kBlockThreads, 0, s>>>(t);
                     const cudaError_t e = cudaGetLastError();  // launch errors; does not synchronise
                     if (e == cudaSuccess) {
                       ++launch_index;
                       return nullptr;
                     }
                     char what[160];
                     std::snprintf(what, sizeof what, "launch %d of adamw_kernel<%u> (%d tensors, grid %d x %d)",
                                   launch_index + 1, flags, t.count, grid, kBlockThreads);
                     return cuda_failure(what, e);
                   });
}

const char* grad_norm_async(const TensorRef* grads, int count, const float* grad_scale, double* out,
                            void* stream) {
  int sms = 0, device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return cuda_failure("cudaGetDevice", e);
  e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return cuda_failure("cudaDeviceGetAttribute(MultiProcessorCount)", e);
  const int device_blocks = sms * (2048 / kNormBlockThreads);  // resident 256-thread blocks (sm_80/sm_90)
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  // Scratch: 16 float64 accumulators and one sum per chunk (0.2% of float32
  // gradient bytes) and the flag, stream-ordered (no host synchronisation;
  // capturable in a CUDA graph), zeroed on the stream, freed after the last kernel.
  const int64_t chunks = norm_chunks(grads, count);
  const size_t lane_bytes = static_cast<size_t>(chunks) * kNormLanes * sizeof(double);
  const size_t sum_bytes = static_cast<size_t>(chunks) * sizeof(double);
  const size_t bytes = lane_bytes + sum_bytes + sizeof(int);
  void* scratch = nullptr;
  e = cudaMallocAsync(&scratch, bytes, s);
  if (e != cudaSuccess) return cuda_failure("cudaMallocAsync(norm scratch)", e);
  double* lanes = static_cast<double*>(scratch);
  double* sums = lanes + chunks * kNormLanes;
  int* nonfinite = reinterpret_cast<int*>(sums + chunks);
  const char* failure = nullptr;
  e = cudaMemsetAsync(scratch, 0, bytes, s);
  if (e != cudaSuccess) failure = cuda_failure("cudaMemsetAsync(norm scratch)", e);
  thread_local NormTable table;  // 26 KB of scratch reused by every call of this thread
  auto checked = [](const char* what) -> const char* {
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? nullptr : cuda_failure(what, err);
  };
  if (!failure)
    failure = run_norm(
        grads, count, grad_scale, lanes, nonfinite, kMaxNormTensors, device_blocks, &table,
        [&](const NormTable& t, int grid) {
          grad_norm_lanes_kernel<<<grid, kNormBlockThreads, 0, s>>>(t);
          return checked("launch of grad_norm_lanes_kernel");
        },
        [&](int grid) {
          grad_norm_chunks_kernel<<<grid, kNormBlockThreads, 0, s>>>(lanes, sums, chunks);
          return checked("launch of grad_norm_chunks_kernel");
        },
        [&]() {
          grad_norm_total_kernel<<<1, 1, 0, s>>>(sums, chunks, nonfinite, out);
          return checked("launch of grad_norm_total_kernel");
        });
  e = cudaFreeAsync(scratch, s);
  if (e != cudaSuccess && !failure) failure = cuda_failure("cudaFreeAsync(norm scratch)", e);
  return failure;
}

}  // namespace cuda
}  // namespace fused_adamw
