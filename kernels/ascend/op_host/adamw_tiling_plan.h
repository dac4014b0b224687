// Host tiling of FusedAdamwGroup in plain C++ (no CANN header): the op_host
// tiling function (fused_adamw_group.cpp) calls it with the platform's vector
// core count and Unified Buffer size, and the tests (tests/ascend) call it with
// g++ over sizes 1..1e10 and 1..48 cores, and run the kernel with it. The kernel consumes its output as is.
#ifndef FUSED_ADAMW_GROUP_TILING_PLAN_H
#define FUSED_ADAMW_GROUP_TILING_PLAN_H

#include <cstdint>

#include "../op_kernel/fused_adamw_group_tiling_data.h"

// 910B defaults (GetCoreNumAiv / GetCoreMemSize(UB) on a 910B2): what the tests
// assume when they are not sweeping.
constexpr uint32_t kFa910bVectorCores = 48;
constexpr uint64_t kFa910bUbBytes = 192 * 1024;
// UB left unused by the tile buffers, as CANN's own AdamW tilings keep a margin.
constexpr uint64_t kFaUbReserveBytes = 1024;

// What a launch moves and computes: element sizes and the shape-derived variant
// flags (kFaAmsgrad, kFaMaster, kFaBf16State; stochastic rounding needs no UB
// of its own beyond the calc slots every 16-bit layout has).
struct FaTilingConfig {
    uint32_t paramBytes;  // 4 or 2
    uint32_t gradBytes;   // paramBytes or 4
    uint32_t stateBytes;  // 4, or 2 (bfloat16) with kFaBf16State
    uint32_t flags;
};

extern "C" {

// UB bytes one tile element costs: two buffers of each queue (double
// buffering) plus the single calc buffer. 0 for an invalid config.
uint64_t fa_ub_bytes_per_elem(const FaTilingConfig* cfg);

// Elements of the group's flat exp_avg / exp_avg_sq in the padded layout
// (docs/kernel-interface.md): the last tensor's state offset plus its size.
int64_t fa_state_len(const int64_t* numels, uint32_t num_tensors);

// Fills *out for a group whose tensors have numels[0..num_tensors). Returns
// nullptr on success, otherwise a static message (nothing else is touched).
const char* fa_make_tiling(const int64_t* numels, uint32_t num_tensors, const FaTilingConfig* cfg,
                           uint32_t core_num, uint64_t ub_bytes, FusedAdamwGroupTilingData* out);

}  // extern "C"

#endif  // FUSED_ADAMW_GROUP_TILING_PLAN_H
