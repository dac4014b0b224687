// The argument layout of the FusedAdamW ops.Custom AOT call, shared by the CPU
// and GPU entry points, and its validation.
//
//   inputs : lr, weight_decay, global_step, hyper(beta1, beta2, eps),
//            param_0 .. param_{n-1}, grad_0 .. grad_{n-1}, exp_avg, exp_avg_sq
//   output : one float32 element (a dummy: the update is written in place)
//
// so nparam = 2n + 7. lr / weight_decay are float32 scalars (shape () or [1]),
// global_step is int32 [1] already incremented (t = 1 on the first step), and
// exp_avg / exp_avg_sq are the group's flat float32 states, sum(numel) long.
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
  const float* hyper;  // beta1, beta2, eps
  std::vector<TensorRef> tensors;
  float* exp_avg;
  float* exp_avg_sq;
};

constexpr int kLeadingInputs = 4;   // lr, weight_decay, global_step, hyper
constexpr int kTrailingParams = 3;  // exp_avg, exp_avg_sq, output

bool dtype_from_name(const char* name, DType* out);

// Checks counts, dtypes and shapes (not values: on a GPU they live in device
// memory) and fills `out`. Returns "" on success, otherwise a message naming the
// offending argument. Reuses out->tensors' storage, so steady-state calls do not allocate.
std::string parse_group_args(int nparam, void** params, const int* ndims, int64_t** shapes,
                             const char** dtypes, GroupArgs* out);

// Checks the values of the scalars (host memory only): lr and weight decay finite
// and >= 0, step >= 1, betas in (0, 1), eps > 0. Returns "" or a message.
std::string check_scalar_values(float lr, float weight_decay, int64_t step, float beta1,
                                float beta2, float eps);

// Reports an error of an AOT entry point on stderr (MindSpore only sees the return code).
int report_error(const char* entry, const std::string& message);

}  // namespace fused_adamw
