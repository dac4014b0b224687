// A CPU implementation of the part of the Ascend C API that the project's Ascend
// kernels (kernels/ascend/op_kernel) use, so their source compiles as is
// with g++ and runs in the tests. Written from the public Ascend C API
// documentation (hiascend.com "Ascend C API" pages: GlobalTensor, LocalTensor,
// TPipe, TQue, TBuf, DataCopy, DataCopyPad, the vector ops, Cast, RoundMode,
// PipeBarrier, GetBlockIdx/GetBlockNum); no CANN code is used or copied.
//
// What it models:
//  - one Unified Buffer per vector core (size set by the launcher: 192 KiB on a
//    910B) that TPipe::InitBuffer carves into queue buffers and TBufs, in order,
//    32-byte aligned; exceeding it fails;
//  - the queue protocol: a TQue<VECIN> buffer is written by copy-in (MTE2) after
//    AllocTensor, handed over by EnQue, and readable by vector ops only after
//    DeQue; a TQue<VECOUT> buffer is written by vector ops after AllocTensor and
//    copied out (MTE3) only after DeQue; FreeTensor returns it. Anything else
//    (a read before DeQue, more EnQue than the depth, more AllocTensor than
//    buffers, a double free, use after free, a buffer still held when the
//    block ends) throws fa_emu::ProtocolError;
//  - every UB operand must lie inside the buffer it came from and start on a
//    32-byte boundary; DataCopy lengths must be whole 32-byte blocks;
//    DataCopyPad moves any byte count and pads each block to 32 bytes in UB, for
//    the element types its API page lists;
//    GM accesses must lie inside the buffers the launcher registered;
//  - vector ops do one float32 operation (one IEEE rounding) per element (build
//    with -ffp-contract=off), or 32-bit integer arithmetic modulo 2^32, 16-bit
//    And/Or, shifts, CreateVecIndex; each checks its element types; a vector op
//    that reads or overwrites bytes that an earlier vector op wrote, with no
//    PipeBarrier<PIPE_V> in between, fails (the V pipe does not order dependent
//    instructions by itself);
//  - Cast with the documented round modes for float <-> half / bfloat16_t and
//    int32 -> float.
// Not modelled: timing, pipe overlap, the NPU's own Sqrt/Div accuracy (taken as
// IEEE correctly rounded here), repeat/mask forms of the vector ops.
#ifndef FA_EMU_KERNEL_OPERATOR_H
#define FA_EMU_KERNEL_OPERATOR_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#define __global__
#define __aicore__
#define __gm__
#define GM_ADDR uint8_t*
#define KERNEL_TASK_TYPE_DEFAULT(type) ((void)0)

// ---- 16-bit float storage types (global names, as in Ascend C) -------------
namespace fa_emu {

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float half_bits_to_float(uint16_t h) { _Float16 v; std::memcpy(&v, &h, 2); return static_cast<float>(v); }
inline uint16_t float_to_half_rne(float f) { _Float16 v = static_cast<_Float16>(f); uint16_t h; std::memcpy(&h, &v, 2); return h; }
inline float bf16_bits_to_float(uint16_t b) { return bits_to_float(uint32_t(b) << 16); }
inline uint16_t float_to_bf16_rne(float f)
{
    const uint32_t u = float_to_bits(f);
    if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);  // stays a quiet NaN
    return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

}  // namespace fa_emu

struct half {
    uint16_t bits = 0;
    half() = default;
    half(float f) : bits(fa_emu::float_to_half_rne(f)) {}  // NOLINT: implicit like the real type
    half(int i) : half(static_cast<float>(i)) {}           // NOLINT
    operator float() const { return fa_emu::half_bits_to_float(bits); }
};
struct bfloat16_t {
    uint16_t bits = 0;
    bfloat16_t() = default;
    bfloat16_t(float f) : bits(fa_emu::float_to_bf16_rne(f)) {}  // NOLINT
    bfloat16_t(int i) : bfloat16_t(static_cast<float>(i)) {}     // NOLINT
    operator float() const { return fa_emu::bf16_bits_to_float(bits); }
};
static_assert(sizeof(half) == 2 && sizeof(bfloat16_t) == 2, "16-bit storage types");

// ---- emulator state: one vector core at a time ------------------------------
namespace fa_emu {

struct ProtocolError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what) { throw ProtocolError(what); }

enum class Pos { VECIN, VECOUT, VECCALC };
enum class State { FREE, ALLOCATED, ENQUEUED, DEQUEUED };
enum class Agent { COPY_IN, COPY_OUT, VECTOR };

struct Buffer {
    uint32_t addr, bytes;
    Pos pos;
    State state;
    int queue;  // owning TQue id, -1 for a TBuf
};

struct Range {
    uint32_t lo, hi;
};

struct Stats {
    uint64_t blocks = 0, vector_ops = 0, copies_in = 0, copies_out = 0;
    uint64_t ub_high_water = 0;     // bytes of UB given out by InitBuffer, max over blocks
    uint64_t gm_shared_blocks = 0;  // 32-byte GM blocks written by more than one core
};

struct GmRegion {
    uintptr_t lo, hi;
    std::string name;
};

