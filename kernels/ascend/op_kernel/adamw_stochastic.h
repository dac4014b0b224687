// Stochastic rounding of the float32 parameter to bfloat16 or float16 in the Ascend kernel,
// with the random bits of kernels/common/rounding.h (which the op_kernel build
// cannot include: CANN's operator build copies only this folder), restated:
//   key  = fa_sr_key(seed, step)                     (scalar unit, once per launch)
//   bits = fmix32((lo32(index) ^ key) + hi32(index) * 0x9e3779b9)
//   bf16 = (float32 bits + (bits & 0xffff)) >> 16
//   fp16 = the neighbour above |x| with probability (|x| - lo) / (hi - lo) (below)
// index = index_base + the element's position in the padded flat state. The
// tests compile this header next to rounding.h and require equal bits.
//
// Vector form: 32-bit integer lanes (Add/Sub/Muls/Adds modulo 2^32,
// ShiftRight/ShiftLeft), xor as (a | b) - (a & b) (the bits of a & b are a subset
// of those of a | b, so the subtraction never borrows) with Or/And on 16-bit
// lanes, and the final shift as a Cast to bfloat16 with CAST_TRUNC of the float
// whose bits are the sum (dropping 16 low bits of a finite float's pattern is
// rounding its magnitude toward zero). Known differences from the C++ kernels:
// a tile whose indices cross a multiple of 2^32 uses the first element's hi32
// for the whole tile (groups or shards past 4G elements), and a NaN/Inf param is
// not mapped to 0x7fc0/Inf (bf16: the sum of Inf's bits and random bits is a NaN;
// fp16: Inf - Inf in the fraction).
#ifndef FUSED_ADAMW_GROUP_STOCHASTIC_H
#define FUSED_ADAMW_GROUP_STOCHASTIC_H

#include <cstdint>

#ifndef FA_KERNEL_FN
#define FA_KERNEL_FN inline
#endif

FA_KERNEL_FN uint32_t FaFmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

FA_KERNEL_FN uint32_t FaSrKey(uint64_t seed, uint32_t step)
{
    const uint32_t lo = static_cast<uint32_t>(seed), hi = static_cast<uint32_t>(seed >> 32);
    return FaFmix32(lo ^ FaFmix32(hi ^ FaFmix32(step * 0x9e3779b9u + 0x7f4a7c15u)));
}

// dst = a ^ b on n 32-bit lanes; tmp is scratch; dst may alias a or b.
template <class TI>
FA_KERNEL_FN void FaXor(const TI& dst, const TI& a, const TI& b, const TI& tmp, int32_t n)
{
    Or(tmp.template ReinterpretCast<uint16_t>(), a.template ReinterpretCast<uint16_t>(),
       b.template ReinterpretCast<uint16_t>(), 2 * n);
    PipeBarrier<PIPE_V>();
    And(dst.template ReinterpretCast<uint16_t>(), a.template ReinterpretCast<uint16_t>(),
        b.template ReinterpretCast<uint16_t>(), 2 * n);
    PipeBarrier<PIPE_V>();
    Sub(dst, tmp, dst, n);
    PipeBarrier<PIPE_V>();
}

// h ^= h >> s
template <class TI>
FA_KERNEL_FN void FaXorShift(const TI& h, uint32_t s, const TI& t, const TI& tmp, int32_t n)
{
    ShiftRight(t.template ReinterpretCast<uint32_t>(), h.template ReinterpretCast<uint32_t>(), s, n);
    PipeBarrier<PIPE_V>();
    FaXor(h, h, t, tmp, n);
}

// h = fa_sr_bits(key, index + i) for i < n (32-bit lanes); t, tmp, keyv: scratch.
template <class TI>
FA_KERNEL_FN void FaSrRandom(const TI& h, const TI& t, const TI& tmp, const TI& keyv, uint32_t key, uint64_t index,
                             int32_t n)
{
    const int32_t lo = static_cast<int32_t>(static_cast<uint32_t>(index));
    const int32_t hiTerm = static_cast<int32_t>(static_cast<uint32_t>(index >> 32) * 0x9e3779b9u);
    CreateVecIndex(h, lo, n);  // lo32(index + i), modulo 2^32
    Duplicate(keyv, static_cast<int32_t>(key), n);
    PipeBarrier<PIPE_V>();
    FaXor(h, h, keyv, tmp, n);
    Adds(h, h, hiTerm, n);
    PipeBarrier<PIPE_V>();
    FaXorShift(h, 16, t, tmp, n);
    Muls(h, h, static_cast<int32_t>(0x85ebca6bu), n);
    PipeBarrier<PIPE_V>();
    FaXorShift(h, 13, t, tmp, n);
    Muls(h, h, static_cast<int32_t>(0xc2b2ae35u), n);
    PipeBarrier<PIPE_V>();
    FaXorShift(h, 16, t, tmp, n);
}

// out (bfloat16) = stochastic rounding of p (float32) for the elements whose
// indices are index .. index + n - 1. h, t, tmp, keyv: int32 scratch of n lanes.
template <class TB, class TF, class TI>
FA_KERNEL_FN void FaStochasticBf16(const TB& out, const TF& p, const TI& h, const TI& t, const TI& tmp,
                                   const TI& keyv, uint32_t key, uint64_t index, int32_t n)
{
    FaSrRandom(h, t, tmp, keyv, key, index, n);
    // bits & 0xffff, then added to the float's bit pattern.
    ShiftLeft(h.template ReinterpretCast<uint32_t>(), h.template ReinterpretCast<uint32_t>(), 16u, n);
    PipeBarrier<PIPE_V>();
    ShiftRight(h.template ReinterpretCast<uint32_t>(), h.template ReinterpretCast<uint32_t>(), 16u, n);
    PipeBarrier<PIPE_V>();
    Add(h, h, p.template ReinterpretCast<int32_t>(), n);
    PipeBarrier<PIPE_V>();
    Cast(out, h.template ReinterpretCast<float>(), RoundMode::CAST_TRUNC, n);
    PipeBarrier<PIPE_V>();
}

