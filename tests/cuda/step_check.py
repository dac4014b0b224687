"""Compares one AdamW step of a group (any variant of docs/kernel-interface.md)
against the float64 model (tests/reference.py). Shared by the CPU-emulation
tests and scripts/gpu_check.py.

A step is described by a StepSpec; its arrays by a dict `arrays` with keys
p, g (lists, one array per tensor, in their dtypes, bfloat16 as uint16 bits)
and m, v, x (max_exp_avg_sq, amsgrad only), w (float32 master, kMaster only):
the group's flat states in the padded layout, float32 or bfloat16 bits.

Criteria: NaN and Inf exactly where the model has them; float32 results,
element by element, within 1e-6 of the size of the operands they are rounded
against (so a single wrong or unwritten element fails); bfloat16 states within
half a bfloat16 ulp more; float16/bfloat16 params within one rounding (half an
ulp, reference.rounding_excess) plus float32's error where p*(1-lr*wd) and the
update cancel, or within one ulp with stochastic rounding; a 16-bit param with
a master is exactly its master rounded to nearest even. Pad elements of the
flat states are never written.

No norm-wise bound relative to the result: float32's error follows the operands,
and a result can cancel far below them. With a 1-element tensor,
exp_avg = b1*m + (1-b1)*g fell below 6% of its operands in about 1.3% of draws
and a 1e-6 norm-wise relative bound then failed (issue 10's flaky CUDA test:
test_one_tensor_every_size[1-*], 76 of 6,000 seeds). The per-element bound
against the operands holds for every draw: the float32 error of exp_avg is at
most 2 ulps of its operands, of exp_avg_sq 3, and 1e-6 is 16.8 ulps.
"""
import sys
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference  # noqa: E402

AMSGRAD, MASTER, STOCHASTIC, BF16_STATE = 1, 2, 4, 8  # VariantFlag (kernels/common/adamw_math.h)


class StepSpec(NamedTuple):
    dtypes: Sequence[str]        # each param's
    grad_dtypes: Sequence[str]   # each gradient's: the param's or float32
    offsets: Sequence[int]       # each tensor's state offset (padded layout)
    lr: float
    weight_decay: float
    step: int
    hyper: Sequence[float]       # beta1, beta2, eps
    flags: int = 0
    grad_scale: float = 1.0
    grad_clip: float = 1.0


def state_dtype(flags):
    return "bfloat16" if flags & BF16_STATE else "float32"


def _f32(x):
    return float(np.float32(x))


def model_step(spec, before):
    """The model's results in float64 (reference.adamw_step64 with the spec's options,
    tensor by tensor): dict p (list), m, v, x, w (flat, padded; pads and unused slices
    keep their input values)."""
    sd = state_dtype(spec.flags)
    m = reference.to_f64(before["m"], sd)
    v = reference.to_f64(before["v"], sd)
    x = reference.to_f64(before["x"], sd) if spec.flags & AMSGRAD else None
    w = before["w"].astype(np.float64) if spec.flags & MASTER else None
    out_p = []
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf inputs
        for p, g, dt, gdt, o in zip(before["p"], before["g"], spec.dtypes, spec.grad_dtypes, spec.offsets):
            s = slice(o, o + p.size)
            master = w is not None and dt != "float32"
            res = reference.adamw_step64(
                w[s] if master else reference.to_f64(p, dt), reference.to_f64(g, gdt), m[s], v[s], spec.lr,
                spec.weight_decay, spec.step, *spec.hyper, vmax=None if x is None else x[s],
                grad_scale=spec.grad_scale, grad_clip=spec.grad_clip)
            out_p.append(res[0])
            m[s], v[s] = res[1], res[2]
            if x is not None:
                x[s] = res[3]
            if master:
                w[s] = res[0]
    return {"p": out_p, "m": m, "v": v, "x": x, "w": w}


def _same_specials(out, ref, what):
    """NaN where the model has NaN, the same infinities; returns the mask of the rest."""
    out = np.asarray(out, np.float64)
    assert np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN positions differ from the model"
    inf = np.isinf(ref)
    assert np.array_equal(np.isinf(out), inf) and np.array_equal(out[inf], ref[inf]), \
        f"{what}: infinities differ from the model"
    return np.isfinite(ref)


def _close(out, ref, scale, what, dtype="float32"):
    """float32 (or bfloat16-stored) results: within 1e-6 of `scale` (+ half an ulp of bfloat16)."""
    out64 = reference.to_f64(out, dtype)
    ok = _same_specials(out64, ref, what)
    out64, ref, scale = out64[ok], ref[ok], scale[ok]
    allowed = 1e-6 * scale + 1e-30
    if dtype == "bfloat16":
        allowed = allowed + 2.0 ** (np.floor(np.log2(np.maximum(np.abs(ref), 2.0**-126))) - 8)
    bad = np.abs(out64 - ref) > allowed
    assert not bad.any(), f"{what}: {bad.sum()} elements off, first at {np.argmax(bad)}: " \
                          f"{out64[np.argmax(bad)]!r} vs {ref[np.argmax(bad)]!r}"