struct Core {
    uint32_t ub_bytes = 192 * 1024;
    std::vector<uint8_t> ub = std::vector<uint8_t>(192 * 1024);
    uint32_t ub_used = 0;
    bool pipe_alive = false;
    std::vector<Buffer> buffers;
    int next_queue = 0;
    std::vector<Range> pending_vector_writes;  // since the last PipeBarrier<PIPE_V>
    int64_t block_idx = 0, block_num = 1;
    std::vector<GmRegion> gm;
    std::vector<std::pair<uintptr_t, int64_t>> gm_writes;  // (32-byte block, writing core)
    Stats stats;
};

inline Core& core()
{
    static Core c;
    return c;
}

inline std::string hex(uintptr_t x)
{
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(x));
    return b;
}

inline const char* pos_name(Pos p) { return p == Pos::VECIN ? "VECIN" : p == Pos::VECOUT ? "VECOUT" : "VECCALC"; }

// A GM access of `bytes` at `p`: must lie inside one registered buffer.
inline void check_gm(const void* p, uint64_t bytes, const char* what)
{
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + bytes;
    for (const GmRegion& r : core().gm) {
        if (lo >= r.lo && hi <= r.hi) return;
    }
    fail(std::string(what) + ": GM range [" + hex(lo) + ", " + hex(hi) + ") (" + std::to_string(bytes) +
         " bytes) is outside every buffer of the launch");
}

inline void note_gm_write(const void* p, uint64_t bytes)
{
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
    for (uintptr_t b = lo / 32; b < (lo + bytes + 31) / 32; ++b) core().gm_writes.push_back({b, core().block_idx});
}

// Checks an access by `agent` to [addr, addr + bytes) of UB through a tensor of buffer `buf`.
inline void check_ub(int buf, uint32_t addr, uint64_t bytes, Agent agent, const char* what)
{
    Core& c = core();
    if (buf < 0 || buf >= static_cast<int>(c.buffers.size()))
        fail(std::string(what) + ": LocalTensor does not come from AllocTensor/DeQue/TBuf::Get of this block");
    const Buffer& b = c.buffers[buf];
    if (addr % 32 != 0)
        fail(std::string(what) + ": UB address " + std::to_string(addr) + " is not 32-byte aligned");
    if (addr < b.addr || addr + bytes > uint64_t(b.addr) + b.bytes)
        fail(std::string(what) + ": UB range [" + std::to_string(addr) + ", " + std::to_string(addr + bytes) +
             ") is outside its buffer [" + std::to_string(b.addr) + ", " + std::to_string(b.addr + b.bytes) + ")");
    if (b.pos == Pos::VECCALC) {
        if (agent != Agent::VECTOR) fail(std::string(what) + ": DataCopy needs a VECIN/VECOUT queue buffer, not a TBuf");
        return;
    }
    const std::string where = std::string(what) + " on a " + pos_name(b.pos) + " buffer ";
    switch (b.state) {
        case State::FREE: fail(where + "that is not allocated (used after FreeTensor or before AllocTensor)");
        case State::ENQUEUED: fail(where + "while it sits in its queue (after EnQue, before DeQue)");
        case State::ALLOCATED:
            if (b.pos == Pos::VECIN && agent != Agent::COPY_IN)
                fail(where + "before its DeQue (a VECIN buffer belongs to the copy-in until EnQue/DeQue)");
            if (b.pos == Pos::VECOUT && agent != Agent::VECTOR)
                fail(where + "before its DeQue (a VECOUT buffer is copied out only after EnQue/DeQue)");
            return;
        case State::DEQUEUED:
            if (b.pos == Pos::VECIN && agent != Agent::VECTOR)
                fail(where + "after its DeQue: copy-in must happen between AllocTensor and EnQue");
            if (b.pos == Pos::VECOUT && agent != Agent::COPY_OUT)
                fail(where + "after its DeQue: vector ops write it between AllocTensor and EnQue");
            return;
    }
}

// Vector-pipe ordering: reads and writes of bytes a previous vector op wrote
// need a PipeBarrier<PIPE_V> in between.
inline void vector_hazard(uint32_t lo, uint32_t hi, const char* what, const char* access)
{
    for (const Range& r : core().pending_vector_writes) {
        if (lo < r.hi && r.lo < hi)
            fail(std::string(what) + " " + access + " UB bytes [" + std::to_string(std::max(lo, r.lo)) + ", " +
                 std::to_string(std::min(hi, r.hi)) +
                 ") that an earlier vector op wrote, with no PipeBarrier<PIPE_V> in between");
    }
}

}  // namespace fa_emu

