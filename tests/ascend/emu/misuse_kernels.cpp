// Small planted kernels for tests/ascend/test_emu_protocol.py: one correct
// CopyIn -> Compute -> CopyOut kernel, and one kernel per misuse of the Ascend C
// protocol that the emulator must refuse. fa_misuse(name) runs one on a 256-float
// GM buffer and returns 0 or 1 with the emulator's message.
#include <cstring>
#include <string>
#include <vector>

#include "kernel_operator.h"
#include "launcher.h"

using namespace AscendC;

namespace {

constexpr int32_t kN = 64;  // floats per tile: 256 bytes
float g_gm[256];

struct Kernel {
    TPipe pipe;
    TQue<QuePosition::VECIN, 2> in;
    TQue<QuePosition::VECOUT, 2> out;
    TBuf<QuePosition::VECCALC> calc;
    GlobalTensor<float> gm;

    Kernel(uint32_t inBytes = kN * 4)
    {
        gm.SetGlobalBuffer(g_gm, 256);
        pipe.InitBuffer(in, 2, inBytes);
        pipe.InitBuffer(out, 2, kN * 4);
        pipe.InitBuffer(calc, kN * 4);
    }
    LocalTensor<float> CopyIn(uint32_t count = kN)
    {
        LocalTensor<float> t = in.AllocTensor<float>();
        DataCopy(t, gm, count);
        return t;
    }
    void CopyOut(const LocalTensor<float>& y)
    {
        DataCopyPad(gm[128], y, DataCopyExtParams{1, kN * 4, 0, 0, 0});
    }
};

// y = 2 * x + x, written to gm[128..192).
void correct()
{
    Kernel k;
    k.in.EnQue(k.CopyIn());
    LocalTensor<float> x = k.in.DeQue<float>();
    LocalTensor<float> y = k.out.AllocTensor<float>();
    LocalTensor<float> t = k.calc.Get<float>();
    Muls(t, x, 2.0f, kN);
    PipeBarrier<PIPE_V>();
    Add(y, t, x, kN);
    PipeBarrier<PIPE_V>();
    k.out.EnQue(y);
    k.in.FreeTensor(x);
    LocalTensor<float> yo = k.out.DeQue<float>();
    k.CopyOut(yo);
    k.out.FreeTensor(yo);
}

void read_before_enque()  // a vector op on a VECIN tensor straight after its copy-in
{
    Kernel k;
    LocalTensor<float> x = k.CopyIn();
    Muls(k.calc.Get<float>(), x, 2.0f, kN);
}

void read_while_queued()  // EnQue'd but never DeQue'd
{
    Kernel k;
    LocalTensor<float> x = k.CopyIn();
    k.in.EnQue(x);
    Muls(k.calc.Get<float>(), x, 2.0f, kN);
}

void copy_out_before_deque()  // a VECOUT tensor copied out without EnQue/DeQue
{
    Kernel k;
    LocalTensor<float> y = k.out.AllocTensor<float>();
    Duplicate(y, 1.0f, kN);
    k.CopyOut(y);
}

void depth_exceeded()  // two EnQue on a depth-1 queue
{
    TPipe pipe;
    TQue<QuePosition::VECIN, 1> q;
    pipe.InitBuffer(q, 2, kN * 4);
    LocalTensor<float> a = q.AllocTensor<float>(), b = q.AllocTensor<float>();
    q.EnQue(a);
    q.EnQue(b);
}

void alloc_exhausted()  // a third AllocTensor from two buffers
{
    Kernel k;
    k.in.AllocTensor<float>();
    k.in.AllocTensor<float>();
    k.in.AllocTensor<float>();
}

void double_free()
{
    Kernel k;
    LocalTensor<float> x = k.CopyIn();
    k.in.EnQue(x);
    x = k.in.DeQue<float>();
    k.in.FreeTensor(x);
    k.in.FreeTensor(x);
}

void use_after_free()
{
    Kernel k;
    LocalTensor<float> x = k.CopyIn();
    k.in.EnQue(x);
    x = k.in.DeQue<float>();
    k.in.FreeTensor(x);
    Muls(k.calc.Get<float>(), x, 2.0f, kN);
}

void leak()  // returns holding a queue buffer
{
    Kernel k;
    LocalTensor<float> x = k.CopyIn();
    k.in.EnQue(x);
}

void vector_outside_buffer()  // 65 elements of a 64-element buffer
{
    Kernel k;
    LocalTensor<float> t = k.calc.Get<float>();
    Duplicate(t, 0.0f, kN + 1);
}

void copy_outside_buffer()  // a 300-byte copy into a 256-byte buffer
{
    Kernel k;
    LocalTensor<float> x = k.in.AllocTensor<float>();
    DataCopyPad(x, k.gm, DataCopyExtParams{1, 300, 0, 0, 0}, DataCopyPadExtParams<float>{false, 0, 0, 0});
}

void ub_overflow()  // two 100 KiB queue buffers in a 192 KiB UB
{
    Kernel k(100 * 1024);
}

void copy_not_32_bytes()  // DataCopy of 7 floats (28 bytes)
{
    Kernel k;
    k.CopyIn(7);
}

void unaligned_operand()  // a vector op starting 12 bytes into a buffer
{
    Kernel k;
    LocalTensor<float> t = k.calc.Get<float>();
    Duplicate(t[3], 0.0f, 8);
}

void missing_barrier()  // reads the result of the previous vector op without PipeBarrier<PIPE_V>
{
    Kernel k;
    LocalTensor<float> t = k.calc.Get<float>();
    LocalTensor<float> y = k.out.AllocTensor<float>();
    Duplicate(t, 1.0f, kN);
    Adds(y, t, 1.0f, kN);
}

void gm_outside()  // copy-in past the end of the GM buffer
{
    Kernel k;
    LocalTensor<float> x = k.in.AllocTensor<float>();
    DataCopyPad(x, k.gm[250], DataCopyExtParams{1, 40, 0, 0, 0}, DataCopyPadExtParams<float>{false, 0, 0, 0});
}

void bad_cast_mode()  // float -> bfloat16_t has no CAST_ODD
{
    Kernel k;
    LocalTensor<float> t = k.calc.Get<float>();
    Duplicate(t, 1.0f, kN);
    PipeBarrier<PIPE_V>();
    LocalTensor<bfloat16_t> y = k.out.AllocTensor<bfloat16_t>();
    Cast(y, t, RoundMode::CAST_ODD, kN);
}

struct Entry {
    const char* name;
    void (*fn)();
};
const Entry kKernels[] = {
    {"correct", correct},
    {"read_before_enque", read_before_enque},
    {"read_while_queued", read_while_queued},
    {"copy_out_before_deque", copy_out_before_deque},
    {"depth_exceeded", depth_exceeded},
    {"alloc_exhausted", alloc_exhausted},
    {"double_free", double_free},
    {"use_after_free", use_after_free},
    {"leak", leak},
    {"vector_outside_buffer", vector_outside_buffer},
    {"copy_outside_buffer", copy_outside_buffer},
    {"ub_overflow", ub_overflow},
    {"copy_not_32_bytes", copy_not_32_bytes},
    {"unaligned_operand", unaligned_operand},
    {"missing_barrier", missing_barrier},
    {"gm_outside", gm_outside},
    {"bad_cast_mode", bad_cast_mode},
};

}  // namespace

