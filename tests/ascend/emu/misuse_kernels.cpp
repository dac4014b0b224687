// Small planted kernels for tests/ascend/test_emu_protocol.py: one correct
// CopyIn -> Compute -> CopyOut kernel, and one kernel per misuse of the Ascend C
// protocol that the emulator must refuse. fa_misuse(name) runs one on a 256-float
// GM buffer and returns 0 or 1 with the emulator's message.
#include <cstring>
#include <string>

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

}  // extern "C"
