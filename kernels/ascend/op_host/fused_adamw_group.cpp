// Host side of the FusedAdamwGroup custom operator: operator definition, shape
// and dtype inference, and the tiling function (a thin adapter around the plain
// C++ plan in adamw_tiling_plan.cpp, which the tests exercise without CANN).
//
// NOT COMPILED WITH CANN IN THIS PROJECT (needs its headers); CI only type-checks it
// against declarations-only stand-ins (tests/ascend/test_op_host_syntax.py). See docs/ascend.md.
//
// The generated single-operator API (CANN's opbuild turns an output named like
// an input into an in-place reference and drops it from the output list):
//   aclnnFusedAdamwGroupGetWorkspaceSize(const aclTensor *coeffs, const aclTensor *counters,
//       aclTensorList *varRef, const aclTensorList *grad, aclTensorList *statesRef,
//       aclTensor *masterRef, const aclTensor *doneOut, uint64_t *workspaceSize,
//       aclOpExecutor **executor);
//   aclnnFusedAdamwGroup(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
//       aclrtStream stream);
// Inputs are described in op_kernel/fused_adamw_group.cpp. The variant is read off
// the shapes and dtypes: amsgrad = three states, fp32 master = a master of the
// state length (an empty one otherwise), bf16 states = the states' dtype, float32
// grads = grad's dtype; stochastic rounding is a run-time value (counters[3]).
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "register/op_def_registry.h"
#include "register/tilingdata_base.h"
#include "tiling/platform/platform_ascendc.h"

#include "adamw_tiling_plan.h"

namespace {

// IR input / output indices (OpDef order below; kIr* to stay apart from the
// tiling data's UB slot names).
constexpr size_t kIrInCoeffs = 0;
constexpr size_t kIrInCounters = 1;
constexpr size_t kIrInVar = 2;
constexpr size_t kIrInGrad = 3;
constexpr size_t kIrInStates = 4;
constexpr size_t kIrInMaster = 5;
constexpr size_t kIrOutVar = 0;
constexpr size_t kIrOutStates = 1;
constexpr size_t kIrOutMaster = 2;
constexpr size_t kIrOutDone = 3;

uint32_t BytesOf(ge::DataType t) { return t == ge::DT_FLOAT ? 4 : 2; }

ge::graphStatus Fail(const char* what)
{
    std::fprintf(stderr, "[FusedAdamwGroup] %s\n", what);
    return ge::GRAPH_FAILED;
}

}  // namespace

