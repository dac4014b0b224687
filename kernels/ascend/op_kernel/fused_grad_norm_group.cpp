// FusedGradNormGroup kernel (pass 1 of the whole step, issue 14) for the Ascend
// 910B vector cores, Ascend C.
//
// NEVER COMPILED BY CANN OR RUN ON AN NPU. CI compiles this source with g++
// against the emulated Ascend C API (tests/ascend/emu) and runs it block by block
// (tests/ascend/test_grad_norm_emulated.py). See docs/ascend.md.
//
//   inputs  grad_scale float32 [1]; grad: tensor list (float32 / float16 / bfloat16)
//   output  partials float32 [chunks, 8]: for each kFaNormChunk-element chunk of the
//           concatenated gradients, 8 lane sums of float32(g * grad_scale)^2
// The caller adds the lanes and chunks in order (in float64) for the squared norm;
// a NaN/Inf gradient makes its chunk's lanes non-finite (so does a square or a
// lane sum beyond float32's range: a gradient above 1.8e19 after the unscale).
//
// Deterministic for any core count: a chunk is always summed by one core, tile by
// tile into 8192 float32 accumulator lanes (element j of a tile into lane j), then
// the lanes folded in halves down to 8 -- a fixed sequence of float32 additions.
#include "kernel_operator.h"
#include "kernel_operator_list_tensor_intf.h"

using namespace AscendC;

#define FA_KERNEL_FN __aicore__ inline
#include "fused_grad_norm_group_tiling_data.h"
#include "fa_kernel_common.h"

namespace {

__aicore__ inline void FaLoadNormTiling(GM_ADDR tiling, FusedGradNormGroupTilingData& td)
{
    const __gm__ uint32_t* src = reinterpret_cast<const __gm__ uint32_t*>(tiling);
    uint32_t* dst = reinterpret_cast<uint32_t*>(&td);
    for (uint32_t i = 0; i < sizeof(FusedGradNormGroupTilingData) / sizeof(uint32_t); ++i) {
        dst[i] = src[i];
    }
}

template <typename TG>
class FusedGradNormKernel {
    static constexpr bool kCast = sizeof(TG) != sizeof(float);
    static constexpr uint32_t kBlockElems = 32 / sizeof(TG);  // elements per 32-byte block

public:
    __aicore__ inline void Init(GM_ADDR gradScale, GM_ADDR grad, GM_ADDR partials,
                                const FusedGradNormGroupTilingData* td)
    {
        td_ = td;
        GlobalTensor<float> scale;
        scale.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(gradScale), 1);
        scale_ = scale.GetValue(0);
        gradList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(grad));
        out_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(partials), td->chunks * kFaNormLanes);
        pipe_.InitBuffer(inQue_, 2, kFaNormTile * sizeof(TG));
        pipe_.InitBuffer(outQue_, 1, kFaNormLanes * sizeof(float));
        pipe_.InitBuffer(calcBuf_, 2 * kFaNormTile * sizeof(float));  // [squares | accumulator]
    }

    __aicore__ inline void Process()
    {
        const uint32_t core = static_cast<uint32_t>(GetBlockIdx());
        FaListNumel numelOf{&gradList_, 0xFFFFFFFFu, 0};
        uint32_t tensor = td_->coreFirstTensor[core];
        int64_t local = td_->coreFirstOffset[core];
        LocalTensor<float> calc = calcBuf_.Get<float>();
        const LocalTensor<float> sq = calc;
        const LocalTensor<float> acc = calc[kFaNormTile];
        for (int64_t ch = td_->coreFirstChunk[core]; ch < td_->coreFirstChunk[core] + td_->coreChunks[core]; ++ch) {
            int64_t pos = ch * kFaNormChunk;
            int64_t end = pos + kFaNormChunk;
            if (end > td_->total) end = td_->total;
            Duplicate(acc, 0.0f, kFaNormTile);
            PipeBarrier<PIPE_V>();
            while (pos < end) {
                const int64_t numel = numelOf(tensor);
                if (local >= numel) {  // this tensor is done (or empty)
                    tensor += 1;
                    local = 0;
                    continue;
                }
                int64_t len = numel - local;
                if (len > end - pos) len = end - pos;
                if (len > kFaNormTile) len = kFaNormTile;
                CopyIn(tensor, local, static_cast<uint32_t>(len));
                Accumulate(sq, acc, static_cast<uint32_t>(len));
                local += len;
                pos += len;
            }
            Finish(acc, ch);
        }
    }

