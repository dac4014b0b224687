"""Every option of the CPU kernel (docs/kernel-interface.md; issues 11 and 14) on
every ISA path this CPU runs, called directly through fused_adamw._C: the gradient
factors (unscale, clip, maximize), amsgrad, fp32 master weights, bfloat16 states,
stochastic rounding and the norm pass, against the float64 model (tests/reference.py)
and, where the option fixes the bits, bit for bit; amsgrad and maximize also against
torch.optim.AdamW when torch is importable. Plus the direct call's argument errors.

Groups are tests/cpu_kernel.py's: misaligned tensors in poisoned buffers and padded
flat states whose pads are poisoned and checked after every step.
"""
import re

import numpy as np
import pytest

from cpu_kernel import (HYPER, ISAS, Group, assert_guards_intact, bits_of, isa, random_group,  # noqa: F401
                        split, threads)
from fused_adamw import _C
from fused_adamw._groups import state_offsets
from reference import (DTYPES, bf16_bits_to_f32, from_f64, grad_sumsq64, rel_err, scaled_grad,
                       sr_bits, sr_key, stochastic_round, to_f64)

DTYPES16 = ("float16", "bfloat16")
# (param dtype, grad dtype): gradients in the parameter's dtype or in float32.
GRAD_CASES = [(d, d) for d in DTYPES] + [(d, "float32") for d in DTYPES16]
GRAD_IDS = [f"{d}-grads_{g}" for d, g in GRAD_CASES]

# option name -> (Group options, per-call options of _C.adamw_step)
OPTIONS = {
    "unscale_clip": ({}, dict(grad_scale=1 / 1000, grad_clip=0.37)),
    "maximize": ({}, dict(grad_scale=-1.0)),
    "amsgrad": (dict(amsgrad=True), {}),
    "master": (dict(master=True), {}),
    "bf16_states": (dict(state_dtype="bfloat16"), {}),
    "stochastic": ({}, dict(stochastic=True, seed=2026)),
    "amsgrad_master_bf16_states_maximize_clip": (
        dict(amsgrad=True, master=True, state_dtype="bfloat16"), dict(grad_scale=-1 / 1024, grad_clip=0.5)),
    "amsgrad_stochastic_bf16_states_unscale": (
        dict(amsgrad=True, state_dtype="bfloat16"),
        dict(stochastic=True, seed=2**40 + 3, index_base=2**32 - 1000, grad_scale=1 / 3)),
}


@pytest.fixture(autouse=True)
def one_thread(threads):
    """One kernel thread unless a test sets more: on a loaded machine a parallel region
    waits for descheduled threads, and these tests are about values. Thread counts are
    varied explicitly where they matter (test_variants_are_thread_independent, the
    stochastic-rounding and norm determinism tests)."""
    _C.set_num_threads(1)


def small_and_odd_sizes(rng):
    """Odd sizes around the vector widths, empty tensors, 200 small tensors and one of
    40001 elements (about 50k in all)."""
    return [1, 7, 0, 17, 31, 33, 100, 1000, 4099] + list(rng.integers(1, 300, size=200)) + [0, 40001, 3]


def same_bits(a, b):
    np.testing.assert_array_equal(bits_of(np.asarray(a)), bits_of(np.asarray(b)))


def param_bits(group):
    return np.concatenate([bits_of(p) for p in group.params])


# ---------------------------------------------------------------- every option vs the float64 model

@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("dtype,grad_dtype", GRAD_CASES, ids=GRAD_IDS)
def test_option_matches_float64_model(isa, dtype, grad_dtype, option, rng):
    """float32 results within float32's error of the model; 16-bit parameters within one
    rounding (two neighbours: one ulp with stochastic rounding); bf16 states within one
    rounding; masters within float32's error with parameters their RNE copies; pads and
    guards untouched (Group.check)."""
    group_opts, call_opts = OPTIONS[option]
    group = random_group(rng, small_and_odd_sizes(rng), dtype, grad_dtype, **group_opts)
    for t in (1, 2, 3):
        group.step(t, **call_opts)
        group.check()


