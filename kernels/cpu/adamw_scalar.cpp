// Portable path: plain C++ per element, built with the baseline ISA (the
// compiler may still auto-vectorize it with SSE2). Also the reference the
// SIMD paths' tails fall back to.
#include "adamw_cpu_paths.h"
#include "dtype_convert.h"

namespace fused_adamw {
namespace cpu {
namespace {

template <class Load, class Store>
void update_range(void* p_raw, const void* g_raw, float* m, float* v, int64_t n,
                  const StepCoeffs& coeffs, Load load, Store store) {
  const CoeffsOf<float> c(coeffs);
  for (int64_t i = 0; i < n; ++i) {
    float p = load(p_raw, i);
    const float g = load(g_raw, i);
    adamw_update(p, g, m[i], v[i], c);
    store(p_raw, i, p);
  }
}

float load_f32(const void* a, int64_t i) { return static_cast<const float*>(a)[i]; }
float load_f16(const void* a, int64_t i) { return fp16_to_float(static_cast<const uint16_t*>(a)[i]); }
float load_bf16(const void* a, int64_t i) { return bf16_to_float(static_cast<const uint16_t*>(a)[i]); }
void store_f32(void* a, int64_t i, float x) { static_cast<float*>(a)[i] = x; }
void store_f16(void* a, int64_t i, float x) { static_cast<uint16_t*>(a)[i] = float_to_fp16(x); }
void store_bf16(void* a, int64_t i, float x) { static_cast<uint16_t*>(a)[i] = float_to_bf16(x); }

// P is float or int16_t (16-bit parameters compared as raw bits: no conversion).
template <class P>
void floor_typed(P* p, const P* g, float* m, float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const P pi = p[i], gi = g[i];
    const float mi = m[i], vi = v[i];
    p[i] = pi > gi ? pi : gi;
    m[i] = vi;
    v[i] = mi;
  }
}

}  // namespace

void adamw_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                        const StepCoeffs& c) {
  switch (dtype) {
    case DType::kFloat32: {
      // Typed pointers (rather than the load/store helpers) let the compiler vectorize.
      float* pf = static_cast<float*>(p);
      const float* gf = static_cast<const float*>(g);
      const CoeffsOf<float> cf(c);
      for (int64_t i = 0; i < n; ++i) adamw_update(pf[i], gf[i], m[i], v[i], cf);
      return;
    }
    case DType::kFloat16: return update_range(p, g, m, v, n, c, load_f16, store_f16);
    case DType::kBFloat16: return update_range(p, g, m, v, n, c, load_bf16, store_bf16);
  }
}

void floor_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype) {
  if (dtype == DType::kFloat32)
    floor_typed(static_cast<float*>(p), static_cast<const float*>(g), m, v, n);
  else
    floor_typed(static_cast<int16_t*>(p), static_cast<const int16_t*>(g), m, v, n);
}

}  // namespace cpu
}  // namespace fused_adamw
