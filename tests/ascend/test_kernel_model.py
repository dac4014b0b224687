"""The CPU model of the Ascend kernel (model/tile_model.cpp: the kernel's own
tiling, tile walk, coefficient code and vector-op sequence) against the float64
reference, for every dtype, tails, many-tensor groups and several core counts.
This checks the kernel's schedule and op order; it cannot check that the kernel
compiles, its pipe synchronisation, or the NPU's own Sqrt/Div rounding."""
import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import DTYPES, adamw_step64, random_param, rel_err, rounding_excess, to_f64  # noqa: E402

DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}
NP_STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
UB_910B = 192 * 1024


def model_step(lib, params, grads, m, v, dtype, lr, wd, step, hyper, cores=48, ub=UB_910B):
    """Runs the model in place on lists of numpy arrays and flat m, v."""
    numels = (ctypes.c_int64 * len(params))(*[p.size for p in params])
    pptr = (ctypes.c_void_p * len(params))(*[p.ctypes.data for p in params])
    gptr = (ctypes.c_void_p * len(grads))(*[g.ctypes.data for g in grads])
    h = (ctypes.c_float * 3)(*hyper)
    err = lib.fa_model_step(numels, len(params), DTYPE_CODE[dtype], cores, ub, pptr, gptr, m.ctypes.data,
                            v.ctypes.data, lr, wd, step, h)
    assert err is None, err.decode()


def make_group(rng, sizes, dtype):
    params = [random_param(rng, n, dtype) for n in sizes]
    grads = [random_param(rng, n, dtype) for n in sizes]
    total = sum(sizes)
    m = (rng.standard_normal(total) * 0.1).astype(np.float32)
    v = (rng.random(total) * 0.01).astype(np.float32)
    return params, grads, m, v


def check_against_reference(lib, sizes, dtype, step, cores=48, lr=1e-3, wd=0.1, hyper=(0.9, 0.999, 1e-8), seed=0):
    rng = np.random.default_rng(seed)
    params, grads, m, v = make_group(rng, sizes, dtype)
    p64 = np.concatenate([to_f64(p, dtype) for p in params]) if sizes else np.zeros(0)
    g64 = np.concatenate([to_f64(g, dtype) for g in grads])
    ref_p, ref_m, ref_v = adamw_step64(p64, g64, m.astype(np.float64), v.astype(np.float64), lr, wd, step,
                                       beta1=hyper[0], beta2=hyper[1], eps=hyper[2])
    model_step(lib, params, grads, m, v, dtype, lr, wd, step, hyper, cores=cores)
    got_p = np.concatenate(params)
    # States are float32: within a few float32 roundings of float64 (the CPU backend's bound).
    assert rel_err(m, ref_m) <= 1e-6 and rel_err(v, ref_v) <= 1e-6
    # Params, element by element: float32 within 8 float32 ulps of the largest
    # intermediate (|decayed p| + |update|, where cancellation can leave the result
    # far below both); 16-bit stores within one rounding (reference.rounding_excess).
    decayed = p64 * (1.0 - float(np.float32(lr)) * float(np.float32(wd)))
    scale = np.abs(decayed) + np.abs(decayed - ref_p)
    if dtype == "float32":
        assert rel_err(got_p, ref_p) <= 1e-6
        err = np.abs(got_p.astype(np.float64) - ref_p)
        assert (err <= 8 * 2.0**-24 * scale).all(), (float((err / scale).max()), int(np.argmax(err / scale)))
    else:
        excess = rounding_excess(got_p, ref_p, scale, dtype)
        assert excess.max() <= 1, (dtype, float(excess.max()), int(np.argmax(excess)))
    return got_p, ref_p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("step", [1, 2, 10, 1000, 100000])
def test_single_tensor_matches_reference(model_lib, dtype, step):
    # 3 full tiles plus a tail (tile = 2944 or 3136 elements), spread over 48 cores.
    check_against_reference(model_lib, [3 * 3136 + 77], dtype, step)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cores", [1, 3, 48])
