// The ISA-generic body of the CPU kernel: one template, instantiated by each
// ISA path (adamw_scalar.cpp, adamw_avx2.cpp, adamw_avx512.cpp) with its own
// traits struct `I`, for every variant (kernels/common/adamw_math.h) and dtype
// combination. The math is adamw_update; this file only moves elements.
//
// I provides: Vec (float or a SIMD type), kLanes, load(const E*) / store(E*, Vec)
// for E in float, Bf16, Fp16 (RNE stores), store_sr(Bf16*/Fp16*, Vec, index of
// lane 0, key) for stochastic rounding, and sumsq_blocks (runs of 16 gradient elements into
// the 16 float64 accumulators) for the norm pass.
// A piece's last n % kLanes elements are copied into zero-padded stack buffers,
// run through the same vector code and copied back: every element of a tensor
// gets bit-identical arithmetic wherever it lies.
//
// Included by one translation unit per ISA, after its traits header; the
// instantiations differ by the traits type, so no two ISAs share a symbol.
#pragma once
#include <cstdint>
#include <cstring>

#include "../common/adamw_math.h"
#include "adamw_cpu.h"
#include "cpu_elem.h"

namespace fused_adamw {
namespace cpu {

// Element type of a state buffer / of a parameter or gradient dtype.
template <bool kBf16>
using StateElem = typename std::conditional<kBf16, Bf16, float>::type;

// One vector of elements: the update of kLanes consecutive elements whose state
// sits at flat index `flat` (the group's element `index` = index_base + flat).
template <class I, class V, class P, class G, class S>
inline void step_lanes(P* p, const G* g, S* m, S* v, S* vmax, float* master, int64_t index,
                       uint32_t key, const CoeffsOf<typename I::Vec>& c) {
  using Vec = typename I::Vec;
  constexpr bool k16 = !std::is_same<P, float>::value;
  constexpr bool kMasterRead = V::master && k16;
  Vec pv;
  if constexpr (kMasterRead) pv = I::load(master);
  else pv = I::load(p);
  const Vec gv = I::load(g);
  Vec mv = I::load(m), vv = I::load(v);
  Vec xv = vv;
  if constexpr (V::amsgrad) xv = I::load(vmax);
  adamw_update<V::amsgrad>(pv, gv, mv, vv, xv, c);
  I::store(m, mv);
  I::store(v, vv);
  if constexpr (V::amsgrad) I::store(vmax, xv);
  if constexpr (kMasterRead) I::store(master, pv);
  if constexpr (V::stochastic && k16) I::store_sr(p, pv, index, key);
  else I::store(p, pv);
}

template <class T>
inline T* at(void* base, int64_t i) { return static_cast<T*>(base) + i; }

template <class I, class V, class P, class G>
void update_piece(const Piece& pc, const GroupStates& st, const StepCoeffs& coeffs,
                  const UpdateConfig& cfg) {
  using S = StateElem<V::bf16_state>;
  constexpr int L = I::kLanes;
  const CoeffsOf<typename I::Vec> c(coeffs);
  P* p = static_cast<P*>(pc.p);
  const G* g = static_cast<const G*>(pc.g);
  S* m = at<S>(st.exp_avg, pc.flat);
  S* v = at<S>(st.exp_avg_sq, pc.flat);
  S* x = V::amsgrad ? at<S>(st.max_exp_avg_sq, pc.flat) : nullptr;
  float* w = V::master ? st.master + pc.flat : nullptr;
  const int64_t index0 = cfg.index_base + pc.flat;
  int64_t i = 0;
  for (; i + L <= pc.n; i += L)
    step_lanes<I, V>(p + i, g + i, m + i, v + i, V::amsgrad ? x + i : x, V::master ? w + i : w,
                     index0 + i, cfg.sr_key, c);
  const int64_t rest = pc.n - i;
  if (rest == 0) return;
  P pb[L] = {};
  G gb[L] = {};
  S mb[L] = {}, vb[L] = {}, xb[L] = {};
  float wb[L] = {};
  std::memcpy(pb, p + i, rest * sizeof(P));
  std::memcpy(gb, g + i, rest * sizeof(G));
  std::memcpy(mb, m + i, rest * sizeof(S));
  std::memcpy(vb, v + i, rest * sizeof(S));
  if (V::amsgrad) std::memcpy(xb, x + i, rest * sizeof(S));
  if (V::master) std::memcpy(wb, w + i, rest * sizeof(float));
  step_lanes<I, V>(pb, gb, mb, vb, xb, wb, index0 + i, cfg.sr_key, c);
  std::memcpy(p + i, pb, rest * sizeof(P));
  std::memcpy(m + i, mb, rest * sizeof(S));
  std::memcpy(v + i, vb, rest * sizeof(S));
  if (V::amsgrad) std::memcpy(x + i, xb, rest * sizeof(S));
  if (V::master) std::memcpy(w + i, wb, rest * sizeof(float));
}

// The table of instantiations: flags x (param dtype, grad dtype).
template <class I, unsigned kFlags>
RangeFn pick_dtypes(DType p, DType g) {
  using V = Variant<kFlags>;
  const bool g32 = g == DType::kFloat32;
  switch (p) {
    case DType::kFloat32: return update_piece<I, V, float, float>;
    case DType::kFloat16: return g32 ? update_piece<I, V, Fp16, float> : update_piece<I, V, Fp16, Fp16>;
    case DType::kBFloat16: return g32 ? update_piece<I, V, Bf16, float> : update_piece<I, V, Bf16, Bf16>;
  }
  return nullptr;
}

template <class I, unsigned kFlags = 0>
RangeFn pick_range(unsigned flags, DType p, DType g) {
  if constexpr (kFlags >= kNumVariantFlags) {
    return nullptr;
  } else {
    if (flags == kFlags) return variant_valid(kFlags) ? pick_dtypes<I, kFlags>(p, g) : nullptr;
    return pick_range<I, kFlags + 1>(flags, p, g);
  }
}

// Norm pass over n gradient elements: lane j of the 16 float64 accumulators
// takes elements j, j+16, ...; `acc` carries them between pieces of one chunk.
template <class I, class G>
bool sumsq_piece(const G* g, int64_t n, float scale, double (&acc)[16], int& phase) {
  bool finite = true;
  int64_t i = 0;
  // Scalar steps until the piece is at lane 0 of the accumulators, so that the
  // vector loop always adds element k to accumulator k % 16.
  for (; i < n && phase != 0; ++i, phase = (phase + 1) & 15) {
    const float u = I::to_float(g[i]) * scale;
    finite &= (u - u) == 0.0f;
    acc[phase] += static_cast<double>(u) * static_cast<double>(u);
  }
  const int64_t blocks = (n - i) / 16;  // the accumulators stay in registers across them
  finite &= I::sumsq_blocks(g + i, blocks, scale, acc);
  i += 16 * blocks;
  for (; i < n; ++i, phase = (phase + 1) & 15) {
    const float u = I::to_float(g[i]) * scale;
    finite &= (u - u) == 0.0f;
    acc[phase] += static_cast<double>(u) * static_cast<double>(u);
  }
  return finite;
}

template <class I>
bool sumsq_dispatch(const void* g, DType dt, int64_t n, float scale, double (&acc)[16], int& phase) {
  switch (dt) {
    case DType::kFloat32: return sumsq_piece<I>(static_cast<const float*>(g), n, scale, acc, phase);
    case DType::kFloat16: return sumsq_piece<I>(static_cast<const Fp16*>(g), n, scale, acc, phase);
    case DType::kBFloat16: return sumsq_piece<I>(static_cast<const Bf16*>(g), n, scale, acc, phase);
  }
  return true;
}

}  // namespace cpu
}  // namespace fused_adamw
