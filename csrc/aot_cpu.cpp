// ops.Custom(func_type="aot") entry points for MindSpore's CPU target. The
// optimizer (python/fused_adamw/_custom_op.py) builds one such op per group.
#include <cstdint>

#include "aot_args.h"
#include "call_record.h"

using namespace fused_adamw;

// Updates a group's params and flat states in place; see aot_args.h for the layout.
extern "C" __attribute__((visibility("default"))) int FusedAdamW(int nparam, void** params, int* ndims, int64_t** shapes,
                          const char** dtypes, void* /*stream*/, void* /*extra*/) {
  thread_local GroupArgs args;  // reused: no allocation per step
  std::string err = parse_group_args(nparam, params, ndims, shapes, dtypes, &args);
  if (!err.empty()) return report_error("FusedAdamW", err);
  const float lr = *args.lr, wd = *args.weight_decay;
  const float beta1 = args.hyper[0], beta2 = args.hyper[1], eps = args.hyper[2];
  const int64_t step = *args.step;
  err = check_scalar_values(lr, wd, step, beta1, beta2, eps);
  if (!err.empty()) return report_error("FusedAdamW", err);
  record_call(params + kLeadingInputs, static_cast<int>(args.tensors.size()), args.exp_avg,
              args.exp_avg_sq);
  cpu::adamw_step(args.tensors.data(), static_cast<int>(args.tensors.size()), args.exp_avg,
                  args.exp_avg_sq, make_step_coeffs(lr, wd, step, beta1, beta2, eps));
  // The single float32 output is a dummy that gives graph mode a value to order on.
  static_cast<float*>(params[nparam - 1])[0] = 0.0f;
  return 0;
}