extern "C" {

// Runs kernel `name` as a one-block launch with a 192 KiB UB. gm_io: 256 floats
// copied in before and out after. Returns 0, 1 with the message, or 2 for an
// unknown name.
int fa_misuse(const char* name, float* gm_io, char* err, int err_len)
{
    for (const Entry& e : kKernels) {
        if (std::strcmp(e.name, name) != 0) continue;
        std::memcpy(g_gm, gm_io, sizeof g_gm);
        fa_emu::begin_launch(192 * 1024);
        fa_emu::register_gm(g_gm, sizeof g_gm, "gm");
        const std::string msg = fa_emu::launch(1, e.fn);
        std::memcpy(gm_io, g_gm, sizeof g_gm);
        return fa_emu::report(msg, err, err_len);
    }
    return 2;
}

// Cast of `n` (<= 4096) floats to half and bfloat16_t in round mode `mode`
// (RoundMode's value), as a kernel: GM -> UB -> Cast -> GM. bf16 is skipped for
// the modes it does not support (CAST_NONE, CAST_ODD). Returns 0 or 1 + message.
int fa_cast(const float* in, int32_t n, int mode, uint16_t* out_half, uint16_t* out_bf16, char* err, int err_len)
{
    std::vector<float> src(in, in + n);
    std::vector<half> h(n);
    std::vector<bfloat16_t> b(n);
    fa_emu::begin_launch(192 * 1024);
    fa_emu::register_gm(src.data(), n * 4, "in");
    fa_emu::register_gm(h.data(), n * 2, "half");
    fa_emu::register_gm(b.data(), n * 2, "bf16");
    const RoundMode rm = static_cast<RoundMode>(mode);
    const bool bf16 = rm != RoundMode::CAST_NONE && rm != RoundMode::CAST_ODD;
    const std::string msg = fa_emu::launch(1, [&] {
        TPipe pipe;
        TQue<QuePosition::VECIN, 1> qin;
        TQue<QuePosition::VECOUT, 1> qout;
        pipe.InitBuffer(qin, 1, 4096 * 4);
        pipe.InitBuffer(qout, 1, 4096 * 4);
        GlobalTensor<float> g;
        GlobalTensor<half> gh;
        GlobalTensor<half> gb;  // bfloat16 bits, moved as half (DataCopyPad has no bfloat16_t)
        g.SetGlobalBuffer(src.data(), n);
        gh.SetGlobalBuffer(h.data(), n);
        gb.SetGlobalBuffer(reinterpret_cast<half*>(b.data()), n);
        LocalTensor<float> x = qin.AllocTensor<float>();
        DataCopyPad(x, g, DataCopyExtParams{1, static_cast<uint32_t>(n * 4), 0, 0, 0},
                    DataCopyPadExtParams<float>{false, 0, 0, 0});
        qin.EnQue(x);
        x = qin.DeQue<float>();
        LocalTensor<uint8_t> y = qout.AllocTensor<uint8_t>();
        Cast(y.ReinterpretCast<half>(), x, rm, n);
        if (bf16) Cast(y[4096 * 2].ReinterpretCast<bfloat16_t>(), x, rm, n);
        PipeBarrier<PIPE_V>();
        qout.EnQue(y);
        qin.FreeTensor(x);
        y = qout.DeQue<uint8_t>();
        DataCopyPad(gh, y.ReinterpretCast<half>(), DataCopyExtParams{1, static_cast<uint32_t>(n * 2), 0, 0, 0});
        if (bf16)
            DataCopyPad(gb, y[4096 * 2].ReinterpretCast<half>(),
                        DataCopyExtParams{1, static_cast<uint32_t>(n * 2), 0, 0, 0});
        qout.FreeTensor(y);
    });
    for (int32_t i = 0; i < n; ++i) {
        out_half[i] = h[i].bits;
        out_bf16[i] = b[i].bits;
    }
    return fa_emu::report(msg, err, err_len);
}

}  // extern "C"
