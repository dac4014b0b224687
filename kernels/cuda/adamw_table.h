// The CUDA kernel's argument: a table of a group's tensors, passed BY VALUE in
// the kernel parameters, and the host code that fills it and splits a group
// into launches. Plain C++ (no CUDA headers), so the same planning code drives
// the real launches (adamw_cuda.cu) and the CPU-emulated ones in tests/cuda.
//
// Why 32 KB and not the classic 4 KB: since CUDA 12.1 kernels on Volta and
// newer may take up to 32,764 bytes of parameters. We build only sm_80/sm_90
// (+PTX for newer) with a CUDA 13 runtime, which itself needs a driver (R580+)
// far newer than the R530 the large-parameter feature needs. 768 tensors fit in
// one launch (a 4 KB table would hold about 90, so a 1,000-tensor group would
// need 11 launches, each with its own ramp-down tail); a bigger group is split
// into several launches, each with a full table.
//
// State layout: tensor i's slice of every flat state (exp_avg, exp_avg_sq,
// max_exp_avg_sq, master) starts at align_state(end of tensor i-1), a multiple
// of kStateAlignElems = 32 elements (kernels/common/adamw_math.h,
// docs/kernel-interface.md). With 16-byte aligned state buffers every tensor's
// states therefore take the vector path, whatever the sizes before it.
#pragma once
#include <cstdint>
#include <cstring>

#include "../common/adamw_math.h"  // align_state, VariantFlag
#include "../cpu/adamw_cpu.h"      // DType, TensorRef, GroupStates

