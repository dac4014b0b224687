// See adamw_tiling_plan.h.
#include "adamw_tiling_plan.h"

#include <cstring>

namespace {

// Bytes per element in each buffer (see the UB layout in the tiling data header).
uint64_t in_bytes(uint32_t pb) { return 2ULL * pb + 8; }     // p, g (param dtype) + m, v (float32)
uint64_t out_bytes(uint32_t pb) { return pb + 8ULL; }         // p (param dtype) + m, v (float32)
uint64_t calc_bytes(uint32_t pb) { return pb == 4 ? 8 : 16; }  // t1, t2 (+ p32, g32 when casting)

int64_t align_state(int64_t n) { return (n + kFaStateAlignElems - 1) / kFaStateAlignElems * kFaStateAlignElems; }

}  // namespace

extern "C" uint64_t fa_ub_bytes_per_elem(uint32_t param_bytes)
{
    return 2 * in_bytes(param_bytes) + 2 * out_bytes(param_bytes) + calc_bytes(param_bytes);
}

extern "C" int64_t fa_state_len(const int64_t* numels, uint32_t num_tensors)
{
    int64_t end = 0;
    for (uint32_t k = 0; k < num_tensors; ++k) end = align_state(end) + numels[k];
    return end;
}

extern "C" const char* fa_make_tiling(const int64_t* numels, uint32_t num_tensors, uint32_t param_bytes,
                                      uint32_t core_num, uint64_t ub_bytes, FusedAdamwGroupTilingData* out)
{
    if (param_bytes != 2 && param_bytes != 4) return "param_bytes must be 2 or 4";
    if (core_num == 0) return "core_num must be >= 1";
    if (num_tensors == 0) return "a group needs at least one tensor";
    for (uint32_t k = 0; k < num_tensors; ++k) {
        if (numels[k] < 0) return "negative tensor size";
    }
    const int64_t total = fa_state_len(numels, num_tensors);  // the padded state space
    if (ub_bytes <= kFaUbReserveBytes) return "unified buffer too small";

    FusedAdamwGroupTilingData td;
    std::memset(&td, 0, sizeof(td));
    td.paramBytes = param_bytes;
    td.numTensors = num_tensors;

    // Tile length: the largest multiple of kFaCoreAlignElems whose buffers fit.
    // A multiple of 64 elements makes every sub-buffer offset and every full-tile
    // copy length a multiple of 128 bytes (32-byte blocks).
    const uint64_t per_elem = fa_ub_bytes_per_elem(param_bytes);
    const uint64_t tile = (ub_bytes - kFaUbReserveBytes) / per_elem / kFaCoreAlignElems * kFaCoreAlignElems;
    if (tile == 0) return "unified buffer too small for one tile";
    td.tileLen = static_cast<uint32_t>(tile);
    const uint32_t L = td.tileLen;
    td.inOffG = L * param_bytes;
    td.inOffM = 2 * L * param_bytes;
    td.inOffV = td.inOffM + 4 * L;
    td.inBufBytes = td.inOffV + 4 * L;
    td.outOffM = L * param_bytes;
    td.outOffV = td.outOffM + 4 * L;
    td.outBufBytes = td.outOffV + 4 * L;
    if (param_bytes == 4) {  // no casts: t1, t2 only
        td.calcOffG32 = 0;
        td.calcOffT1 = 0;
        td.calcOffT2 = 4 * L;
        td.calcBufBytes = 8 * L;
    } else {
        td.calcOffG32 = 4 * L;
        td.calcOffT1 = 8 * L;
        td.calcOffT2 = 12 * L;
        td.calcBufBytes = 16 * L;
    }

    // Core ranges: the padded state space in units of kFaCoreAlignElems, dealt
    // out so unit counts differ by at most one (element counts by < 2 units, less
    // than a tile). Every core start is unit-aligned, so two cores never write the
    // same 32-byte block of exp_avg/exp_avg_sq, and (the unit being a multiple of
    // kFaStateAlignElems) never falls inside the pad between two slices: a core
    // starts inside a tensor (or at its start) at an offset that is a multiple of
    // 32 elements, so the parameter copies of two cores never share a 32-byte
    // block either when the tensors themselves start on one.
    const int64_t A = kFaCoreAlignElems;
    const int64_t units = (total + A - 1) / A;
    int64_t used = core_num < kFaMaxCores ? core_num : kFaMaxCores;
    if (used > units) used = units;
    if (used < 1) used = 1;  // an all-empty group still launches one idle core
    td.usedCores = static_cast<uint32_t>(used);
    const int64_t base = units / used;
    const int64_t extra = units % used;

    uint32_t tensor = 0;       // tensor holding the current core's first element
    int64_t tensor_start = 0;  // its state offset
    for (int64_t c = 0; c < used; ++c) {
        const int64_t start_unit = c * base + (c < extra ? c : extra);
        const int64_t my_units = base + (c < extra ? 1 : 0);
        int64_t start = start_unit * A;
        if (start > total) start = total;
        int64_t end = start + my_units * A;
        if (end > total) end = total;
        // Starts only grow, so the tensor search continues where it stopped;
        // empty tensors and finished ones are skipped.
        while (tensor + 1 < num_tensors && start >= tensor_start + numels[tensor]) {
            tensor_start = align_state(tensor_start + numels[tensor]);
            ++tensor;
        }
        td.coreFirstTensor[c] = tensor;
        td.coreFirstOffset[c] = start - tensor_start;
        td.coreFlatStart[c] = start;
        td.coreCount[c] = end - start;
    }
    *out = td;
    return nullptr;
}
