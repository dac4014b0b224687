// AVX-512 building blocks for adamw_avx512.cpp: a 16-lane float32 type that
// adamw_update (kernels/common/adamw_math.h) can compute with, and loads/stores
// of each parameter dtype, optionally masked for a tensor's tail.
//
// Include this header from exactly one translation unit (compiled with
// -mavx512f -mavx512bw -mavx512vl). Everything here lives in namespace
// `avx512` so none of it can be merged by the linker with code compiled for a
// smaller ISA (inline functions of the same name compiled with different target
// flags are an ODR trap: the linker keeps one copy for every caller).
#pragma once
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "simd_avx512.h needs -mavx512f -mavx512bw -mavx512vl"
#endif
#include <immintrin.h>

#include <cstdint>

namespace fused_adamw {
namespace cpu {
namespace avx512 {

constexpr int kLanes = 16;
using Mask = __mmask16;
constexpr Mask kAllLanes = 0xffff;

struct F32x16 {
  __m512 v;
  F32x16() = default;
  F32x16(__m512 x) : v(x) {}
  F32x16(float x) : v(_mm512_set1_ps(x)) {}  // broadcast: CoeffsOf<T> builds T from float
};
inline F32x16 operator+(F32x16 a, F32x16 b) { return _mm512_add_ps(a.v, b.v); }
inline F32x16 operator-(F32x16 a, F32x16 b) { return _mm512_sub_ps(a.v, b.v); }
inline F32x16 operator*(F32x16 a, F32x16 b) { return _mm512_mul_ps(a.v, b.v); }
inline F32x16 operator/(F32x16 a, F32x16 b) { return _mm512_div_ps(a.v, b.v); }
// Found by adamw_update through argument-dependent lookup.
inline F32x16 fa_sqrt(F32x16 a) { return _mm512_sqrt_ps(a.v); }
// a > b ? a : b per lane (vmaxps: the second operand where either is NaN), as fa_max(float).
inline F32x16 fa_max(F32x16 a, F32x16 b) { return _mm512_max_ps(a.v, b.v); }

// Lanes outside `k` read as 0 and are never written.
struct Float32 {
  using Elem = float;
  static F32x16 load(const float* a, Mask k) { return _mm512_maskz_loadu_ps(k, a); }
  static void store(float* a, F32x16 x, Mask k) { _mm512_mask_storeu_ps(a, k, x.v); }
};

// bfloat16 -> float32 is exact: the 16 bits become the high half.
// float32 -> bfloat16 rounds to nearest even with integer ops rather than
// vcvtneps2bf16 (AVX512_BF16): that instruction treats subnormal inputs as zero,
// MindSpore's Cast does not. NaN becomes 0x7fc0, as in MindSpore.
struct BFloat16 {
  using Elem = uint16_t;
  static F32x16 load(const uint16_t* a, Mask k) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, a));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static void store(uint16_t* a, F32x16 x, Mask k) {
    const __m512i bits = _mm512_castps_si512(x.v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i bias = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, bias), 16);
    const Mask nan = _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_set1_epi32(0x7fc0));
    _mm256_mask_storeu_epi16(a, k, _mm512_cvtepi32_epi16(rounded));
  }
};

// float16 <-> float32 with the AVX-512F forms of vcvtph2ps / vcvtps2ph, round to
// nearest even. vcvtps2ph keeps a NaN's payload bits; MindSpore writes
// sign|0x7e00, so NaN lanes are rewritten.
struct Float16 {
  using Elem = uint16_t;
  static F32x16 load(const uint16_t* a, Mask k) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, a));
  }
  static void store(uint16_t* a, F32x16 x, Mask k) {
    const __m256i h = _mm512_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i canonical_nan =
        _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16(static_cast<int16_t>(0x8000))),
                        _mm256_set1_epi16(0x7e00));
    const Mask nan = _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q);
    _mm256_mask_storeu_epi16(a, k, _mm256_mask_blend_epi16(nan, h, canonical_nan));
  }
};

}  // namespace avx512
}  // namespace cpu
}  // namespace fused_adamw