namespace optiling {

static ge::graphStatus FusedAdamwGroupTiling(gert::TilingContext* context)
{
    auto ascendc = platform_ascendc::PlatformAscendC(context->GetPlatformInfo());
    const uint32_t coreNum = ascendc.GetCoreNumAiv();
    uint64_t ubBytes = 0;
    ascendc.GetCoreMemSize(platform_ascendc::CoreMemType::UB, ubBytes);

    const auto* varInfo = context->GetComputeNodeInfo()->GetInputInstanceInfo(kIrInVar);
    const auto* stateInfo = context->GetComputeNodeInfo()->GetInputInstanceInfo(kIrInStates);
    if (varInfo == nullptr || stateInfo == nullptr) return Fail("no instance info for var / states");
    const uint32_t numTensors = static_cast<uint32_t>(varInfo->GetInstanceNum());
    const uint32_t numStates = static_cast<uint32_t>(stateInfo->GetInstanceNum());
    if (numStates != 2 && numStates != 3) return Fail("states must be (exp_avg, exp_avg_sq[, max_exp_avg_sq])");
    std::vector<int64_t> numels(numTensors);
    for (uint32_t k = 0; k < numTensors; ++k) {
        const auto* var = context->GetDynamicInputShape(kIrInVar, k);
        const auto* grad = context->GetDynamicInputShape(kIrInGrad, k);
        if (var == nullptr || grad == nullptr) return Fail("var and grad lists must have the same length");
        if (var->GetStorageShape() != grad->GetStorageShape()) return Fail("grad shape differs from its var");
        numels[k] = var->GetStorageShape().GetShapeSize();
    }
    const int64_t stateLen = fa_state_len(numels.data(), numTensors);
    for (uint32_t k = 0; k < numStates; ++k) {
        if (context->GetDynamicInputShape(kIrInStates, k)->GetStorageShape().GetShapeSize() != stateLen)
            return Fail("every state must hold the padded state length (docs/kernel-interface.md)");
    }
    const int64_t masterLen = context->GetInputShape(kIrInMaster)->GetStorageShape().GetShapeSize();
    if (masterLen != 0 && masterLen != stateLen) return Fail("master must be empty or hold the padded state length");

    FaTilingConfig cfg;
    cfg.paramBytes = BytesOf(context->GetDynamicInputDesc(kIrInVar, 0)->GetDataType());
    cfg.gradBytes = BytesOf(context->GetDynamicInputDesc(kIrInGrad, 0)->GetDataType());
    cfg.stateBytes = BytesOf(context->GetDynamicInputDesc(kIrInStates, 0)->GetDataType());
    cfg.flags = (numStates == 3 ? kFaAmsgrad : 0u) | (masterLen != 0 ? kFaMaster : 0u) |
                (cfg.stateBytes == 2 ? kFaBf16State : 0u);
    FusedAdamwGroupTilingData td;
    if (const char* err = fa_make_tiling(numels.data(), numTensors, &cfg, coreNum, ubBytes, &td)) {
        return Fail(err);
    }
    // The tiling buffer carries the plain struct byte for byte; the kernel
    // copies it back out (FaLoadTiling).
    auto* raw = context->GetRawTilingData();
    if (sizeof(td) > raw->GetCapacity()) return Fail("tiling data exceeds the tiling buffer");
    std::memcpy(raw->GetData(), &td, sizeof(td));
    raw->SetDataSize(sizeof(td));
    context->SetBlockDim(td.usedCores);
    context->SetTilingKey(0);
    size_t* workspaces = context->GetWorkspaceSizes(1);
    workspaces[0] = ascendc.GetLibApiWorkSpaceSize();  // system workspace only
    return ge::GRAPH_SUCCESS;
}

}  // namespace optiling

namespace ge {

// Outputs alias their inputs: same shapes and dtypes; done is float32 [1].
static graphStatus FusedAdamwGroupInferShape(gert::InferShapeContext* context)
{
    for (const auto& io : {std::make_pair(kIrInVar, kIrOutVar), std::make_pair(kIrInStates, kIrOutStates)}) {
        const auto* inInfo = context->GetComputeNodeInfo()->GetInputInstanceInfo(io.first);
        const auto* outInfo = context->GetIrOutputInstanceInfo(io.second);
        if (inInfo == nullptr || outInfo == nullptr) return GRAPH_FAILED;
        for (size_t k = 0; k < inInfo->GetInstanceNum(); ++k) {
            *context->GetOutputShape(outInfo->GetInstanceStart() + k) = *context->GetDynamicInputShape(io.first, k);
        }
    }
    *context->GetOutputShape(context->GetIrOutputInstanceInfo(kIrOutMaster)->GetInstanceStart()) =
        *context->GetInputShape(kIrInMaster);
    gert::Shape* done = context->GetOutputShape(context->GetIrOutputInstanceInfo(kIrOutDone)->GetInstanceStart());
    done->SetDimNum(1);
    done->SetDim(0, 1);
    return GRAPH_SUCCESS;
}

static graphStatus FusedAdamwGroupInferDataType(gert::InferDataTypeContext* context)
{
    for (const auto& io : {std::make_pair(kIrInVar, kIrOutVar), std::make_pair(kIrInStates, kIrOutStates)}) {
        const auto* inInfo = context->GetComputeNodeInfo()->GetInputInstanceInfo(io.first);
        const auto* outInfo = context->GetIrOutputInstanceInfo(io.second);
        if (inInfo == nullptr || outInfo == nullptr) return GRAPH_FAILED;
        for (size_t k = 0; k < inInfo->GetInstanceNum(); ++k) {
            context->SetOutputDataType(outInfo->GetInstanceStart() + k, context->GetDynamicInputDataType(io.first, k));
        }
    }
    context->SetOutputDataType(context->GetIrOutputInstanceInfo(kIrOutMaster)->GetInstanceStart(), DT_FLOAT);
    context->SetOutputDataType(context->GetIrOutputInstanceInfo(kIrOutDone)->GetInstanceStart(), DT_FLOAT);
    return GRAPH_SUCCESS;
}

}  // namespace ge

