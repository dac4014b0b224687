// FusedAdamwGroup kernel for the Ascend 910B vector cores (AIV), Ascend C.
//
// NEVER COMPILED BY CANN OR RUN ON AN NPU: neither is available to this project.
// CI compiles this source with g++ against a CPU emulation of the Ascend C API
// (tests/ascend/emu) and runs it block by block against the float64 model and
// the CPU kernel (tests/ascend/test_kernel_emulated.py). See docs/ascend.md.
//
// One launch updates a whole parameter group in place (docs/kernel-interface.md):
//   inputs  coeffs  float32 [8]: lr, weight_decay, beta1, beta2, eps, grad_scale,
//                   grad_clip, skip (skip != 0: the launch writes nothing)
//           counters int64 [4]: step (already incremented), seed, index_base,
//                   stochastic (1: 16-bit params written with stochastic rounding)
//           var     tensor list (float32 / float16 / bfloat16, one dtype)
//           grad    tensor list, var's shapes, var's dtype or float32
//           states  tensor list: exp_avg, exp_avg_sq[, max_exp_avg_sq (amsgrad)],
//                   float32 or bfloat16, each flat and padded: tensor k's slice
//                   starts at a multiple of 32 elements ("Flat state layout")
//           master  float32, the padded state length with fp32 master weights for
//                   16-bit params, else empty ([0]) and untouched
//   outputs var, states, master (in-place references of the inputs of the same
//           name) and done (float32 [1], a placeholder MindSpore needs; not written)
// The variant (amsgrad, master, bf16 states: from the shapes, in the tiling;
// stochastic: from counters) selects an instantiation of the one tile math.
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
#include "adamw_stochastic.h"
#include "fa_kernel_common.h"

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

template <class T>
struct FaIsHalf {
    static constexpr bool value = false;
};
template <>
struct FaIsHalf<half> {
    static constexpr bool value = true;
};

template <bool kFirst, class A, class B>
struct FaPick {
    using type = A;
};
template <class A, class B>
struct FaPick<false, A, B> {
    using type = B;
};

// Per-launch scalars, read once on the scalar unit.
struct FaLaunchArgs {
    FaStepCoeffs coeffs;
    bool skip;
    bool stochastic;
    uint32_t srKey;  // FaSrKey(seed, step)
    int64_t indexBase;
};

