// The argument layout of the FusedAdamW ops.Custom AOT calls, shared by the CPU
// and GPU entry points, and its validation (docs/kernel-interface.md).
//
//   inputs : lr, weight_decay, global_step, hyper(beta1, beta2, eps),
//            grad_ctl(grad_scale, grad_clip, skip), rng(seed, index_base),
//            param_0 .. param_{n-1}, grad_0 .. grad_{n-1},
//            exp_avg, exp_avg_sq, [max_exp_avg_sq: kAmsgrad], [master: kMaster]
//   output : one float32 element (a dummy: the update is written in place)
//
// The variant flags come from the entry point's name, so the layout is known
// before any value is read. lr / weight_decay are float32 [1], global_step
// int32 [1] already incremented (t = 1 on the first step); the flat states hold
// padded_total elements (align_state between tensors).
//
// The gradient-norm pass (FusedGradNorm): inputs grad_scale float32 [1],
// grad_0 .. grad_{n-1}; output float64 [2] = (sum of squares, nonfinite flag).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/cpu/adamw_cpu.h"

namespace fused_adamw {

struct GroupArgs {
  const float* lr;
  const float* weight_decay;
  const int32_t* step;
  const float* hyper;     // beta1, beta2, eps
  const float* grad_ctl;  // grad_scale, grad_clip, skip
  const int64_t* rng;     // seed, index_base
  std::vector<TensorRef> tensors;
  GroupStates states;
  int64_t padded_total;
};

constexpr int kLeadingInputs = 6;  // lr, weight_decay, global_step, hyper, grad_ctl, rng

bool dtype_from_name(const char* name, DType* out);

// Checks counts, dtypes and shapes (not values: on a GPU they live in device
// memory) for the variant `flags` and fills `out`. Returns "" on success, otherwise
// a message naming the offending argument. Reuses out->tensors' storage, so
// steady-state calls do not allocate.
std::string parse_group_args(unsigned flags, int nparam, void** params, const int* ndims, int64_t** shapes,
                             const char** dtypes, GroupArgs* out);

// The norm pass's layout: fills tensors (param fields null) and grad_scale.
std::string parse_norm_args(int nparam, void** params, const int* ndims, int64_t** shapes,
                            const char** dtypes, std::vector<TensorRef>* grads, const float** grad_scale);

// Checks the values of the scalars (host memory only): lr and weight decay finite
// and >= 0, step >= 1, betas in (0, 1), eps finite and > 0, gradient factors finite.
// Returns "" or a message.
std::string check_scalar_values(float lr, float weight_decay, int64_t step, float beta1,
                                float beta2, float eps, float grad_scale = 1.0f, float grad_clip = 1.0f);

// Reports an error of an AOT entry point on stderr (MindSpore only sees the return code).
int report_error(const char* entry, const std::string& message);

}  // namespace fused_adamw