@pytest.mark.parametrize("option", ["amsgrad_master_bf16_states_maximize_clip",
                                    "amsgrad_stochastic_bf16_states_unscale"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_variants_are_thread_independent(option, dtype, rng):
    """Every variant's results, parameters and states, are the same bits for 1, 2 and 3
    threads (the group split over threads at odd places)."""
    group_opts, call_opts = OPTIONS[option]
    seed, sizes = int(rng.integers(2**32)), [70001, 3, 33001, 1, 4099]
    results = []
    for n in (1, 2, 3):
        _C.set_num_threads(n)
        group = random_group(np.random.default_rng(seed), sizes, dtype, **group_opts)
        for t in (1, 2):
            group.step(t, **call_opts)
        results.append([param_bits(group)] + [bits_of(a) for a in group.states.values()] +
                       ([] if group.master is None else [bits_of(group.master)]))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            same_bits(a, b)


@pytest.mark.parametrize("option", ["stochastic", "amsgrad_master_bf16_states_maximize_clip",
                                    "amsgrad_stochastic_bf16_states_unscale"])
def test_mixed_dtype_group_equals_each_tensor_alone(isa, option, rng):
    """The CPU kernel takes any mix of parameter and gradient dtypes in one call (the
    optimizer's CPU groups do): each tensor gets the bits it gets alone, given its state
    slice and, for stochastic rounding, its position (index_base + its offset)."""
    group_opts, call_opts = OPTIONS[option]
    sizes = small_and_odd_sizes(rng)[:40]
    alone = [random_group(rng, [n], DTYPES[i % 3], "float32" if i % 2 else None, **group_opts)
             for i, n in enumerate(sizes)]
    starts, total = state_offsets(sizes)
    flat = {}
    for k in list(alone[0].states) + (["master"] if alone[0].master is not None else []):
        pieces = [a.states[k] if k != "master" else a.master for a in alone]
        flat[k] = np.zeros(total, pieces[0].dtype)
        for s0, piece in zip(starts, pieces):
            flat[k][s0:s0 + piece.size] = piece
    params = [a.params[0].copy() for a in alone]
    grads = [a.grads[0] for a in alone]
    base = call_opts.get("index_base", 0)
    h = HYPER
    _C.adamw_step(params, grads, flat["exp_avg"], flat["exp_avg_sq"], h["lr"], h["weight_decay"], 3,
                  h["beta1"], h["beta2"], h["eps"], max_exp_avg_sq=flat.get("max_exp_avg_sq"),
                  master=flat.get("master"), **dict(call_opts, index_base=base))
    for a, s0, p in zip(alone, starts, params):
        a.step(3, **dict(call_opts, index_base=base + s0))
        same_bits(p, a.params[0])
        for k in flat:
            same_bits(flat[k][s0:s0 + a.sizes[0]], a.states[k] if k != "master" else a.master)


# ---------------------------------------------------------------- gradient factors

@pytest.mark.parametrize("dtype,grad_dtype", GRAD_CASES, ids=GRAD_IDS)
def test_default_factors_are_bit_identical_to_no_factors(isa, dtype, grad_dtype, rng):
    seed = int(rng.integers(2**32))
    plain = random_group(np.random.default_rng(seed), [4099, 5], dtype, grad_dtype, amsgrad=True)
    explicit = random_group(np.random.default_rng(seed), [4099, 5], dtype, grad_dtype, amsgrad=True)
    for t in (1, 2):
        plain.step(t)
        explicit.step(t, grad_scale=1.0, grad_clip=1.0)
        same_bits(param_bits(plain), param_bits(explicit))
        for k in plain.states:
            same_bits(plain.states[k], explicit.states[k])


@pytest.mark.parametrize("dtype", DTYPES)
def test_factors_equal_prescaled_float32_gradients(isa, dtype, rng):
    """The kernel's g * grad_scale * grad_clip is the two float32 multiplies in that order:
    the same step as float32 gradients holding those products, bit for bit."""
    scale, clip = -1 / 1000, 0.6180339
    group = random_group(rng, small_and_odd_sizes(rng), dtype)
    pre = scaled_grad(group.g64, scale, clip).astype(np.float32)
    twin = Group(group.sizes, dtype, [p.copy() for p in group.params], split(pre, group.sizes),
                 {k: group.unpad(a).copy() for k, a in group.states.items()}, grad_dtype="float32")
    group.step(1, grad_scale=scale, grad_clip=clip)
    twin.step(1)
    same_bits(param_bits(group), param_bits(twin))
    for k in group.states:
        same_bits(group.states[k], twin.states[k])


# ---------------------------------------------------------------- torch.optim.AdamW

@pytest.mark.parametrize("amsgrad,maximize", [(True, False), (False, True), (True, True)])
def test_amsgrad_and_maximize_match_torch(isa, amsgrad, maximize, rng):
    """torch.optim.AdamW's meaning of amsgrad and maximize (float32, its single-tensor
    path), from a state at step 99: three steps. torch computes in another order (lerp,
    sqrt(v)/sqrt(bc2), float64 bias corrections), so the comparison is relative 1e-5 of
    the update; amsgrad's larger denominators and maximize's sign change the update by
    far more."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra); the model covers it")
    h = dict(HYPER, lr=1e-2)
    sizes = [1, 17, 1000, 33]
    group = random_group(rng, sizes, "float32", amsgrad=amsgrad)
    for p in group.params:
        p *= np.float32(0.01)  # updates of ~lr stay far above the parameters' ulp
    tp = [torch.from_numpy(p.copy()) for p in group.params]
    opt = torch.optim.AdamW(tp, lr=h["lr"], betas=(float(np.float32(h["beta1"])), float(np.float32(h["beta2"]))),
                            eps=h["eps"], weight_decay=h["weight_decay"], amsgrad=amsgrad, maximize=maximize,
                            foreach=False)
    names = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "max_exp_avg_sq": "max_exp_avg_sq"}
    for i, x in enumerate(tp):
        x.grad = torch.from_numpy(group.grads[i].copy())
        s = group.starts[i]
        opt.state[x] = {"step": torch.tensor(99.0)}
        for k in group.states:
            opt.state[x][names[k]] = torch.from_numpy(group.states[k][s:s + sizes[i]].copy())
    for t in (100, 101, 102):
        before = np.concatenate(group.params).astype(np.float64)
        group.step(t, hyper=h, grad_scale=-1.0 if maximize else 1.0)
        opt.step()
        ours = np.concatenate(group.params).astype(np.float64) - before
        theirs = np.concatenate([x.numpy() for x in tp]).astype(np.float64) - before
        assert rel_err(ours, theirs) <= 1e-5, rel_err(ours, theirs)
        for k in group.states:
            torch_state = np.concatenate([opt.state[x][names[k]].numpy() for x in tp])
            assert rel_err(group.unpad(group.states[k]), torch_state) <= 1e-5, k


# ---------------------------------------------------------------- fp32 master weights

@pytest.mark.parametrize("dtype,grad_dtype", [c for c in GRAD_CASES if c[0] != "float32"],
                         ids=[i for i, c in zip(GRAD_IDS, GRAD_CASES) if c[0] != "float32"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_masters_follow_float32_run_bit_for_bit(isa, dtype, grad_dtype, amsgrad, rng):
    """The masters follow a float32-parameter run fed the same (16-bit-exact) values bit
    for bit, the states too, and each 16-bit parameter is its master rounded to nearest
    even. The 16-bit parameters are poisoned first: the kernel must read the masters."""
    group = random_group(rng, small_and_odd_sizes(rng), dtype, grad_dtype, amsgrad=amsgrad, master=True)
    twin = group.twin32()
    for p in group.params:
        bits_of(p)[:] = 0x7F81 if dtype == "bfloat16" else 0x7C01  # signalling NaNs
    for t in (1, 2, 3):
        group.step(t)
        twin.step(t)
        same_bits(group.unpad(group.master), np.concatenate(twin.params))
        for k in group.states:
            same_bits(group.states[k], twin.states[k])
        group.check()  # also: parameters == RNE(masters), pads and guards untouched


def test_masters_change_nothing_for_float32_parameters(isa, rng):
    seed = int(rng.integers(2**32))
    plain = random_group(np.random.default_rng(seed), small_and_odd_sizes(rng), "float32")
    with_master = random_group(np.random.default_rng(seed), plain.sizes, "float32", master=True)
    master_before = with_master.master.copy()
    for t in (1, 2):
        plain.step(t)
        with_master.step(t)
        same_bits(param_bits(plain), param_bits(with_master))
        for k in plain.states:
            same_bits(plain.states[k], with_master.states[k])
        same_bits(with_master.master, master_before)


# ---------------------------------------------------------------- bfloat16 states

@pytest.mark.parametrize("dtype,grad_dtype", GRAD_CASES, ids=GRAD_IDS)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_bf16_states_are_rne_of_the_float32_states(isa, dtype, grad_dtype, amsgrad, rng):
    """Math in float32, states stored round-to-nearest-even: the same step as float32
    states holding the same values gives the same parameters bit for bit and states that
    round to the bf16 ones."""
    group = random_group(rng, small_and_odd_sizes(rng), dtype, grad_dtype, amsgrad=amsgrad,
                         state_dtype="bfloat16")
    for t in (1, 2):
        twin = group.twin32()
        group.step(t)
        twin.step(t)
        same_bits(param_bits(group), bits_of(from_f64(np.concatenate(twin.params), dtype)))
        for k in group.states:
            same_bits(group.unpad(group.states[k]), from_f64(twin.unpad(twin.states[k]), "bfloat16"))
        group.check()


# ---------------------------------------------------------------- stochastic rounding

def predicted_sr_bits(group, twin, seed, t, index_base, dtype):
    """reference.stochastic_round of the float32 results (the float32 twin's parameters)
    with the bits of each element's position in the padded flat state."""
    random = sr_bits(sr_key(seed, t), index_base + group.flat_index().astype(np.uint64))
    return stochastic_round(np.concatenate(twin.params), random, dtype)


@pytest.mark.parametrize("dtype,grad_dtype", [c for c in GRAD_CASES if c[0] != "float32"],
                         ids=[i for i, c in zip(GRAD_IDS, GRAD_CASES) if c[0] != "float32"])
@pytest.mark.parametrize("index_base", [0, 123457, 2**32 - 1007, 5 * 2**32 + 17],
                         ids=["base0", "base123457", "base_crosses_2^32", "base_above_2^32"])
def test_stochastic_rounding_bits_are_the_references(isa, dtype, grad_dtype, index_base, rng):
    """Exactly the bits reference.stochastic_round predicts from the float32 result (a
    float32-parameter run fed the same values) and fa_sr_bits(fa_sr_key(seed, t), index)
    — including index bases whose vectors cross a 2^32 boundary or lie above it."""
    group = random_group(rng, small_and_odd_sizes(rng), dtype, grad_dtype)
    for t in (1, 2):
        seed = int(rng.integers(2**63))
        twin = group.twin32()
        group.step(t, stochastic=True, seed=seed, index_base=index_base)
        twin.step(t)
        same_bits(param_bits(group), predicted_sr_bits(group, twin, seed, t, index_base, dtype))
        for k in group.states:
            same_bits(group.states[k], twin.states[k])
        group.check()


# lr = 1 with zero gradients and states makes the step p <- p * (1 - wd), one float32
# product NumPy computes exactly: every 16-bit value (NaNs, infinities, subnormals)
# through stochastic rounding, with factors that make ties, subnormal results,
# overflow and sign changes (as test_cpu_isa's conversion test does for RNE).
SR_DECAY_WDS = [0.0, 2.0**-9, 3 * 2.0**-12, 0.75, 1 - 2.0**-24, 1.5, 2 + 2.0**-5, 1e30]


@pytest.mark.parametrize("dtype", DTYPES16)
def test_stochastic_rounding_of_every_16bit_value(isa, dtype, rng):
    patterns = np.arange(1 << 16, dtype=np.uint16)
    for wd in SR_DECAY_WDS + list(rng.uniform(0.0, 3.0, size=3)):
        seed, base = int(rng.integers(2**64, dtype=np.uint64)), int(rng.integers(2**40))
        p = patterns.copy() if dtype == "bfloat16" else patterns.view(np.float16).copy()
        m, v = np.zeros(p.size, np.float32), np.zeros(p.size, np.float32)
        _C.adamw_step([p], [np.zeros_like(p)], m, v, 1.0, float(wd), 7, 0.9, 0.999, 1e-8,
                      stochastic=True, seed=seed, index_base=base)
        decay = np.float32(1.0) - np.float32(1.0) * np.float32(wd)
        with np.errstate(all="ignore"):
            x32 = to_f64(patterns if dtype == "bfloat16" else patterns.view(np.float16), dtype).astype(np.float32) * decay
        random = sr_bits(sr_key(seed, 7), base + np.arange(p.size, dtype=np.uint64))
        expected = stochastic_round(x32, random, dtype)
        bad = np.flatnonzero(bits_of(p) != expected)
        assert bad.size == 0, (f"wd={wd}: {bad.size} differ, e.g. float32 bits {x32.view(np.uint32)[bad[:5]].tolist()}"
                               f" -> kernel {bits_of(p)[bad[:5]].tolist()}, reference {expected[bad[:5]].tolist()}")


@pytest.mark.parametrize("dtype", DTYPES16)
def test_stochastic_rounding_reproducible_across_threads_isas_and_runs(threads, dtype, rng):
    """One seed: the same bits for 1 and 2 threads, every ISA path, and a repeated run;
    another seed: other bits (on about a third of the inexact elements)."""
    seed0, sizes = int(rng.integers(2**32)), [70001, 3, 33001, 1, 4099]

    def run(isa_name, nthreads, seed):
        _C.set_isa(isa_name)
        _C.set_num_threads(nthreads)
        group = random_group(np.random.default_rng(seed0), sizes, dtype)
        for t in (1, 2):
            group.step(t, stochastic=True, seed=seed, index_base=77)
        return param_bits(group)

    before = _C.get_isa()
    try:
        isas = [i for i in ISAS if _C.isa_supported(i)]
        first = run(isas[0], 1, 1234)
        for isa_name in isas:
            for n in (1, 2, 1):
                same_bits(run(isa_name, n, 1234), first)
        other = run(isas[-1], 2, 1235)
    finally:
        _C.set_isa(before)
    # The results after two steps are inexact in 16 bits for most elements; each
    # differs between seeds with probability 2f(1-f) (1/3 on average over f).
    assert (other != first).mean() > 0.15, (other != first).mean()


def neighbours(x32, dtype):
    """The 16-bit values just below and above each float32 value (equal if exact), as float64."""
    x64 = x32.astype(np.float64)
    if dtype == "bfloat16":
        t = x32.view(np.uint32) >> 16  # toward zero; the next magnitude up is t + 1
        a, b = bf16_bits_to_f32(t.astype(np.uint16)), bf16_bits_to_f32((t + 1).astype(np.uint16))
        exact = (x32.view(np.uint32) & 0xFFFF) == 0
    else:
        h = x32.astype(np.float16)
        a = h
        b = np.nextafter(h, np.where(h.astype(np.float64) > x64, -np.inf, np.inf).astype(np.float16))
        exact = h.astype(np.float64) == x64
    a, b = a.astype(np.float64), b.astype(np.float64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.where(exact, x64, lo), np.where(exact, x64, hi)


@pytest.mark.parametrize("dtype", DTYPES16)
def test_stochastic_rounding_is_unbiased(isa, dtype, rng):
    """A z-test over 2^18 elements whose update is below half an ulp (positive gradients,
    first step: every parameter moves down by about lr, 0.03-0.4 ulp): the stored minus the
    float32 result, in ulps, summed, over its standard deviation under unbiased rounding
    (sum f(1-f), f the position between the neighbours). |z| > 4.89 has probability 1e-6
    for an unbiased rounding (normal approximation; each term is bounded, so it holds
    closely at this size). Round-to-nearest on the same values gives |z| in the hundreds."""
    n = 2**18
    params = [from_f64(rng.uniform(0.5, 4.0, n) * rng.choice([-1, 1], n), dtype)]
    grads = [from_f64(rng.uniform(0.1, 1.0, n), dtype)]
    zeros = np.zeros(n, np.float32)
    group = Group([n], dtype, params, grads, {"exp_avg": zeros, "exp_avg_sq": zeros})
    twin = group.twin32()
    hyper = dict(HYPER, lr=1e-3 if dtype == "bfloat16" else 1e-4)
    group.step(1, hyper, stochastic=True, seed=int(rng.integers(2**63)))
    twin.step(1, hyper)
    x32 = np.concatenate(twin.params)
    lo, hi = neighbours(x32, dtype)
    x64 = x32.astype(np.float64)
    inexact = hi > lo
    ulp, f = hi[inexact] - lo[inexact], (x64 - lo)[inexact] / (hi - lo)[inexact]
    sd = np.sqrt(np.sum(f * (1 - f)))

    def z(stored):
        s = to_f64(stored, dtype)[inexact]
        assert np.all((s == lo[inexact]) | (s == hi[inexact]))  # one of the two neighbours
        return np.sum((s - x64[inexact]) / ulp) / sd

    assert abs(z(group.params[0])) < 4.89, z(group.params[0])
    assert abs(z(from_f64(x32, dtype))) > 100  # the test would see round-to-nearest's bias


# ---------------------------------------------------------------- the norm pass

def norm_grads(rng, sizes, dtypes):
    """Gradients over six orders of magnitude, dtypes cycling through `dtypes`."""
    out = []
    for i, n in enumerate(sizes):
        dt = dtypes[i % len(dtypes)]
        out.append((from_f64(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n), dt), dt))
    return out


NORM_DTYPES = [(d,) for d in DTYPES] + [DTYPES]
NORM_IDS = list(DTYPES) + ["mixed"]


@pytest.mark.parametrize("dtypes", NORM_DTYPES, ids=NORM_IDS)
@pytest.mark.parametrize("scale", [1.0, 1 / 1024, 3.7])
def test_norm_matches_model(isa, dtypes, scale, rng):
    sizes = [1, 15, 16, 17, 0, 16385] + list(rng.integers(1, 200, size=300)) + [100003]
    grads = norm_grads(rng, sizes, dtypes)
    s, nonfinite = _C.grad_sumsq([g for g, _ in grads], scale)
    s64, nonfinite64 = grad_sumsq64([to_f64(g, dt) for g, dt in grads], scale)
    assert not nonfinite and not nonfinite64
    assert abs(s - s64) <= 1e-12 * s64, (s, s64)


@pytest.mark.parametrize("dtypes", NORM_DTYPES, ids=NORM_IDS)
def test_norm_is_bitwise_deterministic(threads, dtypes, rng):
    """The same float64 for 1, 2 and 4 threads, every ISA path and repeated runs (16,384-
    element chunks in a fixed order; 300k elements: 19 chunks, across tensor edges)."""
    sizes = [100003, 7, 65545, 1] + list(rng.integers(1, 300, size=200)) + [150001]
    grads = [g for g, _ in norm_grads(rng, sizes, dtypes)]
    before = _C.get_isa()
    results = set()
    try:
        for isa_name in (i for i in ISAS if _C.isa_supported(i)):
            _C.set_isa(isa_name)
            for n in (1, 2, 4, 2):
                _C.set_num_threads(n)
                results.add(float(_C.grad_sumsq(grads, 0.3)[0]).hex())
    finally:
        _C.set_isa(before)
    assert len(results) == 1, results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_norm_flags_planted_nonfinite(isa, threads, dtype, value, rng):
    """Wherever it lies (first element, inside a vector, the last tail element of the
    last tensor) and for any thread count."""
    sizes = [70001, 5, 40003]
    grads = [g for g, _ in norm_grads(rng, sizes, (dtype,))]
    _C.set_num_threads(2)
    assert _C.grad_sumsq(grads, 1.0)[1] is False
    for i, j in [(0, 0), (0, 35000), (1, 4), (2, 40002)]:
        planted = [g.copy() for g in grads]
        planted[i][j] = from_f64(np.array([value]), dtype)[0]
        assert _C.grad_sumsq(planted, 1.0)[1] is True, (i, j)


def test_norm_flags_overflow_of_the_unscale(isa):
    """The flag is about float32(g * grad_scale): a finite gradient that the scale makes
    infinite is an overflow; the largest finite float32 with scale 1 is not."""
    g = np.full(33, 3e38, np.float32)
    s, flag = _C.grad_sumsq([g], 1.0)
    assert flag is False and s == grad_sumsq64([g.astype(np.float64)])[0]
    assert _C.grad_sumsq([g], 2.0)[1] is True


# ---------------------------------------------------------------- argument errors

def test_direct_calls_reject_bad_arguments_before_writing(rng):
    """TypeError for a NumPy scalar or None in place of a parameter or gradient and for a
    wrong dtype; ValueError for a gradient of another shape (same size), states of the
    wrong size, a strided or read-only parameter, masters with stochastic rounding. Each
    names the argument, and nothing is written (the first tensor stays unchanged too)."""
    group = random_group(rng, [6, 6], "float32", amsgrad=True, master=True)
    p, g = group.params, group.grads
    m, v, x = (group.states[k] for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
    arrays = p + g + [m, v, x, group.master]
    snapshot = [a.copy() for a in arrays]
    args = (1e-3, 0.1, 1, 0.9, 0.999, 1e-8)
    bf16 = np.zeros(6, np.uint16)  # a bfloat16 parameter: its gradient may not be float16
    strided = np.zeros(12, np.float32)[::2]
    read_only = p[1].copy()
    read_only.flags.writeable = False
    cases = [
        (TypeError, "params[1] must be a NumPy array, got float32",
         lambda: _C.adamw_step([p[0], np.float32(1.0)], g, m, v, *args)),
        (TypeError, "params[0] must be a NumPy array, got NoneType",
         lambda: _C.adamw_step([None, p[1]], g, m, v, *args)),
        (TypeError, "grads[1]", lambda: _C.adamw_step(p, [g[0], None], m, v, *args)),
        (TypeError, "grads[0]", lambda: _C.adamw_step(p, [np.float32(0.5), g[1]], m, v, *args)),
        (ValueError, "grads[1]", lambda: _C.adamw_step(p, [g[0], g[1].reshape(2, 3)], m, v, *args)),
        (ValueError, "grads[0]", lambda: _C.adamw_step([p[0].reshape(3, 2), p[1]], g, m, v, *args)),
        (ValueError, "exp_avg", lambda: _C.adamw_step(p, g, m[:-1], v, *args)),
        (ValueError, "exp_avg_sq", lambda: _C.adamw_step(p, g, m, np.zeros(m.size + 1, np.float32), *args)),
        (ValueError, "max_exp_avg_sq", lambda: _C.adamw_step(p, g, m, v, *args, max_exp_avg_sq=x[:5])),
        (ValueError, "master", lambda: _C.adamw_step(p, g, m, v, *args, master=group.master[1:])),
        (TypeError, "grads[1]", lambda: _C.adamw_step([p[0], bf16], [g[0], bf16.view(np.float16)], m, v, *args)),
        (ValueError, "params[1]", lambda: _C.adamw_step([p[0], strided], g, m, v, *args)),
        (ValueError, "params[1]", lambda: _C.adamw_step([p[0], read_only], g, m, v, *args)),
        (TypeError, "exp_avg", lambda: _C.adamw_step(p, g, m.astype(np.float16), v, *args)),
        (TypeError, "exp_avg", lambda: _C.adamw_step(p, g, np.zeros(m.size, np.uint16), v, *args)),
        (TypeError, "master", lambda: _C.adamw_step(p, g, m, v, *args, master=group.master.astype(np.float16))),
        (ValueError, "master", lambda: _C.adamw_step(p, g, m, v, *args, master=group.master, stochastic=True)),
        (TypeError, "grads[0]", lambda: _C.grad_sumsq([None])),
        (TypeError, "grads[1]", lambda: _C.grad_sumsq([g[0], np.float64(2.0)])),
    ]
    for error, name, call in cases:
        with pytest.raises(error, match=re.escape(name) + r"(?!\w)"):  # exp_avg is not exp_avg_sq
            call()
        for a, b in zip(arrays, snapshot):
            same_bits(a, b)
    for buf, off, n in group.buffers:
        assert_guards_intact(buf, off, n)
