"""FusedAdamW's opt-in options (issue 11) through MindSpore, in both modes, against the
float64 model (tests/reference.py). The kernel-level checks of each variant, every ISA path
and the exact stochastic-rounding bits are in test_kernel_options.py."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from fused_adamw import FusedAdamW
from ms_helpers import MS_DTYPE, make_param, read64, read_stored, representable, to_tensor
from reference import adamw_step64, from_f64, rel_err, rounding_excess

SHAPES = [(1,), (7,), (33,), (5, 13), (1025,)]
HYPER = dict(learning_rate=0.01, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)


def _params(rng, dtype, prefix="p", values=None):
    values = values or [rng.standard_normal(s) for s in SHAPES]
    return [make_param(v, dtype, f"{prefix}{i}") for i, v in enumerate(values)]


def _model(p, g, m, v, step, **kw):
    return adamw_step64(p, g, m, v, HYPER["learning_rate"], HYPER["weight_decay"], step, *HYPER["betas"],
                        HYPER["eps"], **kw)


def _grads(rng, dtype="float32"):
    return [representable(rng.standard_normal(s), dtype).astype(np.float64) for s in SHAPES]


@pytest.mark.parametrize("option", ["amsgrad", "maximize"])
def test_amsgrad_and_maximize_against_the_model(mode, rng, option):
    params = _params(rng, "float32")
    opt = FusedAdamW(params, **HYPER, **{option: True})
    p64 = [read64(p) for p in params]
    m64 = [np.zeros(s) for s in SHAPES]
    v64 = [np.zeros(s) for s in SHAPES]
    x64 = [np.zeros(s) for s in SHAPES]
    for t in range(1, 9):
        grads = _grads(rng)
        if option == "amsgrad" and t % 3 == 0:
            grads = [0.01 * g for g in grads]  # smaller gradients: v falls below its running max
        opt(tuple(to_tensor(g, "float32") for g in grads))
        for i in range(len(SHAPES)):
            if option == "amsgrad":
                p64[i], m64[i], v64[i], x64[i] = _model(p64[i], grads[i], m64[i], v64[i], t, vmax=x64[i])
            else:
                p64[i], m64[i], v64[i] = _model(p64[i], grads[i], m64[i], v64[i], t, grad_scale=-1.0)
    # Norm-wise over all tensors: a one-element exp_avg can cancel (b1*m ~ -(1-b1)*g) far below
    # its operands, where float32's error is relative to the operands, not to the result.
    flat = lambda xs: np.concatenate([np.ravel(x) for x in xs])
    n = range(len(SHAPES))
    assert rel_err(flat(read64(params[i]) for i in n), flat(p64)) <= 1e-6
    assert rel_err(flat(opt.exp_avg[i].asnumpy() for i in n), flat(m64)) <= 1e-6
    assert rel_err(flat(opt.exp_avg_sq[i].asnumpy() for i in n), flat(v64)) <= 1e-6
    if option == "amsgrad":
        assert rel_err(flat(opt.max_exp_avg_sq[i].asnumpy() for i in n), flat(x64)) <= 1e-6
        assert all(np.all(opt.max_exp_avg_sq[i].asnumpy() >= opt.exp_avg_sq[i].asnumpy()) for i in n)
    assert int(opt.global_step.asnumpy()[0]) == 8


def test_bf16_states_round_each_step(mode, rng):
    params = _params(rng, "float32")
    opt = FusedAdamW(params, **HYPER, state_dtype=ms.bfloat16)
    assert all(f.dtype == ms.bfloat16 for f in opt.exp_avg_flat + opt.exp_avg_sq_flat)
    b1, b2 = HYPER["betas"]
    for t in range(1, 7):
        grads = _grads(rng)
        # From the stored (bf16) states and parameters: the update uses float32 m, v, which are
        # then stored to nearest even.
        p0 = [read64(p) for p in params]
        m0 = [opt.exp_avg[i].asnumpy().astype(np.float64) for i in range(len(SHAPES))]
        v0 = [opt.exp_avg_sq[i].asnumpy().astype(np.float64) for i in range(len(SHAPES))]
        opt(tuple(to_tensor(g, "float32") for g in grads))
        for i in range(len(SHAPES)):
            p64, m64, v64 = _model(p0[i], grads[i], m0[i], v0[i], t)
            assert rel_err(read64(params[i]), p64) <= 1e-6
            # The views are float32 (exact copies of the bfloat16 states): their high halves.
            m_bits = (opt.exp_avg[i].asnumpy().view(np.uint32) >> 16).astype(np.uint16)
            v_bits = (opt.exp_avg_sq[i].asnumpy().view(np.uint32) >> 16).astype(np.uint16)
            assert opt.exp_avg[i].dtype == ms.float32 and not np.any(opt.exp_avg[i].asnumpy().view(np.uint32) & 0xFFFF)
            assert rounding_excess(m_bits, m64, np.abs(b1 * m0[i]) + np.abs((1 - b1) * grads[i]), "bfloat16").max() <= 1
            assert rounding_excess(v_bits, v64, b2 * v0[i] + (1 - b2) * grads[i] ** 2, "bfloat16").max() <= 1


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_master_weights_follow_a_float32_run_bit_for_bit(mode, rng, dtype):
    values = [representable(rng.standard_normal(s), dtype).astype(np.float64) for s in SHAPES]
    low = _params(rng, dtype, "low", values)
    full = _params(rng, "float32", "full", values)
    opt_low = FusedAdamW(low, **HYPER, master_weights=True)
    opt_full = FusedAdamW(full, **HYPER)
    for _ in range(10):
        grads = _grads(rng, dtype)
        opt_low(tuple(to_tensor(g, dtype) for g in grads))
        opt_full(tuple(to_tensor(g, "float32") for g in grads))
    for i in range(len(SHAPES)):
        master = opt_low.master[i].asnumpy()
        np.testing.assert_array_equal(master, full[i].asnumpy())
        np.testing.assert_array_equal(read_stored(low[i], dtype), from_f64(master.astype(np.float64), dtype))
        np.testing.assert_array_equal(opt_low.exp_avg[i].asnumpy(), opt_full.exp_avg[i].asnumpy())


def test_master_weights_leave_float32_parameters_alone(mode, rng):
    """A float32 parameter beside bf16 ones gets no master and the default update."""
    bf = _params(rng, "bfloat16", "bf")
    f32 = make_param(rng.standard_normal((9,)), "float32", "f32")
    ref = make_param(read64(f32), "float32", "ref")
    opt = FusedAdamW(bf + [f32], **HYPER, master_weights=True)
    plain = FusedAdamW([ref], **HYPER)
    assert len(opt.master_flat) == 1 and opt.master.location(len(bf)) is None
    for _ in range(4):
        grads = _grads(rng) + [rng.standard_normal(9)]
        opt(tuple([to_tensor(g, "bfloat16") for g in grads[:-1]] + [to_tensor(grads[-1], "float32")]))
        plain((to_tensor(grads[-1], "float32"),))
    np.testing.assert_array_equal(f32.asnumpy(), ref.asnumpy())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_stochastic_rounding_is_seeded_and_within_one_ulp(mode, rng, dtype):
    values = [rng.standard_normal(s) for s in SHAPES]
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        params = _params(rng, dtype, name, values)
        runs[name] = (params, FusedAdamW(params, **HYPER, stochastic_rounding=True, seed=seed))
    params, opt = runs["a"]
    for t in range(1, 6):
        grads = _grads(rng, dtype)
        p0 = [read64(p) for p in params]
        m0 = [opt.exp_avg[i].asnumpy().astype(np.float64) for i in range(len(SHAPES))]
        v0 = [opt.exp_avg_sq[i].asnumpy().astype(np.float64) for i in range(len(SHAPES))]
        for _, o in runs.values():
            o(tuple(to_tensor(g, dtype) for g in grads))
        for i in range(len(SHAPES)):
            p64, _, _ = _model(p0[i], grads[i], m0[i], v0[i], t)
            # Either neighbour of the exact result: within one ulp of the 16-bit type (plus the
            # float32 error of the computation, on the scale of its operands: the old parameter
            # and the update, which can cancel to a result far below both).
            scale = np.abs(p0[i]) + np.abs(p64 - p0[i])
            assert rounding_excess(read_stored(params[i], dtype), p64, scale, dtype).max() <= 2.0 + 1e-9
    same = [np.array_equal(read_stored(a, dtype), read_stored(b, dtype)) for a, b in zip(runs["a"][0], runs["b"][0])]
    other = [np.array_equal(read_stored(a, dtype), read_stored(c, dtype)) for a, c in zip(runs["a"][0], runs["c"][0])]
    assert all(same)
    assert not other[-1]  # 1025 elements: a different seed rounds some differently


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_float32_gradients_for_16bit_parameters(mode, rng, dtype):
    """MindFormers' unscale hands float32 gradients to 16-bit parameters: accepted in a plain
    call, and identical to 16-bit gradients of the same values."""
    values = [rng.standard_normal(s) for s in SHAPES]
    a, b = _params(rng, dtype, "a", values), _params(rng, dtype, "b", values)
    opt_a, opt_b = FusedAdamW(a, **HYPER), FusedAdamW(b, **HYPER)
    for _ in range(3):
        grads = _grads(rng, dtype)
        opt_a(tuple(to_tensor(g, "float32") for g in grads))
        opt_b(tuple(to_tensor(g, dtype) for g in grads))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(read_stored(x, dtype), read_stored(y, dtype))


def test_use_fused_and_swap_change_nothing_on_cpu(mode, rng):
    values = [rng.standard_normal(s) for s in SHAPES]
    a, b = _params(rng, "float32", "a", values), _params(rng, "float32", "b", values)
    opt_a, opt_b = FusedAdamW(a, **HYPER, use_fused=True, swap=True), FusedAdamW(b, **HYPER)
    for _ in range(3):
        grads = tuple(to_tensor(g, "float32") for g in _grads(rng))
        opt_a(grads)
        opt_b(grads)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.asnumpy(), y.asnumpy())


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(master_weights=True, stochastic_rounding=True), ValueError, "master_weights"),
    (dict(state_dtype=ms.float16), ValueError, "state_dtype"),
    (dict(seed=1.5), TypeError, "seed"), (dict(seed=True), TypeError, "seed"), (dict(seed=-1), ValueError, "seed"),
    (dict(amsgrad=1), TypeError, "amsgrad"), (dict(maximize="yes"), TypeError, "maximize"),
    (dict(use_fused=None), TypeError, "use_fused"), (dict(swap=0), TypeError, "swap"),
    (dict(master_weights=1), TypeError, "master_weights")])
def test_bad_options_name_the_argument(rng, kwargs, error, match):
    with pytest.raises(error, match=match):
        FusedAdamW(_params(rng, "float32"), **kwargs)
