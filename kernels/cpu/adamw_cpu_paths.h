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

// Baseline x86-64 (adamw_scalar.cpp).
void adamw_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                        const StepCoeffs& c);
void floor_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);
// Needs AVX2, FMA and F16C (adamw_avx2.cpp).
void adamw_range_avx2(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                      const StepCoeffs& c);
void floor_range_avx2(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);
// Needs AVX-512 F, BW and VL (adamw_avx512.cpp).
void adamw_range_avx512(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                        const StepCoeffs& c);
void floor_range_avx512(void* p, const void* g, float* m, float* v, int64_t n, DType dtype);

}  // namespace cpu
}  // namespace fused_adamw
