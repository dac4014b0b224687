// The fused AdamW CUDA kernel (multi-tensor apply). This one source is compiled
// by nvcc into the library (adamw_cuda.cu) and, in tests, by g++ through
// cuda_on_cpu.h, which runs every block and thread of a launch on the CPU.
//
// One launch covers up to kMaxTensors tensors of a group (AdamWTable, passed by
// value). Each tensor is cut into chunks of kChunkElems elements; blocks stride
// over the table's chunks. A thread takes 4 consecutive elements per pass:
// 16-byte loads/stores of float32 data (8-byte for 16-bit params/grads) where
// the tensor's arrays are aligned, 4 scalar accesses otherwise, and a scalar
// tail. All math is float32, through adamw_update (kernels/common/adamw_math.h).
// One kernel per compile-time variant (adamw_kernel<flags>: amsgrad, fp32
// master, stochastic rounding, bf16 states; docs/kernel-interface.md); param
// and gradient dtypes are per tensor and dispatched per chunk.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../common/adamw_math.h"
#include "../common/rounding.h"
#include "adamw_table.h"
#include "elements.cuh"

namespace fused_adamw {
namespace cuda {

// The arrays of one chunk: param/grad of their element types, states S
// (float32 or bfloat16), master float32; x and w only when the variant has them.
template <class E, class G, class S>
struct ChunkPtrs {
  typename E::Storage* p;
  const typename G::Storage* g;
  typename S::Storage* m;
  typename S::Storage* v;
  typename S::Storage* x;  // max_exp_avg_sq
  float* w;                // master
};

// The 4 elements from i (update_one below: element i alone): load, update with
// adamw_update, store. The variant decides what is read and written:
// kMaster reads the float32 master of a 16-bit param and writes both (the
// param as the master's RNE copy); kStochastic writes a 16-bit param with
// stochastic rounding; float32 params ignore both (no master, exact write).
template <unsigned kFlags, class E, class G, class S>
__device__ __forceinline__ void update_quad(const ChunkPtrs<E, G, S>& a, int i, bool vp, bool vg, bool vs,
                                            const CoeffsOf<float>& c, int64_t index0, uint32_t key) {
  using V = Variant<kFlags>;
  constexpr bool k16 = sizeof(typename E::Storage) == 2;
  constexpr bool kMasterRead = V::master && k16;
  float pf[4], gf[4], mf[4], vf[4], xf[4];
  if constexpr (kMasterRead) load4<F32>(a.w, i, vs, pf);
  else load4<E>(a.p, i, vp, pf);
  load4<G>(a.g, i, vg, gf);
  load4<S>(a.m, i, vs, mf);
  load4<S>(a.v, i, vs, vf);
  if constexpr (V::amsgrad) load4<S>(a.x, i, vs, xf);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if constexpr (V::amsgrad) adamw_update<true>(pf[k], gf[k], mf[k], vf[k], xf[k], c);
    else adamw_update<false>(pf[k], gf[k], mf[k], vf[k], vf[k], c);
  }
  store4<S>(a.m, i, vs, mf);
  store4<S>(a.v, i, vs, vf);
  if constexpr (V::amsgrad) store4<S>(a.x, i, vs, xf);
  if constexpr (kMasterRead) store4<F32>(a.w, i, vs, pf);
  if constexpr (V::stochastic && k16) store4_sr<E>(a.p, i, vp, pf, index0, key);
  else store4<E>(a.p, i, vp, pf);
}

// The same for one element (a chunk's last n % 4).
template <unsigned kFlags, class E, class G, class S>
__device__ __forceinline__ void update_one(const ChunkPtrs<E, G, S>& a, int i, const CoeffsOf<float>& c,
                                           int64_t index0, uint32_t key) {
  using V = Variant<kFlags>;
  constexpr bool k16 = sizeof(typename E::Storage) == 2;
  constexpr bool kMasterRead = V::master && k16;
  float pe = kMasterRead ? a.w[i] : E::to_float(a.p[i]);
  const float ge = G::to_float(a.g[i]);
  float me = S::to_float(a.m[i]), ve = S::to_float(a.v[i]);
  float xe = V::amsgrad ? S::to_float(a.x[i]) : 0.0f;
  if constexpr (V::amsgrad) adamw_update<true>(pe, ge, me, ve, xe, c);
  else adamw_update<false>(pe, ge, me, ve, ve, c);
  a.m[i] = S::from_float(me);
  a.v[i] = S::from_float(ve);
  if constexpr (V::amsgrad) a.x[i] = S::from_float(xe);
  if constexpr (kMasterRead) a.w[i] = pe;
  if constexpr (V::stochastic && k16)
    a.p[i] = round_sr<E>(pe, fa_sr_bits(key, static_cast<uint64_t>(index0 + i)));
  else
    a.p[i] = E::from_float(pe);
}

// Updates elements [0, n) of one chunk (n <= kChunkElems). kAligned: every
// array allows vector accesses (the common case, compiled without branches);
// otherwise each array is accessed by vector or by element as `kind` says.
template <unsigned kFlags, class E, class G, class S, bool kAligned>
__device__ __forceinline__ void update_chunk(const ChunkPtrs<E, G, S>& a, int n, uint8_t kind,
                                             const CoeffsOf<float>& c, int64_t index0, uint32_t key) {
  const bool vp = kAligned || (kind & kParamAligned);
  const bool vg = kAligned || (kind & kGradAligned);
  const bool vs = kAligned || (kind & kStatesAligned);
  const int n4 = n & ~(kElemsPerThread - 1);
  const int stride = static_cast<int>(blockDim.x) * kElemsPerThread;
  for (int i = static_cast<int>(threadIdx.x) * kElemsPerThread; i < n4; i += stride)
    update_quad<kFlags>(a, i, vp, vg, vs, c, index0, key);
  for (int i = n4 + static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x))
    update_one<kFlags>(a, i, c, index0, key);
}

