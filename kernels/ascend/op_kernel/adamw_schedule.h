// The tile schedule of one vector core: walks the core's range of the group's
// padded state space (from the tiling data) and yields tiles that never cross a
// tensor boundary, skipping the pad between tensor slices. The kernel uses it,
// and so does the tiling checker (tests/ascend/tiling_check.cpp).
//
// FA_KERNEL_FN is `__aicore__ inline` in the kernel and `inline` elsewhere.
#ifndef FUSED_ADAMW_GROUP_SCHEDULE_H
#define FUSED_ADAMW_GROUP_SCHEDULE_H

#include "fused_adamw_group_tiling_data.h"

#ifndef FA_KERNEL_FN
#define FA_KERNEL_FN inline
#endif

struct FaTile {
    uint32_t tensor;  // index in the params/grads lists
    int64_t local;    // first element inside that tensor
    int64_t flat;     // first element in the (padded) flat exp_avg/exp_avg_sq buffers
    uint32_t len;     // elements copied in and out (1 .. tileLen)
    uint32_t padded;  // elements computed: len rounded up to kFaPadElems
};

struct FaTileCursor {
    uint32_t tensor;
    int64_t local;
    int64_t flat;  // state index of (tensor, local)
    int64_t end;   // end of the core's range in the state space
};

FA_KERNEL_FN FaTileCursor FaCoreCursor(const FusedAdamwGroupTilingData& td, uint32_t core)
{
    FaTileCursor c;
    c.tensor = td.coreFirstTensor[core];
    c.local = td.coreFirstOffset[core];
    c.flat = td.coreFlatStart[core];
    c.end = td.coreFlatStart[core] + td.coreCount[core];
    return c;
}

// Fills `tile` with the next tile of the cursor's range and returns true, or
// returns false when the range is done. numelOf(k) gives tensor k's element
// count (the kernel reads it from the tensor list, the model from an array);
// empty tensors are skipped.
template <class NumelOf>
FA_KERNEL_FN bool FaNextTile(FaTileCursor& c, const NumelOf& numelOf, uint32_t tileLen, FaTile& tile)
{
    while (c.flat < c.end) {
        const int64_t numel = numelOf(c.tensor);
        if (c.local >= numel) {  // this tensor is done (or empty): the next slice starts at the next multiple
            c.tensor += 1;
            c.local = 0;
            c.flat = (c.flat + kFaStateAlignElems - 1) / kFaStateAlignElems * kFaStateAlignElems;
            continue;
        }
        int64_t len = numel - c.local;
        if (len > c.end - c.flat) len = c.end - c.flat;
        if (len > static_cast<int64_t>(tileLen)) len = tileLen;
        tile.tensor = c.tensor;
        tile.local = c.local;
        tile.flat = c.flat;
        tile.len = static_cast<uint32_t>(len);
        tile.padded = (tile.len + kFaPadElems - 1) / kFaPadElems * kFaPadElems;
        c.local += len;
        c.flat += len;
        return true;
    }
    return false;
}

#endif  // FUSED_ADAMW_GROUP_SCHEDULE_H