namespace AscendC {

enum class TPosition { GM, VECIN, VECOUT, VECCALC };
using QuePosition = TPosition;

enum pipe_t { PIPE_S, PIPE_V, PIPE_MTE2, PIPE_MTE3, PIPE_ALL };

template <pipe_t pipe>
__aicore__ inline void PipeBarrier()
{
    if (pipe == PIPE_V || pipe == PIPE_ALL) fa_emu::core().pending_vector_writes.clear();
}

__aicore__ inline int64_t GetBlockIdx() { return fa_emu::core().block_idx; }
__aicore__ inline int64_t GetBlockNum() { return fa_emu::core().block_num; }

// ---- GlobalTensor ----------------------------------------------------------
template <typename T>
class GlobalTensor {
public:
    __aicore__ inline void SetGlobalBuffer(__gm__ T* buffer, uint64_t bufferSize = kUnknown)
    {
        ptr_ = buffer;
        size_ = bufferSize;
    }
    __aicore__ inline __gm__ T* GetPhyAddr() const { return ptr_; }
    __aicore__ inline uint64_t GetSize() const { return size_; }
    __aicore__ inline T GetValue(uint64_t i) const
    {
        check(i, 1, "GlobalTensor::GetValue");
        return ptr_[i];
    }
    __aicore__ inline void SetValue(uint64_t i, T value) const
    {
        check(i, 1, "GlobalTensor::SetValue");
        fa_emu::note_gm_write(ptr_ + i, sizeof(T));
        ptr_[i] = value;
    }
    __aicore__ inline GlobalTensor operator[](uint64_t offset) const
    {
        GlobalTensor t;
        t.ptr_ = ptr_ + offset;
        t.size_ = size_ == kUnknown ? kUnknown : (offset <= size_ ? size_ - offset : 0);
        return t;
    }
    // Element range [i, i + n) of this tensor: inside its size (when set) and a launch buffer.
    void check(uint64_t i, uint64_t n, const char* what) const
    {
        if (size_ != kUnknown && i + n > size_)
            fa_emu::fail(std::string(what) + ": elements [" + std::to_string(i) + ", " + std::to_string(i + n) +
                         ") outside a GlobalTensor of " + std::to_string(size_));
        fa_emu::check_gm(ptr_ + i, n * sizeof(T), what);
    }

private:
    static constexpr uint64_t kUnknown = ~uint64_t(0);
    __gm__ T* ptr_ = nullptr;
    uint64_t size_ = kUnknown;
};

// ---- LocalTensor: a view of UB tied to the buffer it was handed out from -----
template <typename T>
class LocalTensor {
public:
    LocalTensor() = default;
    LocalTensor(int buf, uint32_t addr, uint32_t bytes) : buf_(buf), addr_(addr), bytes_(bytes) {}

    __aicore__ inline LocalTensor operator[](uint32_t offset) const
    {
        const uint64_t skip = uint64_t(offset) * sizeof(T);
        if (skip > bytes_)
            fa_emu::fail("LocalTensor[" + std::to_string(offset) + "]: past the end of a " +
                         std::to_string(bytes_ / sizeof(T)) + "-element tensor");
        return LocalTensor(buf_, addr_ + static_cast<uint32_t>(skip), bytes_ - static_cast<uint32_t>(skip));
    }
    template <typename U>
    __aicore__ inline LocalTensor<U> ReinterpretCast() const
    {
        return LocalTensor<U>(buf_, addr_, bytes_);
    }
    __aicore__ inline uint32_t GetSize() const { return bytes_ / sizeof(T); }

    // Emulator access: the element pointer after the protocol and range checks.
    T* data(uint64_t count, fa_emu::Agent agent, const char* what) const
    {
        fa_emu::check_ub(buf_, addr_, count * sizeof(T), agent, what);
        return reinterpret_cast<T*>(fa_emu::core().ub.data() + addr_);
    }
    int buf() const { return buf_; }
    uint32_t addr() const { return addr_; }
    uint32_t bytes() const { return bytes_; }

private:
    int buf_ = -1;
    uint32_t addr_ = 0, bytes_ = 0;
};

// ---- TPipe, TQue, TBuf -------------------------------------------------------
template <TPosition pos, int32_t depth>
class TQue {
public:
    template <typename T>
    __aicore__ inline LocalTensor<T> AllocTensor()
    {
        fa_emu::Core& c = fa_emu::core();
        require_init("AllocTensor");
        for (int b : bufs_) {
            if (c.buffers[b].state == fa_emu::State::FREE) {
                c.buffers[b].state = fa_emu::State::ALLOCATED;
                return LocalTensor<T>(b, c.buffers[b].addr, c.buffers[b].bytes);
            }
        }
        fa_emu::fail("AllocTensor: all " + std::to_string(bufs_.size()) +
                     " buffers of the queue are in use (a FreeTensor is missing)");
    }
    template <typename T>
    __aicore__ inline bool EnQue(const LocalTensor<T>& t)
    {
        fa_emu::Buffer& b = own(t, "EnQue");
        if (b.state != fa_emu::State::ALLOCATED)
            fa_emu::fail("EnQue of a tensor that is not freshly allocated (already queued, dequeued or freed)");
        if (static_cast<int32_t>(fifo_.size()) >= depth)
            fa_emu::fail("EnQue: queue depth " + std::to_string(depth) + " exceeded");
        b.state = fa_emu::State::ENQUEUED;
        fifo_.push_back(t.buf());
        return true;
    }
    template <typename T>
    __aicore__ inline LocalTensor<T> DeQue()
    {
        require_init("DeQue");
        if (fifo_.empty()) fa_emu::fail("DeQue on an empty queue (no EnQue before it)");
        const int id = fifo_.front();
        fifo_.erase(fifo_.begin());
        fa_emu::Buffer& b = fa_emu::core().buffers[id];
        b.state = fa_emu::State::DEQUEUED;
        return LocalTensor<T>(id, b.addr, b.bytes);
    }
    template <typename T>
    __aicore__ inline void FreeTensor(const LocalTensor<T>& t)
    {
        fa_emu::Buffer& b = own(t, "FreeTensor");
        if (b.state == fa_emu::State::FREE) fa_emu::fail("FreeTensor: buffer freed twice");
        if (b.state == fa_emu::State::ENQUEUED) fa_emu::fail("FreeTensor of a tensor still in its queue");
        b.state = fa_emu::State::FREE;
    }