private:
    // GM -> UB with zeros up to the next 32-byte block (the vector ops run on whole blocks).
    __aicore__ inline void CopyIn(uint32_t tensor, int64_t local, uint32_t len)
    {
        using C = typename FaCopyType<TG>::type;  // bfloat16 moves as half: 0 has the same bits
        GlobalTensor<TG> g;
        g.SetGlobalBuffer(gradList_.GetDataPtr<TG>(tensor) + local);
        LocalTensor<TG> buf = inQue_.AllocTensor<TG>();
        const uint32_t padded = (len + kBlockElems - 1) / kBlockElems * kBlockElems;
        const DataCopyExtParams copy{1, static_cast<uint32_t>(len * sizeof(TG)), 0, 0, 0};
        const DataCopyPadExtParams<C> zeroPad{true, 0, static_cast<uint8_t>(padded - len), C(0)};
        DataCopyPad(buf.template ReinterpretCast<C>(), FaCopyView(g), copy, zeroPad);
        inQue_.EnQue(buf);
    }

    // acc[j] += float32(g[j] * scale)^2 for the tile's lanes (pad lanes add 0).
    __aicore__ inline void Accumulate(const LocalTensor<float>& sq, const LocalTensor<float>& acc, uint32_t len)
    {
        LocalTensor<TG> g = inQue_.DeQue<TG>();
        const int32_t n = static_cast<int32_t>((len + kBlockElems - 1) / kBlockElems * kBlockElems);
        if constexpr (kCast) {
            Cast(sq, g, RoundMode::CAST_NONE, n);
            PipeBarrier<PIPE_V>();
            Muls(sq, sq, scale_, n);
        } else {
            Muls(sq, g, scale_, n);
        }
        PipeBarrier<PIPE_V>();
        Mul(sq, sq, sq, n);
        PipeBarrier<PIPE_V>();
        Add(acc, acc, sq, n);
        PipeBarrier<PIPE_V>();
        inQue_.FreeTensor(g);
    }

    // Folds the accumulator in halves down to 8 lanes and writes them for chunk ch.
    __aicore__ inline void Finish(const LocalTensor<float>& acc, int64_t ch)
    {
        for (uint32_t w = kFaNormTile; w > kFaNormLanes; w /= 2) {
            Add(acc, acc, acc[w / 2], static_cast<int32_t>(w / 2));
            PipeBarrier<PIPE_V>();
        }
        LocalTensor<float> lanes = outQue_.AllocTensor<float>();
        Muls(lanes, acc, 1.0f, kFaNormLanes);  // UB -> UB copy of the 8 lane sums
        PipeBarrier<PIPE_V>();
        outQue_.EnQue(lanes);
        lanes = outQue_.DeQue<float>();
        DataCopy(out_[ch * kFaNormLanes], lanes, kFaNormLanes);  // 32 bytes
        outQue_.FreeTensor(lanes);
    }

    const FusedGradNormGroupTilingData* td_;
    float scale_;
    TPipe pipe_;
    TQue<QuePosition::VECIN, 2> inQue_;
    TQue<QuePosition::VECOUT, 1> outQue_;
    TBuf<QuePosition::VECCALC> calcBuf_;
    ListTensorDesc gradList_;
    GlobalTensor<float> out_;
};

}  // namespace

// Argument order = the OpDef's inputs, then its outputs, then workspace and tiling.
extern "C" __global__ __aicore__ void fused_grad_norm_group(GM_ADDR grad_scale, GM_ADDR grad, GM_ADDR partials,
                                                            GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    FusedGradNormGroupTilingData td;
    FaLoadNormTiling(tiling, td);
    if (GetBlockIdx() >= td.usedCores) {
        return;
    }
    FusedGradNormKernel<DTYPE_GRAD> op;
    op.Init(grad_scale, grad, partials, &td);
    op.Process();
}
