// Tiling data of the FusedGradNormGroup operator (pass 1 of the whole step,
// issue 14): a plain struct filled by fa_make_norm_tiling (op_host/grad_norm_plan.cpp)
// and copied byte for byte into the launch's tiling buffer.
//
// The group's gradients, concatenated in order (unpadded, as the C++ kernels'
// norm pass), form chunks of kFaNormChunk elements; chunk c's sum of squares of
// the unscaled gradients goes to partials[c][0..8) as 8 float32 lane sums, each
// from a fixed sequence of float32 additions, so the result does not depend on
// how chunks are dealt to cores. The caller combines the lanes and chunks in order.
#ifndef FUSED_GRAD_NORM_GROUP_TILING_DATA_H
#define FUSED_GRAD_NORM_GROUP_TILING_DATA_H

#include <cstdint>

constexpr uint32_t kFaNormMaxCores = 64;
constexpr uint32_t kFaNormChunk = 16384;  // the C++ kernels' kNormChunk
constexpr uint32_t kFaNormTile = 8192;    // elements per tile and accumulator lanes (a power of two)
constexpr uint32_t kFaNormLanes = 8;      // lane sums written per chunk (32 bytes)

struct FusedGradNormGroupTilingData {
    uint32_t gradBytes;  // 4 (float32) or 2 (float16/bfloat16)
    uint32_t usedCores;
    uint32_t numTensors;
    uint32_t reserved;
    int64_t total;   // elements of all gradients
    int64_t chunks;  // ceil(total / kFaNormChunk)
    // Per core c < usedCores: chunks [coreFirstChunk[c], + coreChunks[c]), whose
    // first element is element coreFirstOffset[c] of tensor coreFirstTensor[c].
    uint32_t coreFirstTensor[kFaNormMaxCores];
    int64_t coreFirstOffset[kFaNormMaxCores];
    int64_t coreFirstChunk[kFaNormMaxCores];
    int64_t coreChunks[kFaNormMaxCores];
};

#endif  // FUSED_GRAD_NORM_GROUP_TILING_DATA_H