// TP, TG, TS: param, grad and state element types; kFlags: kFaAmsgrad |
// kFaMaster | kFaStochastic (bf16 states are TS = bfloat16_t).
template <typename TP, typename TG, typename TS, uint32_t kFlags>
class FusedAdamwGroupKernel {
    static constexpr bool k16 = sizeof(TP) == 2;
    static constexpr bool kAms = (kFlags & kFaAmsgrad) != 0;
    static constexpr bool kMaster = k16 && (kFlags & kFaMaster) != 0;  // float32 params have no master
    static constexpr bool kCastP = k16 && !kMaster;  // param widened in UB (with a master, the master is read)
    static constexpr bool kCastG = sizeof(TG) == 2;
    static constexpr bool kCastS = sizeof(TS) == 2;
    // Stochastic rounding: 16-bit params without a master.
    static constexpr bool kSr = (kFlags & kFaStochastic) != 0 && kCastP;
    using TIn = typename FaPick<kMaster, float, TP>::type;  // what the param slot holds

public:
    __aicore__ inline void Init(const FaLaunchArgs& args, GM_ADDR var, GM_ADDR grad, GM_ADDR states, GM_ADDR master,
                                GM_ADDR varRef, GM_ADDR statesRef, GM_ADDR masterRef,
                                const FusedAdamwGroupTilingData* td)
    {
        td_ = td;
        coeffs_ = args.coeffs;
        srKey_ = args.srKey;
        indexBase_ = args.indexBase;
        varList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(var));
        gradList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(grad));
        varRefList_ = ListTensorDesc(reinterpret_cast<__gm__ void*>(varRef));
        ListTensorDesc in(reinterpret_cast<__gm__ void*>(states)), out(reinterpret_cast<__gm__ void*>(statesRef));
        mIn_.SetGlobalBuffer(in.GetDataPtr<TS>(0));
        vIn_.SetGlobalBuffer(in.GetDataPtr<TS>(1));
        mOut_.SetGlobalBuffer(out.GetDataPtr<TS>(0));
        vOut_.SetGlobalBuffer(out.GetDataPtr<TS>(1));
        if constexpr (kAms) {
            vmaxIn_.SetGlobalBuffer(in.GetDataPtr<TS>(2));
            vmaxOut_.SetGlobalBuffer(out.GetDataPtr<TS>(2));
        }
        if constexpr (kMaster) {
            masterIn_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(master));
            masterOut_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(masterRef));
        }
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
    template <typename U>
    __aicore__ inline LocalTensor<U> Slot(const LocalTensor<uint8_t>& buf, uint32_t offset) const
    {
        return buf[offset].template ReinterpretCast<U>();
    }

    // GM -> UB of `len` elements of type U; DataCopyPad takes any byte count
    // and pads the UB side to the next 32-byte block.
    template <typename U>
    __aicore__ inline void Load(const LocalTensor<uint8_t>& buf, uint32_t offset, const GlobalTensor<U>& src,
                                uint32_t len)
    {
        using C = typename FaCopyType<U>::type;
        const DataCopyExtParams copy{1, static_cast<uint32_t>(len * sizeof(U)), 0, 0, 0};
        const DataCopyPadExtParams<C> noPad{false, 0, 0, 0};
        DataCopyPad(Slot<C>(buf, offset), FaCopyView(src), copy, noPad);
    }

    // UB -> GM, exactly `len` elements.
    template <typename U>
    __aicore__ inline void Store(const GlobalTensor<U>& dst, const LocalTensor<uint8_t>& buf, uint32_t offset,
                                 uint32_t len)
    {
        const DataCopyExtParams copy{1, static_cast<uint32_t>(len * sizeof(U)), 0, 0, 0};
        DataCopyPad(FaCopyView(dst), Slot<typename FaCopyType<U>::type>(buf, offset), copy);
    }

    __aicore__ inline void CopyIn(const FaTile& tile)
    {
        LocalTensor<uint8_t> buf = inQue_.AllocTensor<uint8_t>();
        GlobalTensor<TG> g;
        g.SetGlobalBuffer(gradList_.GetDataPtr<TG>(tile.tensor) + tile.local);
        if constexpr (kMaster) {
            Load(buf, td_->inOff[kInP], masterIn_[tile.flat], tile.len);
        } else {
            GlobalTensor<TP> p;
            p.SetGlobalBuffer(varList_.GetDataPtr<TP>(tile.tensor) + tile.local);
            Load(buf, td_->inOff[kInP], p, tile.len);
        }
        Load(buf, td_->inOff[kInG], g, tile.len);
        Load(buf, td_->inOff[kInM], mIn_[tile.flat], tile.len);
        Load(buf, td_->inOff[kInV], vIn_[tile.flat], tile.len);
        if constexpr (kAms) Load(buf, td_->inOff[kInVmax], vmaxIn_[tile.flat], tile.len);
        inQue_.EnQue(buf);
    }

    // The tile math on tile.padded elements (the pad lanes compute garbage that
    // CopyOut never writes back). 16-bit operands are widened into the calc
    // buffer first and the float32 results narrowed into the out buffer after.
    __aicore__ inline void Compute(const FaTile& tile)
    {
        LocalTensor<uint8_t> in = inQue_.DeQue<uint8_t>();
        LocalTensor<uint8_t> out = outQue_.AllocTensor<uint8_t>();
        LocalTensor<uint8_t> calc = calcBuf_.Get<uint8_t>();
        const int32_t n = static_cast<int32_t>(tile.padded);
        const uint32_t* io = td_->inOff;
        const uint32_t* oo = td_->outOff;
        const uint32_t* co = td_->calcOff;

        // float32 operands: the in-buffer slot itself, or its widened copy.
        const LocalTensor<float> p = Slot<float>(kCastP ? calc : in, kCastP ? co[kCalcP32] : io[kInP]);
        const LocalTensor<float> g = Slot<float>(kCastG ? calc : in, kCastG ? co[kCalcG32] : io[kInG]);
        const LocalTensor<float> m = Slot<float>(kCastS ? calc : in, kCastS ? co[kCalcM32] : io[kInM]);
        const LocalTensor<float> v = Slot<float>(kCastS ? calc : in, kCastS ? co[kCalcV32] : io[kInV]);
        const LocalTensor<float> vmax = Slot<float>(kCastS ? calc : in, kCastS ? co[kCalcVmax32] : io[kInVmax]);
        FaWiden<kCastP>(p, Slot<TIn>(in, io[kInP]), n);
        FaWiden<kCastG>(g, Slot<TG>(in, io[kInG]), n);
        FaWiden<kCastS>(m, Slot<TS>(in, io[kInM]), n);
        FaWiden<kCastS>(v, Slot<TS>(in, io[kInV]), n);
        if constexpr (kAms) FaWiden<kCastS>(vmax, Slot<TS>(in, io[kInVmax]), n);
        PipeBarrier<PIPE_V>();

        // float32 results: straight into the out buffer where no narrowing follows.
        const LocalTensor<float> pNew =
            kMaster ? Slot<float>(out, oo[kOutMaster]) : (kCastP ? p : Slot<float>(out, oo[kOutP]));
        const LocalTensor<float> mNew = kCastS ? m : Slot<float>(out, oo[kOutM]);
        const LocalTensor<float> vNew = kCastS ? v : Slot<float>(out, oo[kOutV]);
        const LocalTensor<float> vmaxNew = kCastS ? vmax : Slot<float>(out, oo[kOutVmax]);
        FaAdamwMath<kAms>(p, g, m, v, vmax, pNew, mNew, vNew, vmaxNew, Slot<float>(calc, co[kCalcT1]),
                          Slot<float>(calc, co[kCalcT2]), coeffs_, n);

        if constexpr (kSr && FaIsHalf<TP>::value) {
            FaStochasticHalf(Slot<TP>(out, oo[kOutP]), pNew, Slot<int32_t>(calc, co[kCalcBits]),
                             Slot<int32_t>(calc, co[kCalcBits2]), Slot<int32_t>(calc, co[kCalcT1]),
                             Slot<int32_t>(calc, co[kCalcT2]), srKey_,
                             static_cast<uint64_t>(indexBase_ + tile.flat), n);
        } else if constexpr (kSr) {
            FaStochasticBf16(Slot<TP>(out, oo[kOutP]), pNew, Slot<int32_t>(calc, co[kCalcBits]),
                             Slot<int32_t>(calc, co[kCalcBits2]), Slot<int32_t>(calc, co[kCalcT1]),
                             Slot<int32_t>(calc, co[kCalcT2]), srKey_,
                             static_cast<uint64_t>(indexBase_ + tile.flat), n);
        } else {
            FaNarrow<k16>(Slot<TP>(out, oo[kOutP]), pNew, n);
        }
        FaNarrow<kCastS>(Slot<TS>(out, oo[kOutM]), mNew, n);
        FaNarrow<kCastS>(Slot<TS>(out, oo[kOutV]), vNew, n);
        if constexpr (kAms) FaNarrow<kCastS>(Slot<TS>(out, oo[kOutVmax]), vmaxNew, n);
        PipeBarrier<PIPE_V>();
        outQue_.EnQue(out);
        inQue_.FreeTensor(in);
    }

    __aicore__ inline void CopyOut(const FaTile& tile)
    {
        GlobalTensor<TP> p;
        p.SetGlobalBuffer(varRefList_.GetDataPtr<TP>(tile.tensor) + tile.local);
        LocalTensor<uint8_t> buf = outQue_.DeQue<uint8_t>();
        Store(p, buf, td_->outOff[kOutP], tile.len);
        Store(mOut_[tile.flat], buf, td_->outOff[kOutM], tile.len);
        Store(vOut_[tile.flat], buf, td_->outOff[kOutV], tile.len);
        if constexpr (kAms) Store(vmaxOut_[tile.flat], buf, td_->outOff[kOutVmax], tile.len);
        if constexpr (kMaster) Store(masterOut_[tile.flat], buf, td_->outOff[kOutMaster], tile.len);
        outQue_.FreeTensor(buf);
    }

    const FusedAdamwGroupTilingData* td_;
    FaStepCoeffs coeffs_;
    uint32_t srKey_;
    int64_t indexBase_;
    TPipe pipe_;
    TQue<QuePosition::VECIN, kBufferNum> inQue_;
    TQue<QuePosition::VECOUT, kBufferNum> outQue_;
    TBuf<QuePosition::VECCALC> calcBuf_;
    ListTensorDesc varList_, gradList_, varRefList_;
    GlobalTensor<TS> mIn_, vIn_, mOut_, vOut_, vmaxIn_, vmaxOut_;
    GlobalTensor<float> masterIn_, masterOut_;
};

