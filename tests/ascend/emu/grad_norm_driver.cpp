// Test driver: the FusedGradNormGroup kernel (kernels/ascend/op_kernel/
// fused_grad_norm_group.cpp) and its host tiling plan against the emulated Ascend
// C API, behind a C ABI for ctypes (tests/ascend/test_grad_norm_emulated.py).
// Built once per grad dtype: -DDTYPE_GRAD=float|half|bfloat16_t.
#include "kernel_operator.h"
#include "kernel_operator_list_tensor_intf.h"
#include "launcher.h"

#include "fused_grad_norm_group.cpp"  // the kernel itself

#include "grad_norm_plan.h"

#include <vector>

extern "C" {

// One launch: partials must hold ceil(total / 16384) * 8 floats. Returns 0, or 1
// with the first tiling or protocol error in err; *blocks = the launch's cores.
int fa_emu_grad_norm(uint32_t n, void** grads, const int64_t* numels, float* grad_scale, float* partials,
                     uint32_t cores, uint32_t ub_bytes, uint32_t* blocks, char* err, int err_len)
{
    FusedGradNormGroupTilingData td;
    if (const char* e = fa_make_norm_tiling(numels, n, sizeof(DTYPE_GRAD), cores, ub_bytes, &td))
        return fa_emu::report(std::string("tiling: ") + e, err, err_len);
    std::vector<uint64_t> list{0};
    for (uint32_t i = 0; i < n; ++i) {
        list.push_back(1 | (uint64_t(i) << 32));
        list.push_back(static_cast<uint64_t>(numels[i]));
    }
    list[0] = 8 * list.size();
    for (uint32_t i = 0; i < n; ++i) list.push_back(reinterpret_cast<uintptr_t>(grads[i]));
    fa_emu::begin_launch(ub_bytes);
    for (uint32_t k = 0; k < n; ++k) fa_emu::register_gm(grads[k], numels[k] * sizeof(DTYPE_GRAD), "grad");
    fa_emu::register_gm(grad_scale, 4, "grad_scale");
    fa_emu::register_gm(partials, td.chunks * kFaNormLanes * 4, "partials");
    fa_emu::register_gm(list.data(), list.size() * 8, "grad list");
    fa_emu::register_gm(&td, sizeof(td), "tiling");
    auto gm = [](const void* p) { return reinterpret_cast<GM_ADDR>(const_cast<void*>(p)); };
    const std::string e = fa_emu::launch(td.usedCores, [&] {
        fused_grad_norm_group(gm(grad_scale), gm(list.data()), gm(partials), nullptr, gm(&td));
    });
    *blocks = td.usedCores;
    return fa_emu::report(e, err, err_len);
}

}  // extern "C"