// out (float16) = stochastic rounding of p (float32), rounding.h's float16 rule on
// |p|: the neighbour above with probability (|p| - lo) / (hi - lo), decided by a
// 24-bit uniform u = (bits >> 8) * 2^-24 < that fraction; the sign of p is kept;
// |p| >= 65520 (round-to-nearest overflow) stays infinite. In float32 vector ops:
//   lo, hi   = |p| cast to float16 with CAST_FLOOR / CAST_CEIL and back (exact)
//   frac     = (|p| - lo) / max(hi - lo, 2^-30)   (0 when |p| is a float16 value)
//   up       = min(max((frac - u) * 2^100 * 2^100, 0), 1)   (1 iff u < frac; frac - u
//              is 0 only when they are equal, and 2^200 lifts the least positive float past 1)
//   |out|    = max(lo + up * min(hi - lo, 2^16), rne - min(rne, 65504))   (rne: |p| rounded
//              to nearest; the second term is Inf exactly when that overflows, else 0)
// then the sign bit of p is or-ed in and the (exact) value cast to float16. h, a, b,
// c: float32/int32 scratch of n lanes; out's own memory holds intermediate float16s.
template <class TH, class TF, class TI>
FA_KERNEL_FN void FaStochasticHalf(const TH& out, const TF& p, const TI& h, const TI& a, const TI& b, const TI& c,
                                   uint32_t key, uint64_t index, int32_t n)
{
    FaSrRandom(h, a, b, c, key, index, n);
    const TF fh = h.template ReinterpretCast<float>(), fa = a.template ReinterpretCast<float>();
    const TF fb = b.template ReinterpretCast<float>(), fc = c.template ReinterpretCast<float>();
    ShiftRight(h.template ReinterpretCast<uint32_t>(), h.template ReinterpretCast<uint32_t>(), 8u, n);
    PipeBarrier<PIPE_V>();
    Cast(fa, h, RoundMode::CAST_NONE, n);  // < 2^24: exact
    Abs(fb, p, n);
    PipeBarrier<PIPE_V>();
    Muls(fa, fa, 5.9604644775390625e-08f, n);  // u = (bits >> 8) * 2^-24
    Cast(out, fb, RoundMode::CAST_FLOOR, n);
    PipeBarrier<PIPE_V>();
    Cast(fc, out, RoundMode::CAST_NONE, n);  // lo
    PipeBarrier<PIPE_V>();
    Cast(out, fb, RoundMode::CAST_CEIL, n);
    PipeBarrier<PIPE_V>();
    Cast(fh, out, RoundMode::CAST_NONE, n);  // hi
    PipeBarrier<PIPE_V>();
    Sub(fh, fh, fc, n);  // hi - lo (0 when exact, Inf above 65504)
    Sub(fb, fb, fc, n);  // |p| - lo
    PipeBarrier<PIPE_V>();
    Maxs(fh, fh, 9.313225746154785e-10f, n);  // 2^-30, below any float16 spacing
    PipeBarrier<PIPE_V>();
    Div(fb, fb, fh, n);  // frac
    PipeBarrier<PIPE_V>();
    Sub(fa, fb, fa, n);  // frac - u
    Mins(fh, fh, 65536.0f, n);
    PipeBarrier<PIPE_V>();
    Muls(fa, fa, 1.2676506002282294e30f, n);  // 2^100
    PipeBarrier<PIPE_V>();
    Muls(fa, fa, 1.2676506002282294e30f, n);
    PipeBarrier<PIPE_V>();
    Maxs(fa, fa, 0.0f, n);
    PipeBarrier<PIPE_V>();
    Mins(fa, fa, 1.0f, n);  // up
    PipeBarrier<PIPE_V>();
    Mul(fa, fa, fh, n);
    PipeBarrier<PIPE_V>();
    Add(fa, fa, fc, n);  // |out| before the overflow rule
    Abs(fb, p, n);
    PipeBarrier<PIPE_V>();
    Cast(out, fb, RoundMode::CAST_RINT, n);
    PipeBarrier<PIPE_V>();
    Cast(fb, out, RoundMode::CAST_NONE, n);  // rne
    PipeBarrier<PIPE_V>();
    Mins(fc, fb, 65504.0f, n);
    PipeBarrier<PIPE_V>();
    Sub(fb, fb, fc, n);  // Inf if rne overflowed, else 0
    PipeBarrier<PIPE_V>();
    Max(fa, fa, fb, n);
    ShiftRight(c.template ReinterpretCast<uint32_t>(), p.template ReinterpretCast<uint32_t>(), 31u, n);
    PipeBarrier<PIPE_V>();
    ShiftLeft(c.template ReinterpretCast<uint32_t>(), c.template ReinterpretCast<uint32_t>(), 31u, n);
    PipeBarrier<PIPE_V>();
    Or(a.template ReinterpretCast<uint16_t>(), a.template ReinterpretCast<uint16_t>(),
       c.template ReinterpretCast<uint16_t>(), 2 * n);  // the sign of p
    PipeBarrier<PIPE_V>();
    Cast(out, fa, RoundMode::CAST_RINT, n);  // exact: a float16 value
    PipeBarrier<PIPE_V>();
}

#endif  // FUSED_ADAMW_GROUP_STOCHASTIC_H
