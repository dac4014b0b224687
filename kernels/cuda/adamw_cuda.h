// CUDA backend: host interface of the fused AdamW kernel and of the gradient
// norm pass. Free of CUDA headers, so the AOT entry (csrc/aot_cuda.cpp) is plain C++.
#pragma once
#include <cstdint>

#include "../cpu/adamw_cpu.h"  // DType, TensorRef, GroupStates
#include "adamw_table.h"       // StepValues

namespace fused_adamw {
namespace cuda {

// Enqueues one AdamW step of a group with the variant `flags`
// (docs/kernel-interface.md) on `stream` (a cudaStream_t) without
// synchronising: every pointer, including the per-step values (lr,
// weight_decay, t, hyper, grad_ctl, rng), is device memory, read only by the
// kernel, so the step can be captured in a CUDA graph. Writes 0 to *status
// (device) after a step or a skipped one (grad_ctl[2] != 0: nothing else is
// written), or NaN and leaves everything unchanged if the values are invalid
// (see adamw_kernel.cuh). States use the padded layout (adamw_table.h).
// Returns nullptr, or a message naming the failed CUDA call or the invalid
// flags (valid until the calling thread's next call).
const char* adamw_step_async(unsigned flags, const TensorRef* tensors, int count, const GroupStates& states,
                             const StepValues& values, void* stream);

// Pass 1 of the whole step (issue 14): out[0] = the sum of squares of the
// unscaled gradients float32(g * *grad_scale), out[1] = 1.0 if any of them is
// NaN/Inf else 0.0, both float64 in device memory; the same bits as the CPU's
// cpu::grad_sumsq (see grad_norm_kernel.cuh). Enqueued without synchronising.
const char* grad_norm_async(const TensorRef* grads, int count, const float* grad_scale, double* out,
                            void* stream);

}  // namespace cuda
}  // namespace fused_adamw
