// The per-ISA functions, each ISA compiled in its own translation unit with its
// own target flags (see CMakeLists.txt). Internal to kernels/cpu.
#pragma once
#include "adamw_cpu.h"

namespace fused_adamw {
namespace cpu {

// The memory floor of one tensor piece: reads p, g, m, v and writes p, m, v
// (p = max(p, g), m and v swapped) with no AdamW math, so it streams exactly the
// bytes a step streams. Values stay ones that were already there.
using FloorFn = void (*)(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);
// Norm pass over one piece of a chunk (see update_lanes.h sumsq_piece).
using SumsqFn = bool (*)(const void* g, DType dtype, int64_t n, float scale, double (&acc)[16], int& phase);

// Each returns the path's update for (variant flags, param dtype, grad dtype), or
// nullptr for invalid flags.
// Baseline x86-64 (adamw_scalar.cpp).
RangeFn range_fn_scalar(unsigned flags, DType p, DType g);
bool sumsq_scalar(const void* g, DType dtype, int64_t n, float scale, double (&acc)[16], int& phase);
void floor_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);
// Needs AVX2, FMA and F16C (adamw_avx2.cpp).
RangeFn range_fn_avx2(unsigned flags, DType p, DType g);
bool sumsq_avx2(const void* g, DType dtype, int64_t n, float scale, double (&acc)[16], int& phase);
void floor_range_avx2(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);
// Needs AVX-512 F, BW and VL (adamw_avx512.cpp).
RangeFn range_fn_avx512(unsigned flags, DType p, DType g);
bool sumsq_avx512(const void* g, DType dtype, int64_t n, float scale, double (&acc)[16], int& phase);
void floor_range_avx512(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);

}  // namespace cpu
}  // namespace fused_adamw
