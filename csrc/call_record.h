// A record of the AOT calls the library has served: how many, and the storage
// addresses the last one wrote. Tests switch it on (set_call_recording) to show
// one kernel call per group per step and that the kernel wrote the Parameters'
// own storage (no copies); when off (the default) a step pays one relaxed load.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "../kernels/cpu/adamw_cpu.h"

namespace fused_adamw {

struct CallRecord {
  int64_t calls = 0;
  std::vector<uintptr_t> written;  // params..., exp_avg, exp_avg_sq of the last call
};

extern std::atomic<bool> g_call_recording;
inline bool call_recording() { return g_call_recording.load(std::memory_order_relaxed); }
void set_call_recording(bool on);

void record_call(void* const* params, int num_params, const GroupStates& states);
CallRecord last_call_record();

}  // namespace fused_adamw
