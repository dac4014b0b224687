// The AdamW update of one element (or one SIMD vector of elements): the single
// definition of the math shared by every C++/CUDA backend. Semantics follow
// shared/reference/semantics.md (MindFormers AdamW):
//   p' = p * (1 - lr*wd)
//   m  = b1*m + (1-b1)*g
//   v  = b2*v + (1-b2)*g*g
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

// Per-call coefficients, derived once per kernel call from lr, wd, the step
// and the constant hyper-parameters. All float32, as MindFormers computes them.
struct StepCoeffs {
  float decay;            // 1 - lr*wd
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float step_size;        // lr / (1 - beta1^t)
  float bias_corr2;       // 1 - beta2^t
  float eps;
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
                                           float beta1, float beta2, float eps) {
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
  return c;
}

// Broadcast of the coefficients into the arithmetic type T.
template <class T>
struct CoeffsOf {
  T decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_corr2, eps;
  FA_HOST_DEVICE explicit CoeffsOf(const StepCoeffs& c)
      : decay(c.decay), beta1(c.beta1), one_minus_beta1(c.one_minus_beta1), beta2(c.beta2),
        one_minus_beta2(c.one_minus_beta2), step_size(c.step_size),
        bias_corr2(c.bias_corr2), eps(c.eps) {}
};

FA_HOST_DEVICE float fa_sqrt(float x) { return sqrtf(x); }

// One AdamW update in float32. p, m, v are updated in place; g is read.
template <class T>
FA_HOST_DEVICE void adamw_update(T& p, const T& g, T& m, T& v, const CoeffsOf<T>& c) {
  const T decayed = p * c.decay;
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * (g * g);
  const T denom = fa_sqrt(v / c.bias_corr2) + c.eps;
  p = decayed - (m / denom) * c.step_size;
}

}  // namespace fused_adamw
