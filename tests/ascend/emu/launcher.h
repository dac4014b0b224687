// Runs an emulated kernel launch for the test drivers: registers the GM buffers
// the launch may touch, runs every block (vector core) one after another with a
// fresh, poisoned Unified Buffer, checks that each block returned every queue
// buffer, and turns the first protocol error into a message.
#ifndef FA_EMU_LAUNCHER_H
#define FA_EMU_LAUNCHER_H

#include <algorithm>
#include <cstdio>
#include <string>

#include "kernel_operator.h"

namespace fa_emu {

// Forget everything of a previous launch; `ub_bytes` is the per-core UB size.
inline void begin_launch(uint32_t ub_bytes)
{
    Core& c = core();
    c.ub_bytes = ub_bytes;
    c.ub.assign(ub_bytes, 0xFF);
    c.gm.clear();
    c.gm_writes.clear();
    c.stats = Stats{};
}

inline void register_gm(const void* p, uint64_t bytes, const char* name)
{
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
    core().gm.push_back({lo, lo + bytes, name});
}

// Runs kernel() for blocks block_num-1 .. 0 (blocks own disjoint work, so any
// order must give the same result; reverse order catches a hidden dependence on
// block 0 running first). Returns "" or "block b: <first protocol error>".
template <class Kernel>
std::string launch(int64_t block_num, Kernel kernel)
{
    Core& c = core();
    c.block_num = block_num;
    for (int64_t b = block_num - 1; b >= 0; --b) {
        std::fill(c.ub.begin(), c.ub.end(), 0xFF);  // stale data: NaN for float reads
        c.ub_used = 0;
        c.pipe_alive = false;
        c.buffers.clear();
        c.next_queue = 0;
        c.pending_vector_writes.clear();
        c.block_idx = b;
        try {
            kernel();
            for (const Buffer& buf : c.buffers) {
                if (buf.queue >= 0 && buf.state != State::FREE)
                    fail(std::string("kernel returned with a ") + pos_name(buf.pos) +
                         " queue buffer still allocated or queued (missing DeQue/FreeTensor)");
            }
        } catch (const ProtocolError& e) {
            return "block " + std::to_string(b) + ": " + e.what();
        }
        c.stats.blocks++;
    }
    // 32-byte GM blocks written by more than one core.
    std::sort(c.gm_writes.begin(), c.gm_writes.end());
    c.gm_writes.erase(std::unique(c.gm_writes.begin(), c.gm_writes.end()), c.gm_writes.end());
    for (size_t i = 1; i < c.gm_writes.size(); ++i) {
        if (c.gm_writes[i].first == c.gm_writes[i - 1].first &&
            (i < 2 || c.gm_writes[i - 2].first != c.gm_writes[i].first))
            c.stats.gm_shared_blocks++;
    }
    return "";
}

// Copies the launch statistics out for ctypes: blocks, vector ops, copies in,
// copies out, UB high water (bytes), GM 32-byte blocks written by two cores.
inline void export_stats(uint64_t* out6)
{
    const Stats& s = core().stats;
    const uint64_t v[6] = {s.blocks, s.vector_ops, s.copies_in, s.copies_out, s.ub_high_water, s.gm_shared_blocks};
    std::copy(v, v + 6, out6);
}

inline int report(const std::string& err, char* buf, int len)
{
    if (err.empty()) return 0;
    std::snprintf(buf, static_cast<size_t>(len), "%s", err.c_str());
    return 1;
}

}  // namespace fa_emu

#endif  // FA_EMU_LAUNCHER_H
