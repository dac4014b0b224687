// The AdamW update of one element (or one SIMD vector of elements): the single
// definition of the math shared by every C++/CUDA backend. Semantics follow
// shared/reference/semantics.md (MindFormers AdamW); the options around it are
// described in docs/kernel-interface.md:
//   g  = (g * grad_scale) * grad_clip      (both 1.0 by default: exact, no change)
//   p' = p * (1 - lr*wd)
//   m  = b1*m + (1-b1)*g
//   v  = b2*v + (1-b2)*g*g
//   vmax = max(vmax, v)                     (amsgrad only; then vmax replaces v below)
//   p  = p' - (m / (sqrt(v/bc2) + eps)) * (lr/bc1)
// with bc1 = 1 - b1^t and bc2 = 1 - b2^t computed in float32, in MindFormers'
// operation order, so results track MindFormers' own float32 ops closely.
// T is float (scalar paths, CUDA) or a SIMD vector type with the usual
// arithmetic operators and an fa_sqrt overload (see kernels/cpu/simd_*.h).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FA_HOST_DEVICE inline
#endif

namespace fused_adamw {

// Compile-time variants of the update (docs/kernel-interface.md). A kernel is
// instantiated per flag combination; the flags also name the AOT entry point.
enum VariantFlag : unsigned {
  kAmsgrad = 1u,     // a third state, max_exp_avg_sq, feeds the denominator
  kMaster = 2u,      // 16-bit params: a float32 master is read and written; the param is its RNE copy
  kStochastic = 4u,  // 16-bit params: written back with stochastic rounding
  kBf16State = 8u,   // exp_avg / exp_avg_sq (/ max_exp_avg_sq) stored as bfloat16
};
constexpr unsigned kNumVariantFlags = 16;

FA_HOST_DEVICE constexpr bool variant_valid(unsigned flags) {
  return flags < kNumVariantFlags && !((flags & kMaster) && (flags & kStochastic));
}

template <unsigned kFlags>
struct Variant {
  static constexpr unsigned flags = kFlags;
  static constexpr bool amsgrad = (kFlags & kAmsgrad) != 0;
  static constexpr bool master = (kFlags & kMaster) != 0;
  static constexpr bool stochastic = (kFlags & kStochastic) != 0;
  static constexpr bool bf16_state = (kFlags & kBf16State) != 0;
};

// Per-call coefficients, derived once per kernel call from lr, wd, the step
// and the constant hyper-parameters. All float32, as MindFormers computes them.
struct StepCoeffs {
  float decay;            // 1 - lr*wd
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float step_size;        // lr / (1 - beta1^t)
  float bias_corr2;       // 1 - beta2^t
  float eps;
  float grad_scale;       // first gradient factor: 1/loss_scale (negated for maximize); 1 = none
  float grad_clip;        // second gradient factor: the clip coefficient; 1 = none
};

// beta^t in float32, the same float on every backend. glibc's powf is correctly
// rounded in practice; CUDA's device powf may be several ulps off (CUDA
// Programming Guide, mathematical functions appendix), and 1 - beta^t magnifies
// that (x333 for beta2 = 0.999 at t = 3). So device code takes the double pow
// and rounds it once, which gives the correctly rounded float, as glibc does.
FA_HOST_DEVICE float fa_powf(float x, float y) {
#if defined(__CUDA_ARCH__)
  return static_cast<float>(pow(static_cast<double>(x), static_cast<double>(y)));
#else
  return powf(x, y);
#endif
}

// t is the step after the increment (1 on the first call). The bias corrections
// are float32 `1 - powf(beta, t)`, exactly as MindFormers computes them (its Pow op
// in float32). That is not the most accurate choice (1 - beta2^t cancels digits
// early in training) but it is the contract: drop-in users expect its numbers.
FA_HOST_DEVICE StepCoeffs make_step_coeffs(float lr, float weight_decay, int64_t t,
                                           float beta1, float beta2, float eps,
                                           float grad_scale = 1.0f, float grad_clip = 1.0f) {
  StepCoeffs c;
  c.decay = 1.0f - lr * weight_decay;
  c.beta1 = beta1;
  c.one_minus_beta1 = 1.0f - beta1;  // exact for beta in [0.5, 1) (Sterbenz)
  c.beta2 = beta2;
  c.one_minus_beta2 = 1.0f - beta2;
  const float bc1 = 1.0f - fa_powf(beta1, static_cast<float>(t));
  c.step_size = lr / bc1;
  c.bias_corr2 = 1.0f - fa_powf(beta2, static_cast<float>(t));
  c.eps = eps;
  c.grad_scale = grad_scale;
  c.grad_clip = grad_clip;
  return c;
}

// Broadcast of the coefficients into the arithmetic type T.
template <class T>
struct CoeffsOf {
  T decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_corr2, eps;
  T grad_scale, grad_clip;
  FA_HOST_DEVICE explicit CoeffsOf(const StepCoeffs& c)
      : decay(c.decay), beta1(c.beta1), one_minus_beta1(c.one_minus_beta1), beta2(c.beta2),
        one_minus_beta2(c.one_minus_beta2), step_size(c.step_size),
        bias_corr2(c.bias_corr2), eps(c.eps), grad_scale(c.grad_scale), grad_clip(c.grad_clip) {}
};

FA_HOST_DEVICE float fa_sqrt(float x) { return sqrtf(x); }
// a > b ? a : b, the SSE/AVX max semantics (the second operand when either is NaN);
// SIMD types overload it with their max instruction. v is NaN whenever vmax is, so
// vmax = fa_max(vmax, v) propagates NaN like torch.maximum.
FA_HOST_DEVICE float fa_max(float a, float b) { return a > b ? a : b; }

// One AdamW update in float32. p, m, v (and vmax with amsgrad) are updated in
// place; g is read. The two gradient factors come first, in MindFormers' order
// (unscale, then clip); each is exactly 1.0 when unused, which changes nothing.
template <bool kAmsgrad, class T>
FA_HOST_DEVICE void adamw_update(T& p, T g, T& m, T& v, T& vmax, const CoeffsOf<T>& c) {
  g = (g * c.grad_scale) * c.grad_clip;
  const T decayed = p * c.decay;
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * (g * g);
  T second = v;
  if constexpr (kAmsgrad) {
    vmax = fa_max(vmax, v);
    second = vmax;
  }
  const T denom = fa_sqrt(second / c.bias_corr2) + c.eps;
  p = decayed - (m / denom) * c.step_size;
}

// The default update (no amsgrad): MindFormers' AdamW.
template <class T>
FA_HOST_DEVICE void adamw_update(T& p, const T& g, T& m, T& v, const CoeffsOf<T>& c) {
  adamw_update<false>(p, g, m, v, v, c);
}

// Where tensor i's slice of a group's flat states starts: a multiple of
// kStateAlignElems (128 bytes of float32, 64 of bfloat16), so every slice starts
// on a cache line (CPU threads never share one), a 16-byte vector boundary (CUDA)
// and a 32-byte block (Ascend). Pad elements are never touched by the update.
constexpr int64_t kStateAlignElems = 32;
FA_HOST_DEVICE constexpr int64_t align_state(int64_t n) {
  return (n + kStateAlignElems - 1) / kStateAlignElems * kStateAlignElems;
}

}  // namespace fused_adamw
