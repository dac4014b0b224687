// Host tiling of FusedGradNormGroup in plain C++ (no CANN header), used by the
// op_host tiling function and by the tests.
#ifndef FUSED_GRAD_NORM_PLAN_H
#define FUSED_GRAD_NORM_PLAN_H

#include <cstdint>

#include "../op_kernel/fused_grad_norm_group_tiling_data.h"

extern "C" {

// Fills *out for gradients of numels[0..num_tensors) with grad_bytes per element.
// Returns nullptr, or a static message (nothing else touched).
const char* fa_make_norm_tiling(const int64_t* numels, uint32_t num_tensors, uint32_t grad_bytes, uint32_t core_num,
                                uint64_t ub_bytes, FusedGradNormGroupTilingData* out);

}  // extern "C"

#endif  // FUSED_GRAD_NORM_PLAN_H
