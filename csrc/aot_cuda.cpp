// ops.Custom(func_type="aot") entry points for MindSpore's GPU target. Same
// argument layouts as the CPU entries (aot_args.h, docs/kernel-interface.md);
// every pointer is device memory, so the per-step values (lr, weight_decay,
// global_step, hyper, grad_ctl, rng) are read by the kernels, never here: a
// step enqueues work on MindSpore's stream and returns without synchronising
// (and can be captured in a CUDA graph).
#include <cstdint>
#include <vector>

#include "../kernels/cuda/adamw_cuda.h"
#include "aot_args.h"

using namespace fused_adamw;

namespace {

// Updates a group's params and flat states in place with the variant `flags`.
// Returns 0, or 1 with the reason on stderr (argument layout, or the CUDA call
// that failed). Invalid values (negative lr, t < 1, ...) cannot be rejected
// without a sync: the kernel then changes nothing and writes NaN to the dummy
// output instead of 0. A skipped step (grad_ctl[2] != 0) writes nothing but 0.
int adamw_entry(unsigned flags, const char* entry, int nparam, void** params, int* ndims, int64_t** shapes,
                const char** dtypes, void* stream) {
  thread_local GroupArgs args;  // reused: no allocation per step
  const std::string err = parse_group_args(flags, nparam, params, ndims, shapes, dtypes, &args);
  if (!err.empty()) return report_error(entry, err);
  cuda::StepValues values;
  values.lr = args.lr;
  values.weight_decay = args.weight_decay;
  values.step = args.step;
  values.hyper = args.hyper;
  values.grad_ctl = args.grad_ctl;
  values.rng = args.rng;
  values.status = static_cast<float*>(params[nparam - 1]);
  const char* cuda_err = cuda::adamw_step_async(flags, args.tensors.data(), static_cast<int>(args.tensors.size()),
                                                args.states, values, stream);
  if (cuda_err) return report_error(entry, cuda_err);
  return 0;
}

}  // namespace

#define FA_EXPORT extern "C" __attribute__((visibility("default")))
#define FA_AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, void *

FA_EXPORT int FusedAdamWGPU(FA_AOT_ARGS) {
  return adamw_entry(0, "FusedAdamWGPU", nparam, params, ndims, shapes, dtypes, stream);
}

// FusedAdamWGPU_v<flags>: one entry per valid variant (master and stochastic exclude each other).
#define FA_GPU_VARIANT_ENTRY(F)                                                                    \
  FA_EXPORT int FusedAdamWGPU_v##F(FA_AOT_ARGS) {                                                 \
    return adamw_entry(F, "FusedAdamWGPU_v" #F, nparam, params, ndims, shapes, dtypes, stream);   \
  }
FA_GPU_VARIANT_ENTRY(0) FA_GPU_VARIANT_ENTRY(1) FA_GPU_VARIANT_ENTRY(2) FA_GPU_VARIANT_ENTRY(3)
FA_GPU_VARIANT_ENTRY(4) FA_GPU_VARIANT_ENTRY(5) FA_GPU_VARIANT_ENTRY(8) FA_GPU_VARIANT_ENTRY(9)
FA_GPU_VARIANT_ENTRY(10) FA_GPU_VARIANT_ENTRY(11) FA_GPU_VARIANT_ENTRY(12) FA_GPU_VARIANT_ENTRY(13)

// Pass 1 of the whole step: output float64 [2] = (sum of squares of the
// unscaled gradients, 1.0 if any is NaN/Inf), computed on the device in the CPU
// kernel's order (the same bits), without synchronising.
FA_EXPORT int FusedGradNormGPU(FA_AOT_ARGS) {
  thread_local std::vector<TensorRef> grads;
  const float* grad_scale = nullptr;
  const std::string err = parse_norm_args(nparam, params, ndims, shapes, dtypes, &grads, &grad_scale);
  if (!err.empty()) return report_error("FusedGradNormGPU", err);
  const char* cuda_err = cuda::grad_norm_async(grads.data(), static_cast<int>(grads.size()), grad_scale,
                                               static_cast<double*>(params[nparam - 1]), stream);
  if (cuda_err) return report_error("FusedGradNormGPU", cuda_err);
  return 0;
}
