// CPU backend: public interface of the fused AdamW kernel.
// One call updates a whole parameter group: a table of (param, grad) tensors
// and the group's flat state buffers, where tensor i's state starts at
// state_offset(i) (align_state of the previous end: docs/kernel-interface.md).
#pragma once
#include <cstdint>

#include "../common/adamw_math.h"

namespace fused_adamw {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline int dtype_bytes(DType d) { return d == DType::kFloat32 ? 4 : 2; }

// One parameter tensor of a group and its gradient (same size; the gradient is
// the parameter's dtype or float32).
struct TensorRef {
  void* param;
  const void* grad;
  int64_t numel;
  DType dtype;       // the parameter's
  DType grad_dtype;  // == dtype, or kFloat32
};

// The flat buffers of a group (padded layout). exp_avg / exp_avg_sq / max_exp_avg_sq
// are float32, or bfloat16 with kBf16State; max_exp_avg_sq only with kAmsgrad,
// master (float32) only with kMaster.
struct GroupStates {
  void* exp_avg = nullptr;
  void* exp_avg_sq = nullptr;
  void* max_exp_avg_sq = nullptr;
  float* master = nullptr;
};

// What a call does beyond the coefficients: the variant flags (VariantFlag), the
// stochastic-rounding key (fa_sr_key of the seed and step) and the position of the
// first state element in the whole group (non-zero for a shard of a group).
struct UpdateConfig {
  unsigned flags = 0;
  uint32_t sr_key = 0;
  int64_t index_base = 0;
};

// One piece of a tensor handed to an ISA path: elements [0, n) at p/g, whose
// state elements start at flat index `flat` of the group's buffers.
struct Piece {
  void* p;
  const void* g;
  int64_t n;
  int64_t flat;
  DType dtype;
  DType grad_dtype;
};

namespace cpu {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// Processes one piece with the variant and dtypes the path was selected for.
using RangeFn = void (*)(const Piece& piece, const GroupStates& states, const StepCoeffs& c,
                         const UpdateConfig& cfg);

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

// Flat-state size of a group (padded), and where tensor i's state starts.
int64_t padded_total(const TensorRef* tensors, int count);

// The fused AdamW step over every tensor of a group, split over all threads by
// the group's total number of elements. Returns false (writing nothing) when the
// flags name no valid variant.
bool adamw_step(const TensorRef* tensors, int count, const GroupStates& states,
                const StepCoeffs& coeffs, const UpdateConfig& cfg);

// Pass 1 of the whole step: the sum of squares of the unscaled gradients
// (float32(g * grad_scale), squared and summed in float64) and whether any of
// them is NaN/Inf. Deterministic: fixed kNormChunk-element chunks of the group's
// concatenated gradients, each summed in 16 interleaved float64 lanes combined in
// a fixed order, chunk sums added in chunk order: the same bits for any thread
// count and every ISA path.
constexpr int64_t kNormChunk = 16384;
struct GradNorm {
  double sumsq;
  bool nonfinite;
};
GradNorm grad_sumsq(const TensorRef* tensors, int count, float grad_scale);

// The memory floor: the same reads (p, g, m, v) and writes (p, m, v) with no
// AdamW math, through the same thread split. Used only by benchmarks.
void floor_pass(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq);

}  // namespace cpu
}  // namespace fused_adamw
