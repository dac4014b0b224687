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
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "../common/adamw_math.h"
#include "adamw_table.h"

// The CPU emulation checks that every vector access is aligned, as a GPU would
// (it faults); on the GPU this compiles to nothing.
#ifndef FA_ASSERT_ALIGNED
#define FA_ASSERT_ALIGNED(ptr, bytes) ((void)0)
#endif

namespace fused_adamw {
namespace cuda {

// Element types: how 4 elements are loaded as one vector and converted to float.
struct F32 {
  using Storage = float;
  using Vec = float4;
  static __device__ __forceinline__ float to_float(float x) { return x; }
  static __device__ __forceinline__ float from_float(float x) { return x; }
  static __device__ __forceinline__ void unpack(const float4& q, float (&f)[4]) {
    f[0] = q.x; f[1] = q.y; f[2] = q.z; f[3] = q.w;
  }
  static __device__ __forceinline__ float4 pack(const float (&f)[4]) {
    float4 q;
    q.x = f[0]; q.y = f[1]; q.z = f[2]; q.w = f[3];
    return q;
  }
};

// 16-bit types share the packing (two elements per 32-bit word, the lower
// address in the low half); they differ only in the scalar conversion.
template <class Conv>
struct Bits16 {
  using Storage = unsigned short;
  using Vec = uint2;
  static __device__ __forceinline__ float to_float(unsigned short h) { return Conv::to_float(h); }
  static __device__ __forceinline__ unsigned short from_float(float x) { return Conv::from_float(x); }
  static __device__ __forceinline__ void unpack(const uint2& q, float (&f)[4]) {
    f[0] = to_float(static_cast<unsigned short>(q.x & 0xffffu));
    f[1] = to_float(static_cast<unsigned short>(q.x >> 16));
    f[2] = to_float(static_cast<unsigned short>(q.y & 0xffffu));
    f[3] = to_float(static_cast<unsigned short>(q.y >> 16));
  }
  static __device__ __forceinline__ uint2 pack(const float (&f)[4]) {
    uint2 q;
    q.x = static_cast<unsigned>(from_float(f[0])) | (static_cast<unsigned>(from_float(f[1])) << 16);
    q.y = static_cast<unsigned>(from_float(f[2])) | (static_cast<unsigned>(from_float(f[3])) << 16);
    return q;
  }
};

// Round to nearest even, as MindSpore's Cast and the CPU kernel do.
struct HalfConv {
  static __device__ __forceinline__ float to_float(unsigned short h) { return __half2float(__ushort_as_half(h)); }
  static __device__ __forceinline__ unsigned short from_float(float x) { return __half_as_ushort(__float2half_rn(x)); }
};
struct BFloat16Conv {
  static __device__ __forceinline__ float to_float(unsigned short h) {
    return __bfloat162float(__ushort_as_bfloat16(h));
  }
  static __device__ __forceinline__ unsigned short from_float(float x) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  }
};
using F16 = Bits16<HalfConv>;
using BF16 = Bits16<BFloat16Conv>;

// Vector accesses go through the streaming intrinsics (each byte is touched
// once per step, so evict-first is the right cache policy). They are also
// opaque to the optimiser: with plain dereferences nvcc merged the vector and
// scalar paths into scalar loads and no 128-bit access was left in the SASS.
template <class E>
__device__ __forceinline__ void load4(const typename E::Storage* a, int i, bool vec, float (&f)[4]) {
  if (vec) {
    FA_ASSERT_ALIGNED(a + i, sizeof(typename E::Vec));
    E::unpack(__ldcs(reinterpret_cast<const typename E::Vec*>(a + i)), f);
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) f[k] = E::to_float(a[i + k]);
  }
}

template <class E>
__device__ __forceinline__ void store4(typename E::Storage* a, int i, bool vec, const float (&f)[4]) {
  if (vec) {
    FA_ASSERT_ALIGNED(a + i, sizeof(typename E::Vec));
    __stcs(reinterpret_cast<typename E::Vec*>(a + i), E::pack(f));
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) a[i + k] = E::from_float(f[k]);
  }
}

