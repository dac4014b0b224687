// Host side of the FusedGradNormGroup custom operator (pass 1 of the whole step,
// issue 14): operator definition, shape/dtype inference and the tiling function,
// a thin adapter around the plain C++ plan in grad_norm_plan.cpp.
//
// NOT COMPILED WITH CANN IN THIS PROJECT (needs its headers); CI only type-checks it
// against declarations-only stand-ins (tests/ascend/test_op_host_syntax.py). See docs/ascend.md.
//
// Expected generated API:
//   aclnnFusedGradNormGroupGetWorkspaceSize(const aclTensor *gradScale, const aclTensorList *grad,
//       const aclTensor *partialsOut, uint64_t *workspaceSize, aclOpExecutor **executor);
#include <cstdio>
#include <cstring>
#include <vector>

#include "register/op_def_registry.h"
#include "register/tilingdata_base.h"
#include "tiling/platform/platform_ascendc.h"

#include "grad_norm_plan.h"

namespace {

constexpr size_t kIrInGradScale = 0;
constexpr size_t kIrInGrad = 1;
constexpr size_t kIrOutPartials = 0;

ge::graphStatus NormFail(const char* what)
{
    std::fprintf(stderr, "[FusedGradNormGroup] %s\n", what);
    return ge::GRAPH_FAILED;
}

}  // namespace

namespace optiling {

static ge::graphStatus FusedGradNormGroupTiling(gert::TilingContext* context)
{
    auto ascendc = platform_ascendc::PlatformAscendC(context->GetPlatformInfo());
    uint64_t ubBytes = 0;
    ascendc.GetCoreMemSize(platform_ascendc::CoreMemType::UB, ubBytes);
    const auto* info = context->GetComputeNodeInfo()->GetInputInstanceInfo(kIrInGrad);
    if (info == nullptr) return NormFail("no instance info for input grad");
    const uint32_t numTensors = static_cast<uint32_t>(info->GetInstanceNum());
    std::vector<int64_t> numels(numTensors);
    for (uint32_t k = 0; k < numTensors; ++k) {
        numels[k] = context->GetDynamicInputShape(kIrInGrad, k)->GetStorageShape().GetShapeSize();
    }
    const uint32_t gradBytes = context->GetDynamicInputDesc(kIrInGrad, 0)->GetDataType() == ge::DT_FLOAT ? 4 : 2;
    FusedGradNormGroupTilingData td;
    if (const char* err = fa_make_norm_tiling(numels.data(), numTensors, gradBytes, ascendc.GetCoreNumAiv(),
                                              ubBytes, &td)) {
        return NormFail(err);
    }
    auto* raw = context->GetRawTilingData();
    if (sizeof(td) > raw->GetCapacity()) return NormFail("tiling data exceeds the tiling buffer");
    std::memcpy(raw->GetData(), &td, sizeof(td));
    raw->SetDataSize(sizeof(td));
    context->SetBlockDim(td.usedCores);
    context->SetTilingKey(0);
    size_t* workspaces = context->GetWorkspaceSizes(1);
    workspaces[0] = ascendc.GetLibApiWorkSpaceSize();
    return ge::GRAPH_SUCCESS;
}

}  // namespace optiling

namespace ge {

// partials: [ceil(total / 16384), 8] float32.
static graphStatus FusedGradNormGroupInferShape(gert::InferShapeContext* context)
{
    const auto* info = context->GetComputeNodeInfo()->GetInputInstanceInfo(kIrInGrad);
    if (info == nullptr) return GRAPH_FAILED;
    int64_t total = 0;
    for (size_t k = 0; k < info->GetInstanceNum(); ++k) {
        total += context->GetDynamicInputShape(kIrInGrad, k)->GetShapeSize();
    }
    gert::Shape* out = context->GetOutputShape(kIrOutPartials);
    out->SetDimNum(2);
    out->SetDim(0, (total + kFaNormChunk - 1) / kFaNormChunk);
    out->SetDim(1, kFaNormLanes);
    return GRAPH_SUCCESS;
}

static graphStatus FusedGradNormGroupInferDataType(gert::InferDataTypeContext* context)
{
    context->SetOutputDataType(kIrOutPartials, DT_FLOAT);
    return GRAPH_SUCCESS;
}

}  // namespace ge

namespace ops {

class FusedGradNormGroup : public OpDef {
public:
    explicit FusedGradNormGroup(const char* name) : OpDef(name)
    {
        const std::vector<ge::DataType> f32 = {ge::DT_FLOAT, ge::DT_FLOAT, ge::DT_FLOAT};
        const std::vector<ge::DataType> grad = {ge::DT_FLOAT, ge::DT_FLOAT16, ge::DT_BF16};
        const std::vector<ge::Format> nd = {ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND};
        this->Input("grad_scale").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->Input("grad").ParamType(DYNAMIC).DataType(grad).Format(nd).UnknownShapeFormat(nd);
        this->Output("partials").ParamType(REQUIRED).DataType(f32).Format(nd).UnknownShapeFormat(nd);
        this->SetInferShape(ge::FusedGradNormGroupInferShape).SetInferDataType(ge::FusedGradNormGroupInferDataType);
        this->AICore().SetTiling(optiling::FusedGradNormGroupTiling);
        this->AICore().AddConfig("ascend910b");
        this->AICore().AddConfig("ascend910_93");
    }
};

OP_ADD(FusedGradNormGroup);

}  // namespace ops
