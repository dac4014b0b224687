// Helpers shared by the project's Ascend kernels. Include after
// kernel_operator.h and kernel_operator_list_tensor_intf.h.
#ifndef FA_KERNEL_COMMON_H
#define FA_KERNEL_COMMON_H

// The type DataCopy/DataCopyPad move U's data as: bfloat16_t as half (same
// size, bits unchanged), since DataCopyPad's A2 type list has no bfloat16_t.
template <typename U>
struct FaCopyType {
    using type = U;
};
template <>
struct FaCopyType<bfloat16_t> {
    using type = half;
};

// GM tensor `src` viewed with element type FaCopyType<U>.
template <typename U>
__aicore__ inline GlobalTensor<typename FaCopyType<U>::type> FaCopyView(const GlobalTensor<U>& src)
{
    GlobalTensor<typename FaCopyType<U>::type> g;
    g.SetGlobalBuffer(reinterpret_cast<__gm__ typename FaCopyType<U>::type*>(src.GetPhyAddr()));
    return g;
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

#endif  // FA_KERNEL_COMMON_H
