// Stochastic rounding of float32 results to 16-bit parameters, and the
// counter-based random bits it uses: integer-only, so every backend (CPU ISA
// paths, CUDA, Ascend) draws the same bits for the same element and rounds the
// same way, whatever the thread count or the launch shape.
//
// Bits for one element: fa_sr_bits(fa_sr_key(seed, step), index), where index is
// the element's position in its kernel group's padded flat state
// (docs/kernel-interface.md) — the same on every rank of a sharded run.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define FA_ROUND_FN __host__ __device__ __forceinline__
#else
// static: each CPU translation unit (built for its own ISA) keeps its own copy,
// so the linker can never hand the baseline path an AVX-512 build of these.
#define FA_ROUND_FN static inline
#endif

namespace fused_adamw {

// MurmurHash3's 32-bit finaliser: a bijection with full avalanche.
FA_ROUND_FN uint32_t fa_fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// Once per call: mixes the 64-bit seed and the step (t, after the increment).
FA_ROUND_FN uint32_t fa_sr_key(uint64_t seed, uint32_t step) {
  const uint32_t lo = static_cast<uint32_t>(seed), hi = static_cast<uint32_t>(seed >> 32);
  return fa_fmix32(lo ^ fa_fmix32(hi ^ fa_fmix32(step * 0x9e3779b9u + 0x7f4a7c15u)));
}

// Per element: 32 random bits. Index bits above 32 (groups past 4G elements) are
// folded in with a multiply so neighbouring 4G-blocks do not repeat.
FA_ROUND_FN uint32_t fa_sr_bits(uint32_t key, uint64_t index) {
  return fa_fmix32((static_cast<uint32_t>(index) ^ key) +
                   static_cast<uint32_t>(index >> 32) * 0x9e3779b9u);
}

// bfloat16: add the low 16 random bits below the kept half and truncate; rounds
// up with probability (dropped bits)/2^16. NaN -> 0x7fc0 as MindSpore's Cast.
FA_ROUND_FN uint16_t fa_bf16_bits_sr(uint32_t f32_bits, uint32_t random) {
  if ((f32_bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return static_cast<uint16_t>((f32_bits + (random & 0xffffu)) >> 16);
}

// float16, given the round-to-nearest-even encoding `rne` of |x| (magnitude
// bits, no sign) and a converter from float16 magnitude bits to float: picks
// the neighbour above |x| with probability (|x| - lo) / (hi - lo), comparing
// with a 24-bit uniform draw. Both differences are exact in float32. Values
// that round to infinity (|x| >= 65520) stay infinite, as with RNE; NaN and
// exactly representable values are returned as `rne`. The caller adds the sign.
template <class HalfBitsToFloat>
FA_ROUND_FN uint16_t fa_fp16_magnitude_sr(float ax, uint16_t rne, uint32_t random, HalfBitsToFloat to_float) {
  if (rne >= 0x7c00u) return rne;  // inf, NaN
  const float r = to_float(rne);
  if (r == ax) return rne;
  const uint16_t lo = r > ax ? static_cast<uint16_t>(rne - 1) : rne;
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const float flo = to_float(lo), fhi = to_float(hi);
  const float frac = (ax - flo) / (fhi - flo);
  const float u = static_cast<float>(random >> 8) * 5.9604644775390625e-08f;  // * 2^-24, exact
  return u < frac ? hi : lo;
}

}  // namespace fused_adamw