// One chunk of tensor i: elements [start, start + n) and their states from
// flat element `flat` (index0 = the first one's position for stochastic rounding).
template <unsigned kFlags, class E, class G>
__device__ __forceinline__ void update_chunk_of(const AdamWTable& t, int i, int64_t start, int64_t flat, int n,
                                                const CoeffsOf<float>& c, int64_t index0, uint32_t key) {
  using S = typename std::conditional<Variant<kFlags>::bf16_state, BF16, F32>::type;
  ChunkPtrs<E, G, S> a;
  a.p = static_cast<typename E::Storage*>(t.param[i]) + start;
  a.g = static_cast<const typename G::Storage*>(t.grad[i]) + start;
  a.m = static_cast<typename S::Storage*>(t.exp_avg) + flat;
  a.v = static_cast<typename S::Storage*>(t.exp_avg_sq) + flat;
  a.x = Variant<kFlags>::amsgrad ? static_cast<typename S::Storage*>(t.max_exp_avg_sq) + flat : nullptr;
  a.w = Variant<kFlags>::master ? t.master + flat : nullptr;
  const uint8_t kind = t.kind[i];
  if ((kind & kAllAligned) == kAllAligned)
    update_chunk<kFlags, E, G, S, true>(a, n, kind, c, index0, key);
  else
    update_chunk<kFlags, E, G, S, false>(a, n, kind, c, index0, key);
}

// The same rules as check_scalar_values (csrc/aot_args.cpp), which the GPU entry
// cannot apply: the values live in device memory and reading them on the host
// would synchronise the stream.
__device__ __forceinline__ bool step_values_valid(float lr, float wd, int32_t t, float beta1, float beta2,
                                                  float eps, float grad_scale, float grad_clip) {
  return lr >= 0.0f && lr <= FLT_MAX && wd >= 0.0f && wd <= FLT_MAX && t >= 1 &&
         beta1 > 0.0f && beta1 < 1.0f && beta2 > 0.0f && beta2 < 1.0f && eps > 0.0f && eps <= FLT_MAX &&
         fabsf(grad_scale) <= FLT_MAX && fabsf(grad_clip) <= FLT_MAX;
}

