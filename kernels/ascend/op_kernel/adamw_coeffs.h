// Per-launch AdamW coefficients, computed on the vector core's scalar unit from
// the runtime scalars (lr, weight decay, step: device tensors, so a learning-rate
// schedule never rebuilds the kernel) and the constant betas/eps.
//
// Semantics (shared/reference/semantics.md): t is the step after the increment.
//   decay = 1 - lr*wd, step_size = lr / (1 - b1^t), inv_bc2 = 1 / (1 - b2^t).
// MindFormers (the contract, and kernels/common/adamw_math.h) computes
// 1 - b^t in float32: b^t rounded to float32 by its Pow op, then 1 - that.
// The AI Core scalar unit has no double and no guaranteed powf, so b^t is raised
// in 32.32 fixed point with 64-bit integer products (absolute error about
// t * b^(t-1) * 2^-33, far below a float32 ulp of b^t) and then rounded once to
// float32, which gives the correctly rounded float32 b^t that a good powf gives.
// The tests run this same code on the CPU and compare it with float64.
#ifndef FUSED_ADAMW_GROUP_COEFFS_H
#define FUSED_ADAMW_GROUP_COEFFS_H

#include <cstdint>

#ifndef FA_KERNEL_FN
#define FA_KERNEL_FN inline
#endif

struct FaStepCoeffs {
    float decay;  // 1 - lr*wd
    float beta1, oneMinusBeta1;
    float beta2, oneMinusBeta2;
    float stepSize;      // lr / (1 - beta1^t)
    float invBiasCorr2;  // 1 / (1 - beta2^t)
    float eps;
    float gradScale;  // first gradient factor (1/loss scale; 1 = none)
    float gradClip;   // second gradient factor (the clip coefficient; 1 = none)
};

// 1 - float32(beta^t) for beta in (0, 1) and t >= 1. t <= 0 gives 0 (the caller's
// step must already be incremented; a zero step turns the update into inf/NaN).
FA_KERNEL_FN float FaOneMinusPow(float beta, int64_t t)
{
    constexpr uint64_t kOne = 1ULL << 32;   // 1.0 in 32.32
    constexpr uint64_t kHalf = 1ULL << 31;  // rounding constant for >> 32
    // beta * 2^32 is exact for beta >= 2^-8 (24-bit mantissa); below that the
    // truncation error is < 2^-32 absolute, irrelevant next to 1.
    uint64_t base = static_cast<uint64_t>(static_cast<int64_t>(beta * 4294967296.0f));
    uint64_t result = kOne;
    // Right-to-left binary exponentiation. result <= 2^32 and base < 2^32, so
    // every product fits in 64 bits.
    while (t > 0 && result != 0) {
        if (t & 1) {
            result = (result * base + kHalf) >> 32;
        }
        t >>= 1;
        if (t > 0) {
            base = (base * base + kHalf) >> 32;
        }
    }
    // Round beta^t once to float32 (int -> float rounds to nearest), then subtract
    // in float32 as MindFormers does.
    const float powRounded = static_cast<float>(static_cast<int64_t>(result)) * 2.3283064365386963e-10f;  // * 2^-32
    return 1.0f - powRounded;
}

FA_KERNEL_FN FaStepCoeffs FaMakeStepCoeffs(float lr, float weightDecay, int64_t t, float beta1, float beta2,
                                           float eps, float gradScale = 1.0f, float gradClip = 1.0f)
{
    FaStepCoeffs c;
    c.decay = 1.0f - lr * weightDecay;
    c.beta1 = beta1;
    c.oneMinusBeta1 = 1.0f - beta1;  // exact for beta in [0.5, 1) (Sterbenz)
    c.beta2 = beta2;
    c.oneMinusBeta2 = 1.0f - beta2;
    c.stepSize = lr / FaOneMinusPow(beta1, t);
    c.invBiasCorr2 = 1.0f / FaOneMinusPow(beta2, t);
    c.eps = eps;
    c.gradScale = gradScale;
    c.gradClip = gradClip;
    return c;
}

#endif  // FUSED_ADAMW_GROUP_COEFFS_H