def _within_rounding(out, ref, scale, dtype, what, ulps_half):
    """16-bit params: within `ulps_half` half-ulps (1: one rounding to nearest; 2: a
    stochastic rounding, either neighbour) plus float32's error relative to `scale`
    (reference.rounding_excess)."""
    ok = _same_specials(reference.to_f64(out, dtype), ref, what)
    excess = reference.rounding_excess(out[ok], ref[ok], scale[ok], dtype)
    if excess.size and excess.max() > ulps_half:
        i = int(np.argmax(excess))
        raise AssertionError(f"{what}: {int((excess > ulps_half).sum())} elements too far off, "
                             f"worst at {i}: {reference.to_f64(out[ok], dtype)[i]!r} vs model {ref[ok][i]!r}")


def check_step(spec, before, after):
    """Asserts that `after` is one step of the model from `before` (see the module doc)."""
    exp = model_step(spec, before)
    sd = state_dtype(spec.flags)
    b1, b2 = _f32(spec.hyper[0]), _f32(spec.hyper[1])
    decay = 1.0 - _f32(spec.lr) * _f32(spec.weight_decay)
    factor = _f32(spec.grad_scale) * _f32(spec.grad_clip)
    m0, v0 = reference.to_f64(before["m"], sd), reference.to_f64(before["v"], sd)
    total = m0.size
    used = np.zeros(total, bool)  # the tensors' slices of the flat states
    mastered = np.zeros(total, bool)  # where a master is read and written: 16-bit params' slices
    g64 = np.zeros(total)
    for g, dt, gdt, o in zip(before["g"], spec.dtypes, spec.grad_dtypes, spec.offsets):
        used[o:o + g.size] = True
        mastered[o:o + g.size] = dt != "float32"
        g64[o:o + g.size] = np.abs(reference.to_f64(g, gdt) * factor)
    names = ["m", "v"] + (["x"] if spec.flags & AMSGRAD else [])
    for k in names + (["w"] if spec.flags & MASTER else []):
        pads = ~used if k != "w" else ~mastered
        assert np.array_equal(np.asarray(after[k])[pads].view(np.uint8), np.asarray(before[k])[pads].view(np.uint8)), \
            f"{k}: an element outside the tensors' slices was written"
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # Size of the operands each state is rounded against.
        m_ops = b1 * np.abs(m0) + (1 - b1) * g64
        v_ops = b2 * np.abs(v0) + (1 - b2) * g64 * g64
        ops = {"m": m_ops, "v": v_ops}
        if spec.flags & AMSGRAD:
            ops["x"] = np.abs(reference.to_f64(before["x"], sd)) + v_ops
        for k in names:
            _close(np.asarray(after[k])[used], exp[k][used], ops[k][used], {"m": "exp_avg", "v": "exp_avg_sq",
                                                                            "x": "max_exp_avg_sq"}[k], sd)
        # The update u = step_size * m / (sqrt(v') + eps) inherits m's and v's
        # relative rounding errors, magnified where m cancels: their condition
        # numbers widen the bound for that element only.
        second = exp["x"] if spec.flags & AMSGRAD else exp["v"]
        cond = np.nan_to_num(m_ops / np.abs(exp["m"]), nan=0.0, posinf=1e30) + 0.5 * np.nan_to_num(
            ops["x" if spec.flags & AMSGRAD else "v"] / second, nan=0.0, posinf=1e30)
        if sd == "bfloat16":
            cond = cond + 2.0**-8 * 1.5 * (1 + cond)  # the states' own bf16 rounding
        for k, (out, p_in, ref, dt, o) in enumerate(zip(after["p"], before["p"], exp["p"], spec.dtypes, spec.offsets)):
            n = p_in.size
            what = f"param {k} ({dt}, {n} elements)"
            master = spec.flags & MASTER and dt != "float32"
            p64 = before["w"][o:o + n].astype(np.float64) if master else reference.to_f64(p_in, dt)
            update = np.abs(decay * p64 - ref)
            scale = np.abs(p64) + update * (1.0 + cond[o:o + n])
            if dt == "float32":
                _close(out, ref, scale, what)
            elif master:
                _close(after["w"][o:o + n], ref, scale, f"master of {what}")
                rne = reference.from_f64(after["w"][o:o + n].astype(np.float64), dt)
                assert np.array_equal(np.asarray(out).view(np.uint16), np.asarray(rne).view(np.uint16)), \
                    f"{what}: not its master rounded to nearest even"
            else:
                _within_rounding(out, ref, scale, dt, what, 2.0 if spec.flags & STOCHASTIC else 1.0)
