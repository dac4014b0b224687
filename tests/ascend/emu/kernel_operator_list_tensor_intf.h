// ListTensorDesc / TensorDesc of the Ascend C API (header name as in CANN):
// the kernel-side view of a tensor-list argument (an aclTensorList input).
// Written from the public API page "ListTensorDesc", whose memory layout is:
//   uint64 ptrOffset                  byte offset of the data-pointer array
//   per tensor i: uint64 (dim | i << 32), then dim uint64 extents
//   at ptrOffset: one uint64 data address per tensor
// The test drivers (adamw_group_driver.cpp) write that layout.
#ifndef FA_EMU_KERNEL_OPERATOR_LIST_TENSOR_INTF_H
#define FA_EMU_KERNEL_OPERATOR_LIST_TENSOR_INTF_H

#include <cstdint>
#include <string>
#include <vector>

#include "kernel_operator.h"

namespace AscendC {

template <class T>
class TensorDesc {
public:
    void SetShapeAddr(uint64_t* shapePtr) { shape_ = shapePtr; }
    uint64_t GetDim() const { return dim_; }
    uint64_t GetIndex() const { return index_; }
    uint64_t GetShape(uint32_t offset) const
    {
        if (offset >= dim_) fa_emu::fail("TensorDesc::GetShape(" + std::to_string(offset) + ") of a " +
                                         std::to_string(dim_) + "-d tensor");
        return shape_[offset];
    }
    __gm__ T* GetDataPtr() const { return data_; }
    GlobalTensor<T> GetDataObj() const
    {
        GlobalTensor<T> g;
        g.SetGlobalBuffer(data_);
        return g;
    }

    // Filled by ListTensorDesc::GetDesc.
    void fill(uint64_t dim, uint64_t index, const uint64_t* extents, __gm__ T* data)
    {
        if (shape_ == nullptr) fa_emu::fail("ListTensorDesc::GetDesc before TensorDesc::SetShapeAddr");
        dim_ = dim;
        index_ = index;
        for (uint64_t d = 0; d < dim; ++d) shape_[d] = extents[d];
        data_ = data;
    }

private:
    uint64_t* shape_ = nullptr;
    uint64_t dim_ = 0, index_ = 0;
    __gm__ T* data_ = nullptr;
};

class ListTensorDesc {
public:
    ListTensorDesc() = default;
    ListTensorDesc(__gm__ void* data, uint32_t length = 0xffffffff, uint32_t shapeSize = 0xffffffff)
    {
        Init(data, length, shapeSize);
    }
    void Init(__gm__ void* data, uint32_t length = 0xffffffff, uint32_t shapeSize = 0xffffffff)
    {
        base_ = reinterpret_cast<__gm__ uint64_t*>(data);
        fa_emu::check_gm(base_, 8, "ListTensorDesc");
        const uint64_t ptrOffset = base_[0];
        if (ptrOffset % 8 != 0 || ptrOffset < 8) fa_emu::fail("ListTensorDesc: corrupt pointer offset");
        // Walk the descriptors up to the pointer array.
        descs_.clear();
        uint64_t at = 1;
        while (at * 8 < ptrOffset) {
            fa_emu::check_gm(base_ + at, 8, "ListTensorDesc");
            descs_.push_back(at);
            at += 1 + (base_[at] & 0xffffffffu);
        }
        if (at * 8 != ptrOffset) fa_emu::fail("ListTensorDesc: descriptors overrun the pointer array");
        fa_emu::check_gm(base_, ptrOffset + 8 * descs_.size(), "ListTensorDesc");
        if (length != 0xffffffff && length != ptrOffset + 8 * descs_.size())
            fa_emu::fail("ListTensorDesc: length does not match the layout");
        if (shapeSize != 0xffffffff && shapeSize != descs_.size())
            fa_emu::fail("ListTensorDesc: shapeSize does not match the number of tensors");
    }
    uint32_t GetSize() const { return static_cast<uint32_t>(descs_.size()); }
    template <class T>
    void GetDesc(TensorDesc<T>& desc, uint32_t index) const
    {
        check(index, "GetDesc");
        const uint64_t head = base_[descs_[index]];
        desc.fill(head & 0xffffffffu, head >> 32, base_ + descs_[index] + 1, GetDataPtr<T>(index));
    }
    template <class T>
    __gm__ T* GetDataPtr(uint32_t index) const
    {
        check(index, "GetDataPtr");
        return reinterpret_cast<__gm__ T*>(static_cast<uintptr_t>(base_[base_[0] / 8 + index]));
    }

private:
    void check(uint32_t index, const char* what) const
    {
        if (index >= descs_.size())
            fa_emu::fail(std::string("ListTensorDesc::") + what + "(" + std::to_string(index) + ") of a " +
                         std::to_string(descs_.size()) + "-tensor list");
    }
    __gm__ uint64_t* base_ = nullptr;
    std::vector<uint64_t> descs_;  // word index of each tensor's (dim | index) word
};

}  // namespace AscendC

#endif  // FA_EMU_KERNEL_OPERATOR_LIST_TENSOR_INTF_H
