// FusedAdamwGroup kernel for the Ascend 910B vector cores (AIV), Ascend C.
//
// NEVER COMPILED BY CANN OR RUN ON AN NPU: neither is available to this project.
// CI compiles this source with g++ against a CPU emulation of the Ascend C API
// (tests/ascend/emu) and runs it block by block against the float64 model and
// the CPU kernel (tests/ascend/test_kernel_emulated.py). See docs/ascend.md.
//
// One launch updates a whole parameter group in place:
//   inputs  lr, weight_decay (float32 [1]), step (int32 [1], already incremented),
//           hyper (float32 [3]: beta1, beta2, eps), var (tensor list, float32 /
//           float16 / bfloat16), grad (tensor list, same dtype and shapes),
//           exp_avg, exp_avg_sq (float32, flat: sum of the var numels)
//   outputs var, exp_avg, exp_avg_sq (in-place references of the inputs of the
//           same name) and done (float32 [1], a placeholder MindSpore needs; not written)
//
// SPMD: every core takes its contiguous range of the group's padded state space
// from the tiling data and streams it through the Unified Buffer in tiles:
// CopyIn (GM -> UB, DataCopyPad) -> Compute (vector ops, float32) -> CopyOut.
// The in and out queues are two buffers deep, so the copy-in of tile i+1 and the
// copy-out of tile i-1 overlap the compute of tile i.
#include "kernel_operator.h"
#include "kernel_operator_list_tensor_intf.h"

using namespace AscendC;

#define FA_KERNEL_FN __aicore__ inline
#include "fused_adamw_group_tiling_data.h"
#include "adamw_schedule.h"
#include "adamw_coeffs.h"
#include "adamw_tile_math.h"

namespace {

constexpr int32_t kBufferNum = 2;  // double buffering

// Copies the tiling struct out of GM (what GET_TILING_DATA does for
// macro-defined tiling structs; done by hand because ours is a plain struct
// shared with the host code and the tests).
__aicore__ inline void FaLoadTiling(GM_ADDR tiling, FusedAdamwGroupTilingData& td)
{
    const __gm__ uint32_t* src = reinterpret_cast<const __gm__ uint32_t*>(tiling);
    uint32_t* dst = reinterpret_cast<uint32_t*>(&td);
    for (uint32_t i = 0; i < sizeof(FusedAdamwGroupTilingData) / sizeof(uint32_t); ++i) {
        dst[i] = src[i];
    }
}

// Element count of tensor k of a tensor list (the schedule's numelOf). Caches
// the last answer: consecutive tiles mostly ask about the same tensor.
struct FaListNumel {
    ListTensorDesc* list;
    mutable uint32_t cachedIndex;
    mutable int64_t cachedNumel;

    __aicore__ inline int64_t operator()(uint32_t k) const
    {
        if (k == cachedIndex) return cachedNumel;
        uint64_t shapeBuf[10];  // rank <= 8, plus the descriptor header
        TensorDesc<uint64_t> desc;
        desc.SetShapeAddr(&shapeBuf[0]);
        list->GetDesc(desc, k);
        int64_t numel = 1;
        for (uint32_t d = 0; d < desc.GetDim(); ++d) {
            numel *= static_cast<int64_t>(desc.GetShape(d));
        }
        cachedIndex = k;
        cachedNumel = numel;
        return numel;
    }
};

template <typename T>
class FusedAdamwGroupKernel {
    static constexpr bool kCast = sizeof(T) != sizeof(float);  // float16 / bfloat16 params

public:
    __aicore__ inline void Init(GM_ADDR lr, GM_ADDR weightDecay, GM_ADDR step, GM_ADDR hyper, GM_ADDR var,
                                GM_ADDR grad, GM_ADDR expAvg, GM_ADDR expAvgSq, GM_ADDR varRef, GM_ADDR expAvgRef,
                                GM_ADDR expAvgSqRef, const FusedAdamwGroupTilingData* td)
    {
        td_ = td;
        varList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(var));
        gradList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(grad));
        varRefList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(varRef));
        mIn_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(expAvg));
        vIn_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(expAvgSq));
        mOut_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(expAvgRef));
        vOut_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(expAvgSqRef));

        // Runtime scalars, read once per launch on the scalar unit.
        GlobalTensor<float> lrG, wdG, hyperG;
        GlobalTensor<int32_t> stepG;
        lrG.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(lr), 1);
        wdG.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(weightDecay), 1);
        stepG.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(step), 1);
        hyperG.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(hyper), 3);
        coeffs_ = FaMakeStepCoeffs(lrG.GetValue(0), wdG.GetValue(0), static_cast<int64_t>(stepG.GetValue(0)),
                                   hyperG.GetValue(0), hyperG.GetValue(1), hyperG.GetValue(2));

        pipe_.InitBuffer(inQue_, kBufferNum, td->inBufBytes);
        pipe_.InitBuffer(outQue_, kBufferNum, td->outBufBytes);
        pipe_.InitBuffer(calcBuf_, td->calcBufBytes);
    }

    __aicore__ inline void Process()
    {
        FaListNumel numelOf{&varList_, 0xFFFFFFFFu, 0};
        FaTileCursor cursor = FaCoreCursor(*td_, GetBlockIdx());
        FaTile tile;
        while (FaNextTile(cursor, numelOf, td_->tileLen, tile)) {
            CopyIn(tile);
            Compute(tile);
            CopyOut(tile);
        }
    }

