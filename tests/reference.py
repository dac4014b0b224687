"""The float64 NumPy model of one AdamW step (shared/reference/semantics.md) with
every option of docs/kernel-interface.md, and dtype helpers. Every backend's tests
compare against this one definition.

How the options map onto the model:
- grad_scale / grad_clip: two float32 multiplies of the gradient, in that order
  (scaled_grad), then the model in float64; maximize is grad_scale negated.
- amsgrad: adamw_step64(..., vmax=...) (torch.optim.AdamW's meaning).
- fp32 master weights: the model updates the float32 master; the 16-bit parameter
  is its round-to-nearest-even copy, from_f64(master, dtype).
- bfloat16 states: the model's states stored round-to-nearest-even,
  from_f64(state, "bfloat16"); the update itself uses the unrounded states.
- stochastic rounding: not a float64 quantity but exact bits: stochastic_round of
  the kernel's float32 result with the random bits sr_bits(sr_key(seed, t), index)
  (kernels/common/rounding.h in NumPy).
- the norm pass (pass 1 of the whole step): grad_sumsq64.

bfloat16 arrays are handled as uint16 bit patterns (NumPy has no bfloat16).
"""
import math

import numpy as np

DTYPES = ("float32", "float16", "bfloat16")


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even; every NaN becomes 0x7fc0, as
    MindSpore's Cast writes it (and so do the kernels)."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, np.uint16(0x7FC0), rounded)


def to_f64(a, dtype):
    """A parameter/gradient array of `dtype` (bf16 as uint16 bits) as float64."""
    if dtype == "bfloat16":
        return bf16_bits_to_f32(a).astype(np.float64)
    return np.asarray(a).astype(np.float64)


def from_f64(x, dtype):
    """float64 values rounded to `dtype` (bf16 as uint16 bits) the way the kernels store them."""
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    if dtype == "bfloat16":
        return f32_to_bf16_bits(x32)
    return x32.astype(dtype)


def random_param(rng, n, dtype):
    x = rng.standard_normal(n).astype(np.float32)
    return from_f64(x, dtype)


def scaled_grad(g, grad_scale=1.0, grad_clip=1.0):
    """The gradient the update uses: (g * grad_scale) * grad_clip, two float32 multiplies
    (g holds float32 values), as float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        g32 = np.asarray(g, np.float64).astype(np.float32) * np.float32(grad_scale)
        return (g32 * np.float32(grad_clip)).astype(np.float64)


def adamw_step64(p, g, m, v, lr, weight_decay, step, beta1=0.9, beta2=0.999, eps=1e-8, *,
                 vmax=None, grad_scale=1.0, grad_clip=1.0):
    """One step in float64. p, g, m, v are float64 arrays; `step` is t (1 first).

    The scalars are rounded to float32 first, as MindFormers holds them: betas, lr,
    weight decay, eps and the bias corrections 1 - beta^t; 1 - beta is then exact.
    With amsgrad pass `vmax` (max_exp_avg_sq): it becomes max(vmax, v), feeds the
    denominator and is returned fourth. grad_scale / grad_clip: see scaled_grad.
    """
    if (grad_scale, grad_clip) != (1.0, 1.0):
        g = scaled_grad(g, grad_scale, grad_clip)
    b1 = float(np.float32(beta1))
    b2 = float(np.float32(beta2))
    lr = float(np.float32(lr))
    weight_decay = float(np.float32(weight_decay))
    eps = float(np.float32(eps))
    decayed = p * (1.0 - lr * weight_decay)
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    second = v
    if vmax is not None:
        vmax = second = np.maximum(vmax, v)  # NaN propagates, as torch.maximum
    bc1, bc2 = bias_corrections(b1, b2, step)
    p = decayed - (lr / bc1) * m / (np.sqrt(second / bc2) + eps)
    return (p, m, v) if vmax is None else (p, m, v, vmax)


def bias_corrections(beta1, beta2, step):
    """1 - beta^t as MindFormers holds them: float32 quantities (a float32 Pow op), like the
    betas, lr and eps; everything else is then computed in float64."""
    bc1 = float(np.float32(1.0) - np.float32(beta1) ** np.float32(step))
    bc2 = float(np.float32(1.0) - np.float32(beta2) ** np.float32(step))
    return bc1, bc2


def update_magnitude64(m_abs, v, lr, step, beta1=0.9, beta2=0.999, eps=1e-8):
    """The size of the update's terms: the update with exp_avg replaced by `m_abs`, the
    running average of |g| (b1*m_abs + (1-b1)*|g|). Where the gradients cancel in exp_avg,
    its float32 rounding error follows m_abs, not exp_avg itself."""
    bc1, bc2 = bias_corrections(float(np.float32(beta1)), float(np.float32(beta2)), step)
    return (float(np.float32(lr)) / bc1) * m_abs / (np.sqrt(v / bc2) + float(np.float32(eps)))


def rel_err(actual, expected):
    """Norm-wise relative error of `actual` against the float64 `expected`."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    denom = np.linalg.norm(expected)
    return np.linalg.norm(actual - expected) / (denom if denom > 0 else 1.0)


