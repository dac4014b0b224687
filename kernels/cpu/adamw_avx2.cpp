// AVX2+FMA+F16C path: 8 elements per step through the shared adamw_update. A
// tensor's last n % 8 elements are copied into a zero-padded stack buffer, run
// through the same vector code and copied back, so every element of a tensor
// gets bit-identical arithmetic wherever it lies.
// Built with -mavx2 -mfma -mf16c (CMakeLists.txt); run only when
// isa_supported(Isa::kAvx2) says the CPU has them.
#include "../common/adamw_math.h"
#include "adamw_cpu_paths.h"
#include "simd_avx2.h"

namespace fused_adamw {
namespace cpu {
namespace avx2 {
namespace {

template <class P>
inline void update_lanes(typename P::Elem* p, const typename P::Elem* g, float* m, float* v,
                         const CoeffsOf<F32x8>& c) {
  F32x8 pv = P::load(p), mv = Float32::load(m), vv = Float32::load(v);
  const F32x8 gv = P::load(g);
  adamw_update(pv, gv, mv, vv, c);
  P::store(p, pv);
  Float32::store(m, mv);
  Float32::store(v, vv);
}

template <class P>
void update_range(void* p_raw, const void* g_raw, float* m, float* v, int64_t n,
                  const StepCoeffs& coeffs) {
  using Elem = typename P::Elem;
  auto* p = static_cast<Elem*>(p_raw);
  const auto* g = static_cast<const Elem*>(g_raw);
  const CoeffsOf<F32x8> c(coeffs);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) update_lanes<P>(p + i, g + i, m + i, v + i, c);
  const int64_t rest = n - i;
  if (rest == 0) return;
  Elem pb[kLanes] = {}, gb[kLanes] = {};
  float mb[kLanes] = {}, vb[kLanes] = {};
  for (int64_t j = 0; j < rest; ++j) {
    pb[j] = p[i + j];
    gb[j] = g[i + j];
    mb[j] = m[i + j];
    vb[j] = v[i + j];
  }
  update_lanes<P>(pb, gb, mb, vb, c);
  for (int64_t j = 0; j < rest; ++j) {
    p[i + j] = pb[j];
    m[i + j] = mb[j];
    v[i + j] = vb[j];
  }
}

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

void adamw_range_avx2(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                      const StepCoeffs& c) {
  switch (dtype) {
    case DType::kFloat32: return avx2::update_range<avx2::Float32>(p, g, m, v, n, c);
    case DType::kFloat16: return avx2::update_range<avx2::Float16>(p, g, m, v, n, c);
    case DType::kBFloat16: return avx2::update_range<avx2::BFloat16>(p, g, m, v, n, c);
  }
}

void floor_range_avx2(void* p, const void* g, float* m, float* v, int64_t n, DType dtype) {
  if (dtype == DType::kFloat32)
    avx2::floor_typed(static_cast<float*>(p), static_cast<const float*>(g), m, v, n);
  else
    avx2::floor_typed(static_cast<int16_t*>(p), static_cast<const int16_t*>(g), m, v, n);
}

}  // namespace cpu
}  // namespace fused_adamw
