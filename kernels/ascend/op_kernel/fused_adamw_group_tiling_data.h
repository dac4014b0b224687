// Tiling data of the FusedAdamwGroup operator: a plain struct (no CANN header),
// filled on the host by fa_make_tiling() (op_host/adamw_tiling_plan.cpp), copied
// byte for byte into the launch's tiling buffer, and read by the kernel with
// GET_TILING_DATA_WITH_STRUCT. The tests compile this same header with g++.
//
// The group's flat states are padded (docs/kernel-interface.md, "Flat state
// layout"): tensor k's exp_avg/exp_avg_sq slice is [off_k, off_k + numel_k) with
// off_0 = 0 and off_k = round_up(off_{k-1} + numel_{k-1}, kFaStateAlignElems);
// the state length is off_last + numel_last. That index space (pad elements
// included, never read or written) is what the vector cores share out: each core
// owns one contiguous range of it and walks it tile by tile, skipping the pads
// (op_kernel/adamw_schedule.h).
#ifndef FUSED_ADAMW_GROUP_TILING_DATA_H
#define FUSED_ADAMW_GROUP_TILING_DATA_H

#include <cstdint>

// Upper bound on vector cores a launch can use (910B: 40 or 48 AIV cores).
constexpr uint32_t kFaMaxCores = 64;
// Core ranges start on multiples of this many elements (256 B of float32 state).
constexpr uint32_t kFaCoreAlignElems = 64;
// Each tensor's state slice starts on a multiple of this many elements: the
// project-wide kStateAlignElems of kernels/common/adamw_math.h (the tests check
// they agree). 128 B of float32 state, so every state copy starts on a 32-byte block.
constexpr uint32_t kFaStateAlignElems = 32;
// A tail tile is computed on its length rounded up to this many elements, so
// every vector op and every UB footprint covers whole 32-byte blocks (16 x 2 B).
constexpr uint32_t kFaPadElems = 16;

struct FusedAdamwGroupTilingData {
    uint32_t paramBytes;  // bytes per param/grad element: 4 (float32) or 2 (float16/bfloat16)
    uint32_t usedCores;   // block dim of the launch; cores >= usedCores do nothing
    uint32_t tileLen;     // elements per full tile, a multiple of kFaCoreAlignElems
    uint32_t numTensors;  // tensors in the group (params and grads lists)

    // Unified Buffer layout, in bytes. Each of the two in-queue buffers holds
    // [p | g | m | v] of one tile, each out-queue buffer [p | m | v], and the one
    // calc buffer [p32 | g32 | t1 | t2] (p32/g32 only when params are 16-bit).
    uint32_t inBufBytes;
    uint32_t outBufBytes;
    uint32_t calcBufBytes;
    uint32_t inOffG, inOffM, inOffV;  // p at offset 0
    uint32_t outOffM, outOffV;        // p at offset 0
    uint32_t calcOffG32, calcOffT1, calcOffT2;  // p32 at offset 0
    uint32_t reserved;

    // Per core c < usedCores: its range starts in tensor coreFirstTensor[c] at
    // element coreFirstOffset[c] of that tensor (state index coreFlatStart[c])
    // and spans coreCount[c] elements of the padded state space.
    uint32_t coreFirstTensor[kFaMaxCores];
    int64_t coreFirstOffset[kFaMaxCores];
    int64_t coreFlatStart[kFaMaxCores];
    int64_t coreCount[kFaMaxCores];
};

#endif  // FUSED_ADAMW_GROUP_TILING_DATA_H