def test_many_tensor_group_matches_reference(model_lib, dtype, cores):
    # Empty and 1-element tensors, tensors across core and tile boundaries.
    sizes = [1, 0, 17, 4096, 3000, 0, 65, 1, 12345, 64, 63, 2945]
    check_against_reference(model_lib, sizes, dtype, 3, cores=cores, seed=cores)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_groups(model_lib, dtype):
    for n in (1, 2, 15, 16, 17):
        check_against_reference(model_lib, [n], dtype, 1, seed=n)


def test_matches_reference_with_other_hyperparameters(model_lib):
    check_against_reference(model_lib, [5000, 333], "float32", 7, lr=3e-4, wd=0.0, hyper=(0.8, 0.95, 1e-6))
    check_against_reference(model_lib, [5000, 333], "bfloat16", 7, lr=1e-2, wd=0.05, hyper=(0.9, 0.99, 1e-8))


def test_every_element_updated_exactly_once(model_lib):
    """lr = 0, wd = 0: params unchanged; m, v after one update equal b*m + (1-b)*g
    exactly, which a doubly-applied or skipped element would break."""
    rng = np.random.default_rng(5)
    sizes = [3136 * 2 + 5, 1, 700]
    params, grads, m, v = make_group(rng, sizes, "float32")
    p0 = np.concatenate(params).copy()
    g = np.concatenate(grads)
    m_expect = np.float32(0.9) * m + np.float32(np.float32(1) - np.float32(0.9)) * g
    model_step(model_lib, params, grads, m, v, "float32", 0.0, 0.0, 1, (0.9, 0.999, 1e-8), cores=5)
    np.testing.assert_array_equal(np.concatenate(params), p0)
    np.testing.assert_array_equal(m, m_expect)


def test_nan_and_inf_propagate(model_lib):
    params, grads, m, v = make_group(np.random.default_rng(1), [100], "float32")
    grads[0][3] = np.nan
    grads[0][7] = np.inf
    model_step(model_lib, params, grads, m, v, "float32", 1e-3, 0.1, 1, (0.9, 0.999, 1e-8))
    assert np.isnan(params[0][3]) and np.isnan(m[3]) and np.isnan(params[0][7])
    assert np.isfinite(np.delete(params[0], [3, 7])).all()


def test_bias_correction_accuracy(model_lib):
    """1 - b^t from the kernel's fixed-point code against MindFormers' float32 semantics,
    1 - float32(b^t) (b^t evaluated in float64, rounded once), for the betas people use
    and steps up to 2^31 - 1: equal, or one float32 ulp off where b^t sits on a tie."""
    exact = total = 0
    for beta in (0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 0.5, 0.1):
        b = float(np.float32(beta))
        for t in (1, 2, 3, 10, 100, 1000, 6931, 10**5, 10**6, 2**31 - 1):
            got = np.float32(model_lib.fa_model_one_minus_pow(b, t))
            want = np.float32(1.0) - np.float32(np.exp(t * np.log(b)))
            assert abs(float(got) - float(want)) <= np.spacing(want), (beta, t, got, want)
            exact += got == want
            total += 1
    assert exact >= 0.95 * total


def test_step_coefficients(model_lib):
    out = (ctypes.c_float * 8)()
    model_lib.fa_model_coeffs(1e-3, 0.1, 2, 0.9, 0.999, 1e-8, out)
    decay, b1, omb1, b2, omb2, step_size, inv_bc2, eps = list(out)
    b1_, b2_ = float(np.float32(0.9)), float(np.float32(0.999))
    assert decay == np.float32(1 - np.float32(1e-3) * np.float32(0.1))
    assert omb1 == np.float32(1 - b1_) and omb2 == np.float32(1 - b2_)
    bc1 = np.float32(1) - np.float32(b1_**2)
    bc2 = np.float32(1) - np.float32(b2_**2)
    assert step_size == pytest.approx(float(np.float32(1e-3) / bc1), rel=1e-7)
    assert inv_bc2 == pytest.approx(float(np.float32(1) / bc2), rel=1e-7)
    assert eps == np.float32(1e-8)