    // Called by TPipe::InitBuffer.
    void init(int num, uint32_t addr, uint32_t len)
    {
        if (!bufs_.empty()) fa_emu::fail("TPipe::InitBuffer called twice for one TQue");
        fa_emu::Core& c = fa_emu::core();
        id_ = c.next_queue++;
        for (int i = 0; i < num; ++i) {
            bufs_.push_back(static_cast<int>(c.buffers.size()));
            c.buffers.push_back({addr + static_cast<uint32_t>(i) * len, len,
                                 pos == TPosition::VECIN ? fa_emu::Pos::VECIN : fa_emu::Pos::VECOUT,
                                 fa_emu::State::FREE, id_});
        }
    }

private:
    static_assert(pos == TPosition::VECIN || pos == TPosition::VECOUT, "TQue position: VECIN or VECOUT");
    static_assert(depth >= 1, "queue depth >= 1");
    void require_init(const char* what) const
    {
        if (bufs_.empty()) fa_emu::fail(std::string(what) + " on a TQue without TPipe::InitBuffer");
    }
    template <typename T>
    fa_emu::Buffer& own(const LocalTensor<T>& t, const char* what)
    {
        require_init(what);
        for (int b : bufs_) {
            if (b == t.buf()) {
                fa_emu::Buffer& buf = fa_emu::core().buffers[b];
                if (t.addr() != buf.addr) fa_emu::fail(std::string(what) + ": tensor is not the start of its buffer");
                return buf;
            }
        }
        fa_emu::fail(std::string(what) + ": tensor does not belong to this queue");
    }
    std::vector<int> bufs_;
    std::vector<int> fifo_;
    int id_ = -1;
};

template <TPosition pos = TPosition::VECCALC>
class TBuf {
public:
    template <typename T>
    __aicore__ inline LocalTensor<T> Get()
    {
        if (buf_ < 0) fa_emu::fail("TBuf::Get without TPipe::InitBuffer");
        const fa_emu::Buffer& b = fa_emu::core().buffers[buf_];
        return LocalTensor<T>(buf_, b.addr, b.bytes);
    }
    template <typename T>
    __aicore__ inline LocalTensor<T> Get(uint32_t len)
    {
        LocalTensor<T> all = Get<T>();
        if (uint64_t(len) * sizeof(T) > all.bytes()) fa_emu::fail("TBuf::Get(len) larger than the buffer");
        return LocalTensor<T>(buf_, all.addr(), len * sizeof(T));
    }
    void init(uint32_t addr, uint32_t len)
    {
        if (buf_ >= 0) fa_emu::fail("TPipe::InitBuffer called twice for one TBuf");
        fa_emu::Core& c = fa_emu::core();
        buf_ = static_cast<int>(c.buffers.size());
        c.buffers.push_back({addr, len, fa_emu::Pos::VECCALC, fa_emu::State::ALLOCATED, -1});
    }

private:
    int buf_ = -1;
};

class TPipe {
public:
    TPipe()
    {
        if (fa_emu::core().pipe_alive) fa_emu::fail("a second TPipe in one kernel");
        fa_emu::core().pipe_alive = true;
    }
    ~TPipe() { fa_emu::core().pipe_alive = false; }
    TPipe(const TPipe&) = delete;
    TPipe& operator=(const TPipe&) = delete;

