// The gradient-norm kernels of pass 1 (issue 14); the order of every float64
// addition is the CPU's, see grad_norm_table.h. Compiled by nvcc into the
// library (adamw_cuda.cu) and by g++ through cuda_on_cpu.h in tests.
#pragma once
#include <cstdint>

#include "elements.cuh"
#include "grad_norm_table.h"

namespace fused_adamw {
namespace cuda {

// Adds the squares of the scaled gradients at concatenated positions
// p = first, first + 16, ... < end (all in lane p % 16) of tensor i to acc.
template <class G>
__device__ __forceinline__ bool sumsq_lane(const NormTable& t, int i, int64_t first, int64_t end, float scale,
                                           double& acc) {
  const auto* g = static_cast<const typename G::Storage*>(t.grad[i]) - t.start[i];
  bool finite = true;
  for (int64_t p = first; p < end; p += kNormLanes) {
    const float u = G::to_float(g[p]) * scale;
    finite &= (u - u) == 0.0f;  // false for NaN and +-Inf
    acc += static_cast<double>(u) * static_cast<double>(u);
  }
  return finite;
}

// The tensor holding concatenated position `pos` (the last i with start[i] <= pos).
__device__ __forceinline__ int norm_tensor_of(const NormTable& t, int64_t pos) {
  int lo = 0, hi = t.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (t.start[mid] <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Step 1: thread (chunk, lane) of each block; blocks stride over the table's chunks.
__global__ void __launch_bounds__(kNormBlockThreads) grad_norm_lanes_kernel(const __grid_constant__ NormTable t) {
  const float scale = *t.grad_scale;
  const int lane = static_cast<int>(threadIdx.x) % kNormLanes;
  const int64_t table_begin = t.start[0], table_end = t.start[t.count];
  for (int64_t local = static_cast<int64_t>(blockIdx.x) * kNormChunksPerBlock + threadIdx.x / kNormLanes;
       local < t.chunk_count; local += static_cast<int64_t>(gridDim.x) * kNormChunksPerBlock) {
    const int64_t chunk = t.first_chunk + local;
    const int64_t lo = chunk * kNormChunkElems;
    const int64_t begin = lo > table_begin ? lo : table_begin;
    const int64_t hi = lo + kNormChunkElems < table_end ? lo + kNormChunkElems : table_end;
    double acc = t.lanes[chunk * kNormLanes + lane];
    bool finite = true;
    for (int i = norm_tensor_of(t, begin); i < t.count && t.start[i] < hi; ++i) {
      const int64_t b = begin > t.start[i] ? begin : t.start[i];
      const int64_t e = hi < t.start[i + 1] ? hi : t.start[i + 1];
      const int64_t first = b + ((lane - b % kNormLanes) + kNormLanes) % kNormLanes;  // first p >= b in this lane
      switch (static_cast<DType>(t.dtype[i])) {
        case DType::kFloat32: finite &= sumsq_lane<F32>(t, i, first, e, scale, acc); break;
        case DType::kFloat16: finite &= sumsq_lane<F16>(t, i, first, e, scale, acc); break;
        case DType::kBFloat16: finite &= sumsq_lane<BF16>(t, i, first, e, scale, acc); break;
      }
    }
    t.lanes[chunk * kNormLanes + lane] = acc;
    if (!finite) *t.nonfinite = 1;  // every writer writes the same value
  }
}

// Step 2: each chunk's accumulators in lane order, into the compact chunk sums.
__global__ void __launch_bounds__(kNormBlockThreads) grad_norm_chunks_kernel(const double* lanes, double* sums,
                                                                             int64_t chunks) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < chunks;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double* a = lanes + c * kNormLanes;
    double s = a[0];
    for (int j = 1; j < kNormLanes; ++j) s += a[j];
    sums[c] = s;
  }
}

// Step 3 (one thread): the chunk sums in chunk order, and the flag. The sums are
// read kNormTotalBatch at a time into registers, so one memory latency covers
// a batch rather than a few additions (with __launch_bounds__(32, 1) ptxas keeps
// 39 loads in flight on sm_90; with the default bounds it kept 10). The chain of dependent float64 additions
// stays: 61,000 for 10^9 gradients, a few hundred microseconds on the GPU (an
// estimate: not measured), the price of the CPU's summation order.
constexpr int kNormTotalBatch = 64;
__global__ void __launch_bounds__(32, 1) grad_norm_total_kernel(const double* sums, int64_t chunks, const int* nonfinite, double* out) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double total = 0.0;
  int64_t c = 0;
  for (; c + kNormTotalBatch <= chunks; c += kNormTotalBatch) {
    double batch[kNormTotalBatch];
#pragma unroll
    for (int k = 0; k < kNormTotalBatch; ++k) batch[k] = sums[c + k];
#pragma unroll
    for (int k = 0; k < kNormTotalBatch; ++k) total += batch[k];
  }
  for (; c < chunks; ++c) total += sums[c];
  out[0] = total;
  out[1] = *nonfinite ? 1.0 : 0.0;
}

}  // namespace cuda
}  // namespace fused_adamw
