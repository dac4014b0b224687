// Element types of the CUDA kernels: how 4 elements are loaded as one vector
// and converted to float, the stores (round to nearest even, or stochastic
// rounding with kernels/common/rounding.h's bits), all written once for the
// AdamW kernel and the gradient-norm kernel. Compiled by nvcc, and by g++
// through cuda_on_cpu.h in tests.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "../common/rounding.h"

// The CPU emulation checks that every vector access is aligned, as a GPU would
// (it faults); on the GPU this compiles to nothing.
#ifndef FA_ASSERT_ALIGNED
#define FA_ASSERT_ALIGNED(ptr, bytes) ((void)0)
#endif

namespace fused_adamw {
namespace cuda {

// Element types: how 4 elements are loaded as one vector and converted to float.
struct F32 {
  using Storage = float;
  using Vec = float4;
  static __device__ __forceinline__ float to_float(float x) { return x; }
  static __device__ __forceinline__ float from_float(float x) { return x; }
  static __device__ __forceinline__ void unpack(const float4& q, float (&f)[4]) {
    f[0] = q.x; f[1] = q.y; f[2] = q.z; f[3] = q.w;
  }
  static __device__ __forceinline__ float4 pack(const float (&f)[4]) {
    float4 q;
    q.x = f[0]; q.y = f[1]; q.z = f[2]; q.w = f[3];
    return q;
  }
};

// 16-bit types share the packing (two elements per 32-bit word, the lower
// address in the low half); they differ only in the scalar conversion.
template <class Conv>
struct Bits16 {
  using Storage = unsigned short;
  using Vec = uint2;
  static __device__ __forceinline__ float to_float(unsigned short h) { return Conv::to_float(h); }
  static __device__ __forceinline__ unsigned short from_float(float x) { return Conv::from_float(x); }
  static __device__ __forceinline__ void unpack(const uint2& q, float (&f)[4]) {
    f[0] = to_float(static_cast<unsigned short>(q.x & 0xffffu));
    f[1] = to_float(static_cast<unsigned short>(q.x >> 16));
    f[2] = to_float(static_cast<unsigned short>(q.y & 0xffffu));
    f[3] = to_float(static_cast<unsigned short>(q.y >> 16));
  }
  static __device__ __forceinline__ uint2 pack(const float (&f)[4]) {
    uint2 q;
    q.x = static_cast<unsigned>(from_float(f[0])) | (static_cast<unsigned>(from_float(f[1])) << 16);
    q.y = static_cast<unsigned>(from_float(f[2])) | (static_cast<unsigned>(from_float(f[3])) << 16);
    return q;
  }
};

// Round to nearest even, as MindSpore's Cast and the CPU kernel do, and NaN
// written as they write it (kernels/cpu/dtype_convert.h): float16 keeps the
// sign and becomes sign|0x7e00, bfloat16 is always 0x7fc0. (CUDA's own
// conversions write 0x7fff for NaN.)
struct HalfConv {
  static __device__ __forceinline__ float to_float(unsigned short h) { return __half2float(__ushort_as_half(h)); }
  static __device__ __forceinline__ unsigned short from_float(float x) {
    if (x != x) return static_cast<unsigned short>(((__float_as_uint(x) >> 16) & 0x8000u) | 0x7e00u);
    return __half_as_ushort(__float2half_rn(x));
  }
};
struct BFloat16Conv {
  static __device__ __forceinline__ float to_float(unsigned short h) {
    return __bfloat162float(__ushort_as_bfloat16(h));
  }
  static __device__ __forceinline__ unsigned short from_float(float x) {
    if (x != x) return 0x7fc0;
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  }
};
using F16 = Bits16<HalfConv>;
using BF16 = Bits16<BFloat16Conv>;

// Stochastic rounding (kVariant kStochastic, 16-bit params) with the shared
// counter-based bits and rounding rules of kernels/common/rounding.h, element
// by element as the CPU kernel's scalar path does.
struct HalfBitsToFloat {
  __device__ __forceinline__ float operator()(uint16_t h) const { return HalfConv::to_float(h); }
};
template <class E>
__device__ __forceinline__ typename E::Storage round_sr(float x, uint32_t random);
template <>
__device__ __forceinline__ unsigned short round_sr<BF16>(float x, uint32_t random) {
  return fa_bf16_bits_sr(__float_as_uint(x), random);
}
template <>
__device__ __forceinline__ unsigned short round_sr<F16>(float x, uint32_t random) {
  if (x != x) return HalfConv::from_float(x);
  const float ax = fabsf(x);
  const uint16_t mag = fa_fp16_magnitude_sr(ax, HalfConv::from_float(ax), random, HalfBitsToFloat());
  return static_cast<unsigned short>(mag | ((__float_as_uint(x) >> 16) & 0x8000u));
}

// Vector accesses go through the streaming intrinsics (each byte is touched
// once per step, so evict-first is the right cache policy). They are also
// opaque to the optimiser: with plain dereferences nvcc merged the vector and
// scalar paths into scalar loads and no 128-bit access was left in the SASS.
template <class E>
__device__ __forceinline__ void load4(const typename E::Storage* a, int i, bool vec, float (&f)[4]) {
  if (vec) {
    FA_ASSERT_ALIGNED(a + i, sizeof(typename E::Vec));
    E::unpack(__ldcs(reinterpret_cast<const typename E::Vec*>(a + i)), f);
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) f[k] = E::to_float(a[i + k]);
  }
}

template <class E>
__device__ __forceinline__ void store4(typename E::Storage* a, int i, bool vec, const float (&f)[4]) {
  if (vec) {
    FA_ASSERT_ALIGNED(a + i, sizeof(typename E::Vec));
    __stcs(reinterpret_cast<typename E::Vec*>(a + i), E::pack(f));
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) a[i + k] = E::from_float(f[k]);
  }
}

// 16-bit params written with stochastic rounding: element k of the quad at i
// uses the random bits of group position index0 + i + k.
template <class E>
__device__ __forceinline__ void store4_sr(typename E::Storage* a, int i, bool vec, const float (&f)[4],
                                          int64_t index0, uint32_t key) {
  unsigned short h[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) h[k] = round_sr<E>(f[k], fa_sr_bits(key, static_cast<uint64_t>(index0 + i + k)));
  if (vec) {
    FA_ASSERT_ALIGNED(a + i, sizeof(uint2));
    uint2 q;
    q.x = static_cast<unsigned>(h[0]) | (static_cast<unsigned>(h[1]) << 16);
    q.y = static_cast<unsigned>(h[2]) | (static_cast<unsigned>(h[3]) << 16);
    __stcs(reinterpret_cast<uint2*>(a + i), q);
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) a[i + k] = h[k];
  }
}

}  // namespace cuda
}  // namespace fused_adamw
