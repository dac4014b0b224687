// The AdamW update of one tile, as the Ascend C vector-op sequence the kernel
// issues. This is the Ascend restatement of kernels/common/adamw_math.h (vector
// ops on LocalTensors cannot share that C++ template); keep the two in step:
//   p' = p * decay
//   m  = b1*m + (1-b1)*g
//   v  = b2*v + (1-b2)*(g*g)
//   p  = p' - (m / (sqrt(v * inv_bc2) + eps)) * step_size
// in MindFormers' operation order except one step: Ascend C has no vector-by-
// scalar division, so v / bc2 is v * (1 / bc2) (at most one float32 rounding apart).
//
// Written against the Ascend C names (Muls, Adds, Mul, Add, Sub, Div, Sqrt,
// Cast, RoundMode, PipeBarrier<PIPE_V>) on LocalTensors; the tests run it inside
// the kernel against the emulated Ascend C API (tests/ascend/emu).
#ifndef FUSED_ADAMW_GROUP_TILE_MATH_H
#define FUSED_ADAMW_GROUP_TILE_MATH_H

#include "adamw_coeffs.h"

#ifndef FA_KERNEL_FN
#define FA_KERNEL_FN inline
#endif

// All operands float32, n elements. p and g are read; pNew may alias p.
// t1/t2 are scratch. Every op that feeds the next is followed by a vector-pipe
// barrier, as in CANN's own AdamW kernels.
template <class TF>
FA_KERNEL_FN void FaAdamwMath(const TF& p, const TF& g, const TF& m, const TF& v, const TF& pNew, const TF& mNew,
                              const TF& vNew, const TF& t1, const TF& t2, const FaStepCoeffs& c, int32_t n)
{
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
    // denom = sqrt(v * inv_bc2) + eps
    Muls(t1, vNew, c.invBiasCorr2, n);
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

// One tile: float32 params go straight through; float16/bfloat16 params and
// grads are cast to float32 in UB (exact), updated, and cast back with round to
// nearest even (CAST_RINT). States are float32 either way.
template <bool kCast, class TP, class TF>
FA_KERNEL_FN void FaComputeTile(const TP& pIn, const TP& gIn, const TF& mIn, const TF& vIn, const TP& pOut,
                                const TF& mOut, const TF& vOut, const TF& p32, const TF& g32, const TF& t1,
                                const TF& t2, const FaStepCoeffs& c, int32_t n)
{
    if constexpr (kCast) {
        Cast(p32, pIn, RoundMode::CAST_NONE, n);
        Cast(g32, gIn, RoundMode::CAST_NONE, n);
        PipeBarrier<PIPE_V>();
        FaAdamwMath(p32, g32, mIn, vIn, p32, mOut, vOut, t1, t2, c, n);
        Cast(pOut, p32, RoundMode::CAST_RINT, n);
        PipeBarrier<PIPE_V>();
    } else {
        FaAdamwMath(pIn, gIn, mIn, vIn, pOut, mOut, vOut, t1, t2, c, n);
    }
}

#endif  // FUSED_ADAMW_GROUP_TILE_MATH_H
