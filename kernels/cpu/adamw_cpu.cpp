// CPU backend driver: ISA dispatch and the thread split over a group's elements.
#include "adamw_cpu.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "adamw_cpu_paths.h"

namespace fused_adamw {
namespace cpu {
namespace {

RangeFn range_fn(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return adamw_range_scalar;
    default: return nullptr;
  }
}

Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar})
    if (isa_supported(isa)) return isa;
  return Isa::kScalar;
}

// Chosen once: FUSED_ADAMW_ISA if set (and runnable), else the best the CPU has.
std::atomic<int> g_isa{-1};

Isa initial_isa() {
  const char* env = std::getenv("FUSED_ADAMW_ISA");
  Isa forced;
  if (env && *env && parse_isa(env, &forced) && isa_supported(forced)) return forced;
  return best_isa();
}

// Elements below which one thread does the whole group (a fork costs more).
constexpr int64_t kSerialElements = 1 << 15;
// Thread ranges start on 16-element boundaries so no two threads share a cache line of state.
constexpr int64_t kSplitAlign = 16;

// Calls fn(tensor_index, tensor_start, begin, end) for each tensor piece inside [lo, hi) of the
// group's concatenated element range. starts[i] = first element of tensor i.
template <class Fn>
void for_each_piece(const std::vector<int64_t>& starts, const TensorRef* tensors, int count,
                    int64_t lo, int64_t hi, Fn fn) {
  int i = static_cast<int>(std::upper_bound(starts.begin(), starts.begin() + count, lo) -
                           starts.begin()) - 1;
  for (; i < count && starts[i] < hi; ++i) {
    const int64_t begin = std::max(lo, starts[i]) - starts[i];
    const int64_t end = std::min(hi, starts[i] + tensors[i].numel) - starts[i];
    if (end > begin) fn(i, starts[i], begin, end);
  }
}

// Splits the group's elements evenly over the threads and runs fn on each piece.
// The prefix table lives in a per-thread buffer that only grows: no allocation per step.
template <class Fn>
void parallel_over_group(const TensorRef* tensors, int count, Fn fn) {
  thread_local std::vector<int64_t> caller_starts;
  // A plain reference: inside the parallel region the name of a thread_local
  // would resolve to each worker's own (empty) copy.
  std::vector<int64_t>& starts = caller_starts;
  if (starts.size() < static_cast<size_t>(count) + 1) starts.resize(count + 1);
  int64_t total = 0;
  for (int i = 0; i < count; ++i) {
    starts[i] = total;
    total += tensors[i].numel;
  }
  starts[count] = total;
  if (total == 0) return;
  const int threads = total < kSerialElements ? 1 : std::max(1, num_threads());
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    auto boundary = [&](int k) {
      if (k == nt) return total;
      return std::min(total, (total * k / nt) / kSplitAlign * kSplitAlign);
    };
    for_each_piece(starts, tensors, count, boundary(t), boundary(t + 1), fn);
  }
}

size_t dtype_size(DType d) { return d == DType::kFloat32 ? 4 : 2; }

// The floor's "no math" body: every stream read once, p/m/v written once.
template <class P>
void floor_range(P* p, const P* g, float* m, float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const P pi = p[i], gi = g[i];
    const float mi = m[i], vi = v[i];
    p[i] = gi;
    m[i] = vi;
    v[i] = mi + static_cast<float>(pi != P(0));
  }
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

bool parse_isa(const char* name, Isa* out) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (std::strcmp(name, isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

bool isa_supported(Isa isa) {
  if (range_fn(isa) == nullptr) return false;
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
}

Isa detected_isa() { return best_isa(); }

Isa active_isa() {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = static_cast<int>(initial_isa());
    g_isa.store(isa, std::memory_order_relaxed);
  }
  return static_cast<Isa>(isa);
}

bool set_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) { omp_set_num_threads(std::max(1, n)); }

void adamw_step(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq,
                const StepCoeffs& coeffs) {
  const RangeFn fn = range_fn(active_isa());
  parallel_over_group(tensors, count, [&](int i, int64_t start, int64_t begin, int64_t end) {
    const TensorRef& t = tensors[i];
    const size_t es = dtype_size(t.dtype);
    // Tensor i's state begins at `start`, its first element's index in the group.
    fn(static_cast<char*>(t.param) + begin * es, static_cast<const char*>(t.grad) + begin * es,
       exp_avg + start + begin, exp_avg_sq + start + begin, end - begin, t.dtype, coeffs);
  });
}

void floor_pass(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq) {
  parallel_over_group(tensors, count, [&](int i, int64_t start, int64_t begin, int64_t end) {
    const TensorRef& t = tensors[i];
    float* m = exp_avg + start + begin;
    float* v = exp_avg_sq + start + begin;
    if (t.dtype == DType::kFloat32)
      floor_range(static_cast<float*>(t.param) + begin, static_cast<const float*>(t.grad) + begin,
                  m, v, end - begin);
    else
      floor_range(static_cast<uint16_t*>(t.param) + begin,
                  static_cast<const uint16_t*>(t.grad) + begin, m, v, end - begin);
  });
}

}  // namespace cpu
}  // namespace fused_adamw
