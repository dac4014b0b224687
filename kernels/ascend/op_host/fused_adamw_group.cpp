// Host side of the FusedAdamwGroup custom operator: operator definition, shape
// and dtype inference, and the tiling function (a thin adapter around the plain
// C++ plan in adamw_tiling_plan.cpp, which the tests exercise without CANN).
//
// NOT COMPILED IN THIS PROJECT'S CI (needs CANN's headers). See docs/ascend.md.
//
// The generated single-operator API (CANN's opbuild turns an output named like
// an input into an in-place reference and drops it from the output list):
//   aclnnFusedAdamwGroupGetWorkspaceSize(const aclTensor *lr, const aclTensor *weightDecay,
//       const aclTensor *step, const aclTensor *hyper, aclTensorList *varRef,
//       const aclTensorList *grad, aclTensor *expAvgRef, aclTensor *expAvgSqRef,
//       const aclTensor *doneOut, uint64_t *workspaceSize, aclOpExecutor **executor);
//   aclnnFusedAdamwGroup(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
//       aclrtStream stream);
#include <cstdio>
#include <cstring>
#include <vector>

#include "register/op_def_registry.h"
#include "register/tilingdata_base.h"
#include "tiling/platform/platform_ascendc.h"

#include "adamw_tiling_plan.h"

namespace {

// IR input / output indices (OpDef order below).
constexpr size_t kInLr = 0;
constexpr size_t kInWeightDecay = 1;
constexpr size_t kInStep = 2;
constexpr size_t kInHyper = 3;
constexpr size_t kInVar = 4;
constexpr size_t kInGrad = 5;
constexpr size_t kInExpAvg = 6;
constexpr size_t kInExpAvgSq = 7;
constexpr size_t kOutVar = 0;
constexpr size_t kOutExpAvg = 1;
constexpr size_t kOutExpAvgSq = 2;
constexpr size_t kOutDone = 3;

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

    const auto* info = context->GetComputeNodeInfo()->GetInputInstanceInfo(kInVar);
    if (info == nullptr) return Fail("no instance info for input var");
    const uint32_t numTensors = static_cast<uint32_t>(info->GetInstanceNum());
    std::vector<int64_t> numels(numTensors);
    for (uint32_t k = 0; k < numTensors; ++k) {
        const auto* var = context->GetDynamicInputShape(kInVar, k);
        const auto* grad = context->GetDynamicInputShape(kInGrad, k);
        if (var == nullptr || grad == nullptr) return Fail("var and grad lists must have the same length");
        if (var->GetStorageShape() != grad->GetStorageShape()) return Fail("grad shape differs from its var");
        numels[k] = var->GetStorageShape().GetShapeSize();
    }
    const int64_t stateLen = fa_state_len(numels.data(), numTensors);
    for (size_t state : {kInExpAvg, kInExpAvgSq}) {
        if (context->GetInputShape(state)->GetStorageShape().GetShapeSize() != stateLen)
            return Fail("exp_avg / exp_avg_sq must hold the padded state length (docs/kernel-interface.md)");
    }
    const ge::DataType dtype = context->GetDynamicInputDesc(kInVar, 0)->GetDataType();
    const uint32_t paramBytes = dtype == ge::DT_FLOAT ? 4 : 2;

    FusedAdamwGroupTilingData td;
    if (const char* err = fa_make_tiling(numels.data(), numTensors, paramBytes, coreNum, ubBytes, &td)) {
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
    const auto* varInfo = context->GetComputeNodeInfo()->GetInputInstanceInfo(kInVar);
    const auto* varOut = context->GetIrOutputInstanceInfo(kOutVar);
    if (varInfo == nullptr || varOut == nullptr) return GRAPH_FAILED;
    for (size_t k = 0; k < varInfo->GetInstanceNum(); ++k) {
        *context->GetOutputShape(varOut->GetInstanceStart() + k) = *context->GetDynamicInputShape(kInVar, k);
    }
    *context->GetOutputShape(context->GetIrOutputInstanceInfo(kOutExpAvg)->GetInstanceStart()) =
        *context->GetInputShape(kInExpAvg);
    *context->GetOutputShape(context->GetIrOutputInstanceInfo(kOutExpAvgSq)->GetInstanceStart()) =
        *context->GetInputShape(kInExpAvgSq);
    gert::Shape* done = context->GetOutputShape(context->GetIrOutputInstanceInfo(kOutDone)->GetInstanceStart());
    done->SetDimNum(1);
    done->SetDim(0, 1);
    return GRAPH_SUCCESS;
}

static graphStatus FusedAdamwGroupInferDataType(gert::InferDataTypeContext* context)
{
    const auto* varInfo = context->GetComputeNodeInfo()->GetInputInstanceInfo(kInVar);
    const auto* varOut = context->GetIrOutputInstanceInfo(kOutVar);
    if (varInfo == nullptr || varOut == nullptr) return GRAPH_FAILED;
    for (size_t k = 0; k < varInfo->GetInstanceNum(); ++k) {
        context->SetOutputDataType(varOut->GetInstanceStart() + k, context->GetDynamicInputDataType(kInVar, k));
    }
    context->SetOutputDataType(context->GetIrOutputInstanceInfo(kOutExpAvg)->GetInstanceStart(), DT_FLOAT);
    context->SetOutputDataType(context->GetIrOutputInstanceInfo(kOutExpAvgSq)->GetInstanceStart(), DT_FLOAT);
    context->SetOutputDataType(context->GetIrOutputInstanceInfo(kOutDone)->GetInstanceStart(), DT_FLOAT);
    return GRAPH_SUCCESS;
}

}  // namespace ge

namespace ops {

// One column per supported param dtype; everything but var/grad is fixed.
class FusedAdamwGroup : public OpDef {
public:
    explicit FusedAdamwGroup(const char* name) : OpDef(name)
    {
        const std::vector<ge::DataType> f32 = {ge::DT_FLOAT, ge::DT_FLOAT, ge::DT_FLOAT};
        const std::vector<ge::DataType> i32 = {ge::DT_INT32, ge::DT_INT32, ge::DT_INT32};
        const std::vector<ge::DataType> param = {ge::DT_FLOAT, ge::DT_FLOAT16, ge::DT_BF16};
        const std::vector<ge::Format> nd = {ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND};

        this->Input("lr").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->Input("weight_decay").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->Input("step").ParamType(REQUIRED).DataType(i32).Format(nd).UnknownShapeFormat(nd);
        this->Input("hyper").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        // The group's params and grads as tensor lists (aclTensorList in the aclnn API).
        this->Input("var").ParamType(DYNAMIC).DataType(param).Format(nd).UnknownShapeFormat(nd);
        this->Input("grad").ParamType(DYNAMIC).DataType(param).Format(nd).UnknownShapeFormat(nd);
        this->Input("exp_avg").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->Input("exp_avg_sq").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        // Same names as inputs: in-place references (varRef, expAvgRef, expAvgSqRef).
        this->Output("var").ParamType(DYNAMIC).DataType(param).Format(nd).UnknownShapeFormat(nd);
        this->Output("exp_avg").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->Output("exp_avg_sq").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
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
