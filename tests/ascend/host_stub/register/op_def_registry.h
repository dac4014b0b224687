// Declarations-only stand-in for the part of CANN's host API that
// kernels/ascend/op_host uses (OpDef, the gert tiling/inference contexts, ge
// types), so test_op_host_syntax.py can type-check that code with g++
// -fsyntax-only. Names and signatures follow the public CANN pages for OpDef,
// TilingContext, InferShapeContext and InferDataTypeContext; this is NOT CANN:
// passing here says the host code is well-formed against these declarations,
// not that CANN accepts it.
#ifndef FA_HOST_STUB_OP_DEF_REGISTRY_H
#define FA_HOST_STUB_OP_DEF_REGISTRY_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fe {
class PlatFormInfos;
}

namespace ge {
using graphStatus = uint32_t;
constexpr graphStatus GRAPH_SUCCESS = 0;
constexpr graphStatus GRAPH_FAILED = 0xFFFFFFFF;
enum DataType { DT_FLOAT, DT_FLOAT16, DT_INT8, DT_INT32, DT_UINT8, DT_INT16, DT_UINT16, DT_UINT32, DT_INT64, DT_BF16 };
enum Format { FORMAT_ND };
}  // namespace ge

namespace gert {
class Shape {
public:
    int64_t GetShapeSize() const;
    size_t GetDimNum() const;
    void SetDimNum(size_t n);
    int64_t GetDim(size_t i) const;
    void SetDim(size_t i, int64_t v);
    bool operator==(const Shape& o) const;
    bool operator!=(const Shape& o) const;
};
class StorageShape {
public:
    const Shape& GetStorageShape() const;
    const Shape& GetOriginShape() const;
};
class CompileTimeTensorDesc {
public:
    ge::DataType GetDataType() const;
};
class AnchorInstanceInfo {
public:
    size_t GetInstanceNum() const;
    size_t GetInstanceStart() const;
};
class ComputeNodeInfo {
public:
    const AnchorInstanceInfo* GetInputInstanceInfo(size_t irIndex) const;
};
class TilingData {
public:
    size_t GetCapacity() const;
    void* GetData();
    void SetDataSize(size_t size);
};
class TilingContext {
public:
    fe::PlatFormInfos* GetPlatformInfo() const;
    const ComputeNodeInfo* GetComputeNodeInfo() const;
    const StorageShape* GetInputShape(size_t index) const;
    const StorageShape* GetDynamicInputShape(size_t irIndex, size_t relativeIndex) const;
    const CompileTimeTensorDesc* GetDynamicInputDesc(size_t irIndex, size_t relativeIndex) const;
    TilingData* GetRawTilingData();
    ge::graphStatus SetBlockDim(uint32_t blockDim);
    ge::graphStatus SetTilingKey(uint64_t key);
    size_t* GetWorkspaceSizes(size_t count);
};
class InferShapeContext {
public:
    const ComputeNodeInfo* GetComputeNodeInfo() const;
    const AnchorInstanceInfo* GetIrOutputInstanceInfo(size_t irIndex) const;
    const Shape* GetInputShape(size_t index) const;
    const Shape* GetDynamicInputShape(size_t irIndex, size_t relativeIndex) const;
    Shape* GetOutputShape(size_t index);
};
class InferDataTypeContext {
public:
    const ComputeNodeInfo* GetComputeNodeInfo() const;
    const AnchorInstanceInfo* GetIrOutputInstanceInfo(size_t irIndex) const;
    ge::DataType GetDynamicInputDataType(size_t irIndex, size_t relativeIndex) const;
    ge::graphStatus SetOutputDataType(size_t index, ge::DataType dtype);
};
}  // namespace gert

namespace ops {
enum Option { REQUIRED, OPTIONAL, DYNAMIC };
class OpParamDef {
public:
    OpParamDef& ParamType(Option type);
    OpParamDef& DataType(std::vector<ge::DataType> types);
    OpParamDef& Format(std::vector<ge::Format> formats);
    OpParamDef& UnknownShapeFormat(std::vector<ge::Format> formats);
};
class OpAICoreDef {
public:
    OpAICoreDef& SetTiling(ge::graphStatus (*func)(gert::TilingContext*));
    OpAICoreDef& AddConfig(const char* soc);
};
class OpDef {
public:
    explicit OpDef(const char* type);
    OpParamDef& Input(const char* name);
    OpParamDef& Output(const char* name);
    OpDef& SetInferShape(ge::graphStatus (*func)(gert::InferShapeContext*));
    OpDef& SetInferDataType(ge::graphStatus (*func)(gert::InferDataTypeContext*));
    OpAICoreDef& AICore();
};
}  // namespace ops

#define OP_ADD(opType) static ops::opType g_fa_stub_##opType(#opType)

#endif  // FA_HOST_STUB_OP_DEF_REGISTRY_H
