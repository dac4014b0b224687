// See adamw_tiling_plan.h.
#include "adamw_tiling_plan.h"

#include <cstring>

namespace {

int64_t align_state(int64_t n) { return (n + kFaStateAlignElems - 1) / kFaStateAlignElems * kFaStateAlignElems; }

const char* check_config(const FaTilingConfig& c)
{
    if (c.paramBytes != 2 && c.paramBytes != 4) return "param_bytes must be 2 or 4";
    if (c.gradBytes != c.paramBytes && c.gradBytes != 4) return "grads must have the param dtype or float32";
    if (c.flags & ~(kFaAmsgrad | kFaMaster | kFaBf16State)) return "unknown variant flags";
    if ((c.stateBytes == 2) != ((c.flags & kFaBf16State) != 0) || (c.stateBytes != 2 && c.stateBytes != 4))
        return "state_bytes must be 4, or 2 with kFaBf16State";
    return nullptr;
}

// Bytes per tile element of each sub-buffer (the UB layout of the tiling data header).
struct SlotBytes {
    uint32_t in[kInSlots], out[kOutSlots], calc[kCalcSlots];
};

SlotBytes slot_bytes(const FaTilingConfig& c)
{
    const bool k16 = c.paramBytes == 2;
    const bool master = k16 && (c.flags & kFaMaster);  // float32 params have no master
    const bool ams = (c.flags & kFaAmsgrad) != 0;
    const uint32_t sb = c.stateBytes;
    const bool castS = sb == 2;
    SlotBytes b{};
    b.in[kInP] = master ? 4 : c.paramBytes;
    b.in[kInG] = c.gradBytes;
    b.in[kInM] = b.in[kInV] = sb;
    b.in[kInVmax] = ams ? sb : 0;
    b.out[kOutP] = c.paramBytes;
    b.out[kOutM] = b.out[kOutV] = sb;
    b.out[kOutVmax] = ams ? sb : 0;
    b.out[kOutMaster] = master ? 4 : 0;
    b.calc[kCalcP32] = k16 && !master ? 4 : 0;
    b.calc[kCalcG32] = c.gradBytes == 2 ? 4 : 0;
    b.calc[kCalcM32] = b.calc[kCalcV32] = castS ? 4 : 0;
    b.calc[kCalcVmax32] = castS && ams ? 4 : 0;
    b.calc[kCalcT1] = b.calc[kCalcT2] = 4;
    // Stochastic rounding (chosen per launch) needs two more 32-bit lanes per element.
    b.calc[kCalcBits] = b.calc[kCalcBits2] = k16 && !master ? 4 : 0;
    return b;
}

// Lays out `n` sub-buffers of tileLen elements; returns the buffer's bytes.
uint32_t lay_out(const uint32_t* bytes, uint32_t n, uint32_t tileLen, uint32_t* off)
{
    uint32_t at = 0;
    for (uint32_t i = 0; i < n; ++i) {
        off[i] = at;
        at += tileLen * bytes[i];
    }
    return at;
}

uint64_t sum(const uint32_t* x, uint32_t n)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < n; ++i) s += x[i];
    return s;
}

}  // namespace

extern "C" uint64_t fa_ub_bytes_per_elem(const FaTilingConfig* cfg)
{
    if (check_config(*cfg)) return 0;
    const SlotBytes b = slot_bytes(*cfg);
    return 2 * sum(b.in, kInSlots) + 2 * sum(b.out, kOutSlots) + sum(b.calc, kCalcSlots);
}

extern "C" int64_t fa_state_len(const int64_t* numels, uint32_t num_tensors)
{
    int64_t end = 0;
    for (uint32_t k = 0; k < num_tensors; ++k) end = align_state(end) + numels[k];
    return end;
}

extern "C" const char* fa_make_tiling(const int64_t* numels, uint32_t num_tensors, const FaTilingConfig* cfg,
                                      uint32_t core_num, uint64_t ub_bytes, FusedAdamwGroupTilingData* out)
{
    if (const char* err = check_config(*cfg)) return err;
    if (core_num == 0) return "core_num must be >= 1";
    if (num_tensors == 0) return "a group needs at least one tensor";
    for (uint32_t k = 0; k < num_tensors; ++k) {
        if (numels[k] < 0) return "negative tensor size";
    }
    const int64_t total = fa_state_len(numels, num_tensors);  // the padded state space
    if (ub_bytes <= kFaUbReserveBytes) return "unified buffer too small";

    FusedAdamwGroupTilingData td;
    std::memset(&td, 0, sizeof(td));
    td.paramBytes = cfg->paramBytes;
    td.gradBytes = cfg->gradBytes;
    td.stateBytes = cfg->stateBytes;
    td.flags = cfg->flags;
    td.numTensors = num_tensors;

    // Tile length: the largest multiple of kFaCoreAlignElems whose buffers fit.
    // A multiple of 64 elements makes every sub-buffer offset and every full-tile
    // copy length a multiple of 128 bytes (32-byte blocks).
    const uint64_t per_elem = fa_ub_bytes_per_elem(cfg);
    const uint64_t tile = (ub_bytes - kFaUbReserveBytes) / per_elem / kFaCoreAlignElems * kFaCoreAlignElems;
    if (tile == 0) return "unified buffer too small for one tile";
    td.tileLen = static_cast<uint32_t>(tile);
    const SlotBytes b = slot_bytes(*cfg);
    td.inBufBytes = lay_out(b.in, kInSlots, td.tileLen, td.inOff);
    td.outBufBytes = lay_out(b.out, kOutSlots, td.tileLen, td.outOff);
    td.calcBufBytes = lay_out(b.calc, kCalcSlots, td.tileLen, td.calcOff);

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