    template <TPosition pos, int32_t depth>
    __aicore__ inline bool InitBuffer(TQue<pos, depth>& que, uint8_t num, uint32_t len)
    {
        if (num < 1) fa_emu::fail("InitBuffer: num must be >= 1");
        que.init(num, carve(uint64_t(num) * round32(len), "InitBuffer(TQue)"), round32(len));
        return true;
    }
    template <TPosition pos>
    __aicore__ inline bool InitBuffer(TBuf<pos>& buf, uint32_t len)
    {
        buf.init(carve(round32(len), "InitBuffer(TBuf)"), round32(len));
        return true;
    }

private:
    static uint32_t round32(uint32_t len) { return (len + 31) / 32 * 32; }
    static uint32_t carve(uint64_t bytes, const char* what)
    {
        fa_emu::Core& c = fa_emu::core();
        if (c.ub_used + bytes > c.ub_bytes)
            fa_emu::fail(std::string(what) + ": " + std::to_string(c.ub_used + bytes) +
                         " bytes of buffers exceed the " + std::to_string(c.ub_bytes) + "-byte Unified Buffer");
        const uint32_t addr = c.ub_used;
        c.ub_used += static_cast<uint32_t>(bytes);
        if (c.ub_used > c.stats.ub_high_water) c.stats.ub_high_water = c.ub_used;
        return addr;
    }
};

// ---- data movement -----------------------------------------------------------
struct DataCopyParams {
    uint16_t blockCount = 1;
    uint16_t blockLen = 0;  // in 32-byte blocks
    uint16_t srcStride = 0;
    uint16_t dstStride = 0;
};
struct DataCopyExtParams {
    uint16_t blockCount = 1;
    uint32_t blockLen = 0;   // bytes
    uint32_t srcStride = 0;  // GM -> UB: bytes on GM; UB -> GM: 32-byte blocks in UB
    uint32_t dstStride = 0;  // GM -> UB: 32-byte blocks in UB; UB -> GM: bytes on GM
    uint32_t rsv = 0;
};
template <typename T>
struct DataCopyPadExtParams {
    bool isPad = false;
    uint8_t leftPadding = 0;   // elements
    uint8_t rightPadding = 0;  // elements
    T paddingValue = 0;
};

namespace detail {
// DataCopyPad's element types on A2 vector cores, as its API page lists them
// (bfloat16_t is not among them: kernels move bf16 data as half, same bits).
template <typename T>
constexpr bool kPadCopyType = std::is_same<T, half>::value || std::is_same<T, float>::value ||
                              std::is_same<T, int16_t>::value || std::is_same<T, uint16_t>::value ||
                              std::is_same<T, int32_t>::value || std::is_same<T, uint32_t>::value ||
                              std::is_same<T, int8_t>::value || std::is_same<T, uint8_t>::value;

inline void require_32(uint64_t bytes, const char* what)
{
    if (bytes % 32 != 0)
        fa_emu::fail(std::string(what) + ": " + std::to_string(bytes) +
                     " bytes is not a whole number of 32-byte blocks (use DataCopyPad)");
}
}  // namespace detail

// Contiguous DataCopy: count * sizeof(T) must be a multiple of 32 bytes.
template <typename T>
__aicore__ inline void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, uint32_t count)
{
    detail::require_32(uint64_t(count) * sizeof(T), "DataCopy GM->UB");
    src.check(0, count, "DataCopy GM->UB");
    T* d = dst.data(count, fa_emu::Agent::COPY_IN, "DataCopy GM->UB");
    std::memcpy(static_cast<void*>(d), src.GetPhyAddr(), uint64_t(count) * sizeof(T));
    fa_emu::core().stats.copies_in++;
}
template <typename T>
__aicore__ inline void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, uint32_t count)
{
    detail::require_32(uint64_t(count) * sizeof(T), "DataCopy UB->GM");
    dst.check(0, count, "DataCopy UB->GM");
    const T* s = src.data(count, fa_emu::Agent::COPY_OUT, "DataCopy UB->GM");
    fa_emu::note_gm_write(dst.GetPhyAddr(), uint64_t(count) * sizeof(T));
    std::memcpy(static_cast<void*>(dst.GetPhyAddr()), s, uint64_t(count) * sizeof(T));
    fa_emu::core().stats.copies_out++;
}

// GM -> UB, any byte count: block i's blockLen bytes land at a 32-byte boundary
// in UB, followed by pad bytes up to the next boundary (paddingValue elements
// when isPad, else unspecified: the emulator writes a NaN pattern there so a
// kernel that computes on them and writes them back is caught by the tests).
template <typename T>
__aicore__ inline void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src,
                                   const DataCopyExtParams& p, const DataCopyPadExtParams<T>& pad)
{
    static_assert(detail::kPadCopyType<T>, "DataCopyPad: unsupported element type (bfloat16_t: copy as half)");
    const char* what = "DataCopyPad GM->UB";
    if (p.blockLen % sizeof(T) != 0) fa_emu::fail(std::string(what) + ": blockLen is not a whole number of elements");
    const uint64_t left = pad.isPad ? pad.leftPadding * sizeof(T) : 0;
    const uint64_t right = pad.isPad ? pad.rightPadding * sizeof(T) : 0;
    if (left > 32 || right > 32) fa_emu::fail(std::string(what) + ": padding beyond one 32-byte block");
    const uint64_t ubBlock = (left + p.blockLen + right + 31) / 32 * 32;
    const uint64_t ubPitch = ubBlock + uint64_t(p.dstStride) * 32;
    const uint64_t gmPitch = uint64_t(p.blockLen) + p.srcStride;
    const uint64_t ubBytes = p.blockCount ? (p.blockCount - 1) * ubPitch + ubBlock : 0;
    uint8_t* d = reinterpret_cast<uint8_t*>(dst.data(ubBytes / sizeof(T), fa_emu::Agent::COPY_IN, what));
    const uint8_t* s = reinterpret_cast<const uint8_t*>(src.GetPhyAddr());
    for (uint32_t blk = 0; blk < p.blockCount; ++blk) {
        fa_emu::check_gm(s + blk * gmPitch, p.blockLen, what);
        uint8_t* row = d + blk * ubPitch;
        std::memset(row, 0xFF, ubBlock);  // unspecified pad: all-ones = NaN for float types
        if (pad.isPad) {
            T* r = reinterpret_cast<T*>(row);
            for (uint64_t i = 0; i < left / sizeof(T); ++i) r[i] = pad.paddingValue;
            T* tail = reinterpret_cast<T*>(row + left + p.blockLen);
            for (uint64_t i = 0; i < right / sizeof(T); ++i) tail[i] = pad.paddingValue;
        }
        std::memcpy(row + left, s + blk * gmPitch, p.blockLen);
    }
    fa_emu::core().stats.copies_in++;
}

