// Tiling data of the FusedAdamwGroup operator: a plain struct (no CANN header),
// filled on the host by fa_make_tiling() (op_host/adamw_tiling_plan.cpp), copied
// byte for byte into the launch's tiling buffer, and read by the kernel with
// GET_TILING_DATA_WITH_STRUCT. The tests compile this same header with g++.
//
// The group's elements form one flat index space [0, total): tensor k occupies
// [prefix_k, prefix_k + numel_k), which is also where its exp_avg/exp_avg_sq
// live in the flat state buffers. Each vector core owns one contiguous range of
// that space; the kernel walks it tile by tile (op_kernel/adamw_schedule.h).
#ifndef FUSED_ADAMW_GROUP_TILING_DATA_H
#define FUSED_ADAMW_GROUP_TILING_DATA_H

#include <cstdint>

// Upper bound on vector cores a launch can use (910B: 40 or 48 AIV cores).
constexpr uint32_t kFaMaxCores = 64;
// Core ranges start on multiples of this many elements (256 B of float32 state).
constexpr uint32_t kFaCoreAlignElems = 64;
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
    // element coreFirstOffset[c] of that tensor (flat index coreFlatStart[c])
    // and spans coreCount[c] elements of the flat space.
    uint32_t coreFirstTensor[kFaMaxCores];
    int64_t coreFirstOffset[kFaMaxCores];
    int64_t coreFlatStart[kFaMaxCores];
    int64_t coreCount[kFaMaxCores];
};

#endif  // FUSED_ADAMW_GROUP_TILING_DATA_H
