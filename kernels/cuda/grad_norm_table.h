// Pass 1 of the whole step on the GPU (issue 14): the host planning of the
// gradient-norm kernels (grad_norm_kernel.cuh). Plain C++ (no CUDA headers), so
// the same plan drives the real launches (adamw_cuda.cu) and the CPU-emulated
// ones in tests/cuda.
//
// The result must have the CPU's bits (cpu::grad_sumsq, kernels/cpu/adamw_cpu.cpp):
// the group's gradients concatenated (unpadded) and cut into kNormChunkElems
// chunks; in chunk c, element k goes to float64 accumulator k % 16, each
// accumulator adds its elements in order; a chunk's sum is acc[0] + acc[1] + ...
// + acc[15] in that order; the total is 0.0 + sum_0 + sum_1 + ... in chunk order.
// float64 additions do not associate, so the GPU follows exactly that order:
//   1. lanes kernel, once per table of tensors: thread (chunk, lane) adds its
//      lane's elements of the table's part of the chunk to the chunk's
//      accumulator in scratch (a chunk spanning two tables continues, in the
//      next launch on the stream, from where the first left it);
//   2. chunk kernel: each chunk's 16 accumulators summed in lane order, into
//      a compact array of chunk sums;
//   3. total kernel, one thread: the chunk sums in chunk order, and the flag.
// Each square is exact in float64 (a float32 has 24 significant bits), so
// whether a multiply-add is fused does not change the bits either.
#pragma once
#include <cstdint>

#include "../cpu/adamw_cpu.h"  // TensorRef, cpu::kNormChunk

namespace fused_adamw {
namespace cuda {

constexpr int64_t kNormChunkElems = 16384;
static_assert(kNormChunkElems == cpu::kNormChunk, "the GPU norm must chunk as the CPU's");
constexpr int kNormLanes = 16;                        // accumulators per chunk, as on the CPU
constexpr int kNormBlockThreads = 256;                // 16 chunks x 16 lanes per block
constexpr int kNormChunksPerBlock = kNormBlockThreads / kNormLanes;
constexpr int kMaxNormTensors = 1536;                 // tensors per lanes launch

struct NormTable {
  const float* grad_scale;  // device: the factor applied before squaring (1/loss scale)
  double* lanes;            // scratch: kNormLanes accumulators per global chunk, zeroed before the first launch
  int* nonfinite;           // scratch flag, zeroed: set to 1 if any scaled gradient is NaN/Inf
  int32_t count;            // tensors in this table
  int64_t first_chunk;      // global chunk holding this table's first element
  int64_t chunk_count;      // chunks this table's elements touch
  int64_t start[kMaxNormTensors + 1];  // global (concatenated) position of each tensor; start[count] = end
  const void* grad[kMaxNormTensors];
  uint8_t dtype[kMaxNormTensors];
};
static_assert(sizeof(NormTable) <= 32764, "NormTable exceeds the 32,764-byte kernel-parameter limit");

// Chunks of a group of gradients (the scratch holds kNormLanes + 1 doubles per chunk).
inline int64_t norm_chunks(const TensorRef* grads, int count) {
  int64_t total = 0;
  for (int i = 0; i < count; ++i) total += grads[i].numel;
  return (total + kNormChunkElems - 1) / kNormChunkElems;
}

// Launches the three steps for a group, in order, through the callbacks
// lanes(const NormTable&, grid), chunk_sums(grid) and total(); stops at the
// first non-null error one returns. `capacity` (<= kMaxNormTensors) tensors
// per lanes launch; `device_blocks` caps the grids. Empty tables launch nothing;
// total() always runs (an empty group gives 0.0 and no flag, as on the CPU).
template <class Lanes, class ChunkSums, class Total>
const char* run_norm(const TensorRef* grads, int count, const float* grad_scale, double* lanes, int* nonfinite,
                     int capacity, int device_blocks, NormTable* table, Lanes&& launch_lanes,
                     ChunkSums&& launch_chunk_sums, Total&& launch_total) {
  if (capacity < 1 || capacity > kMaxNormTensors) capacity = kMaxNormTensors;
  auto capped = [&](int64_t want) {
    const int64_t g = want < device_blocks ? want : device_blocks;
    return g < 1 ? 1 : static_cast<int>(g);
  };
  int64_t position = 0;
  for (int first = 0; first < count;) {
    const int n = count - first < capacity ? count - first : capacity;
    NormTable& t = *table;
    t.grad_scale = grad_scale;
    t.lanes = lanes;
    t.nonfinite = nonfinite;
    t.count = n;
    for (int i = 0; i < n; ++i) {
      const TensorRef& g = grads[first + i];
      t.start[i] = position;
      t.grad[i] = g.grad;
      t.dtype[i] = static_cast<uint8_t>(g.grad_dtype);
      position += g.numel;
    }
    t.start[n] = position;
    first += n;
    if (t.start[n] == t.start[0]) continue;  // only empty tensors
    t.first_chunk = t.start[0] / kNormChunkElems;
    t.chunk_count = (t.start[n] - 1) / kNormChunkElems - t.first_chunk + 1;
    const int64_t blocks = (t.chunk_count + kNormChunksPerBlock - 1) / kNormChunksPerBlock;
    if (const char* err = launch_lanes(static_cast<const NormTable&>(t), capped(blocks))) return err;
  }
  const int64_t chunks = (position + kNormChunkElems - 1) / kNormChunkElems;
  if (chunks > 0) {
    if (const char* err = launch_chunk_sums(capped((chunks + kNormBlockThreads - 1) / kNormBlockThreads)))
      return err;
  }
  return launch_total();
}

}  // namespace cuda
}  // namespace fused_adamw
