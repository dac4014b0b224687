// A record of the AOT calls the library has served: how many, and the storage
// addresses the last one wrote. Tests use it to show one kernel call per group
// per step and that the kernel wrote the Parameters' own storage (no copies).
#pragma once
#include <cstdint>
#include <vector>

namespace fused_adamw {

struct CallRecord {
  int64_t calls = 0;
  std::vector<uintptr_t> written;  // params..., exp_avg, exp_avg_sq of the last call
};

void record_call(void* const* params, int num_params, void* exp_avg, void* exp_avg_sq);
CallRecord last_call_record();

}  // namespace fused_adamw
