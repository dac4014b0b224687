// ops.Custom(func_type="aot") entry point for MindSpore's GPU target. Same
// argument layout as the CPU entry (aot_args.h); every pointer is device memory,
// so the values of lr, weight_decay, global_step and hyper are read by the
// kernel, never here: a step enqueues work on MindSpore's stream and returns
// without synchronising (and can be captured in a CUDA graph).
#include <cstdint>

#include "../kernels/cuda/adamw_cuda.h"
#include "aot_args.h"

using namespace fused_adamw;

// Updates a group's params and flat states in place. Returns 0, or 1 with the
// reason on stderr (argument layout, or the CUDA call that failed). Invalid
// values (negative lr, t < 1, ...) cannot be rejected without a sync: the kernel
// then changes nothing and writes NaN to the dummy output instead of 0.
extern "C" __attribute__((visibility("default"))) int FusedAdamWGPU(int nparam, void** params, int* ndims,
                                                                    int64_t** shapes, const char** dtypes,
                                                                    void* stream, void* /*extra*/) {
  thread_local GroupArgs args;  // reused: no allocation per step
  // Only the default variant (flags 0) has a CUDA kernel so far; its gradient
  // factors and skip flag (grad_ctl) are not applied on the GPU yet.
  const std::string err = parse_group_args(0, nparam, params, ndims, shapes, dtypes, &args);
  if (!err.empty()) return report_error("FusedAdamWGPU", err);
  for (const TensorRef& t : args.tensors)
    if (t.grad_dtype != t.dtype) return report_error("FusedAdamWGPU", "float32 gradients for 16-bit parameters are not supported by the CUDA kernel yet");
  const char* cuda_err = cuda::adamw_step_async(
      args.tensors.data(), static_cast<int>(args.tensors.size()), static_cast<float*>(args.states.exp_avg),
      static_cast<float*>(args.states.exp_avg_sq), args.lr,
      args.weight_decay, args.step, args.hyper, static_cast<float*>(params[nparam - 1]), stream);
  if (cuda_err) return report_error("FusedAdamWGPU", cuda_err);
  return 0;
}