// The tensor owning global chunk `chunk`: the last i with chunk_begin[i] <= chunk
// (empty tensors own no chunk and are skipped by taking the last such i).
__device__ __forceinline__ int tensor_of(const AdamWTable& t, int64_t chunk) {
  int lo = 0, hi = t.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (t.chunk_begin[mid] <= chunk) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// One kernel per variant (kFlags, docs/kernel-interface.md); param/grad dtypes
// are per tensor, dispatched per chunk.
// __grid_constant__: the table stays in the kernel-parameter bank even though
// it is indexed at run time (no copy to local memory).
template <unsigned kFlags>
__global__ void __launch_bounds__(kBlockThreads) adamw_kernel(const __grid_constant__ AdamWTable t) {
  static_assert(variant_valid(kFlags), "not a valid variant");
  // Every thread derives the coefficients itself: no shared memory and no
  // barrier, once per launch (the double-precision bias corrections cost well
  // under a microsecond per block on sm_80/sm_90).
  const float lr = *t.lr, wd = *t.weight_decay;
  const int32_t step = *t.step;
  const float beta1 = t.hyper[0], beta2 = t.hyper[1], eps = t.hyper[2];
  const float grad_scale = t.grad_ctl[0], grad_clip = t.grad_ctl[1];
  const bool skip = t.grad_ctl[2] != 0.0f;
  const bool valid = step_values_valid(lr, wd, step, beta1, beta2, eps, grad_scale, grad_clip);
  // A skipped step (overflow, norm spike) is valid and writes nothing, like the
  // CPU entry; invalid values change nothing either but say so.
  if (t.write_status && blockIdx.x == 0 && threadIdx.x == 0) *t.status = (skip || valid) ? 0.0f : nanf("");
  if (skip || !valid) return;
  const CoeffsOf<float> c(make_step_coeffs(lr, wd, step, beta1, beta2, eps, grad_scale, grad_clip));
  const uint32_t key = Variant<kFlags>::stochastic
                           ? fa_sr_key(static_cast<uint64_t>(t.rng[0]), static_cast<uint32_t>(step))
                           : 0u;
  const int64_t index_base = Variant<kFlags>::stochastic ? t.rng[1] : 0;

  const int64_t chunks = t.chunk_begin[t.count];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const int i = tensor_of(t, chunk);
    const int64_t start = (chunk - t.chunk_begin[i]) * kChunkElems;
    const int64_t left = t.numel[i] - start;
    const int n = static_cast<int>(left < kChunkElems ? left : kChunkElems);
    const int64_t flat = t.state_offset[i] + start;
    const int64_t index0 = index_base + flat;
    const uint8_t kind = t.kind[i];
    const bool g32 = (kind & kGradF32) != 0;
    switch (static_cast<DType>(kind & kDTypeMask)) {
      case DType::kFloat32:
        update_chunk_of<kFlags, F32, F32>(t, i, start, flat, n, c, index0, key);
        break;
      case DType::kFloat16:
        if (g32) update_chunk_of<kFlags, F16, F32>(t, i, start, flat, n, c, index0, key);
        else update_chunk_of<kFlags, F16, F16>(t, i, start, flat, n, c, index0, key);
        break;
      case DType::kBFloat16:
        if (g32) update_chunk_of<kFlags, BF16, F32>(t, i, start, flat, n, c, index0, key);
        else update_chunk_of<kFlags, BF16, BF16>(t, i, start, flat, n, c, index0, key);
        break;
    }
  }
}

// The kernel of the variant `flags`, or nullptr if it names none (host code:
// the launcher, and the emulation's driver).
using KernelFn = void (*)(AdamWTable);
template <unsigned kFlags = 0>
KernelFn kernel_for(unsigned flags) {
  if constexpr (kFlags >= kNumVariantFlags) {
    return nullptr;
  } else {
    if (flags == kFlags) {
      if constexpr (variant_valid(kFlags)) return adamw_kernel<kFlags>;
      return nullptr;
    }
    return kernel_for<kFlags + 1>(flags);
  }
}

}  // namespace cuda
}  // namespace fused_adamw
