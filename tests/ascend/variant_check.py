"""Judges one emulated launch of a kernel variant (gradient factors, amsgrad,
bfloat16 states, fp32 master weights, float32 gradients for 16-bit params)
against the float64 model of docs/kernel-interface.md:

    g = g * grad_scale * grad_clip;  p' = p * (1 - lr*wd)
    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  vmax = max(vmax, v)   [amsgrad]
    p = p' - (lr/bc1) * m / (sqrt(w/bc2) + eps),  w = vmax or v

evaluated in float64 from the stored inputs (scalars rounded to float32 as in
reference.adamw_step64, which this extends with the options). Criteria as in
tests/cuda/step_check.py: NaN/Inf where the model has them; float32 results within
1e-6 of the size of the operands they are rounded against (element-wise); values
stored in 16 bits (params, bfloat16 states) within one rounding
(reference.rounding_excess); with a master, the param is exactly the RNE copy of the
new master."""
import numpy as np

import reference
from ascend_emu import AMSGRAD, MASTER


def model(p, g, m, v, vmax, lr, wd, step, b1, b2, eps, scale, clip, amsgrad):
    f = lambda x: float(np.float32(x))  # noqa: E731
    b1, b2, lr, wd, eps = f(b1), f(b2), f(lr), f(wd), f(eps)
    g = g * f(scale) * f(clip)
    decayed = p * (1.0 - lr * wd)
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    w = np.maximum(vmax, v) if amsgrad else v
    bc1, bc2 = reference.bias_corrections(b1, b2, step)
    p = decayed - (lr / bc1) * m / (np.sqrt(w / bc2) + eps)
    return p, g, m, v, w


def _specials(out, ref, what):
    assert np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN positions differ from the model"
    inf = np.isinf(ref)
    assert np.array_equal(np.isinf(out), inf) and np.array_equal(out[inf], ref[inf]), f"{what}: infinities differ"
    return np.isfinite(ref)


def _close(out64, stored, ref, scale, dtype, what):
    ok = _specials(out64, ref, what)
    if dtype == "float32":
        bad = np.abs(out64[ok] - ref[ok]) > 1e-6 * scale[ok] + 1e-30
        assert not bad.any(), f"{what}: {bad.sum()} elements off, first at {np.argmax(bad)}"
    else:
        excess = reference.rounding_excess(stored[ok], ref[ok], scale[ok], dtype)
        assert excess.size == 0 or excess.max() <= 1.0, f"{what}: {int((excess > 1).sum())} elements beyond one rounding"


def check_variant(group, before):
    lr, wd, b1, b2, eps, scale, clip, _ = (float(x) for x in group.coeffs)
    step, amsgrad = int(group.counters[0]), bool(group.flags & AMSGRAD)
    master = bool(group.flags & MASTER) and group.dtype != "float32"
    sd = group.state_dtype
    st0 = [reference.to_f64(group.compact(s), sd) for s in before[2]]
    st1 = [group.compact(s.a) for s in group.states]
    at = 0
    for k, n in enumerate(group.sizes):
        sl = slice(at, at + n)
        at += n
        p0 = group.compact(before[3])[sl].astype(np.float64) if master else reference.to_f64(before[0][k], group.dtype)
        g0 = reference.to_f64(before[1][k], group.grad_dtype)
        vmax0 = st0[2][sl] if amsgrad else None
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            rp, g, rm, rv, rw = model(p0, g0, st0[0][sl], st0[1][sl], vmax0, lr, wd, step, b1, b2, eps, scale,
                                      clip, amsgrad)
            bb1, bb2 = float(np.float32(b1)), float(np.float32(b2))
            m_ops = bb1 * np.abs(st0[0][sl]) + (1 - bb1) * np.abs(g)
            v_ops = bb2 * st0[1][sl] + (1 - bb2) * g * g
            what = f"tensor {k} ({n} elements)"
            _close(reference.to_f64(st1[0][sl], sd), st1[0][sl], rm, m_ops, sd, "exp_avg of " + what)
            _close(reference.to_f64(st1[1][sl], sd), st1[1][sl], rv, v_ops, sd, "exp_avg_sq of " + what)
            if amsgrad:
                _close(reference.to_f64(st1[2][sl], sd), st1[2][sl], rw, np.maximum(vmax0, v_ops), sd,
                       "max_exp_avg_sq of " + what)
            # The update inherits m's and w's rounding errors, magnified where m cancels.
            cond = np.nan_to_num(m_ops / np.abs(rm), nan=0.0, posinf=1e30) + 0.5 * np.nan_to_num(
                np.maximum(v_ops, rw) / rw, nan=0.0, posinf=1e30)
            decay = 1.0 - float(np.float32(lr)) * float(np.float32(wd))
            p_scale = np.abs(p0) + np.abs(decay * p0 - rp) * (1.0 + cond)
            out_p = group.p[k].a
            if master:
                new_master = group.compact(group.master.a)[sl]
                _close(new_master.astype(np.float64), new_master, rp, p_scale, "float32", "master of " + what)
                assert np.array_equal(out_p, reference.from_f64(new_master, group.dtype)), \
                    f"param of {what} is not the RNE copy of its master"
            else:
                _close(reference.to_f64(out_p, group.dtype), out_p, rp, p_scale, group.dtype, "param of " + what)
