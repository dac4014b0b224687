// CPU backend: public interface of the fused AdamW kernel.
// One call updates a whole parameter group: a table of (param, grad) tensors
// and the group's flat float32 exp_avg / exp_avg_sq buffers, where tensor i's
// state starts at the sum of the sizes of tensors 0..i-1.
#pragma once
#include <cstdint>

#include "../common/adamw_math.h"

namespace fused_adamw {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// One parameter tensor of a group and its gradient (same dtype and size).
struct TensorRef {
  void* param;
  const void* grad;
  int64_t numel;
  DType dtype;
};

namespace cpu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// Processes elements [0, n) of one tensor: p/g of `dtype`, m/v float32.
using RangeFn = void (*)(void* p, const void* g, float* m, float* v, int64_t n, DType dtype,
                         const StepCoeffs& c);

// The ISA the next calls will use (CPUID, overridable by FUSED_ADAMW_ISA).
Isa active_isa();
// Best ISA this CPU and this build support.
Isa detected_isa();
bool isa_supported(Isa isa);
// Forces an ISA; returns false (and changes nothing) if this CPU cannot run it.
bool set_isa(Isa isa);
const char* isa_name(Isa isa);
bool parse_isa(const char* name, Isa* out);

// Threads a call uses: the value given to set_num_threads (process-wide) if any,
// else OpenMP's setting on the calling thread (OMP_NUM_THREADS, default: the CPUs
// this process may run on).
int num_threads();
void set_num_threads(int n);

// The fused AdamW step over every tensor of a group, split over all threads by
// the group's total number of elements.
void adamw_step(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq,
                const StepCoeffs& coeffs);

// The memory floor: the same reads (p, g, m, v) and writes (p, m, v) with no
// AdamW math, through the same thread split. Used only by benchmarks.
void floor_pass(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq);

}  // namespace cpu
}  // namespace fused_adamw
