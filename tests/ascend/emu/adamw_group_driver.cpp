// Test driver: the FusedAdamwGroup kernel source, as is (kernels/ascend/op_kernel/
// fused_adamw_group.cpp) and its host tiling plan, compiled with g++ against the
// emulated Ascend C API in this folder, behind a C ABI for ctypes
// (tests/ascend/ascend_emu.py). Built once per dtype column, as CANN's build
// compiles one kernel binary per OpDef column: -DDTYPE_VAR=float|half|bfloat16_t,
// -DDTYPE_GRAD (var's type or float), -DDTYPE_STATES=float|bfloat16_t.
#include "kernel_operator.h"
#include "kernel_operator_list_tensor_intf.h"
#include "launcher.h"

#include "fused_adamw_group.cpp"  // the kernel itself

#include "adamw_tiling_plan.h"
#include "../../../kernels/common/rounding.h"  // the C++ kernels' random bits, to compare with the kernel's

#include <vector>

namespace {

// The operator's tensor lists: shapes (n) for odd n and (2, n/2) for even n, so
// the kernel's product over the extents is exercised.
std::vector<uint64_t> tensor_list(void* const* ptrs, const int64_t* numels, uint32_t n)
{
    std::vector<uint64_t> words{0};
    for (uint32_t i = 0; i < n; ++i) {
        const bool two_d = numels[i] > 0 && numels[i] % 2 == 0;
        words.push_back((two_d ? 2 : 1) | (uint64_t(i) << 32));
        if (two_d) words.push_back(2);
        words.push_back(static_cast<uint64_t>(two_d ? numels[i] / 2 : numels[i]));
    }
    words[0] = 8 * words.size();
    for (uint32_t i = 0; i < n; ++i) words.push_back(reinterpret_cast<uintptr_t>(ptrs[i]));
    return words;
}

}  // namespace

extern "C" {

uint32_t fa_emu_param_bytes() { return sizeof(DTYPE_VAR); }

static FaTilingConfig config(uint32_t flags)
{
    return FaTilingConfig{sizeof(DTYPE_VAR), sizeof(DTYPE_GRAD), sizeof(DTYPE_STATES),
                          (flags & (kFaAmsgrad | kFaMaster)) | (sizeof(DTYPE_STATES) == 2 ? kFaBf16State : 0u)};
}

// The tiling's tile length for this column, flags and UB size (0 if the plan refuses).
uint32_t fa_emu_tile_len(uint32_t ub_bytes, uint32_t flags)
{
    const int64_t one = 1;
    FusedAdamwGroupTilingData td;
    const FaTilingConfig cfg = config(flags);
    return fa_make_tiling(&one, 1, &cfg, 1, ub_bytes, &td) ? 0 : td.tileLen;
}

uint32_t fa_emu_state_align() { return kFaStateAlignElems; }

// One launch of the operator on host memory, in place, as the host side would
// do it: tiling from the plan (cores, ub_bytes stand for the platform's values;
// amsgrad/master from which states are given), block dim = the tiling's used
// cores. states: exp_avg, exp_avg_sq[, max_exp_avg_sq], each state_len long;
// master: state_len floats or null; coeffs[8], counters[4] as the operator's
// inputs. stats6 receives fa_emu::export_stats. Returns 0, or 1 with the first
// tiling or protocol error in err.
int fa_emu_adamw_group(uint32_t n, void** params, void** grads, const int64_t* numels, uint32_t num_states,
                       void** states, float* master, int64_t state_len, float* coeffs, int64_t* counters,
                       float* done, uint32_t cores, uint32_t ub_bytes, uint64_t* stats6, char* err, int err_len)
{
    const uint32_t flags = (num_states == 3 ? kFaAmsgrad : 0u) | (master ? kFaMaster : 0u);
    const FaTilingConfig cfg = config(flags);
    FusedAdamwGroupTilingData td;
    if (const char* e = fa_make_tiling(numels, n, &cfg, cores, ub_bytes, &td)) {
        return fa_emu::report(std::string("tiling: ") + e, err, err_len);
    }
    if (state_len != fa_state_len(numels, n))  // what the op_host tiling function refuses
        return fa_emu::report("states must hold the padded state length", err, err_len);

    std::vector<uint64_t> varList = tensor_list(params, numels, n), gradList = tensor_list(grads, numels, n);
    std::vector<uint64_t> varRefList = varList;  // in place: the same tensors
    const std::vector<int64_t> stateLens(num_states, state_len);
    std::vector<uint64_t> stateList = tensor_list(states, stateLens.data(), num_states), stateRefList = stateList;
    float noMaster = 0;  // the empty placeholder's address
    fa_emu::begin_launch(ub_bytes);
    for (uint32_t k = 0; k < n; ++k) {
        fa_emu::register_gm(params[k], numels[k] * sizeof(DTYPE_VAR), "var");
        fa_emu::register_gm(grads[k], numels[k] * sizeof(DTYPE_GRAD), "grad");
    }
    for (uint32_t k = 0; k < num_states; ++k) fa_emu::register_gm(states[k], state_len * sizeof(DTYPE_STATES), "state");
    if (master) fa_emu::register_gm(master, state_len * 4, "master");
    fa_emu::register_gm(coeffs, 8 * 4, "coeffs");
    fa_emu::register_gm(counters, 4 * 8, "counters");
    for (const auto* l : {&varList, &gradList, &varRefList, &stateList, &stateRefList})
        fa_emu::register_gm(l->data(), l->size() * 8, "tensor list");
    fa_emu::register_gm(&td, sizeof(td), "tiling");
    auto gm = [](const void* p) { return reinterpret_cast<GM_ADDR>(const_cast<void*>(p)); };
    float* m = master ? master : &noMaster;
    const std::string e = fa_emu::launch(td.usedCores, [&] {
        fused_adamw_group(gm(coeffs), gm(counters), gm(varList.data()), gm(gradList.data()), gm(stateList.data()),
                          gm(m), gm(varRefList.data()), gm(stateRefList.data()), gm(m), gm(done), nullptr, gm(&td));
    });
    fa_emu::export_stats(stats6);
    return fa_emu::report(e, err, err_len);
}

// Compares the kernel's scalar hash (adamw_stochastic.h) with kernels/common/rounding.h
// on `count` pseudo-random (seed, step, index) triples; returns the mismatches.
uint32_t fa_emu_sr_mismatches(uint64_t seed, uint32_t count)
{
    uint32_t bad = 0;
    uint64_t x = seed;
    for (uint32_t i = 0; i < count; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const uint32_t step = static_cast<uint32_t>(x >> 33);
        const uint32_t key = FaSrKey(x, step);
        bad += key != fused_adamw::fa_sr_key(x, step);
        bad += FaFmix32(static_cast<uint32_t>(x >> 7)) != fused_adamw::fa_fmix32(static_cast<uint32_t>(x >> 7));
    }
    return bad;
}

// The kernel's scalar-unit coefficient code (adamw_coeffs.h), for its own tests.
float fa_emu_one_minus_pow(float beta, int64_t t) { return FaOneMinusPow(beta, t); }

void fa_emu_coeffs(float lr, float wd, int32_t step, float b1, float b2, float eps, float* out8)
{
    const FaStepCoeffs c = FaMakeStepCoeffs(lr, wd, step, b1, b2, eps);
    std::memcpy(out8, &c, 8 * sizeof(float));
}

}  // extern "C"