namespace ops {

// One column per supported (param, grad, state) dtype combination; the kernel is
// built once per column (DTYPE_VAR, DTYPE_GRAD, DTYPE_STATES).
class FusedAdamwGroup : public OpDef {
public:
    explicit FusedAdamwGroup(const char* name) : OpDef(name)
    {
        using ge::DT_BF16;
        using ge::DT_FLOAT;
        using ge::DT_FLOAT16;
        //                                     var         grad        states
        const std::vector<std::vector<ge::DataType>> columns = {
            {DT_FLOAT, DT_FLOAT, DT_FLOAT},     {DT_FLOAT, DT_FLOAT, DT_BF16},
            {DT_FLOAT16, DT_FLOAT16, DT_FLOAT}, {DT_FLOAT16, DT_FLOAT, DT_FLOAT},
            {DT_FLOAT16, DT_FLOAT16, DT_BF16},  {DT_FLOAT16, DT_FLOAT, DT_BF16},
            {DT_BF16, DT_BF16, DT_FLOAT},       {DT_BF16, DT_FLOAT, DT_FLOAT},
            {DT_BF16, DT_BF16, DT_BF16},        {DT_BF16, DT_FLOAT, DT_BF16}};
        std::vector<ge::DataType> var, grad, states;
        for (const auto& c : columns) {
            var.push_back(c[0]);
            grad.push_back(c[1]);
            states.push_back(c[2]);
        }
        const std::vector<ge::DataType> f32(columns.size(), DT_FLOAT), i64(columns.size(), ge::DT_INT64);
        const std::vector<ge::Format> nd(columns.size(), ge::FORMAT_ND);

        this->Input("coeffs").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->Input("counters").ParamType(REQUIRED).DataType(i64).Format(nd).UnknownShapeFormat(nd);
        // The group's params, grads and flat states as tensor lists (aclTensorList in the aclnn API).
        this->Input("var").ParamType(DYNAMIC).DataType(var).Format(nd).UnknownShapeFormat(nd);
        this->Input("grad").ParamType(DYNAMIC).DataType(grad).Format(nd).UnknownShapeFormat(nd);
        this->Input("states").ParamType(DYNAMIC).DataType(states).Format(nd).UnknownShapeFormat(nd);
        this->Input("master").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        // Same names as inputs: in-place references (varRef, statesRef, masterRef).
        this->Output("var").ParamType(DYNAMIC).DataType(var).Format(nd).UnknownShapeFormat(nd);
        this->Output("states").ParamType(DYNAMIC).DataType(states).Format(nd).UnknownShapeFormat(nd);
        this->Output("master").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        // MindSpore's Custom op needs one ordinary output; the kernel leaves it unwritten.
        this->Output("done").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);

        this->SetInferShape(ge::FusedAdamwGroupInferShape).SetInferDataType(ge::FusedAdamwGroupInferDataType);
        this->AICore().SetTiling(optiling::FusedAdamwGroupTiling);
        this->AICore().AddConfig("ascend910b");
        this->AICore().AddConfig("ascend910_93");
    }
};

OP_ADD(FusedAdamwGroup);

}  // namespace ops
