// AVX2+FMA+F16C path: 8 elements per step through the generic body
// (update_lanes.h) and the shared adamw_update.
// Built with -mavx2 -mfma -mf16c (CMakeLists.txt); run only when
// isa_supported(Isa::kAvx2) says the CPU has them.
#include <cmath>

#include "../common/rounding.h"
#include "adamw_cpu_paths.h"
#include "simd_avx2.h"
#include "update_lanes.h"

namespace fused_adamw {
namespace cpu {
namespace avx2 {
namespace {

using IVec = __m256i;
inline IVec iset1(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
inline IVec iadd(IVec a, IVec b) { return _mm256_add_epi32(a, b); }
inline IVec imul(IVec a, IVec b) { return _mm256_mullo_epi32(a, b); }
inline IVec ixor(IVec a, IVec b) { return _mm256_xor_si256(a, b); }
template <int k>
inline IVec isrl(IVec a) { return _mm256_srli_epi32(a, k); }
inline IVec iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
#include "simd_hash.h"

struct Isa {
  using Vec = F32x8;
  static constexpr int kLanes = avx2::kLanes;
  static Vec load(const float* a) { return Float32::load(a); }
  static Vec load(const Bf16* a) { return BFloat16::load(reinterpret_cast<const uint16_t*>(a)); }
  static Vec load(const Fp16* a) { return Float16::load(reinterpret_cast<const uint16_t*>(a)); }
  static void store(float* a, Vec x) { Float32::store(a, x); }
  static void store(Bf16* a, Vec x) { BFloat16::store(reinterpret_cast<uint16_t*>(a), x); }
  static void store(Fp16* a, Vec x) { Float16::store(reinterpret_cast<uint16_t*>(a), x); }

  static void random_bits(int64_t index0, uint32_t key, uint32_t (&r)[kLanes]) {
    IVec bits;
    if (sr_bits_lanes(index0, key, &bits)) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r), bits);
    } else {
      for (int j = 0; j < kLanes; ++j) r[j] = fa_sr_bits(key, static_cast<uint64_t>(index0 + j));
    }
  }
  static void store_sr(Bf16* a, Vec x, int64_t index0, uint32_t key) {
    IVec random;
    if (!sr_bits_lanes(index0, key, &random)) {
      uint32_t r[kLanes];
      random_bits(index0, key, r);
      random = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r));
    }
    const __m256i bits = _mm256_castps_si256(x.v);
    __m256i out = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_and_si256(random, _mm256_set1_epi32(0xffff))), 16);
    const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x.v, x.v, _CMP_UNORD_Q));
    out = _mm256_blendv_epi8(out, _mm256_set1_epi32(0x7fc0), nan32);
    const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(out), _mm256_extracti128_si256(out, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a), packed);
  }
  static void store_sr(Fp16* a, Vec x, int64_t index0, uint32_t key) {
    float f[kLanes];
    uint32_t r[kLanes];
    _mm256_storeu_ps(f, x.v);
    random_bits(index0, key, r);
    Float16::store(reinterpret_cast<uint16_t*>(a), x);  // NaN lanes keep this (RNE) value
    fp16_sr_over_rne(a, f, r);
  }

  // Norm pass: runs of 16 elements into 16 float64 accumulators (element j of a run -> acc[j]),
  // held in four registers for the whole run.
  template <class G>
  static bool sumsq_blocks(const G* g, int64_t blocks, float scale, double (&acc)[16]) {
    const __m256 s = _mm256_set1_ps(scale);
    __m256d a[4] = {_mm256_loadu_pd(acc), _mm256_loadu_pd(acc + 4), _mm256_loadu_pd(acc + 8),
                    _mm256_loadu_pd(acc + 12)};
    __m256 nonfinite = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b, g += 16) {
      for (int h = 0; h < 2; ++h) {
        const __m256 u = _mm256_mul_ps(load(g + 8 * h).v, s);
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(_mm256_sub_ps(u, u), _mm256_setzero_ps(), _CMP_NEQ_UQ));
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(u));
        const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
        a[2 * h] = _mm256_add_pd(a[2 * h], _mm256_mul_pd(lo, lo));
        a[2 * h + 1] = _mm256_add_pd(a[2 * h + 1], _mm256_mul_pd(hi, hi));
      }
    }
    for (int k = 0; k < 4; ++k) _mm256_storeu_pd(acc + 4 * k, a[k]);
    return _mm256_movemask_ps(nonfinite) == 0;
  }
  static float to_float(float x) { return x; }
  static float to_float(Bf16 x) {
    const uint32_t bits = static_cast<uint32_t>(x.bits) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static float to_float(Fp16 x) { return _cvtsh_ss(x.bits); }
};

// The floor: AdamW's loads and stores, no math (see FloorFn). 8 lanes per step
// like the update; the tail is plain code (its bytes are negligible).
inline void floor_lanes(float* p, const float* g, float* m, float* v) {
  const __m256 pv = _mm256_loadu_ps(p), gv = _mm256_loadu_ps(g);
  const __m256 mv = _mm256_loadu_ps(m), vv = _mm256_loadu_ps(v);
  _mm256_storeu_ps(p, _mm256_max_ps(pv, gv));
  _mm256_storeu_ps(m, vv);
  _mm256_storeu_ps(v, mv);
}

inline void floor_lanes(int16_t* p, const int16_t* g, float* m, float* v) {
  const __m128i pv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i gv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(g));
  const __m256 mv = _mm256_loadu_ps(m), vv = _mm256_loadu_ps(v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_max_epi16(pv, gv));
  _mm256_storeu_ps(m, vv);
  _mm256_storeu_ps(v, mv);
}

template <class P>
void floor_typed(P* p, const P* g, float* m, float* v, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) floor_lanes(p + i, g + i, m + i, v + i);
  for (; i < n; ++i) {
    const P pi = p[i], gi = g[i];
    const float mi = m[i];
    p[i] = pi > gi ? pi : gi;
    m[i] = v[i];
    v[i] = mi;
  }
}

}  // namespace
}  // namespace avx2

RangeFn range_fn_avx2(unsigned flags, DType p, DType g) { return pick_range<avx2::Isa>(flags, p, g); }

bool sumsq_avx2(const void* g, DType dt, int64_t n, float scale, double (&acc)[16], int& phase) {
  return sumsq_dispatch<avx2::Isa>(g, dt, n, scale, acc, phase);
}

void floor_range_avx2(void* p, const void* g, float* m, float* v, int64_t n, DType dtype) {
  if (dtype == DType::kFloat32)
    avx2::floor_typed(static_cast<float*>(p), static_cast<const float*>(g), m, v, n);
  else
    avx2::floor_typed(static_cast<int16_t*>(p), static_cast<const int16_t*>(g), m, v, n);
}

}  // namespace cpu
}  // namespace fused_adamw
