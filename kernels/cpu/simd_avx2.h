// AVX2+FMA+F16C building blocks for adamw_avx2.cpp: an 8-lane float32 type that
// adamw_update (kernels/common/adamw_math.h) can compute with, and loads/stores
// of each parameter dtype. AVX2 has no 16-bit masked loads, so tails go through
// a small stack buffer in adamw_avx2.cpp instead.
//
// Include from exactly one translation unit (compiled with -mavx2 -mfma -mf16c);
// everything lives in namespace `avx2` so the linker cannot merge it with code
// built for another ISA.
#pragma once
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "simd_avx2.h needs -mavx2 -mfma -mf16c"
#endif
#include <immintrin.h>

#include <cstdint>

namespace fused_adamw {
namespace cpu {
namespace avx2 {

constexpr int kLanes = 8;

struct F32x8 {
  __m256 v;
  F32x8() = default;
  F32x8(__m256 x) : v(x) {}
  F32x8(float x) : v(_mm256_set1_ps(x)) {}  // broadcast: CoeffsOf<T> builds T from float
};
inline F32x8 operator+(F32x8 a, F32x8 b) { return _mm256_add_ps(a.v, b.v); }
inline F32x8 operator-(F32x8 a, F32x8 b) { return _mm256_sub_ps(a.v, b.v); }
inline F32x8 operator*(F32x8 a, F32x8 b) { return _mm256_mul_ps(a.v, b.v); }
inline F32x8 operator/(F32x8 a, F32x8 b) { return _mm256_div_ps(a.v, b.v); }
// Found by adamw_update through argument-dependent lookup.
inline F32x8 fa_sqrt(F32x8 a) { return _mm256_sqrt_ps(a.v); }
// a > b ? a : b per lane (vmaxps: the second operand where either is NaN), as fa_max(float).
inline F32x8 fa_max(F32x8 a, F32x8 b) { return _mm256_max_ps(a.v, b.v); }

// 16-bit lanes that are all ones where x is NaN (for blending 8 packed halves).
inline __m128i nan_mask16(__m256 x) {
  const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
}

struct Float32 {
  using Elem = float;
  static F32x8 load(const float* a) { return _mm256_loadu_ps(a); }
  static void store(float* a, F32x8 x) { _mm256_storeu_ps(a, x.v); }
};

// bfloat16 -> float32 is exact (the bits become the high half); float32 ->
// bfloat16 rounds to nearest even with integer ops, subnormals kept, NaN written
// as 0x7fc0 (MindSpore's Cast).
struct BFloat16 {
  using Elem = uint16_t;
  static F32x8 load(const uint16_t* a) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static void store(uint16_t* a, F32x8 x) {
    const __m256i bits = _mm256_castps_si256(x.v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff));
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, bias), 16);
    const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x.v, x.v, _CMP_UNORD_Q));
    rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7fc0), nan32);
    // Every lane is in [0, 0xffff], so the unsigned-saturating pack is exact.
    const __m128i packed =
        _mm_packus_epi32(_mm256_castsi256_si128(rounded), _mm256_extracti128_si256(rounded, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a), packed);
  }
};

// float16 <-> float32 with F16C, round to nearest even; NaN lanes rewritten to
// sign|0x7e00 as MindSpore writes them (vcvtps2ph would keep payload bits).
struct Float16 {
  using Elem = uint16_t;
  static F32x8 load(const uint16_t* a) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  }
  static void store(uint16_t* a, F32x8 x) {
    const __m128i h = _mm256_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i canonical_nan = _mm_or_si128(
        _mm_and_si128(h, _mm_set1_epi16(static_cast<int16_t>(0x8000))), _mm_set1_epi16(0x7e00));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a), _mm_blendv_epi8(h, canonical_nan, nan_mask16(x.v)));
  }
};

}  // namespace avx2
}  // namespace cpu
}  // namespace fused_adamw