// UB -> GM, any byte count: exactly blockLen bytes per block reach GM.
template <typename T>
__aicore__ inline void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyExtParams& p)
{
    static_assert(detail::kPadCopyType<T>, "DataCopyPad: unsupported element type (bfloat16_t: copy as half)");
    const char* what = "DataCopyPad UB->GM";
    if (p.blockLen % sizeof(T) != 0) fa_emu::fail(std::string(what) + ": blockLen is not a whole number of elements");
    const uint64_t ubBlock = (uint64_t(p.blockLen) + 31) / 32 * 32;
    const uint64_t ubPitch = ubBlock + uint64_t(p.srcStride) * 32;
    const uint64_t gmPitch = uint64_t(p.blockLen) + p.dstStride;
    const uint64_t ubBytes = p.blockCount ? (p.blockCount - 1) * ubPitch + p.blockLen : 0;
    const uint8_t* s = reinterpret_cast<const uint8_t*>(
        src.data((ubBytes + sizeof(T) - 1) / sizeof(T), fa_emu::Agent::COPY_OUT, what));
    uint8_t* d = reinterpret_cast<uint8_t*>(dst.GetPhyAddr());
    for (uint32_t blk = 0; blk < p.blockCount; ++blk) {
        fa_emu::check_gm(d + blk * gmPitch, p.blockLen, what);
        fa_emu::note_gm_write(d + blk * gmPitch, p.blockLen);
        std::memcpy(d + blk * gmPitch, s + blk * ubPitch, p.blockLen);
    }
    fa_emu::core().stats.copies_out++;
}

// ---- vector ops: first `count` elements, one float32 rounding per element -----
namespace detail {

// Reads and writes of one vector op: protocol, range, alignment, pipe order.
template <typename D, typename... S>
void vector_access(const char* what, int32_t count, const LocalTensor<D>& dst, const LocalTensor<S>&... srcs)
{
    if (count < 0) fa_emu::fail(std::string(what) + ": negative count");
    fa_emu::Core& c = fa_emu::core();
    (void)std::initializer_list<int>{(
        srcs.data(count, fa_emu::Agent::VECTOR, what),
        fa_emu::vector_hazard(srcs.addr(), srcs.addr() + uint32_t(count * sizeof(S)), what, "reads"), 0)...};
    dst.data(count, fa_emu::Agent::VECTOR, what);
    const uint32_t lo = dst.addr(), hi = dst.addr() + uint32_t(count * sizeof(D));
    fa_emu::vector_hazard(lo, hi, what, "overwrites");
    c.pending_vector_writes.push_back({lo, hi});
    c.stats.vector_ops++;
}

template <typename T>
T* ptr(const LocalTensor<T>& t) { return reinterpret_cast<T*>(fa_emu::core().ub.data() + t.addr()); }

}  // namespace detail

namespace detail {

// Element arithmetic: float32 (one IEEE rounding), or 32-bit integers modulo 2^32.
template <typename T>
constexpr bool kInt32 = std::is_same<T, int32_t>::value || std::is_same<T, uint32_t>::value;
template <typename T>
T add(T x, T y) { if constexpr (kInt32<T>) return T(uint32_t(x) + uint32_t(y)); else return x + y; }
template <typename T>
T sub(T x, T y) { if constexpr (kInt32<T>) return T(uint32_t(x) - uint32_t(y)); else return x - y; }
template <typename T>
T mul(T x, T y) { if constexpr (kInt32<T>) return T(uint32_t(x) * uint32_t(y)); else return x * y; }

}  // namespace detail