namespace fused_adamw {
namespace cuda {

constexpr int kBlockThreads = 256;           // threads per block (the kernel's launch bound)
constexpr int kElemsPerThread = 4;           // one 16-byte float4 of states per thread and pass
constexpr int64_t kChunkElems = 32 * 1024;   // elements of one tensor a block takes at a time
constexpr int kMaxTensors = 768;             // tensors per launch (see above)

// Low bits of AdamWTable::kind: the param dtype, and whether the gradient is
// float32 (for 16-bit params; MindFormers' unscale casts gradients to float32).
// High bits: which arrays of the tensor allow 4-element vector accesses (4x the
// element size: 16 bytes for float32, 8 for 16-bit). Chunks start at multiples
// of kChunkElems (a multiple of 4), so a tensor aligned at its start is aligned
// at every chunk.
constexpr uint8_t kDTypeMask = 0x3;
constexpr uint8_t kGradF32 = 1u << 2;
constexpr uint8_t kParamAligned = 1u << 3;
constexpr uint8_t kGradAligned = 1u << 4;
constexpr uint8_t kStatesAligned = 1u << 5;  // every state array this variant uses
constexpr uint8_t kAllAligned = kParamAligned | kGradAligned | kStatesAligned;

struct AdamWTable {
  // Per-step values in device memory: the kernel reads them, the host never does.
  const float* lr;
  const float* weight_decay;
  const int32_t* step;      // t, already incremented
  const float* hyper;       // beta1, beta2, eps
  const float* grad_ctl;    // grad_scale, grad_clip, skip (!= 0: write nothing)
  const int64_t* rng;       // seed, index base (stochastic rounding)
  float* status;            // the op's dummy output: 0 after a step or a skip, NaN if the values were invalid
  void* exp_avg;            // the group's flat states (float32, or bfloat16 with kBf16State)
  void* exp_avg_sq;
  void* max_exp_avg_sq;     // kAmsgrad only
  float* master;            // kMaster only
  int32_t count;            // tensors in this table
  int32_t write_status;     // 1 in the group's first launch only
  // Tensor i owns global chunks [chunk_begin[i], chunk_begin[i+1]).
  int64_t chunk_begin[kMaxTensors + 1];
  void* param[kMaxTensors];
  const void* grad[kMaxTensors];
  int64_t state_offset[kMaxTensors];  // where tensor i's states start in the flat buffers
  int64_t numel[kMaxTensors];
  uint8_t kind[kMaxTensors];
};
static_assert(sizeof(AdamWTable) <= 32764, "AdamWTable exceeds the 32,764-byte kernel-parameter limit");

inline int64_t chunks_of(int64_t numel) { return (numel + kChunkElems - 1) / kChunkElems; }

inline bool aligned_to(const void* p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

inline uintptr_t vector_bytes(DType d) { return d == DType::kFloat32 ? 16 : 8; }

// Alignment flags of one tensor whose states start at flat element `offset`.
inline uint8_t alignment_flags(const TensorRef& t, const GroupStates& s, unsigned flags, int64_t offset) {
  const uintptr_t state_bytes = (flags & kBf16State) ? 2 : 4;
  auto state_ok = [&](const void* base, uintptr_t elem_bytes) {
    return base == nullptr ||
           aligned_to(static_cast<const char*>(base) + offset * static_cast<int64_t>(elem_bytes), 4 * elem_bytes);
  };
  uint8_t f = 0;
  if (aligned_to(t.param, vector_bytes(t.dtype))) f |= kParamAligned;
  if (aligned_to(t.grad, vector_bytes(t.grad_dtype))) f |= kGradAligned;
  if (state_ok(s.exp_avg, state_bytes) && state_ok(s.exp_avg_sq, state_bytes) &&
      state_ok((flags & kAmsgrad) ? s.max_exp_avg_sq : nullptr, state_bytes) &&
      state_ok((flags & kMaster) ? s.master : nullptr, 4))
    f |= kStatesAligned;
  return f;
}

// Blocks for one launch: enough to fill the device (device_blocks = SMs x
// resident blocks per SM), fewer if the table has fewer chunks, at least one
// (the first launch always writes the status). Blocks stride over the chunks.
inline int grid_for(int64_t chunks, int device_blocks) {
  const int64_t g = chunks < device_blocks ? chunks : device_blocks;
  return g < 1 ? 1 : static_cast<int>(g);
}

// Device pointers of one step's per-call values (see AdamWTable).
struct StepValues {
  const float* lr;
  const float* weight_decay;
  const int32_t* step;
  const float* hyper;
  const float* grad_ctl;
  const int64_t* rng;
  float* status;
};

// Splits a group into tables of at most `capacity` (<= kMaxTensors) tensors and
// calls launch(table, grid) for each, in order; stops at the first non-null
// error it returns. `table` is caller-owned scratch (32 KB: reuse it, a
// launch copies it), so a steady-state step allocates nothing. `flags` is the
// variant (only which state arrays exist matters here).
// Returns nullptr on success, else the launch's error.
template <class Launch>
const char* run_group(const TensorRef* tensors, int count, const GroupStates& states, unsigned flags,
                      const StepValues& values, int capacity, int device_blocks, AdamWTable* table,
                      Launch&& launch) {
  if (capacity < 1 || capacity > kMaxTensors) capacity = kMaxTensors;
  int64_t end = 0;  // end of the previous tensor's state slice
  int first = 0;
  bool first_launch = true;
  // Even a group of empty tensors gets one launch: it writes the status.
  do {
    const int n = count - first < capacity ? count - first : capacity;
    AdamWTable& t = *table;
    t.lr = values.lr;
    t.weight_decay = values.weight_decay;
    t.step = values.step;
    t.hyper = values.hyper;
    t.grad_ctl = values.grad_ctl;
    t.rng = values.rng;
    t.status = values.status;
    t.exp_avg = states.exp_avg;
    t.exp_avg_sq = states.exp_avg_sq;
    t.max_exp_avg_sq = (flags & kAmsgrad) ? states.max_exp_avg_sq : nullptr;
    t.master = (flags & kMaster) ? states.master : nullptr;
    t.count = n;
    t.write_status = first_launch ? 1 : 0;
    int64_t chunk = 0;
    for (int i = 0; i < n; ++i) {
      const TensorRef& src = tensors[first + i];
      const int64_t offset = align_state(end);
      t.chunk_begin[i] = chunk;
      t.param[i] = src.param;
      t.grad[i] = src.grad;
      t.state_offset[i] = offset;
      t.numel[i] = src.numel;
      const uint8_t grad_f32 = (src.dtype != DType::kFloat32 && src.grad_dtype == DType::kFloat32) ? kGradF32 : 0;
      t.kind[i] = static_cast<uint8_t>(static_cast<uint8_t>(src.dtype) | grad_f32 |
                                       alignment_flags(src, states, flags, offset));
      chunk += chunks_of(src.numel);
      end = offset + src.numel;
    }
    t.chunk_begin[n] = chunk;
    if (const char* err = launch(static_cast<const AdamWTable&>(t), grid_for(chunk, device_blocks)))
      return err;
    first += n;
    first_launch = false;
  } while (first < count);
  return nullptr;
}

}  // namespace cuda
}  // namespace fused_adamw
