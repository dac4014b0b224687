#include "aot_args.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace fused_adamw {
namespace {

int64_t numel_of(int ndim, const int64_t* shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

std::string shape_str(int ndim, const int64_t* shape) {
  std::string s = "(";
  for (int d = 0; d < ndim; ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + (ndim == 1 ? ",)" : ")");
}

std::string check_scalar(const char* what, int i, const int* ndims, int64_t** shapes,
                         const char** dtypes, const char* dtype, int64_t count) {
  if (std::strcmp(dtypes[i], dtype) != 0)
    return std::string(what) + " must be " + dtype + ", got " + dtypes[i];
  if (numel_of(ndims[i], shapes[i]) != count)
    return std::string(what) + " must have " + std::to_string(count) + " element(s), got shape " +
           shape_str(ndims[i], shapes[i]);
  return "";
}

}  // namespace

bool dtype_from_name(const char* name, DType* out) {
  if (std::strcmp(name, "float32") == 0) *out = DType::kFloat32;
  else if (std::strcmp(name, "float16") == 0) *out = DType::kFloat16;
  else if (std::strcmp(name, "bfloat16") == 0) *out = DType::kBFloat16;
  else return false;
  return true;
}

std::string parse_group_args(unsigned flags, int nparam, void** params, const int* ndims, int64_t** shapes,
                             const char** dtypes, GroupArgs* out) {
  if (!variant_valid(flags)) return "invalid variant flags " + std::to_string(flags);
  const int num_states = 2 + ((flags & kAmsgrad) ? 1 : 0) + ((flags & kMaster) ? 1 : 0);
  const int fixed = kLeadingInputs + num_states + 1;
  if (nparam < fixed + 2 || (nparam - fixed) % 2 != 0)
    return "expected 2n + " + std::to_string(fixed) + " arguments (lr, weight_decay, global_step, hyper, "
           "grad_ctl, rng, n params, n grads, " + std::to_string(num_states) + " states, output) with n >= 1, got " +
           std::to_string(nparam);
  const int n = (nparam - fixed) / 2;
  std::string err;
  if (!(err = check_scalar("lr", 0, ndims, shapes, dtypes, "float32", 1)).empty()) return err;
  if (!(err = check_scalar("weight_decay", 1, ndims, shapes, dtypes, "float32", 1)).empty()) return err;
  if (!(err = check_scalar("global_step", 2, ndims, shapes, dtypes, "int32", 1)).empty()) return err;
  if (!(err = check_scalar("hyper", 3, ndims, shapes, dtypes, "float32", 3)).empty()) return err;
  if (!(err = check_scalar("grad_ctl", 4, ndims, shapes, dtypes, "float32", 3)).empty()) return err;
  if (!(err = check_scalar("rng", 5, ndims, shapes, dtypes, "int64", 2)).empty()) return err;

  out->tensors.clear();
  int64_t total = 0;
  for (int k = 0; k < n; ++k) {
    const int pi = kLeadingInputs + k, gi = kLeadingInputs + n + k;
    const std::string name = "param " + std::to_string(k);
    TensorRef t;
    if (!dtype_from_name(dtypes[pi], &t.dtype))
      return name + ": dtype must be float32, float16 or bfloat16, got " + dtypes[pi];
    if (!dtype_from_name(dtypes[gi], &t.grad_dtype) || (t.grad_dtype != t.dtype && t.grad_dtype != DType::kFloat32))
      return "gradient " + std::to_string(k) + ": dtype " + dtypes[gi] + " must be its parameter's (" + dtypes[pi] +
             ") or float32";
    if (ndims[gi] != ndims[pi] || std::memcmp(shapes[gi], shapes[pi], sizeof(int64_t) * ndims[pi]) != 0)
      return "gradient " + std::to_string(k) + ": shape " + shape_str(ndims[gi], shapes[gi]) +
             " differs from its parameter's " + shape_str(ndims[pi], shapes[pi]);
    t.param = params[pi];
    t.grad = params[gi];
    t.numel = numel_of(ndims[pi], shapes[pi]);
    total = align_state(total) + t.numel;
    out->tensors.push_back(t);
  }
  const char* state_dtype = (flags & kBf16State) ? "bfloat16" : "float32";
  const char* state_names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  void* state_ptrs[4] = {};
  int s = kLeadingInputs + 2 * n;
  for (int k = 0; k < 2 + ((flags & kAmsgrad) ? 1 : 0); ++k, ++s) {
    if (!(err = check_scalar(state_names[k], s, ndims, shapes, dtypes, state_dtype, total)).empty()) return err;
    state_ptrs[k] = params[s];
  }
  if (flags & kMaster) {
    if (!(err = check_scalar("master", s, ndims, shapes, dtypes, "float32", total)).empty()) return err;
    state_ptrs[3] = params[s];
  }
  out->lr = static_cast<const float*>(params[0]);
  out->weight_decay = static_cast<const float*>(params[1]);
  out->step = static_cast<const int32_t*>(params[2]);
  out->hyper = static_cast<const float*>(params[3]);
  out->grad_ctl = static_cast<const float*>(params[4]);
  out->rng = static_cast<const int64_t*>(params[5]);
  out->states.exp_avg = state_ptrs[0];
  out->states.exp_avg_sq = state_ptrs[1];
  out->states.max_exp_avg_sq = state_ptrs[2];
  out->states.master = static_cast<float*>(state_ptrs[3]);
  out->padded_total = total;
  return "";
}

std::string parse_norm_args(int nparam, void** params, const int* ndims, int64_t** shapes,
                            const char** dtypes, std::vector<TensorRef>* grads, const float** grad_scale) {
  if (nparam < 3) return "expected grad_scale, n >= 1 gradients and the output, got " + std::to_string(nparam);
  std::string err;
  if (!(err = check_scalar("grad_scale", 0, ndims, shapes, dtypes, "float32", 1)).empty()) return err;
  if (!(err = check_scalar("output", nparam - 1, ndims, shapes, dtypes, "float64", 2)).empty()) return err;
  grads->clear();
  for (int k = 1; k < nparam - 1; ++k) {
    TensorRef t{};
    if (!dtype_from_name(dtypes[k], &t.grad_dtype))
      return "gradient " + std::to_string(k - 1) + ": dtype must be float32, float16 or bfloat16, got " + dtypes[k];
    t.dtype = t.grad_dtype;
    t.grad = params[k];
    t.numel = numel_of(ndims[k], shapes[k]);
    grads->push_back(t);
  }
  *grad_scale = static_cast<const float*>(params[0]);
  return "";
}

std::string check_scalar_values(float lr, float weight_decay, int64_t step, float beta1,
                                float beta2, float eps, float grad_scale, float grad_clip) {
  if (!std::isfinite(lr) || lr < 0.0f) return "learning rate must be finite and >= 0, got " + std::to_string(lr);
  if (!std::isfinite(weight_decay) || weight_decay < 0.0f)
    return "weight_decay must be finite and >= 0, got " + std::to_string(weight_decay);
  if (step < 1) return "global_step must be >= 1 after the increment, got " + std::to_string(step);
  if (!(beta1 > 0.0f && beta1 < 1.0f)) return "beta1 must be in (0, 1), got " + std::to_string(beta1);
  if (!(beta2 > 0.0f && beta2 < 1.0f)) return "beta2 must be in (0, 1), got " + std::to_string(beta2);
  if (!(eps > 0.0f) || !std::isfinite(eps)) return "eps must be finite and > 0, got " + std::to_string(eps);
  if (!std::isfinite(grad_scale)) return "grad_scale must be finite, got " + std::to_string(grad_scale);
  if (!std::isfinite(grad_clip)) return "grad_clip must be finite, got " + std::to_string(grad_clip);
  return "";
}

int report_error(const char* entry, const std::string& message) {
  std::fprintf(stderr, "fused_adamw %s: %s\n", entry, message.c_str());
  std::fflush(stderr);
  return 1;
}

}  // namespace fused_adamw
