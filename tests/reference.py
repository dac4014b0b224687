"""The float64 NumPy model of one AdamW step (shared/reference/semantics.md), and
dtype helpers. Every backend's tests compare against this one definition.

bfloat16 arrays are handled as uint16 bit patterns (NumPy has no bfloat16).
"""
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


def adamw_step64(p, g, m, v, lr, weight_decay, step, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step in float64. p, g, m, v are float64 arrays; `step` is t (1 first).

    The scalars are rounded to float32 first, as MindFormers holds them: betas, lr,
    weight decay, eps and the bias corrections 1 - beta^t; 1 - beta is then exact.
    """
    b1 = float(np.float32(beta1))
    b2 = float(np.float32(beta2))
    lr = float(np.float32(lr))
    weight_decay = float(np.float32(weight_decay))
    eps = float(np.float32(eps))
    decayed = p * (1.0 - lr * weight_decay)
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    bc1, bc2 = bias_corrections(b1, b2, step)
    p = decayed - (lr / bc1) * m / (np.sqrt(v / bc2) + eps)
    return p, m, v


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
