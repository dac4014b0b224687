"""Compares one AdamW step of a group against the float64 model
(tests/reference.py). Shared by the CPU-emulation tests and scripts/gpu_check.py.

Arrays are NumPy: params/grads in their dtype (bfloat16 as uint16 bits), the
group's states flat float32. Criteria: NaN and Inf exactly where the model has
them; float32 results (float32 params, every state), element by element, within
1e-6 of the size of the operands they are rounded against (so a single wrong or
unwritten element fails); float16/bfloat16 params within one rounding (half an
ulp) plus float32's error where p*(1-lr*wd) and the update cancel
(reference.rounding_excess).

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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference  # noqa: E402


def model_step(dtypes, before, lr, weight_decay, step, hyper):
    """The model's (params, exp_avg, exp_avg_sq) in float64 after one step."""
    ps, gs, m, v = before
    out_p, out_m, out_v, at = [], [], [], 0
    for p, g, dt in zip(ps, gs, dtypes):
        n = p.size
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf inputs
            rp, rm, rv = reference.adamw_step64(
                reference.to_f64(p, dt), reference.to_f64(g, dt), m[at:at + n].astype(np.float64),
                v[at:at + n].astype(np.float64), lr, weight_decay, step, *hyper)
        out_p.append(rp)
        out_m.append(rm)
        out_v.append(rv)
        at += n
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    return out_p, cat(out_m), cat(out_v)


def _same_specials(out, ref, what):
    """NaN where the model has NaN, the same infinities; returns the mask of the rest."""
    out = np.asarray(out, np.float64)
    assert np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN positions differ from the model"
    inf = np.isinf(ref)
    assert np.array_equal(np.isinf(out), inf) and np.array_equal(out[inf], ref[inf]), \
        f"{what}: infinities differ from the model"
    return np.isfinite(ref)


def _close_f32(out, ref, scale, what):
    ok = _same_specials(out, ref, what)
    out, ref, scale = np.asarray(out, np.float64)[ok], ref[ok], scale[ok]
    bad = np.abs(out - ref) > 1e-6 * scale + 1e-30
    assert not bad.any(), f"{what}: {bad.sum()} elements off, first at {np.argmax(bad)}: " \
                          f"{out[np.argmax(bad)]!r} vs {ref[np.argmax(bad)]!r}"


def _within_one_rounding(out, ref, scale, dtype, what):
    """16-bit params: the float32 result rounded once, judged by the suite's shared
    definition (reference.rounding_excess: half an ulp, plus float32's error relative to
    `scale` where p*(1-lr*wd) and the update cancel)."""
    ok = _same_specials(reference.to_f64(out, dtype), ref, what)
    excess = reference.rounding_excess(out[ok], ref[ok], scale[ok], dtype)
    if excess.size and excess.max() > 1.0:
        i = int(np.argmax(excess))
        raise AssertionError(f"{what}: {int((excess > 1.0).sum())} elements more than one rounding off, "
                             f"worst at {i}: {reference.to_f64(out[ok], dtype)[i]!r} vs model {ref[ok][i]!r}")


def check_step(dtypes, before, after, lr, weight_decay, step, hyper):
    """Asserts that `after` = (params, exp_avg, exp_avg_sq) is one step of the
    model from `before` = (params, grads, exp_avg, exp_avg_sq)."""
    exp_p, exp_m, exp_v = model_step(dtypes, before, lr, weight_decay, step, hyper)
    ps, gs, m0, v0 = before
    out_ps, out_m, out_v = after
    b1, b2 = float(np.float32(hyper[0])), float(np.float32(hyper[1]))
    decay = 1.0 - float(np.float32(lr)) * float(np.float32(weight_decay))
    g64 = np.concatenate([reference.to_f64(g, dt) for g, dt in zip(gs, dtypes)] or [np.zeros(0)])
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # Size of the operands each float32 state is rounded against.
        m_ops = b1 * np.abs(m0) + (1 - b1) * np.abs(g64)
        v_ops = b2 * np.abs(v0) + (1 - b2) * g64 * g64
        _close_f32(out_m, exp_m, m_ops, "exp_avg")
        _close_f32(out_v, exp_v, v_ops, "exp_avg_sq")
        # The update u = step_size * m / (sqrt(v') + eps) inherits m's and v's
        # relative rounding errors, magnified where m cancels: their condition
        # numbers widen the bound for that element only.
        cond = np.nan_to_num(m_ops / np.abs(exp_m), nan=0.0, posinf=1e30) + 0.5 * np.nan_to_num(
            v_ops / exp_v, nan=0.0, posinf=1e30)
        at = 0
        for k, (out, p_in, ref, dt) in enumerate(zip(out_ps, ps, exp_p, dtypes)):
            n = p_in.size
            what = f"param {k} ({dt}, {n} elements)"
            p64 = reference.to_f64(p_in, dt)
            update = np.abs(decay * p64 - ref)
            scale = np.abs(p64) + update * (1.0 + cond[at:at + n])
            if dt == "float32":
                _close_f32(out, ref, scale, what)
            else:
                _within_one_rounding(out, ref, scale, dt, what)
            at += n
