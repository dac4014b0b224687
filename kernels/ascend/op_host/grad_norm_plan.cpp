// See grad_norm_plan.h.
#include "grad_norm_plan.h"

#include <cstring>

extern "C" const char* fa_make_norm_tiling(const int64_t* numels, uint32_t num_tensors, uint32_t grad_bytes,
                                           uint32_t core_num, uint64_t ub_bytes, FusedGradNormGroupTilingData* out)
{
    if (grad_bytes != 2 && grad_bytes != 4) return "grad_bytes must be 2 or 4";
    if (core_num == 0) return "core_num must be >= 1";
    if (num_tensors == 0) return "a group needs at least one tensor";
    // UB: two in-queue tiles of gradients, the float32 square tile, the accumulator.
    if (2ULL * kFaNormTile * grad_bytes + 2ULL * kFaNormTile * 4 + 1024 > ub_bytes) return "unified buffer too small";
    int64_t total = 0;
    for (uint32_t k = 0; k < num_tensors; ++k) {
        if (numels[k] < 0) return "negative tensor size";
        total += numels[k];
    }
    FusedGradNormGroupTilingData td;
    std::memset(&td, 0, sizeof(td));
    td.gradBytes = grad_bytes;
    td.numTensors = num_tensors;
    td.total = total;
    td.chunks = (total + kFaNormChunk - 1) / kFaNormChunk;
    int64_t used = core_num < kFaNormMaxCores ? core_num : kFaNormMaxCores;
    if (used > td.chunks) used = td.chunks;
    if (used < 1) used = 1;  // an all-empty group: one core, no chunk
    td.usedCores = static_cast<uint32_t>(used);
    const int64_t base = td.chunks / used, extra = td.chunks % used;
    uint32_t tensor = 0;
    int64_t tensorStart = 0;
    for (int64_t c = 0; c < used; ++c) {
        td.coreFirstChunk[c] = c * base + (c < extra ? c : extra);
        td.coreChunks[c] = base + (c < extra ? 1 : 0);
        const int64_t start = td.coreFirstChunk[c] * kFaNormChunk;
        while (tensor + 1 < num_tensors && start >= tensorStart + numels[tensor]) {
            tensorStart += numels[tensor];
            ++tensor;
        }
        td.coreFirstTensor[c] = tensor;
        td.coreFirstOffset[c] = start - tensorStart;
    }
    *out = td;
    return nullptr;
}
