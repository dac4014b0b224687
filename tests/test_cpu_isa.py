"""The CPU kernel's ISA paths (scalar, AVX2+FMA+F16C, AVX-512), each forced in turn,
against the float64 model (tests/reference.py) for every parameter dtype; the
16-bit conversions against MindSpore's own Cast, bit for bit; the thread split;
the runtime dispatch and its environment override.

The kernel is called directly through fused_adamw._C (NumPy arrays in place;
bfloat16 as uint16 bits), so these tests see exactly what the kernel wrote. Groups
use the padded flat-state layout (tests/cpu_kernel.py): guards around every array
and the state pads are poisoned and checked after every step.
"""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, ops

from cpu_kernel import HYPER, ISAS, assert_guards_intact, isa, random_group, threads  # noqa: F401 (fixtures)
from fused_adamw import _C
from reference import DTYPES, bf16_bits_to_f32, random_param

MS_DTYPE = {"float16": ms.float16, "bfloat16": ms.bfloat16}


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


# ---------------------------------------------------------------- math vs the float64 model

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 17, 2**20 + 3])
def test_one_tensor_matches_float64_model(isa, dtype, n, rng):
    group = random_group(rng, [n], dtype)
    for t in (1, 2, 10):
        group.step(t)
        group.check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_thousand_small_tensors_match_float64_model(isa, dtype, rng):
    sizes = rng.integers(1, 2000, size=1000)
    sizes[[3, 500]] = 0  # empty tensors inside a group are skipped, not misindexed
    group = random_group(rng, sizes, dtype)
    for t in (1, 2):
        group.step(t)
        group.check()


def test_every_path_gives_its_own_result_everywhere_in_a_tensor(isa, rng):
    """A tensor's tail (masked lanes / stack buffer / scalar epilogue) gets the same
    arithmetic as its body: the same values placed at every offset give the same bits."""
    n = 37
    base = random_group(rng, [n], "float32")
    p0, g0 = base.params[0].copy(), base.grads[0].copy()
    m0, v0 = base.states["exp_avg"].copy(), base.states["exp_avg_sq"].copy()
    results = []
    for shift in range(16):
        p = np.concatenate([np.zeros(shift, np.float32), p0])
        g = np.concatenate([np.zeros(shift, np.float32), g0])
        m = np.concatenate([np.zeros(shift, np.float32), m0])
        v = np.concatenate([np.zeros(shift, np.float32), v0])
        _C.adamw_step([p], [g], m, v, 1e-3, 0.1, 1, 0.9, 0.999, 1e-8)
        results.append(p[shift:].view(np.uint32))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


# ---------------------------------------------------------------- the thread split

