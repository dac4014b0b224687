// AVX-512 path: 16 elements per step through the generic body
// (update_lanes.h) and the shared adamw_update.
// Built with -mavx512f -mavx512bw -mavx512vl (CMakeLists.txt); run only when
// isa_supported(Isa::kAvx512) says the CPU has them.
#include <cmath>

#include "../common/rounding.h"
#include "adamw_cpu_paths.h"
#include "simd_avx512.h"
#include "update_lanes.h"

namespace fused_adamw {
namespace cpu {
namespace avx512 {
namespace {

using IVec = __m512i;
inline IVec iset1(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
inline IVec iadd(IVec a, IVec b) { return _mm512_add_epi32(a, b); }
inline IVec imul(IVec a, IVec b) { return _mm512_mullo_epi32(a, b); }
inline IVec ixor(IVec a, IVec b) { return _mm512_xor_si512(a, b); }
template <int k>
inline IVec isrl(IVec a) { return _mm512_srli_epi32(a, k); }
inline IVec iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
#include "simd_hash.h"

struct Isa {
  using Vec = F32x16;
  static constexpr int kLanes = avx512::kLanes;
  static Vec load(const float* a) { return Float32::load(a, kAllLanes); }
  static Vec load(const Bf16* a) { return BFloat16::load(reinterpret_cast<const uint16_t*>(a), kAllLanes); }
  static Vec load(const Fp16* a) { return Float16::load(reinterpret_cast<const uint16_t*>(a), kAllLanes); }
  static void store(float* a, Vec x) { Float32::store(a, x, kAllLanes); }
  static void store(Bf16* a, Vec x) { BFloat16::store(reinterpret_cast<uint16_t*>(a), x, kAllLanes); }
  static void store(Fp16* a, Vec x) { Float16::store(reinterpret_cast<uint16_t*>(a), x, kAllLanes); }

  static IVec random(int64_t index0, uint32_t key) {
    IVec bits;
    if (sr_bits_lanes(index0, key, &bits)) return bits;
    alignas(64) uint32_t r[kLanes];
    for (int j = 0; j < kLanes; ++j) r[j] = fa_sr_bits(key, static_cast<uint64_t>(index0 + j));
    return _mm512_load_si512(r);
  }
  static void store_sr(Bf16* a, Vec x, int64_t index0, uint32_t key) {
    const __m512i bits = _mm512_castps_si512(x.v);
    const __m512i low = _mm512_and_si512(random(index0, key), _mm512_set1_epi32(0xffff));
    __m512i out = _mm512_srli_epi32(_mm512_add_epi32(bits, low), 16);
    const Mask nan = _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q);
    out = _mm512_mask_mov_epi32(out, nan, _mm512_set1_epi32(0x7fc0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a), _mm512_cvtepi32_epi16(out));
  }
  static void store_sr(Fp16* a, Vec x, int64_t index0, uint32_t key) {
    alignas(64) float f[kLanes];
    alignas(64) uint32_t r[kLanes];
    _mm512_store_ps(f, x.v);
    _mm512_store_si512(r, random(index0, key));
    Float16::store(reinterpret_cast<uint16_t*>(a), x, kAllLanes);  // NaN lanes keep this (RNE) value
    fp16_sr_over_rne(a, f, r);
  }

  // Norm pass: runs of 16 elements into 16 float64 accumulators (element j of a run -> acc[j]),
  // held in two registers for the whole run.
  template <class G>
  static bool sumsq_blocks(const G* g, int64_t blocks, float scale, double (&acc)[16]) {
    const __m512 s = _mm512_set1_ps(scale);
    __m512d lo_acc = _mm512_loadu_pd(acc), hi_acc = _mm512_loadu_pd(acc + 8);
    Mask nonfinite = 0;
    for (int64_t b = 0; b < blocks; ++b, g += 16) {
      const __m512 u = _mm512_mul_ps(load(g).v, s);
      nonfinite |= _mm512_cmp_ps_mask(_mm512_sub_ps(u, u), _mm512_setzero_ps(), _CMP_NEQ_UQ);
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(u));
      const __m512d hi = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(u), 1)));
      lo_acc = _mm512_add_pd(lo_acc, _mm512_mul_pd(lo, lo));
      hi_acc = _mm512_add_pd(hi_acc, _mm512_mul_pd(hi, hi));
    }
    _mm512_storeu_pd(acc, lo_acc);
    _mm512_storeu_pd(acc + 8, hi_acc);
    return nonfinite == 0;
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

RangeFn range_fn_avx512(unsigned flags, DType p, DType g) { return pick_range<avx512::Isa>(flags, p, g); }

bool sumsq_avx512(const void* g, DType dt, int64_t n, float scale, double (&acc)[16], int& phase) {
  return sumsq_dispatch<avx512::Isa>(g, dt, n, scale, acc, phase);
}

void floor_range_avx512(void* p, const void* g, float* m, float* v, int64_t n, DType dtype) {
  if (dtype == DType::kFloat32)
    avx512::floor_typed(static_cast<float*>(p), static_cast<const float*>(g), m, v, n);
  else
    avx512::floor_typed(static_cast<int16_t*>(p), static_cast<const int16_t*>(g), m, v, n);
}

}  // namespace cpu
}  // namespace fused_adamw
