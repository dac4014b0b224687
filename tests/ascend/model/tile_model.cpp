// CPU model of the FusedAdamwGroup kernel (kernels/ascend/op_kernel/fused_adamw_group.cpp):
// the same host tiling, the same tile walk, the same coefficient code and the
// same per-tile vector-op sequence (the kernel's headers, compiled here against
// ascendc_cpu_ops.h), on an emulated Unified Buffer with the kernel's layout:
// two in-queue and two out-queue buffers used alternately, pad lanes left
// holding whatever the buffer held before (NaN at start), and copies that move
// exactly tile.len elements, like DataCopyPad. Cores run one after another, in
// reverse order, since they own disjoint ranges.
//
// Loaded by tests/ascend/test_kernel_model.py through ctypes.
#include <cstdint>
#include <cstring>
#include <vector>

#include "ascendc_cpu_ops.h"

using namespace fa_cpu;
#include "adamw_coeffs.h"
#include "adamw_schedule.h"
#include "adamw_tile_math.h"
#include "adamw_tiling_plan.h"

namespace {

template <class T>
LocalTensor<T> view(std::vector<uint8_t>& buf, uint32_t offset, uint32_t end)
{
    return LocalTensor<T>{reinterpret_cast<T*>(buf.data() + offset), (end - offset) / uint32_t(sizeof(T))};
}

template <class T>
const char* run(const int64_t* numels, uint32_t count, uint32_t cores, uint64_t ub, void** params,
                void* const* grads, float* m, float* v, const FaStepCoeffs& coeffs)
{
    constexpr bool kCast = sizeof(T) != sizeof(float);
    FusedAdamwGroupTilingData td;
    if (const char* err = fa_make_tiling(numels, count, sizeof(T), cores, ub, &td)) return err;

    std::vector<uint8_t> in[2], out[2], calc(td.calcBufBytes, 0xFF);  // 0xFF.. = NaN
    for (int b = 0; b < 2; ++b) {
        in[b].assign(td.inBufBytes, 0xFF);
        out[b].assign(td.outBufBytes, 0xFF);
    }
    auto numel_of = [&](uint32_t k) { return numels[k]; };
    uint64_t tile_index = 0;
    for (int64_t c = int64_t(td.usedCores) - 1; c >= 0; --c) {
        FaTileCursor cur = FaCoreCursor(td, static_cast<uint32_t>(c));
        FaTile tile;
        while (FaNextTile(cur, numel_of, td.tileLen, tile)) {
            std::vector<uint8_t>& ib = in[tile_index % 2];
            std::vector<uint8_t>& ob = out[tile_index % 2];
            ++tile_index;
            // CopyIn
            T* p = static_cast<T*>(params[tile.tensor]) + tile.local;
            const T* g = static_cast<const T*>(grads[tile.tensor]) + tile.local;
            std::memcpy(ib.data(), p, tile.len * sizeof(T));
            std::memcpy(ib.data() + td.inOffG, g, tile.len * sizeof(T));
            std::memcpy(ib.data() + td.inOffM, m + tile.flat, tile.len * sizeof(float));
            std::memcpy(ib.data() + td.inOffV, v + tile.flat, tile.len * sizeof(float));
            // Compute
            FaComputeTile<kCast>(view<T>(ib, 0, td.inOffG), view<T>(ib, td.inOffG, td.inOffM),
                                 view<float>(ib, td.inOffM, td.inOffV), view<float>(ib, td.inOffV, td.inBufBytes),
                                 view<T>(ob, 0, td.outOffM), view<float>(ob, td.outOffM, td.outOffV),
                                 view<float>(ob, td.outOffV, td.outBufBytes),
                                 view<float>(calc, 0, kCast ? td.calcOffG32 : td.calcBufBytes),
                                 view<float>(calc, td.calcOffG32, kCast ? td.calcOffT1 : td.calcBufBytes),
                                 view<float>(calc, td.calcOffT1, td.calcOffT2),
                                 view<float>(calc, td.calcOffT2, td.calcBufBytes), coeffs,
                                 static_cast<int32_t>(tile.padded));
            // CopyOut
            std::memcpy(p, ob.data(), tile.len * sizeof(T));
            std::memcpy(m + tile.flat, ob.data() + td.outOffM, tile.len * sizeof(float));
            std::memcpy(v + tile.flat, ob.data() + td.outOffV, tile.len * sizeof(float));
        }
    }
    return nullptr;
}

}  // namespace

extern "C" {

// dtype: 0 float32, 1 float16, 2 bfloat16 (16-bit values as raw bits).
// hyper = {beta1, beta2, eps}. Returns nullptr or an error message.
const char* fa_model_step(const int64_t* numels, uint32_t count, int dtype, uint32_t cores, uint64_t ub,
                          void** params, void* const* grads, float* m, float* v, float lr, float weight_decay,
                          int32_t step, const float* hyper)
{
    const FaStepCoeffs c = FaMakeStepCoeffs(lr, weight_decay, step, hyper[0], hyper[1], hyper[2]);
    switch (dtype) {
        case 0: return run<float>(numels, count, cores, ub, params, grads, m, v, c);
        case 1: return run<half_t>(numels, count, cores, ub, params, grads, m, v, c);
        case 2: return run<bfloat16_t>(numels, count, cores, ub, params, grads, m, v, c);
        default: return "unknown dtype";
    }
}

float fa_model_one_minus_pow(float beta, int64_t t) { return FaOneMinusPow(beta, t); }

void fa_model_coeffs(float lr, float wd, int32_t step, float b1, float b2, float eps, float* out8)
{
    const FaStepCoeffs c = FaMakeStepCoeffs(lr, wd, step, b1, b2, eps);
    std::memcpy(out8, &c, sizeof(c));
}

}  // extern "C"
