// Stochastic rounding of the float32 parameter to bfloat16 in the Ascend kernel,
// with the random bits of kernels/common/rounding.h (which the op_kernel build
// cannot include: CANN's operator build copies only this folder), restated:
//   key  = fa_sr_key(seed, step)                     (scalar unit, once per launch)
//   bits = fmix32((lo32(index) ^ key) + hi32(index) * 0x9e3779b9)
//   bf16 = (float32 bits + (bits & 0xffff)) >> 16
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
// not mapped to 0x7fc0/Inf (the sum of Inf's bits and random bits is a NaN).
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

// out (bfloat16) = stochastic rounding of p (float32) for the elements whose
// indices are index .. index + n - 1. h, t, tmp, keyv: int32 scratch of n lanes.
template <class TB, class TF, class TI>
FA_KERNEL_FN void FaStochasticBf16(const TB& out, const TF& p, const TI& h, const TI& t, const TI& tmp,
                                   const TI& keyv, uint32_t key, uint64_t index, int32_t n)
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

#endif  // FUSED_ADAMW_GROUP_STOCHASTIC_H
