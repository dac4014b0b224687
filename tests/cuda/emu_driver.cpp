// Test driver: the CUDA kernels (kernels/cuda/adamw_kernel.cuh and
// grad_norm_kernel.cuh, the very sources nvcc compiles into the library) and
// their host planning code (adamw_table.h, grad_norm_plan.h) compiled with g++
// through cuda_on_cpu.h, behind a C ABI for ctypes.
// Built by tests/cuda/cuda_emu.py into a temporary directory.
#include "../../kernels/cuda/cuda_on_cpu.h"  // must come first
#include "../../kernels/cuda/adamw_kernel.cuh"
#include "../../kernels/cuda/grad_norm_kernel.cuh"

#include <cstdio>
#include <vector>

using namespace fused_adamw;
using namespace fused_adamw::cuda;

namespace {

void reset_access_counts() {
  cuda_on_cpu::misaligned_accesses = 0;
  cuda_on_cpu::vector_accesses = 0;
}

int misaligned_error(char* err, int err_len) {
  if (!cuda_on_cpu::misaligned_accesses) return 0;
  std::snprintf(err, err_len, "%ld misaligned vector accesses, first: %s", cuda_on_cpu::misaligned_accesses,
                cuda_on_cpu::first_misaligned);
  return 1;
}

std::vector<TensorRef> tensor_list(int count, void** params, void** grads, const long long* numels,
                                   const int* dtypes, const int* grad_dtypes) {
  std::vector<TensorRef> tensors(count);
  for (int i = 0; i < count; ++i)
    tensors[i] = TensorRef{params ? params[i] : nullptr, grads[i], numels[i], static_cast<DType>(dtypes[i]),
                           static_cast<DType>(grad_dtypes[i])};
  return tensors;
}

}  // namespace

extern "C" {

int emu_max_tensors() { return kMaxTensors; }
long long emu_chunk_elems() { return kChunkElems; }
int emu_block_threads() { return kBlockThreads; }
long long emu_norm_chunk_elems() { return kNormChunkElems; }
int emu_max_norm_tensors() { return kMaxNormTensors; }

// One group step of variant `flags` through run_group, as adamw_step_async does
// on a GPU, with `capacity` tensors per table (<= kMaxTensors, to force
// splitting) and `device_blocks` standing in for the device's resident blocks.
// dtypes / grad_dtypes: 0 float32, 1 float16, 2 bfloat16. states: exp_avg,
// exp_avg_sq, max_exp_avg_sq, master (the last two may be null). values: lr,
// weight_decay, step, hyper, grad_ctl, rng, status. Writes each launch's grid
// and tensor count to grids/counts (room for max_launches), their number to
// *launches and the number of 4-element vector accesses to *vector_accesses.
// Returns 0, or 1 with a message in err.
int emu_adamw_step(unsigned flags, int count, void** params, void** grads, const long long* numels,
                   const int* dtypes, const int* grad_dtypes, void** states, void** values, int capacity,
                   int device_blocks, int max_launches, int* grids, int* counts, int* launches,
                   long long* vector_accesses, char* err, int err_len) {
  const KernelFn kernel = flags < kNumVariantFlags ? kernel_for(flags) : nullptr;
  if (kernel == nullptr) {
    std::snprintf(err, err_len, "invalid variant flags %u", flags);
    return 1;
  }
  const std::vector<TensorRef> tensors = tensor_list(count, params, grads, numels, dtypes, grad_dtypes);
  GroupStates st;
  st.exp_avg = states[0];
  st.exp_avg_sq = states[1];
  st.max_exp_avg_sq = states[2];
  st.master = static_cast<float*>(states[3]);
  StepValues v;
  v.lr = static_cast<const float*>(values[0]);
  v.weight_decay = static_cast<const float*>(values[1]);
  v.step = static_cast<const int32_t*>(values[2]);
  v.hyper = static_cast<const float*>(values[3]);
  v.grad_ctl = static_cast<const float*>(values[4]);
  v.rng = static_cast<const int64_t*>(values[5]);
  v.status = static_cast<float*>(values[6]);
  reset_access_counts();
  static AdamWTable table;  // 32 KB: not on the stack
  *launches = 0;
  const char* failure = run_group(
      tensors.data(), count, st, flags, v, capacity, device_blocks, &table,
      [&](const AdamWTable& t, int grid) -> const char* {
        if (*launches >= max_launches) return "more launches than the test expected";
        grids[*launches] = grid;
        counts[*launches] = t.count;
        ++*launches;
        cuda_on_cpu::launch(kernel, dim3{static_cast<unsigned>(grid), 1, 1},
                            dim3{static_cast<unsigned>(kBlockThreads), 1, 1}, t);
        return nullptr;
      });
  *vector_accesses = cuda_on_cpu::vector_accesses;
  if (failure) {
    std::snprintf(err, err_len, "%s", failure);
    return 1;
  }
  return misaligned_error(err, err_len);
}

// The gradient-norm pass of a group through run_norm, as grad_norm_async does
// on a GPU (scratch from the heap instead of cudaMallocAsync, zeroed the same
// way), with `capacity` tensors per lanes launch and `device_blocks` capping
// the grids. out: float64 [2]. *lanes_launches: the number of lanes launches.
int emu_grad_norm(int count, void** grads, const long long* numels, const int* dtypes, const float* grad_scale,
                  double* out, int capacity, int device_blocks, int* lanes_launches, char* err, int err_len) {
  const std::vector<TensorRef> tensors = tensor_list(count, nullptr, grads, numels, dtypes, dtypes);
  const int64_t chunks = norm_chunks(tensors.data(), count);
  std::vector<double> lanes(static_cast<size_t>(chunks) * kNormLanes, 0.0), sums(chunks, 0.0);
  int nonfinite = 0;
  static NormTable table;
  *lanes_launches = 0;
  reset_access_counts();
  const char* failure = run_norm(
      tensors.data(), count, grad_scale, lanes.data(), &nonfinite, capacity, device_blocks, &table,
      [&](const NormTable& t, int grid) -> const char* {
        ++*lanes_launches;
        cuda_on_cpu::launch(grad_norm_lanes_kernel, dim3{static_cast<unsigned>(grid), 1, 1},
                            dim3{static_cast<unsigned>(kNormBlockThreads), 1, 1}, t);
        return nullptr;
      },
      [&](int grid) -> const char* {
        cuda_on_cpu::launch(grad_norm_chunks_kernel, dim3{static_cast<unsigned>(grid), 1, 1},
                            dim3{static_cast<unsigned>(kNormBlockThreads), 1, 1},
                            static_cast<const double*>(lanes.data()), sums.data(), chunks);
        return nullptr;
      },
      [&]() -> const char* {
        cuda_on_cpu::launch(grad_norm_total_kernel, dim3{1, 1, 1}, dim3{1, 1, 1},
                            static_cast<const double*>(sums.data()), chunks, static_cast<const int*>(&nonfinite), out);
        return nullptr;
      });
  if (failure) {
    std::snprintf(err, err_len, "%s", failure);
    return 1;
  }
  return misaligned_error(err, err_len);
}

}  // extern "C"
