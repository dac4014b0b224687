// The AdamW update of one tile, as the Ascend C vector-op sequence the kernel
// issues. This is the Ascend restatement of kernels/common/adamw_math.h (vector
// ops on LocalTensors cannot share that C++ template); keep the two in step:
//   g  = (g * grad_scale) * grad_clip
//   p' = p * decay
//   m  = b1*m + (1-b1)*g
//   v  = b2*v + (1-b2)*(g*g)
//   vmax = max(vmax, v)                                   [kAmsgrad]
//   p  = p' - (m / (sqrt(w * inv_bc2) + eps)) * step_size  (w = vmax or v)
// in MindFormers' operation order except one step: Ascend C has no vector-by-
// scalar division, so w / bc2 is w * (1 / bc2) (at most one float32 rounding apart).
//
// Written against the Ascend C names (Muls, Adds, Mul, Add, Sub, Div, Sqrt, Max,
// Cast, RoundMode, PipeBarrier<PIPE_V>) on LocalTensors; the tests run it inside
// the kernel against the emulated Ascend C API (tests/ascend/emu). Every op that
// feeds the next is followed by a vector-pipe barrier, as in CANN's own kernels.
#ifndef FUSED_ADAMW_GROUP_TILE_MATH_H
#define FUSED_ADAMW_GROUP_TILE_MATH_H

#include "adamw_coeffs.h"

#ifndef FA_KERNEL_FN
#define FA_KERNEL_FN inline
#endif

// All operands float32, n elements. g is scaled in place (it is the tile's own
// copy); p, m, v, vmax are read; the *New outputs may alias their inputs
// (pNew = p, mNew = m, ...). t1/t2 are scratch. vmax/vmaxNew are unused
// without kAmsgrad.
template <bool kAmsgrad, class TF>
FA_KERNEL_FN void FaAdamwMath(const TF& p, const TF& g, const TF& m, const TF& v, const TF& vmax, const TF& pNew,
                              const TF& mNew, const TF& vNew, const TF& vmaxNew, const TF& t1, const TF& t2,
                              const FaStepCoeffs& c, int32_t n)
{
    // g = (g * grad_scale) * grad_clip: two roundings, as MindFormers' unscale then clip
    // (exact when both are 1).
    Muls(g, g, c.gradScale, n);
    PipeBarrier<PIPE_V>();
    Muls(g, g, c.gradClip, n);
    PipeBarrier<PIPE_V>();
    // m = b1*m + (1-b1)*g
    Muls(mNew, m, c.beta1, n);
    Muls(t1, g, c.oneMinusBeta1, n);
    PipeBarrier<PIPE_V>();
    Add(mNew, mNew, t1, n);
    PipeBarrier<PIPE_V>();  // t1 is reused below
    // v = b2*v + (1-b2)*(g*g)
    Mul(t1, g, g, n);
    Muls(vNew, v, c.beta2, n);
    PipeBarrier<PIPE_V>();
    Muls(t1, t1, c.oneMinusBeta2, n);
    PipeBarrier<PIPE_V>();
    Add(vNew, vNew, t1, n);
    PipeBarrier<PIPE_V>();
    // denom = sqrt(w * inv_bc2) + eps
    if constexpr (kAmsgrad) {
        Max(vmaxNew, vmax, vNew, n);
        PipeBarrier<PIPE_V>();
        Muls(t1, vmaxNew, c.invBiasCorr2, n);
    } else {
        Muls(t1, vNew, c.invBiasCorr2, n);
    }
    PipeBarrier<PIPE_V>();
    Sqrt(t1, t1, n);
    PipeBarrier<PIPE_V>();
    Adds(t1, t1, c.eps, n);
    // update = (m / denom) * step_size
    PipeBarrier<PIPE_V>();
    Div(t2, mNew, t1, n);
    PipeBarrier<PIPE_V>();
    Muls(t2, t2, c.stepSize, n);
    // p = p*decay - update (decay from the old p)
    Muls(pNew, p, c.decay, n);
    PipeBarrier<PIPE_V>();
    Sub(pNew, pNew, t2, n);
    PipeBarrier<PIPE_V>();
}

// 16-bit -> float32 (exact) into `dst` when kCast, else `src` is already float32.
template <bool kCast, class TF, class TX>
FA_KERNEL_FN void FaWiden(const TF& dst, const TX& src, int32_t n)
{
    if constexpr (kCast) {
        Cast(dst, src, RoundMode::CAST_NONE, n);
    }
}

// float32 -> 16-bit, round to nearest even (MindSpore's Cast), when kCast.
template <bool kCast, class TX, class TF>
FA_KERNEL_FN void FaNarrow(const TX& dst, const TF& src, int32_t n)
{
    if constexpr (kCast) {
        Cast(dst, src, RoundMode::CAST_RINT, n);
    }
}

#endif  // FUSED_ADAMW_GROUP_TILE_MATH_H
