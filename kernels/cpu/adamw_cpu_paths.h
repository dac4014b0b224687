// The per-ISA range functions, each compiled in its own translation unit with
// its own target flags (see CMakeLists.txt). Internal to kernels/cpu.
#pragma once
#include "adamw_cpu.h"

namespace fused_adamw {
namespace cpu {

void adamw_range_scalar(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                        const StepCoeffs& c);

}  // namespace cpu
}  // namespace fused_adamw