// Updates elements [0, n) of one chunk (n <= kChunkElems). kAligned: every
// array allows vector accesses (the common case, compiled without branches);
// otherwise each array is accessed by vector or by element as `kind` says.
template <class E, bool kAligned>
__device__ __forceinline__ void update_chunk(typename E::Storage* __restrict__ p,
                                             const typename E::Storage* __restrict__ g,
                                             float* __restrict__ m, float* __restrict__ v, int n,
                                             uint8_t kind, const CoeffsOf<float>& c) {
  const bool vp = kAligned || (kind & kParamAligned);
  const bool vg = kAligned || (kind & kGradAligned);
  const bool vm = kAligned || (kind & kAvgAligned);
  const bool vv = kAligned || (kind & kAvgSqAligned);
  const int n4 = n & ~(kElemsPerThread - 1);
  const int stride = static_cast<int>(blockDim.x) * kElemsPerThread;
  for (int i = static_cast<int>(threadIdx.x) * kElemsPerThread; i < n4; i += stride) {
    float pf[4], gf[4], mf[4], vf[4];
    load4<E>(p, i, vp, pf);
    load4<E>(g, i, vg, gf);
    load4<F32>(m, i, vm, mf);
    load4<F32>(v, i, vv, vf);
#pragma unroll
    for (int k = 0; k < 4; ++k) adamw_update(pf[k], gf[k], mf[k], vf[k], c);
    store4<E>(p, i, vp, pf);
    store4<F32>(m, i, vm, mf);
    store4<F32>(v, i, vv, vf);
  }
  for (int i = n4 + static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) {
    float pe = E::to_float(p[i]);
    const float ge = E::to_float(g[i]);
    adamw_update(pe, ge, m[i], v[i], c);
    p[i] = E::from_float(pe);
  }
}

template <class E>
__device__ __forceinline__ void update_chunk_of(void* param, const void* grad, int64_t start, float* m,
                                                float* v, int n, uint8_t kind, const CoeffsOf<float>& c) {
  auto* p = static_cast<typename E::Storage*>(param) + start;
  const auto* g = static_cast<const typename E::Storage*>(grad) + start;
  if ((kind & kAllAligned) == kAllAligned)
    update_chunk<E, true>(p, g, m, v, n, kind, c);
  else
    update_chunk<E, false>(p, g, m, v, n, kind, c);
}

// The same rules as check_scalar_values (csrc/aot_args.cpp), which the GPU entry
// cannot apply: the values live in device memory and reading them on the host
// would synchronise the stream.
__device__ __forceinline__ bool step_values_valid(float lr, float wd, int32_t t, float beta1,
                                                  float beta2, float eps) {
  return lr >= 0.0f && lr <= FLT_MAX && wd >= 0.0f && wd <= FLT_MAX && t >= 1 &&
         beta1 > 0.0f && beta1 < 1.0f && beta2 > 0.0f && beta2 < 1.0f && eps > 0.0f && eps <= FLT_MAX;
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

// __grid_constant__: the table stays in the kernel-parameter bank even though
// it is indexed at run time (no copy to local memory).
__global__ void __launch_bounds__(kBlockThreads) adamw_kernel(const __grid_constant__ AdamWTable t) {
  // Every thread derives the coefficients itself: no shared memory and no
  // barrier, once per launch (the double-precision bias corrections cost well
  // under a microsecond per block on sm_80/sm_90).
  const float lr = *t.lr, wd = *t.weight_decay;
  const int32_t step = *t.step;
  const float beta1 = t.hyper[0], beta2 = t.hyper[1], eps = t.hyper[2];
  const bool valid = step_values_valid(lr, wd, step, beta1, beta2, eps);
  if (t.write_status && blockIdx.x == 0 && threadIdx.x == 0) *t.status = valid ? 0.0f : nanf("");
  if (!valid) return;  // like the CPU entry: invalid values change nothing
  const CoeffsOf<float> c(make_step_coeffs(lr, wd, step, beta1, beta2, eps));

  const int64_t chunks = t.chunk_begin[t.count];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const int i = tensor_of(t, chunk);
    const int64_t start = (chunk - t.chunk_begin[i]) * kChunkElems;
    const int64_t left = t.numel[i] - start;
    const int n = static_cast<int>(left < kChunkElems ? left : kChunkElems);
    float* m = t.exp_avg + t.state_offset[i] + start;
    float* v = t.exp_avg_sq + t.state_offset[i] + start;
    const uint8_t kind = t.kind[i];
    switch (static_cast<DType>(kind & kDTypeMask)) {
      case DType::kFloat32: update_chunk_of<F32>(t.param[i], t.grad[i], start, m, v, n, kind, c); break;
      case DType::kFloat16: update_chunk_of<F16>(t.param[i], t.grad[i], start, m, v, n, kind, c); break;
      case DType::kBFloat16: update_chunk_of<BF16>(t.param[i], t.grad[i], start, m, v, n, kind, c); break;
    }
  }
}

}  // namespace cuda
}  // namespace fused_adamw
