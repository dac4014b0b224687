// Portable scalar conversions between float32 and the 16-bit parameter types,
// bit-identical to MindSpore's CPU Cast (checked by tests/test_cpu_isa.py):
// round to nearest even, subnormals kept (no flush to zero), and NaN written as
// MindSpore writes it: bfloat16 NaN is always 0x7fc0 (sign and payload dropped),
// float16 NaN keeps its sign and becomes sign|0x7e00 (payload dropped).
#pragma once
#include <cstdint>
#include <cstring>

namespace fused_adamw {

constexpr uint16_t kBf16NaN = 0x7fc0;
constexpr uint16_t kFp16QuietNaN = 0x7e00;

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return kBf16NaN;
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

inline float fp16_to_float(uint16_t h) {
  _Float16 x;
  std::memcpy(&x, &h, sizeof x);
  return static_cast<float>(x);
}

inline uint16_t float_to_fp16(float f) {
  if (f != f) {  // NaN
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return static_cast<uint16_t>(((bits >> 16) & 0x8000u) | kFp16QuietNaN);
  }
  const _Float16 x = static_cast<_Float16>(f);  // IEEE conversion: round to nearest even
  uint16_t h;
  std::memcpy(&h, &x, sizeof h);
  return h;
}

}  // namespace fused_adamw