private:
    // GM -> UB. DataCopyPad takes any byte count: a full tile moves
    // tileLen * sizeof(T) and tileLen * 4 bytes (multiples of 32); a tail moves
    // exactly its bytes and the UB side is padded to the next 32-byte block.
    __aicore__ inline void CopyIn(const FaTile& tile)
    {
        GlobalTensor<T> p, g;
        p.SetGlobalBuffer(varList_.GetDataPtr<T>(tile.tensor) + tile.local);
        g.SetGlobalBuffer(gradList_.GetDataPtr<T>(tile.tensor) + tile.local);
        LocalTensor<uint8_t> buf = inQue_.AllocTensor<uint8_t>();
        const DataCopyExtParams paramCopy{1, static_cast<uint32_t>(tile.len * sizeof(T)), 0, 0, 0};
        const DataCopyExtParams stateCopy{1, static_cast<uint32_t>(tile.len * sizeof(float)), 0, 0, 0};
        const DataCopyPadExtParams<T> noPadT{false, 0, 0, 0};
        const DataCopyPadExtParams<float> noPadF{false, 0, 0, 0};
        DataCopyPad(buf.ReinterpretCast<T>(), p, paramCopy, noPadT);
        DataCopyPad(buf[td_->inOffG].template ReinterpretCast<T>(), g, paramCopy, noPadT);
        DataCopyPad(buf[td_->inOffM].template ReinterpretCast<float>(), mIn_[tile.flat], stateCopy, noPadF);
        DataCopyPad(buf[td_->inOffV].template ReinterpretCast<float>(), vIn_[tile.flat], stateCopy, noPadF);
        inQue_.EnQue(buf);
    }

    // The AdamW math of adamw_tile_math.h on tile.padded elements (the pad
    // lanes compute garbage that CopyOut never writes back).
    __aicore__ inline void Compute(const FaTile& tile)
    {
        LocalTensor<uint8_t> in = inQue_.DeQue<uint8_t>();
        LocalTensor<uint8_t> out = outQue_.AllocTensor<uint8_t>();
        LocalTensor<uint8_t> calc = calcBuf_.Get<uint8_t>();
        const int32_t n = static_cast<int32_t>(tile.padded);
        FaComputeTile<kCast>(in.ReinterpretCast<T>(), in[td_->inOffG].template ReinterpretCast<T>(),
                             in[td_->inOffM].template ReinterpretCast<float>(),
                             in[td_->inOffV].template ReinterpretCast<float>(), out.ReinterpretCast<T>(),
                             out[td_->outOffM].template ReinterpretCast<float>(),
                             out[td_->outOffV].template ReinterpretCast<float>(), calc.ReinterpretCast<float>(),
                             calc[td_->calcOffG32].template ReinterpretCast<float>(),
                             calc[td_->calcOffT1].template ReinterpretCast<float>(),
                             calc[td_->calcOffT2].template ReinterpretCast<float>(), coeffs_, n);
        outQue_.EnQue(out);
        inQue_.FreeTensor(in);
    }

    // UB -> GM, exactly tile.len elements of each output.
    __aicore__ inline void CopyOut(const FaTile& tile)
    {
        GlobalTensor<T> p;
        p.SetGlobalBuffer(varRefList_.GetDataPtr<T>(tile.tensor) + tile.local);
        LocalTensor<uint8_t> buf = outQue_.DeQue<uint8_t>();
        const DataCopyExtParams paramCopy{1, static_cast<uint32_t>(tile.len * sizeof(T)), 0, 0, 0};
        const DataCopyExtParams stateCopy{1, static_cast<uint32_t>(tile.len * sizeof(float)), 0, 0, 0};
        DataCopyPad(p, buf.ReinterpretCast<T>(), paramCopy);
        DataCopyPad(mOut_[tile.flat], buf[td_->outOffM].template ReinterpretCast<float>(), stateCopy);
        DataCopyPad(vOut_[tile.flat], buf[td_->outOffV].template ReinterpretCast<float>(), stateCopy);
        outQue_.FreeTensor(buf);
    }

    const FusedAdamwGroupTilingData* td_;
    FaStepCoeffs coeffs_;
    TPipe pipe_;
    TQue<QuePosition::VECIN, kBufferNum> inQue_;
    TQue<QuePosition::VECOUT, kBufferNum> outQue_;
    TBuf<QuePosition::VECCALC> calcBuf_;
    ListTensorDesc varList_, gradList_, varRefList_;
    GlobalTensor<float> mIn_, vIn_, mOut_, vOut_;
};

}  // namespace

// Argument order = the OpDef's inputs, then its outputs, then workspace and tiling.
extern "C" __global__ __aicore__ void fused_adamw_group(GM_ADDR lr, GM_ADDR weight_decay, GM_ADDR step,
                                                        GM_ADDR hyper, GM_ADDR var, GM_ADDR grad, GM_ADDR exp_avg,
                                                        GM_ADDR exp_avg_sq, GM_ADDR var_ref, GM_ADDR exp_avg_ref,
                                                        GM_ADDR exp_avg_sq_ref, GM_ADDR done, GM_ADDR workspace,
                                                        GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    FusedAdamwGroupTilingData td;
    FaLoadTiling(tiling, td);
    if (GetBlockIdx() >= td.usedCores) {
        return;
    }
    // DTYPE_VAR is the C type of input "var" for the dtype combination this
    // binary is built for (the custom-operator build compiles one per OpDef column).
    FusedAdamwGroupKernel<DTYPE_VAR> op;
    op.Init(lr, weight_decay, step, hyper, var, grad, exp_avg, exp_avg_sq, var_ref, exp_avg_ref, exp_avg_sq_ref,
            &td);
    op.Process();
}
