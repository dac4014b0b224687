// Test driver: the CUDA kernel (kernels/cuda/adamw_kernel.cuh, the very source
// nvcc compiles into the library) and the host planning code (adamw_table.h)
// compiled with g++ through cuda_on_cpu.h, behind a C ABI for ctypes.
// Built by tests/cuda/cuda_emu.py into a temporary directory.
#include "../../kernels/cuda/cuda_on_cpu.h"  // must come first
#include "../../kernels/cuda/adamw_kernel.cuh"

#include <cstdio>
#include <vector>

using namespace fused_adamw;
using namespace fused_adamw::cuda;

extern "C" {

int emu_max_tensors() { return kMaxTensors; }
long long emu_chunk_elems() { return kChunkElems; }
int emu_block_threads() { return kBlockThreads; }

// One group step through run_group, as adamw_step_async does on a GPU, with
// `capacity` tensors per table (<= kMaxTensors, to force splitting) and
// `device_blocks` standing in for the device's resident blocks. dtypes: 0
// float32, 1 float16, 2 bfloat16. Writes each launch's grid and tensor count to
// grids/counts (room for max_launches), their number to *launches and the
// number of 4-element vector accesses to *vector_accesses.
// Returns 0, or 1 with a message in err.
int emu_adamw_step(int count, void** params, void** grads, const long long* numels, const int* dtypes,
                   float* exp_avg, float* exp_avg_sq, const float* lr, const float* weight_decay,
                   const int32_t* step, const float* hyper, float* status, int capacity,
                   int device_blocks, int max_launches, int* grids, int* counts, int* launches, long long* vector_accesses,
                   char* err, int err_len) {
  std::vector<TensorRef> tensors(count);
  for (int i = 0; i < count; ++i)
    tensors[i] = TensorRef{params[i], grads[i], numels[i], static_cast<DType>(dtypes[i])};
  cuda_on_cpu::misaligned_accesses = 0;
  cuda_on_cpu::vector_accesses = 0;
  static AdamWTable table;  // 32 KB: not on the stack
  *launches = 0;
  const char* failure = run_group(
      tensors.data(), count, exp_avg, exp_avg_sq, lr, weight_decay, step, hyper, status, capacity,
      device_blocks, &table, [&](const AdamWTable& t, int grid) -> const char* {
        if (*launches >= max_launches) return "more launches than the test expected";
        grids[*launches] = grid;
        counts[*launches] = t.count;
        ++*launches;
        cuda_on_cpu::launch(adamw_kernel, dim3{static_cast<unsigned>(grid), 1, 1},
                            dim3{static_cast<unsigned>(kBlockThreads), 1, 1}, t);
        return nullptr;
      });
  *vector_accesses = cuda_on_cpu::vector_accesses;
  if (failure) {
    std::snprintf(err, err_len, "%s", failure);
    return 1;
  }
  if (cuda_on_cpu::misaligned_accesses) {
    std::snprintf(err, err_len, "%ld misaligned vector accesses, first: %s", cuda_on_cpu::misaligned_accesses,
                  cuda_on_cpu::first_misaligned);
    return 1;
  }
  return 0;
}

}  // extern "C"
