// CUDA backend: host interface of the fused AdamW kernel. Free of CUDA headers,
// so the AOT entry (csrc/aot_cuda.cpp) is plain C++.
#pragma once
#include <cstdint>

#include "../cpu/adamw_cpu.h"  // DType, TensorRef

namespace fused_adamw {
namespace cuda {

// Enqueues one AdamW step of a group on `stream` (a cudaStream_t) without
// synchronising: every pointer, including lr, weight_decay, step (t) and hyper
// (beta1, beta2, eps), is device memory, read only by the kernel, so the step
// can be captured in a CUDA graph. Writes 0 to *status (device), or NaN and
// leaves everything unchanged if the values are invalid (see adamw_kernel.cuh).
// Returns nullptr, or a message naming the failed CUDA call (valid until the
// calling thread's next call).
const char* adamw_step_async(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq,
                             const float* lr, const float* weight_decay, const int32_t* step,
                             const float* hyper, float* status, void* stream);

}  // namespace cuda
}  // namespace fused_adamw
