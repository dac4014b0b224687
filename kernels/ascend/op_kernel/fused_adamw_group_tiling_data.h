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

// Variant flags (docs/kernel-interface.md; the values of fused_adamw::VariantFlag).
// kFaAmsgrad, kFaMaster and kFaBf16State follow from the operator's input shapes
// and dtypes and are fixed by the tiling; kFaStochastic is chosen per launch
// (counters[3]). The kernel runs the instantiation of its tile math for them.
constexpr uint32_t kFaAmsgrad = 1;
constexpr uint32_t kFaMaster = 2;
constexpr uint32_t kFaStochastic = 4;
constexpr uint32_t kFaBf16State = 8;

// Sub-buffers of one tile in the Unified Buffer. Each of the two in-queue
// buffers holds the inputs of a tile, each of the two out-queue buffers its
// outputs, the one calc buffer the float32 working copies; a sub-buffer a
// variant does not need has size 0.
enum FaInSlot : uint32_t {
    kInP,     // param (param dtype), or the float32 master with kFaMaster
    kInG,     // grad (grad dtype)
    kInM,     // exp_avg (state dtype)
    kInV,     // exp_avg_sq
    kInVmax,  // max_exp_avg_sq (kFaAmsgrad)
    kInSlots
};
enum FaOutSlot : uint32_t { kOutP, kOutM, kOutV, kOutVmax, kOutMaster, kOutSlots };
enum FaCalcSlot : uint32_t {
    kCalcP32,     // 16-bit param cast to float32 (not with kFaMaster: the master is float32)
    kCalcG32,     // 16-bit grad cast to float32
    kCalcM32,     // bfloat16 states cast to float32
    kCalcV32,
    kCalcVmax32,
    kCalcT1,      // scratch
    kCalcT2,
    kCalcBits,    // stochastic rounding: the random bits / integer scratch (16-bit params)
    kCalcBits2,
    kCalcSlots
};

struct FusedAdamwGroupTilingData {
    uint32_t paramBytes;  // bytes per param element: 4 (float32) or 2 (float16/bfloat16)
    uint32_t gradBytes;   // bytes per grad element: the param's, or 4 (float32 grads)
    uint32_t stateBytes;  // bytes per state element: 4 (float32) or 2 (bfloat16)
    uint32_t flags;       // kFaAmsgrad | kFaMaster | kFaBf16State as laid out below
    uint32_t usedCores;   // block dim of the launch; cores >= usedCores do nothing
    uint32_t tileLen;     // elements per full tile, a multiple of kFaCoreAlignElems
    uint32_t numTensors;  // tensors in the group (params and grads lists)

    // Unified Buffer layout: buffer sizes and the byte offset of each sub-buffer
    // inside its buffer (tileLen elements each, 32-byte aligned).
    uint32_t inBufBytes;
    uint32_t outBufBytes;
    uint32_t calcBufBytes;
    uint32_t inOff[kInSlots];
    uint32_t outOff[kOutSlots];
    uint32_t calcOff[kCalcSlots];
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