__aicore__ inline FaLaunchArgs FaReadArgs(GM_ADDR coeffs, GM_ADDR counters)
{
    GlobalTensor<float> cf;
    GlobalTensor<int64_t> ct;
    cf.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(coeffs), 8);
    ct.SetGlobalBuffer(reinterpret_cast<__gm__ int64_t*>(counters), 4);
    FaLaunchArgs a;
    a.coeffs = FaMakeStepCoeffs(cf.GetValue(0), cf.GetValue(1), ct.GetValue(0), cf.GetValue(2), cf.GetValue(3),
                                cf.GetValue(4), cf.GetValue(5), cf.GetValue(6));
    a.skip = cf.GetValue(7) != 0.0f;
    a.srKey = FaSrKey(static_cast<uint64_t>(ct.GetValue(1)), static_cast<uint32_t>(ct.GetValue(0)));
    a.indexBase = ct.GetValue(2);
    a.stochastic = ct.GetValue(3) != 0;
    return a;
}

template <uint32_t kFlags>
__aicore__ inline void FaRun(const FaLaunchArgs& args, GM_ADDR var, GM_ADDR grad, GM_ADDR states, GM_ADDR master,
                             GM_ADDR varRef, GM_ADDR statesRef, GM_ADDR masterRef,
                             const FusedAdamwGroupTilingData* td)
{
    FusedAdamwGroupKernel<DTYPE_VAR, DTYPE_GRAD, DTYPE_STATES, kFlags> op;
    op.Init(args, var, grad, states, master, varRef, statesRef, masterRef, td);
    op.Process();
}

}  // namespace

