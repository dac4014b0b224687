// The stochastic-rounding bits of kernels/common/rounding.h (fa_sr_bits), for
// the lanes of one SIMD vector, and float16 stochastic rounding lane by lane. Included inside an ISA namespace by
// simd_avx2.h / simd_avx512.h after they define their integer helpers:
//   IVec, iset1(uint32_t), iadd, imul (low 32 bits), ixor, isrl<k>, iota(),
// and kLanes; the TU is built with F16C. Lane j gets the bits of element index0 + j.
// (No include guard on purpose: once per ISA namespace.)

inline IVec fmix32_lanes(IVec h) {
  h = ixor(h, isrl<16>(h));
  h = imul(h, iset1(0x85ebca6bu));
  h = ixor(h, isrl<13>(h));
  h = imul(h, iset1(0xc2b2ae35u));
  return ixor(h, isrl<16>(h));
}

// Returns false (and leaves `out` alone) when the lanes would cross a 2^32
// boundary of the index, which the caller then handles lane by lane.
inline bool sr_bits_lanes(int64_t index0, uint32_t key, IVec* out) {
  const uint64_t first = static_cast<uint64_t>(index0);
  const uint32_t lo = static_cast<uint32_t>(first), hi = static_cast<uint32_t>(first >> 32);
  if (lo > 0xffffffffu - static_cast<uint32_t>(kLanes - 1)) return false;
  const IVec lanes = iadd(iset1(lo), iota());
  *out = fmix32_lanes(iadd(ixor(lanes, iset1(key)), iset1(hi * 0x9e3779b9u)));
  return true;
}

// float16 stochastic rounding (rounding.h's rule) of the lanes `f` with random bits `r`,
// over `a` already holding their round-to-nearest-even encoding (kept for NaN lanes).
// Lane by lane: a rare enough mode that scalar code is worth its simplicity.
inline void fp16_sr_over_rne(Fp16* a, const float* f, const uint32_t* r) {
  for (int j = 0; j < kLanes; ++j) {
    if (f[j] != f[j]) continue;
    const float ax = f[j] < 0.0f ? -f[j] : f[j];
    const uint16_t rne = _cvtss_sh(ax, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const uint16_t mag = fa_fp16_magnitude_sr(ax, rne, r[j], [](uint16_t h) { return _cvtsh_ss(h); });
    a[j].bits = static_cast<uint16_t>(mag | (std::signbit(f[j]) ? 0x8000u : 0u));
  }
}
