// Portable path: the generic body (update_lanes.h) one element at a time, built
// with the baseline ISA. Conversions are dtype_convert.h's, bit-identical to
// MindSpore's Cast; stochastic rounding is kernels/common/rounding.h's.
#include <cmath>

#include "../common/rounding.h"
#include "adamw_cpu_paths.h"
#include "dtype_convert.h"
#include "update_lanes.h"

namespace fused_adamw {
namespace cpu {
namespace scalar {
namespace {

float fp16_bits_to_float(uint16_t h) { return fp16_to_float(h); }

struct Isa {
  using Vec = float;
  static constexpr int kLanes = 1;
  static float load(const float* a) { return *a; }
  static float load(const Bf16* a) { return bf16_to_float(a->bits); }
  static float load(const Fp16* a) { return fp16_to_float(a->bits); }
  static void store(float* a, float x) { *a = x; }
  static void store(Bf16* a, float x) { a->bits = float_to_bf16(x); }
  static void store(Fp16* a, float x) { a->bits = float_to_fp16(x); }
  static void store_sr(Bf16* a, float x, int64_t index, uint32_t key) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    a->bits = fa_bf16_bits_sr(bits, fa_sr_bits(key, static_cast<uint64_t>(index)));
  }
  static void store_sr(Fp16* a, float x, int64_t index, uint32_t key) {
    if (x != x) {
      a->bits = float_to_fp16(x);
      return;
    }
    const float ax = x < 0.0f ? -x : x;
    const uint16_t rne = float_to_fp16(ax);
    const uint16_t mag = fa_fp16_magnitude_sr(ax, rne, fa_sr_bits(key, static_cast<uint64_t>(index)),
                                              fp16_bits_to_float);
    a->bits = static_cast<uint16_t>(mag | (std::signbit(x) ? 0x8000u : 0u));
  }
  static float to_float(float x) { return x; }
  static float to_float(Bf16 x) { return bf16_to_float(x.bits); }
  static float to_float(Fp16 x) { return fp16_to_float(x.bits); }
  template <class G>
  static bool sumsq_blocks(const G* g, int64_t blocks, float scale, double (&acc)[16]) {
    bool finite = true;
    for (int64_t b = 0; b < blocks; ++b, g += 16) {
      for (int j = 0; j < 16; ++j) {
        const float u = to_float(g[j]) * scale;
        finite &= (u - u) == 0.0f;
        acc[j] += static_cast<double>(u) * static_cast<double>(u);
      }
    }
    return finite;
  }
};

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
}  // namespace scalar

RangeFn range_fn_scalar(unsigned flags, DType p, DType g) { return pick_range<scalar::Isa>(flags, p, g); }

bool sumsq_scalar(const void* g, DType dt, int64_t n, float scale, double (&acc)[16], int& phase) {
  return sumsq_dispatch<scalar::Isa>(g, dt, n, scale, acc, phase);
}

void floor_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype) {
  if (dtype == DType::kFloat32)
    scalar::floor_typed(static_cast<float*>(p), static_cast<const float*>(g), m, v, n);
  else
    scalar::floor_typed(static_cast<int16_t*>(p), static_cast<const int16_t*>(g), m, v, n);
}

}  // namespace cpu
}  // namespace fused_adamw