// ARITH: float32, int32_t, uint32_t; FLOAT: float32 only.
#define FA_EMU_TYPES_ARITH(NAME) \
    static_assert(std::is_same<T, float>::value || detail::kInt32<T>, #NAME ": float32 or 32-bit integers");
#define FA_EMU_TYPES_FLOAT(NAME) static_assert(std::is_same<T, float>::value, #NAME ": float32 only");
#define FA_EMU_BINARY(NAME, TYPES, EXPR)                                                                       \
    template <typename T>                                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b,   \
                                int32_t count)                                                                 \
    {                                                                                                          \
        TYPES(NAME)                                                                                            \
        detail::vector_access(#NAME, count, dst, a, b);                                                        \
        T *d = detail::ptr(dst), *x = detail::ptr(a), *y = detail::ptr(b);                                     \
        for (int32_t i = 0; i < count; ++i) d[i] = (EXPR);                                                     \
    }
#define FA_EMU_SCALAR(NAME, TYPES, EXPR)                                                                       \
    template <typename T>                                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& a, const T& k, int32_t count) \
    {                                                                                                          \
        TYPES(NAME)                                                                                            \
        detail::vector_access(#NAME, count, dst, a);                                                           \
        T *d = detail::ptr(dst), *x = detail::ptr(a);                                                          \
        for (int32_t i = 0; i < count; ++i) d[i] = (EXPR);                                                     \
    }
#define FA_EMU_UNARY(NAME, TYPES, EXPR)                                                                        \
    template <typename T>                                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& a, int32_t count)             \
    {                                                                                                          \
        TYPES(NAME)                                                                                            \
        detail::vector_access(#NAME, count, dst, a);                                                           \
        T *d = detail::ptr(dst), *x = detail::ptr(a);                                                          \
        for (int32_t i = 0; i < count; ++i) d[i] = (EXPR);                                                     \
    }
FA_EMU_BINARY(Add, FA_EMU_TYPES_ARITH, detail::add(x[i], y[i]))
FA_EMU_BINARY(Sub, FA_EMU_TYPES_ARITH, detail::sub(x[i], y[i]))
FA_EMU_BINARY(Mul, FA_EMU_TYPES_ARITH, detail::mul(x[i], y[i]))
FA_EMU_BINARY(Div, FA_EMU_TYPES_FLOAT, x[i] / y[i])
FA_EMU_BINARY(Max, FA_EMU_TYPES_FLOAT, std::isnan(x[i]) || std::isnan(y[i]) ? NAN : (x[i] > y[i] ? x[i] : y[i]))
FA_EMU_BINARY(Min, FA_EMU_TYPES_FLOAT, std::isnan(x[i]) || std::isnan(y[i]) ? NAN : (x[i] < y[i] ? x[i] : y[i]))
FA_EMU_SCALAR(Muls, FA_EMU_TYPES_ARITH, detail::mul(x[i], k))
FA_EMU_SCALAR(Adds, FA_EMU_TYPES_ARITH, detail::add(x[i], k))
FA_EMU_SCALAR(Maxs, FA_EMU_TYPES_FLOAT, std::isnan(x[i]) ? NAN : (x[i] > k ? x[i] : k))
FA_EMU_SCALAR(Mins, FA_EMU_TYPES_FLOAT, std::isnan(x[i]) ? NAN : (x[i] < k ? x[i] : k))
FA_EMU_UNARY(Sqrt, FA_EMU_TYPES_FLOAT, std::sqrt(x[i]))
FA_EMU_UNARY(Abs, FA_EMU_TYPES_FLOAT, std::fabs(x[i]))
#undef FA_EMU_BINARY
#undef FA_EMU_SCALAR
#undef FA_EMU_UNARY

// Bitwise And / Or: 16-bit integer lanes (wider data is processed through a
// ReinterpretCast to uint16_t with twice the count).
#define FA_EMU_BITWISE(NAME, OP)                                                                               \
    template <typename T>                                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& a, const LocalTensor<T>& b,   \
                                int32_t count)                                                                 \
    {                                                                                                          \
        static_assert(std::is_same<T, uint16_t>::value || std::is_same<T, int16_t>::value,                     \
                      #NAME ": 16-bit integer lanes only");                                                    \
        detail::vector_access(#NAME, count, dst, a, b);                                                        \
        T *d = detail::ptr(dst), *x = detail::ptr(a), *y = detail::ptr(b);                                     \
        for (int32_t i = 0; i < count; ++i) d[i] = static_cast<T>(x[i] OP y[i]);                               \
    }
FA_EMU_BITWISE(And, &)
FA_EMU_BITWISE(Or, |)
#undef FA_EMU_BITWISE

// Shifts by a scalar: logical for unsigned lanes, arithmetic for signed ones.
template <typename T>
__aicore__ inline void ShiftRight(const LocalTensor<T>& dst, const LocalTensor<T>& a, const T& k, int32_t count)
{
    static_assert(std::is_integral<T>::value && (sizeof(T) == 2 || sizeof(T) == 4), "ShiftRight: 16/32-bit integers");
    detail::vector_access("ShiftRight", count, dst, a);
    T *d = detail::ptr(dst), *x = detail::ptr(a);
    for (int32_t i = 0; i < count; ++i) d[i] = static_cast<T>(x[i] >> k);
}
template <typename T>
__aicore__ inline void ShiftLeft(const LocalTensor<T>& dst, const LocalTensor<T>& a, const T& k, int32_t count)
{
    static_assert(std::is_integral<T>::value && (sizeof(T) == 2 || sizeof(T) == 4), "ShiftLeft: 16/32-bit integers");
    detail::vector_access("ShiftLeft", count, dst, a);
    T *d = detail::ptr(dst), *x = detail::ptr(a);
    using U = typename std::make_unsigned<T>::type;
    for (int32_t i = 0; i < count; ++i) d[i] = static_cast<T>(static_cast<U>(x[i]) << k);
}

// dst[i] = first + i (int32).
template <typename T>
__aicore__ inline void CreateVecIndex(const LocalTensor<T>& dst, const T& first, int32_t count)
{
    static_assert(std::is_same<T, int32_t>::value, "CreateVecIndex: the emulator implements int32_t");
    detail::vector_access<T>("CreateVecIndex", count, dst);
    T* d = detail::ptr(dst);
    for (int32_t i = 0; i < count; ++i) d[i] = detail::add(first, static_cast<T>(i));
}

// Duplicate: fill with a scalar.
template <typename T>
__aicore__ inline void Duplicate(const LocalTensor<T>& dst, const T& value, int32_t count)
{
    detail::vector_access<T>("Duplicate", count, dst);
    T* d = detail::ptr(dst);
    for (int32_t i = 0; i < count; ++i) d[i] = value;
}

// ---- Cast ---------------------------------------------------------------------
enum class RoundMode { CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD };

namespace detail {

// float -> 16-bit float (bits) in `mode`, from the round-to-nearest-even result
// and its neighbour on the other side of x. toF decodes bits, rne encodes.
template <class ToF, class Rne>
uint16_t narrow(float x, RoundMode mode, ToF toF, Rne rne)
{
    const uint16_t near = rne(x);
    if (std::isnan(x) || toF(near) == x) return near;  // exact (incl. inf), or NaN
    // Neighbour in value order: one step away from `near` towards x.
    auto step = [](uint16_t b, bool up) -> uint16_t {
        const bool neg = b & 0x8000;
        if ((b & 0x7FFF) == 0) return up ? 0x0001 : 0x8001;  // from +-0
        return static_cast<uint16_t>(up != neg ? b + 1 : b - 1);
    };
    const bool nearAbove = toF(near) > x;
    const uint16_t lo = nearAbove ? step(near, false) : near;
    const uint16_t hi = nearAbove ? near : step(near, true);
    const float flo = toF(lo), fhi = toF(hi);
    switch (mode) {
        case RoundMode::CAST_NONE:  // "CAST_RINT when the conversion loses precision"
        case RoundMode::CAST_RINT: return near;
        case RoundMode::CAST_FLOOR: return lo;
        case RoundMode::CAST_CEIL: return hi;
        case RoundMode::CAST_TRUNC: return x > 0 ? lo : hi;
        case RoundMode::CAST_ROUND: {  // nearest, ties away from zero
            const double dl = double(x) - flo, dh = double(fhi) - x;
            if (dl != dh) return dl < dh ? lo : hi;
            return x > 0 ? hi : lo;
        }
        case RoundMode::CAST_ODD: return (lo & 1) ? lo : hi;  // von Neumann: the odd neighbour
    }
    return near;
}

}  // namespace detail

// Supported pairs and modes (Ascend C Cast, A2 vector cores): half/bfloat16_t ->
// float: CAST_NONE (exact); float -> half: every mode; float -> bfloat16_t:
// CAST_RINT/FLOOR/CEIL/ROUND/TRUNC; int32_t -> float (exact below 2^24).
template <typename D, typename S>
__aicore__ inline void Cast(const LocalTensor<D>& dst, const LocalTensor<S>& src, RoundMode mode, int32_t count)
{
    detail::vector_access("Cast", count, dst, src);
    D* d = detail::ptr(dst);
    const S* s = detail::ptr(src);
    if constexpr (std::is_same<D, float>::value && (std::is_same<S, half>::value || std::is_same<S, bfloat16_t>::value)) {
        if (mode != RoundMode::CAST_NONE) fa_emu::fail("Cast 16-bit -> float: only CAST_NONE (the conversion is exact)");
        for (int32_t i = 0; i < count; ++i) d[i] = static_cast<float>(s[i]);
    } else if constexpr (std::is_same<D, float>::value && std::is_same<S, int32_t>::value) {
        for (int32_t i = 0; i < count; ++i) {
            const float f = static_cast<float>(s[i]);  // round to nearest even
            if (mode != RoundMode::CAST_NONE && mode != RoundMode::CAST_RINT && static_cast<int64_t>(f) != s[i])
                fa_emu::fail("Cast int32 -> float: only CAST_NONE/CAST_RINT are emulated for inexact values");
            d[i] = f;
        }
    } else if constexpr (std::is_same<S, float>::value && std::is_same<D, half>::value) {
        for (int32_t i = 0; i < count; ++i)
            d[i].bits = detail::narrow(s[i], mode, fa_emu::half_bits_to_float, fa_emu::float_to_half_rne);
    } else if constexpr (std::is_same<S, float>::value && std::is_same<D, bfloat16_t>::value) {
        if (mode == RoundMode::CAST_NONE || mode == RoundMode::CAST_ODD)
            fa_emu::fail("Cast float -> bfloat16_t: CAST_NONE and CAST_ODD are not supported");
        for (int32_t i = 0; i < count; ++i)
            d[i].bits = detail::narrow(s[i], mode, fa_emu::bf16_bits_to_float, fa_emu::float_to_bf16_rne);
    } else {
        static_assert(sizeof(D) == 0, "Cast: the emulator implements float <-> half/bfloat16_t only");
    }
}

}  // namespace AscendC

#endif  // FA_EMU_KERNEL_OPERATOR_H