// Argument order = the OpDef's inputs, then its outputs, then workspace and tiling.
extern "C" __global__ __aicore__ void fused_adamw_group(GM_ADDR coeffs, GM_ADDR counters, GM_ADDR var,
                                                        GM_ADDR grad, GM_ADDR states, GM_ADDR master,
                                                        GM_ADDR var_ref, GM_ADDR states_ref, GM_ADDR master_ref,
                                                        GM_ADDR done, GM_ADDR workspace, GM_ADDR tiling)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
    FusedAdamwGroupTilingData td;
    FaLoadTiling(tiling, td);
    if (GetBlockIdx() >= td.usedCores) {
        return;
    }
    const FaLaunchArgs args = FaReadArgs(coeffs, counters);
    if (args.skip) {
        return;  // a skipped step (overflow, norm spike): nothing is written
    }
    // DTYPE_<INPUT> is the C type of that input for the dtype combination this
    // binary is built for (the custom-operator build compiles one per OpDef column).
    // Stochastic rounding excludes a master (a master keeps the exact value).
    const uint32_t sr = args.stochastic && !(td.flags & kFaMaster) ? kFaStochastic : 0u;
    switch ((td.flags & (kFaAmsgrad | kFaMaster)) | sr) {
        case 0: FaRun<0>(args, var, grad, states, master, var_ref, states_ref, master_ref, &td); break;
        case kFaAmsgrad: FaRun<kFaAmsgrad>(args, var, grad, states, master, var_ref, states_ref, master_ref, &td); break;
        case kFaStochastic:
            FaRun<kFaStochastic>(args, var, grad, states, master, var_ref, states_ref, master_ref, &td);
            break;
        case kFaAmsgrad | kFaStochastic:
            FaRun<kFaAmsgrad | kFaStochastic>(args, var, grad, states, master, var_ref, states_ref, master_ref, &td);
            break;
        case kFaMaster: FaRun<kFaMaster>(args, var, grad, states, master, var_ref, states_ref, master_ref, &td); break;
        default:
            FaRun<kFaAmsgrad | kFaMaster>(args, var, grad, states, master, var_ref, states_ref, master_ref, &td);
            break;
    }
}
