#include "call_record.h"

#include <mutex>

namespace fused_adamw {
namespace {
std::mutex g_mutex;
CallRecord g_record;
}  // namespace

std::atomic<bool> g_call_recording{false};

void set_call_recording(bool on) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_record = CallRecord{};
  g_call_recording.store(on, std::memory_order_relaxed);
}

void record_call(void* const* params, int num_params, const GroupStates& states) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ++g_record.calls;
  g_record.written.clear();  // keeps its capacity: no allocation in steady state
  for (int i = 0; i < num_params; ++i) g_record.written.push_back(reinterpret_cast<uintptr_t>(params[i]));
  g_record.written.push_back(reinterpret_cast<uintptr_t>(states.exp_avg));
  g_record.written.push_back(reinterpret_cast<uintptr_t>(states.exp_avg_sq));
}

CallRecord last_call_record() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_record;
}

}  // namespace fused_adamw
