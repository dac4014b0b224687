// AVX-512 path: 16 elements per step through the shared adamw_update, the tail
// of each tensor done by the same code with masked loads/stores (so every element
// of a tensor gets bit-identical arithmetic, wherever it lies).
// Built with -mavx512f -mavx512bw -mavx512vl (CMakeLists.txt); run only when
// isa_supported(Isa::kAvx512) says the CPU has them.
#include "../common/adamw_math.h"
#include "adamw_cpu_paths.h"
#include "simd_avx512.h"

namespace fused_adamw {
namespace cpu {
namespace avx512 {
namespace {

template <class P>
inline void update_lanes(typename P::Elem* p, const typename P::Elem* g, float* m, float* v,
                         const CoeffsOf<F32x16>& c, Mask k) {
  F32x16 pv = P::load(p, k), mv = Float32::load(m, k), vv = Float32::load(v, k);
  const F32x16 gv = P::load(g, k);
  adamw_update(pv, gv, mv, vv, c);
  P::store(p, pv, k);
  Float32::store(m, mv, k);
  Float32::store(v, vv, k);
}

template <class P>
void update_range(void* p_raw, const void* g_raw, float* m, float* v, int64_t n,
                  const StepCoeffs& coeffs) {
  auto* p = static_cast<typename P::Elem*>(p_raw);
  const auto* g = static_cast<const typename P::Elem*>(g_raw);
  const CoeffsOf<F32x16> c(coeffs);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) update_lanes<P>(p + i, g + i, m + i, v + i, c, kAllLanes);
  if (i < n) {
    const Mask tail = static_cast<Mask>((1u << (n - i)) - 1u);
    update_lanes<P>(p + i, g + i, m + i, v + i, c, tail);
  }
}

// The floor: AdamW's loads and stores, no math (see FloorFn).
inline void floor_lanes(float* p, const float* g, float* m, float* v, Mask k) {
  const __m512 pv = _mm512_maskz_loadu_ps(k, p), gv = _mm512_maskz_loadu_ps(k, g);
  const __m512 mv = _mm512_maskz_loadu_ps(k, m), vv = _mm512_maskz_loadu_ps(k, v);
  _mm512_mask_storeu_ps(p, k, _mm512_max_ps(pv, gv));
  _mm512_mask_storeu_ps(m, k, vv);
  _mm512_mask_storeu_ps(v, k, mv);
}

inline void floor_lanes(int16_t* p, const int16_t* g, float* m, float* v, Mask k) {
  const __m256i pv = _mm256_maskz_loadu_epi16(k, p), gv = _mm256_maskz_loadu_epi16(k, g);
  const __m512 mv = _mm512_maskz_loadu_ps(k, m), vv = _mm512_maskz_loadu_ps(k, v);
  _mm256_mask_storeu_epi16(p, k, _mm256_max_epi16(pv, gv));
  _mm512_mask_storeu_ps(m, k, vv);
  _mm512_mask_storeu_ps(v, k, mv);
}

template <class P>
void floor_typed(P* p, const P* g, float* m, float* v, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) floor_lanes(p + i, g + i, m + i, v + i, kAllLanes);
  if (i < n) floor_lanes(p + i, g + i, m + i, v + i, static_cast<Mask>((1u << (n - i)) - 1u));
}

}  // namespace
}  // namespace avx512

void adamw_range_avx512(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                        const StepCoeffs& c) {
  switch (dtype) {
    case DType::kFloat32: return avx512::update_range<avx512::Float32>(p, g, m, v, n, c);
    case DType::kFloat16: return avx512::update_range<avx512::Float16>(p, g, m, v, n, c);
    case DType::kBFloat16: return avx512::update_range<avx512::BFloat16>(p, g, m, v, n, c);
  }
}

void floor_range_avx512(void* p, const void* g, float* m, float* v, int64_t n, DType dtype) {
  if (dtype == DType::kFloat32)
    avx512::floor_typed(static_cast<float*>(p), static_cast<const float*>(g), m, v, n);
  else
    avx512::floor_typed(static_cast<int16_t*>(p), static_cast<const int16_t*>(g), m, v, n);
}

}  // namespace cpu
}  // namespace fused_adamw
