// CUDA on the CPU, for tests: just enough of CUDA for the fused AdamW kernel
// (adamw_kernel.cuh) to compile as host C++ and run every block and thread of
// a launch sequentially. Include it before the kernel; never in the library.
//
// It catches indexing, tail, alignment and table bugs (every vector access is
// checked for alignment, as a GPU would fault on it). It cannot catch races or
// say anything about speed: threads run one after another, which is a valid
// schedule only because the kernel's threads never communicate.
#pragma once
#if defined(__CUDACC__)
#error "cuda_on_cpu.h is for host compilers only"
#endif

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "../cpu/dtype_convert.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline  // not forced: the emulation need not be fast, and compiles 12 variants
#define __launch_bounds__(...)
#define __grid_constant__

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// The built-in variables of the emulated thread that is running.
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};

// The 16-bit types and their conversions, rounding to nearest even.
struct __half {
  unsigned short bits;
};
struct __nv_bfloat16 {
  unsigned short bits;
};
inline __half __ushort_as_half(unsigned short s) { return __half{s}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline float __half2float(__half h) { return fused_adamw::fp16_to_float(h.bits); }
inline __half __float2half_rn(float f) { return __half{fused_adamw::float_to_fp16(f)}; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short s) { return __nv_bfloat16{s}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.bits; }
inline float __bfloat162float(__nv_bfloat16 h) { return fused_adamw::bf16_to_float(h.bits); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{fused_adamw::float_to_bf16(f)}; }

inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

namespace cuda_on_cpu {

// Vector accesses, and misaligned ones, since the last reset (the first
// misaligned one is described). Tests use the count to see which path ran.
inline thread_local long vector_accesses = 0;
inline thread_local long misaligned_accesses = 0;
inline thread_local char first_misaligned[128] = "";

inline void check_aligned(const void* p, unsigned long bytes, const char* where) {
  ++vector_accesses;
  if (reinterpret_cast<uintptr_t>(p) % bytes == 0) return;
  if (misaligned_accesses++ == 0)
    std::snprintf(first_misaligned, sizeof first_misaligned, "%lu-byte access at %p (%s)", bytes, p, where);
}

// Runs kernel<<<grid, block>>>(args...) to completion: blocks in order, and
// every thread of a block to completion before the next one starts.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, const Args&... args) {
  gridDim = grid;
  blockDim = block;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = dim3{bx, by, bz};
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx) {
              threadIdx = dim3{tx, ty, tz};
              kernel(args...);
            }
      }
}

}  // namespace cuda_on_cpu

#define FA_ASSERT_ALIGNED(ptr, bytes) cuda_on_cpu::check_aligned((ptr), (bytes), __func__)

// Streaming loads and stores (cache hints only on a GPU). memcpy, so that a
// misaligned access is reported by FA_ASSERT_ALIGNED rather than crashing here.
template <class V>
inline V __ldcs(const V* p) {
  V value;
  std::memcpy(&value, p, sizeof value);
  return value;
}
template <class V>
inline void __stcs(V* p, V value) {
  std::memcpy(p, &value, sizeof value);
}
