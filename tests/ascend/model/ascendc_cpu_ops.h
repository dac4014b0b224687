// Element-wise CPU stand-ins for the few Ascend C vector ops, queue-free
// LocalTensor handles and barriers that kernels/ascend/op_kernel/adamw_tile_math.h
// uses, so that header compiles unchanged for the CPU model. Each op is one
// IEEE float32 operation per element (build with -ffp-contract=off, so nothing
// is fused that the vector unit would round separately). Every access is bounds
// checked against the UB sub-buffer the handle covers.
#ifndef FA_ASCENDC_CPU_OPS_H
#define FA_ASCENDC_CPU_OPS_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fa_cpu {

enum pipe_t { PIPE_V };
template <pipe_t>
inline void PipeBarrier() {}

enum class RoundMode { CAST_NONE, CAST_RINT };

struct half_t { uint16_t bits; };      // float16 storage
struct bfloat16_t { uint16_t bits; };  // bfloat16 storage

// A view of `size` elements of emulated Unified Buffer.
template <class T>
struct LocalTensor {
    T* data;
    uint32_t size;
    T& at(int32_t i) const
    {
        if (i < 0 || static_cast<uint32_t>(i) >= size) {
            std::fprintf(stderr, "UB access %d outside a %u-element buffer\n", i, size);
            std::abort();
        }
        return data[i];
    }
};

template <class T>
void check_count(const LocalTensor<T>& t, int32_t n) { if (n > 0) t.at(n - 1); }

#define FA_UNARY(NAME, EXPR)                                                            \
    inline void NAME(const LocalTensor<float>& d, const LocalTensor<float>& s, int32_t n) \
    {                                                                                   \
        check_count(d, n); check_count(s, n);                                           \
        for (int32_t i = 0; i < n; ++i) { const float x = s.data[i]; d.data[i] = (EXPR); } \
    }
#define FA_SCALAR(NAME, EXPR)                                                                      \
    inline void NAME(const LocalTensor<float>& d, const LocalTensor<float>& s, float k, int32_t n) \
    {                                                                                              \
        check_count(d, n); check_count(s, n);                                                      \
        for (int32_t i = 0; i < n; ++i) { const float x = s.data[i]; d.data[i] = (EXPR); }         \
    }
#define FA_BINARY(NAME, EXPR)                                                                                 \
    inline void NAME(const LocalTensor<float>& d, const LocalTensor<float>& a, const LocalTensor<float>& b, \
                     int32_t n)                                                                              \
    {                                                                                                         \
        check_count(d, n); check_count(a, n); check_count(b, n);                                              \
        for (int32_t i = 0; i < n; ++i) { const float x = a.data[i], y = b.data[i]; d.data[i] = (EXPR); }    \
    }
FA_UNARY(Sqrt, std::sqrt(x))
FA_SCALAR(Muls, x * k)
FA_SCALAR(Adds, x + k)
FA_BINARY(Add, x + y)
FA_BINARY(Sub, x - y)
FA_BINARY(Mul, x * y)
FA_BINARY(Div, x / y)
#undef FA_UNARY
#undef FA_SCALAR
#undef FA_BINARY

inline float half_to_float(uint16_t h) { _Float16 v; std::memcpy(&v, &h, 2); return static_cast<float>(v); }
inline uint16_t float_to_half_rne(float f) { _Float16 v = static_cast<_Float16>(f); uint16_t h; std::memcpy(&h, &v, 2); return h; }
inline float bf16_to_float(uint16_t b) { uint32_t u = uint32_t(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline uint16_t float_to_bf16_rne(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);  // stay a quiet NaN
    return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

// 16-bit -> float32 is exact (the kernel passes CAST_NONE); float32 -> 16-bit
// must be round to nearest even (CAST_RINT), the only mode the kernel uses.
inline void Cast(const LocalTensor<float>& d, const LocalTensor<half_t>& s, RoundMode, int32_t n)
{
    check_count(d, n); check_count(s, n);
    for (int32_t i = 0; i < n; ++i) d.data[i] = half_to_float(s.data[i].bits);
}
inline void Cast(const LocalTensor<float>& d, const LocalTensor<bfloat16_t>& s, RoundMode, int32_t n)
{
    check_count(d, n); check_count(s, n);
    for (int32_t i = 0; i < n; ++i) d.data[i] = bf16_to_float(s.data[i].bits);
}
inline void Cast(const LocalTensor<half_t>& d, const LocalTensor<float>& s, RoundMode m, int32_t n)
{
    if (m != RoundMode::CAST_RINT) std::abort();
    check_count(d, n); check_count(s, n);
    for (int32_t i = 0; i < n; ++i) d.data[i].bits = float_to_half_rne(s.data[i]);
}
inline void Cast(const LocalTensor<bfloat16_t>& d, const LocalTensor<float>& s, RoundMode m, int32_t n)
{
    if (m != RoundMode::CAST_RINT) std::abort();
    check_count(d, n); check_count(s, n);
    for (int32_t i = 0; i < n; ++i) d.data[i].bits = float_to_bf16_rne(s.data[i]);
}

}  // namespace fa_cpu

#endif  // FA_ASCENDC_CPU_OPS_H