@pytest.mark.parametrize("nthreads", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_thread_split_covers_every_element_once(isa, threads, nthreads, dtype, rng):
    """Odd sizes and odd thread counts: every element is updated exactly once (a
    skipped one keeps its old value, a doubled one is stepped twice) and nothing
    outside the tensors is touched. Results equal the one-thread results bit for bit."""
    sizes = [2**17 + 13, 1, 4099, 77777, 3]
    single = random_group(np.random.default_rng(1234), sizes, dtype)
    multi = random_group(np.random.default_rng(1234), sizes, dtype)
    _C.set_num_threads(1)
    single.step(1)
    _C.set_num_threads(nthreads)
    assert _C.num_threads() == nthreads
    multi.step(1)
    multi.check()
    for a, b in zip(single.params, multi.params):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    for k in ("exp_avg", "exp_avg_sq"):  # pads included (both poisoned alike)
        np.testing.assert_array_equal(single.states[k].view(np.uint32), multi.states[k].view(np.uint32))


@pytest.mark.parametrize("nthreads", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_floor_pass_streams_every_element(threads, nthreads, dtype, rng):
    """The benchmark's memory floor must really read and write every element
    (p = max(p, g), m and v swapped), or it would be too fast to be a floor."""
    _C.set_num_threads(nthreads)
    sizes = [100003, 5, 70001]
    group = random_group(rng, sizes, dtype)
    m, v = group.states["exp_avg"], group.states["exp_avg_sq"]
    p_before = [p.copy() for p in group.params]
    m_before, v_before = m.copy(), v.copy()
    _C.floor_pass(group.params, group.grads, m, v)
    for p, p0, g in zip(group.params, p_before, group.grads):
        if dtype == "float32":
            np.testing.assert_array_equal(p, np.maximum(p0, g))
        else:  # 16-bit parameters are compared as raw signed bits
            np.testing.assert_array_equal(p.view(np.int16), np.maximum(p0.view(np.int16), g.view(np.int16)))
    np.testing.assert_array_equal(group.unpad(m), group.unpad(v_before))
    np.testing.assert_array_equal(group.unpad(v), group.unpad(m_before))
    for buf, off, n in group.buffers:
        assert_guards_intact(buf, off, n)


# ---------------------------------------------------------------- 16-bit conversions vs MindSpore

def ms_cast_bits(x32, dtype):
    """MindSpore's CPU Cast of float32 values to `dtype`, as uint16 bits."""
    return ops.cast(Tensor(np.asarray(x32, np.float32)), MS_DTYPE[dtype]).asnumpy().view(np.uint16)


def as_f32(stored, dtype):
    return bf16_bits_to_f32(stored) if dtype == "bfloat16" else stored.astype(np.float32)


def halfway_cases(x32, dtype):
    """How many of the float32 values lie exactly halfway between two `dtype` values."""
    finite = np.isfinite(x32)
    if dtype == "bfloat16":
        return int(((x32.view(np.uint32) & 0xFFFF) == 0x8000)[finite].sum())
    with np.errstate(all="ignore"):
        h = x32.astype(np.float16)
        away = np.where(x32 > h.astype(np.float32), np.float16(np.inf), np.float16(-np.inf))
        other = np.nextafter(h, away)
        x64, h64, o64 = x32.astype(np.float64), h.astype(np.float64), other.astype(np.float64)
        tie = (x64 != h64) & (np.abs(x64 - h64) == np.abs(o64 - x64))
    return int((tie & finite & np.isfinite(h)).sum())


# lr = 1 with zero gradients and states makes the step p <- p * (1 - wd): the kernel's
# float32 result is one IEEE product we can compute in NumPy, and its conversion back
# to 16 bits is then compared with MindSpore's Cast of that same float32 value.
# 1 - wd: identity, many-tie factors (9-12 significant bits), tiny factors (subnormal
# results), negative factors (sign), huge factors (overflow to inf), and random ones.
DECAY_WDS = [0.0, 2.0**-9, 3 * 2.0**-12, 0.75, 1 - 511 * 2.0**-24, 1 - 2.0**-24, 1.5, 3.0,
             2 + 3 * 2.0**-9, 2 + 2.0**-8, 2 + 2.0**-5, 1e30]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_store_conversion_is_bit_identical_to_mindspore_cast(isa, dtype, rng):
    patterns = np.arange(1 << 16, dtype=np.uint16)  # every 16-bit value, NaNs and infs included
    wds = DECAY_WDS + list(rng.uniform(0.0, 3.0, size=6).astype(np.float32))
    results32 = []
    for wd in wds:
        p = patterns.copy() if dtype == "bfloat16" else patterns.view(np.float16).copy()
        g = np.zeros_like(p)
        m = np.zeros(p.size, np.float32)
        v = np.zeros(p.size, np.float32)
        _C.adamw_step([p], [g], m, v, 1.0, float(wd), 1, 0.9, 0.999, 1e-8)
        decay = np.float32(1.0) - np.float32(1.0) * np.float32(wd)
        with np.errstate(all="ignore"):
            x32 = as_f32(patterns if dtype == "bfloat16" else patterns.view(np.float16), dtype) * decay
        expected = ms_cast_bits(x32, dtype)
        got = p.view(np.uint16)
        bad = np.flatnonzero(got != expected)
        assert bad.size == 0, (
            f"wd={wd}: {bad.size} values differ from MindSpore's Cast, e.g. float32 bits "
            f"{x32.view(np.uint32)[bad[:5]].tolist()} -> kernel {got[bad[:5]].tolist()}, "
            f"Cast {expected[bad[:5]].tolist()}")
        results32.append(x32)
    # The cases that make a conversion differ were really exercised (else this test
    # could not fail for them).
    x = np.concatenate(results32)
    tiny = np.float32(2.0**-126 if dtype == "bfloat16" else 2.0**-14)
    assert halfway_cases(x, dtype) > 1000
    assert ((np.abs(x) < tiny) & (x != 0)).sum() > 1000  # subnormal results
    assert np.isinf(x).sum() > 10 and np.isnan(x).sum() > 100
    largest = np.float32(65520.0 if dtype == "float16" else np.uint32(0x7F7F8000).view(np.float32))
    assert (np.isfinite(x) & (np.abs(x) >= largest)).sum() > 5  # finite, rounds to inf


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16bit_step_is_cast_of_float32_step(isa, dtype, rng):
    """On ordinary AdamW values the 16-bit path computes the float32 path's result and
    stores MindSpore's Cast of it (same ISA, same inputs)."""
    n = 2**16 + 5
    p16 = random_param(rng, n, dtype)
    g16 = random_param(rng, n, dtype)
    p32, g32 = as_f32(p16, dtype), as_f32(g16, dtype)
    m = (0.1 * rng.standard_normal(n)).astype(np.float32)
    v = (0.01 * rng.standard_normal(n) ** 2).astype(np.float32)
    m16, v16 = m.copy(), v.copy()
    args = (HYPER["lr"], HYPER["weight_decay"], 3, HYPER["beta1"], HYPER["beta2"], HYPER["eps"])
    _C.adamw_step([p32], [g32], m, v, *args)
    _C.adamw_step([p16], [g16], m16, v16, *args)
    np.testing.assert_array_equal(m16, m)
    np.testing.assert_array_equal(v16, v)
    np.testing.assert_array_equal(p16.view(np.uint16), ms_cast_bits(p32, dtype))


# ---------------------------------------------------------------- dispatch

def test_detected_isa_is_the_best_this_cpu_has():
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        expected = "avx512"
    elif {"avx2", "fma", "f16c"} <= flags:
        expected = "avx2"
    else:
        expected = "scalar"
    assert _C.detected_isa() == expected
    info = _C.build_info()["cpu"]
    assert info["detected_isa"] == expected
    assert set(info["supported_isas"]) == {i for i in ISAS if _C.isa_supported(i)}
    assert "scalar" in info["supported_isas"]


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError):
        _C.set_isa("sse9")


@pytest.mark.parametrize("value", ["scalar", "avx2", "nonsense"])
def test_environment_variable_overrides_dispatch(value):
    code = "from fused_adamw import _C, build_info; print(_C.get_isa(), build_info()['cpu']['isa'])"
    env = dict(os.environ, FUSED_ADAMW_ISA=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    active, reported = out.stdout.split()[-2:]
    expected = value if value in ISAS and _C.isa_supported(value) else _C.detected_isa()
    assert active == reported == expected
    if value == "nonsense":
        assert "FUSED_ADAMW_ISA=nonsense" in out.stderr
