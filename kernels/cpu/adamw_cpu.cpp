// CPU backend driver: ISA dispatch and the thread split over a group's elements.
#include "adamw_cpu.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "adamw_cpu_paths.h"

namespace fused_adamw {
namespace cpu {
namespace {

// The functions of one ISA path; null where this build has no such path.
struct IsaPath {
  RangeFn (*range)(unsigned flags, DType p, DType g);
  SumsqFn sumsq;
  FloorFn floor;
};

IsaPath isa_path(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return {range_fn_scalar, sumsq_scalar, floor_range_scalar};
    case Isa::kAvx2: return {range_fn_avx2, sumsq_avx2, floor_range_avx2};
    case Isa::kAvx512: return {range_fn_avx512, sumsq_avx512, floor_range_avx512};
  }
  return {nullptr, nullptr, nullptr};
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
  if (env && *env) {
    Isa forced;
    if (parse_isa(env, &forced) && isa_supported(forced)) return forced;
    // Say so once rather than silently running another path than the one asked for.
    std::fprintf(stderr, "fused_adamw: FUSED_ADAMW_ISA=%s is not one of scalar/avx2/avx512 that "
                 "this CPU supports; using %s\n", env, isa_name(best_isa()));
  }
  return best_isa();
}

// Elements below which one thread does the whole group (a fork costs more).
constexpr int64_t kSerialElements = 1 << 15;
// Chunk boundaries are multiples of 16 elements so no two threads share a cache line of state.
constexpr int64_t kSplitAlign = 16;
// The group is cut into about this many chunks per thread, handed out from a shared
// counter, instead of one fixed range per thread: when another process holds a core,
// the other threads take over the stalled thread's remaining chunks rather than
// waiting for it at the end of the region. Chunks stay large (>= kMinChunk) so the
// counter is touched rarely.
constexpr int64_t kChunksPerThread = 8;
constexpr int64_t kMinChunk = 1 << 14;

// Calls fn(tensor_index, tensor_start, begin, end) for each tensor piece inside [lo, hi) of the
// group's padded flat index space. starts[i] = where tensor i's state starts (align_state).
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

// Runs fn on every piece of the group's elements, split over the threads in chunks of the
// padded index space (chunk edges are multiples of 16 there, so of 64 bytes of float32
// state: threads never share a cache line). The offset table lives in a per-thread buffer
// that only grows: no allocation per step.
template <class Fn>
void parallel_over_group(const TensorRef* tensors, int count, Fn fn) {
  thread_local std::vector<int64_t> caller_starts;
  // A plain reference: inside the parallel region the name of a thread_local
  // would resolve to each worker's own (empty) copy.
  std::vector<int64_t>& starts = caller_starts;
  if (starts.size() < static_cast<size_t>(count) + 1) starts.resize(count + 1);
  int64_t total = 0, elements = 0;
  for (int i = 0; i < count; ++i) {
    starts[i] = align_state(total);
    total = starts[i] + tensors[i].numel;
    elements += tensors[i].numel;
  }
  starts[count] = total;
  if (elements == 0) return;
  const int64_t max_threads = total < kSerialElements ? 1 : std::max(1, num_threads());
  int64_t chunk = std::max(kMinChunk, (total + max_threads * kChunksPerThread - 1) /
                                          (max_threads * kChunksPerThread));
  chunk = (chunk + kSplitAlign - 1) / kSplitAlign * kSplitAlign;
  const int64_t chunks = (total + chunk - 1) / chunk;
  const int threads = static_cast<int>(std::min(max_threads, chunks));
  if (threads == 1) {
    for_each_piece(starts, tensors, count, 0, total, fn);
    return;
  }
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(threads)
  {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;)
      for_each_piece(starts, tensors, count, c * chunk, std::min(total, (c + 1) * chunk), fn);
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
  if (isa_path(isa).range == nullptr) return false;
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

// Process-wide, not OpenMP's per-thread ICV: in graph mode the kernel runs on one of
// MindSpore's runtime threads, which never sees an omp_set_num_threads() made from
// the Python thread. 0 = not set: follow OpenMP (OMP_NUM_THREADS, else the CPUs this
// process may run on), read on the calling thread.
std::atomic<int> g_threads{0};

int num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}
void set_num_threads(int n) { g_threads.store(std::max(1, n), std::memory_order_relaxed); }

int64_t padded_total(const TensorRef* tensors, int count) {
  int64_t total = 0;
  for (int i = 0; i < count; ++i) total = align_state(total) + tensors[i].numel;
  return total;
}

bool adamw_step(const TensorRef* tensors, int count, const GroupStates& states,
                const StepCoeffs& coeffs, const UpdateConfig& cfg) {
  if (!variant_valid(cfg.flags)) return false;
  const auto select = isa_path(active_isa()).range;
  parallel_over_group(tensors, count, [&](int i, int64_t start, int64_t begin, int64_t end) {
    const TensorRef& t = tensors[i];
    const Piece piece{static_cast<char*>(t.param) + begin * dtype_bytes(t.dtype),
                      static_cast<const char*>(t.grad) + begin * dtype_bytes(t.grad_dtype),
                      end - begin, start + begin, t.dtype, t.grad_dtype};
    // A table lookup per piece (a handful per thread and step), not per element.
    select(cfg.flags, t.dtype, t.grad_dtype)(piece, states, coeffs, cfg);
  });
  return true;
}

GradNorm grad_sumsq(const TensorRef* tensors, int count, float grad_scale) {
  int64_t total = 0;
  for (int i = 0; i < count; ++i) total += tensors[i].numel;
  const int64_t chunks = (total + kNormChunk - 1) / kNormChunk;
  if (chunks == 0) return {0.0, false};
  thread_local std::vector<double> caller_sums;
  thread_local std::vector<int64_t> caller_starts;
  std::vector<double>& sums = caller_sums;
  std::vector<int64_t>& starts = caller_starts;
  sums.assign(chunks, 0.0);
  starts.resize(count + 1);
  starts[0] = 0;  // unpadded: chunks are over the gradients, which are not padded
  for (int i = 0; i < count; ++i) starts[i + 1] = starts[i] + tensors[i].numel;
  const SumsqFn sumsq = isa_path(active_isa()).sumsq;
  std::atomic<bool> nonfinite{false};
  // Chunk c: its pieces in order, 16 lanes, then the lanes in a fixed order.
  auto do_chunk = [&](int64_t c) {
    const int64_t lo = c * kNormChunk, hi = std::min(total, lo + kNormChunk);
    double acc[16] = {};
    int phase = 0;
    bool finite = true;
    int i = static_cast<int>(std::upper_bound(starts.begin(), starts.begin() + count, lo) - starts.begin()) - 1;
    for (; i < count && starts[i] < hi; ++i) {
      const int64_t b = std::max(lo, starts[i]) - starts[i], e = std::min(hi, starts[i + 1]) - starts[i];
      if (e <= b) continue;
      const TensorRef& t = tensors[i];
      finite &= sumsq(static_cast<const char*>(t.grad) + b * dtype_bytes(t.grad_dtype), t.grad_dtype, e - b,
                      grad_scale, acc, phase);
    }
    double s = acc[0];
    for (int j = 1; j < 16; ++j) s += acc[j];
    sums[c] = s;
    if (!finite) nonfinite.store(true, std::memory_order_relaxed);
  };
  const int threads = static_cast<int>(std::min<int64_t>(chunks, total < kSerialElements ? 1 : num_threads()));
  if (threads <= 1) {
    for (int64_t c = 0; c < chunks; ++c) do_chunk(c);
  } else {
    std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(threads)
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) do_chunk(c);
  }
  double total_sum = 0.0;
  for (int64_t c = 0; c < chunks; ++c) total_sum += sums[c];
  return {total_sum, nonfinite.load()};
}

// Always the best path the CPU has, whatever ISA the update is forced to: the floor
// must be the fastest pass with AdamW's access pattern.
void floor_pass(const TensorRef* tensors, int count, float* exp_avg, float* exp_avg_sq) {
  const FloorFn floor = isa_path(detected_isa()).floor;
  parallel_over_group(tensors, count, [&](int i, int64_t start, int64_t begin, int64_t end) {
    const TensorRef& t = tensors[i];
    const size_t es = dtype_bytes(t.dtype);
    floor(static_cast<char*>(t.param) + begin * es, static_cast<const char*>(t.grad) + begin * es,
          exp_avg + start + begin, exp_avg_sq + start + begin, end - begin, t.dtype);
  });
}

}  // namespace cpu
}  // namespace fused_adamw
