// ops.Custom(func_type="aot") entry points for MindSpore's CPU target. The
// optimizer (python/fused_adamw/_custom_op.py) builds one such op per group;
// the variant flags (docs/kernel-interface.md) are part of the entry's name.
#include <cstdint>

#include "../kernels/common/rounding.h"
#include "aot_args.h"
#include "call_record.h"

using namespace fused_adamw;

namespace {

// Updates a group's params and flat states in place; see aot_args.h for the layout.
int adamw_entry(unsigned flags, const char* entry, int nparam, void** params, int* ndims, int64_t** shapes,
                const char** dtypes) {
  thread_local GroupArgs args;  // reused: no allocation per step
  std::string err = parse_group_args(flags, nparam, params, ndims, shapes, dtypes, &args);
  if (!err.empty()) return report_error(entry, err);
  // The single float32 output is a dummy that gives graph mode a value to order on.
  static_cast<float*>(params[nparam - 1])[0] = 0.0f;
  if (args.grad_ctl[2] != 0.0f) return 0;  // a skipped step (overflow, spike): nothing is written
  const float lr = *args.lr, wd = *args.weight_decay;
  const float beta1 = args.hyper[0], beta2 = args.hyper[1], eps = args.hyper[2];
  const float grad_scale = args.grad_ctl[0], grad_clip = args.grad_ctl[1];
  const int64_t step = *args.step;
  err = check_scalar_values(lr, wd, step, beta1, beta2, eps, grad_scale, grad_clip);
  if (!err.empty()) return report_error(entry, err);
  if (call_recording()) record_call(params + kLeadingInputs, static_cast<int>(args.tensors.size()), args.states);
  UpdateConfig cfg;
  cfg.flags = flags;
  cfg.sr_key = fa_sr_key(static_cast<uint64_t>(args.rng[0]), static_cast<uint32_t>(step));
  cfg.index_base = args.rng[1];
  cpu::adamw_step(args.tensors.data(), static_cast<int>(args.tensors.size()), args.states,
                  make_step_coeffs(lr, wd, step, beta1, beta2, eps, grad_scale, grad_clip), cfg);
  return 0;
}

}  // namespace

#define FA_EXPORT extern "C" __attribute__((visibility("default")))
#define FA_AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *

FA_EXPORT int FusedAdamW(FA_AOT_ARGS) { return adamw_entry(0, "FusedAdamW", nparam, params, ndims, shapes, dtypes); }

// FusedAdamW_v<flags>: one entry per valid variant (master and stochastic exclude each other).
#define FA_VARIANT_ENTRY(F)                                                                         \
  FA_EXPORT int FusedAdamW_v##F(FA_AOT_ARGS) {                                                     \
    return adamw_entry(F, "FusedAdamW_v" #F, nparam, params, ndims, shapes, dtypes);               \
  }
FA_VARIANT_ENTRY(0) FA_VARIANT_ENTRY(1) FA_VARIANT_ENTRY(2) FA_VARIANT_ENTRY(3)
FA_VARIANT_ENTRY(4) FA_VARIANT_ENTRY(5) FA_VARIANT_ENTRY(8) FA_VARIANT_ENTRY(9)
FA_VARIANT_ENTRY(10) FA_VARIANT_ENTRY(11) FA_VARIANT_ENTRY(12) FA_VARIANT_ENTRY(13)

// Pass 1 of the whole step: output (sum of squares of the unscaled gradients, 1.0 if
// any is NaN/Inf). Deterministic for any thread count (adamw_cpu.h grad_sumsq).
FA_EXPORT int FusedGradNorm(FA_AOT_ARGS) {
  thread_local std::vector<TensorRef> grads;
  const float* grad_scale = nullptr;
  const std::string err = parse_norm_args(nparam, params, ndims, shapes, dtypes, &grads, &grad_scale);
  if (!err.empty()) return report_error("FusedGradNorm", err);
  const cpu::GradNorm r = cpu::grad_sumsq(grads.data(), static_cast<int>(grads.size()), *grad_scale);
  double* out = static_cast<double*>(params[nparam - 1]);
  out[0] = r.sumsq;
  out[1] = r.nonfinite ? 1.0 : 0.0;
  return 0;
}