def rounding_excess(stored, expected64, scale64, dtype):
    """How far a 16-bit result is from the float64 model, in units of what one rounding
    allows: <= 1 means "within one rounding of the parameter dtype".

    The kernels compute in float32 and then round once, to nearest, to the parameter
    dtype, so the allowance is half an ulp of that dtype at the result (one rounding;
    truncation or a double rounding would exceed it) plus the float32 error of the
    computation and of the float32 states, 32 float32 ulps of its largest intermediate `scale64`
    (|p * (1 - lr*wd)| + the update's magnitude, see update_magnitude64). The second term
    matters only where the decayed parameter and the update nearly cancel and the result is
    far below both.
    """
    expected64 = np.asarray(expected64, np.float64)
    if dtype == "bfloat16":
        values = bf16_bits_to_f32(stored).astype(np.float64)
        magnitude = np.maximum(np.abs(expected64), 2.0**-126)
        spacing = 2.0 ** (np.floor(np.log2(magnitude)) - 7)
    else:
        values = np.asarray(stored, np.float16).astype(np.float64)
        spacing = np.spacing(np.abs(expected64).astype(np.float16)).astype(np.float64)
    allowed = 0.5 * spacing + 32 * 2.0**-24 * np.abs(scale64)
    both_nan = np.isnan(values) & np.isnan(expected64)
    excess = np.abs(values - expected64) / allowed
    return np.where(both_nan, 0.0, np.where(values == expected64, 0.0, excess))


# ---------------------------------------------------------------- stochastic rounding
# kernels/common/rounding.h in NumPy: the exact bits every backend must produce.
# Integers are held in uint64 (or Python ints) and reduced to 32 bits after each
# multiply, which is C's uint32 arithmetic.
_M32 = 0xFFFFFFFF


def _fmix32(h):
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def sr_key(seed, step):
    """fa_sr_key: once per call, from the 64-bit seed and the step t."""
    seed, step = int(seed) & (2**64 - 1), int(step) & _M32
    mixed = _fmix32((step * 0x9E3779B9 + 0x7F4A7C15) & _M32)
    return _fmix32((seed & _M32) ^ _fmix32((seed >> 32) ^ mixed))


def sr_bits(key, index):
    """fa_sr_bits: 32 random bits for each element index (its position in the group's
    padded flat state, plus the call's index base) as uint64 values < 2^32."""
    index = np.asarray(index, np.uint64)
    lo, hi = index & np.uint64(_M32), index >> np.uint64(32)
    return _fmix32(((lo ^ np.uint64(key)) + hi * np.uint64(0x9E3779B9)) & np.uint64(_M32))


def stochastic_round(x32, random, dtype):
    """float32 values -> 16-bit bits (uint16), rounded stochastically with `random`
    (sr_bits) as the kernels do. bfloat16: add the low 16 random bits, truncate.
    float16: the neighbour above |x| with probability (|x| - lo) / (hi - lo), against a
    24-bit uniform (random >> 8) * 2^-24, all in float32; values that round to infinity
    stay infinite and exact values stay. NaN: 0x7fc0 (bf16), sign | 0x7e00 (fp16)."""
    x32 = np.asarray(x32, np.float32)
    random = np.asarray(random, np.uint64)
    nan = np.isnan(x32)
    bits = x32.view(np.uint32).astype(np.uint64)
    if dtype == "bfloat16":
        out = (bits + (random & np.uint64(0xFFFF))) >> np.uint64(16)
        return np.where(nan, 0x7FC0, out).astype(np.uint16)
    with np.errstate(all="ignore"):
        ax = np.abs(x32)
        rne = ax.astype(np.float16).view(np.uint16)
        r = rne.view(np.float16).astype(np.float32)
        lo = np.where(r > ax, rne - np.uint16(1), rne).astype(np.uint16)
        flo = lo.view(np.float16).astype(np.float32)
        fhi = (lo + np.uint16(1)).astype(np.uint16).view(np.float16).astype(np.float32)
        frac = (ax - flo) / (fhi - flo)
        u = (random >> np.uint64(8)).astype(np.float32) * np.float32(2.0**-24)
        mag = np.where((rne >= 0x7C00) | (r == ax), rne, np.where(u < frac, lo + np.uint16(1), lo))
    sign = (bits >> np.uint64(16)).astype(np.uint16) & np.uint16(0x8000)
    return np.where(nan, sign | np.uint16(0x7E00), sign | mag.astype(np.uint16)).astype(np.uint16)


# ---------------------------------------------------------------- the norm pass

def grad_sumsq64(grads64, grad_scale=1.0):
    """Pass 1 of the whole step: (sum of squares of the unscaled gradients, any NaN/Inf).
    Each gradient is unscaled as float32(g * grad_scale); its square is exact in float64
    (48 significant bits) and math.fsum adds them exactly, so the model is the correctly
    rounded sum."""
    with np.errstate(over="ignore", invalid="ignore"):
        u = np.concatenate([scaled_grad(g, grad_scale) for g in grads64])
        return math.fsum(u * u), bool(not np.isfinite(u).all())
