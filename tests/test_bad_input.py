"""Bad input never crashes the process and never half-applies a step: a clear TypeError or
ValueError naming the culprit, raised before anything is written."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from fused_adamw import FusedAdamW
from fused_adamw.bench.peers import mindformers_adamw_class
from scenario import LinearWeightDecay


def _params(rng, shapes=((4, 3), (5,), (1,)), dtype=np.float32):
    return [Parameter(Tensor(rng.standard_normal(s).astype(dtype)), name=f"layer{i}.weight")
            for i, s in enumerate(shapes)]


def _grads(rng, params):
    return tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in params)


def _snapshot(opt):
    return ([p.asnumpy().copy() for p in opt.parameters],
            [m.asnumpy().copy() for m in opt.exp_avg_flat] + [v.asnumpy().copy() for v in opt.exp_avg_sq_flat],
            opt.global_step.asnumpy().copy())


def _assert_unchanged(opt, snap):
    now = _snapshot(opt)
    for before, after in zip(snap[0] + snap[1] + [snap[2]], now[0] + now[1] + [now[2]]):
        np.testing.assert_array_equal(before, after)


def _started(rng, opt):
    """An optimizer that has taken two good steps, so states are non-zero."""
    for _ in range(2):
        opt(_grads(rng, opt.parameters))
    return opt


def _bad_call(opt, grads, error, match):
    snap = _snapshot(opt)
    with pytest.raises(error, match=match):
        opt(grads)
    _assert_unchanged(opt, snap)


@pytest.mark.parametrize("case", ["missing", "extra", "none", "shape", "float16", "int32"])
def test_bad_gradients(mode, rng, case):
    opt = _started(rng, FusedAdamW(_params(rng), learning_rate=0.01, weight_decay=0.1))
    grads = list(_grads(rng, opt.parameters))
    error, match = ValueError, "layer1.weight"
    if case == "missing":
        grads, match = grads[:-1], "expected 3 gradients.*got 2"
    elif case == "extra":
        grads, match = grads + [grads[0]], "expected 3 gradients.*got 4"
    elif case == "none":
        grads[1] = None
    elif case == "shape":
        grads[1] = Tensor(np.ones(6, np.float32))
    else:
        grads[1] = Tensor(np.ones(5, getattr(np, case)))
        error = TypeError
    _bad_call(opt, tuple(grads), error, match)
    opt(_grads(rng, opt.parameters))  # still usable afterwards
    assert int(opt.global_step.asnumpy()[0]) == 3


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5])
def test_bad_learning_rate_at_runtime(mode, rng, value):
    opt = _started(rng, FusedAdamW(_params(rng), learning_rate=0.01))
    opt.learning_rate.set_data(Tensor(value, ms.float32))
    _bad_call(opt, _grads(rng, opt.parameters), ValueError, "learning rate of parameter group 0")


def test_schedule_that_goes_negative_stops_before_writing(mode, rng):
    class Falling(nn.learning_rate_schedule.LearningRateSchedule):
        def construct(self, global_step):
            return 0.015 - 0.01 * ms.ops.cast(global_step, ms.float32)

    params = _params(rng)
    opt = FusedAdamW([{"params": params[:1]}, {"params": params[1:], "lr": Falling()}],
                     learning_rate=0.01)
    _started(rng, opt)  # lr at steps 0 and 1: 0.015, 0.005; at step 2: -0.005
    _bad_call(opt, _grads(rng, opt.parameters), ValueError, "learning rate of parameter group 1")


def test_dynamic_weight_decay_that_goes_negative(mode, rng):
    params = _params(rng)
    opt = FusedAdamW([{"params": params, "weight_decay": LinearWeightDecay(0.015, -0.01)}])
    _started(rng, opt)
    _bad_call(opt, _grads(rng, opt.parameters), ValueError, "weight decay of parameter group 0")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"betas": (1, 0.999)}, TypeError, "betas\\[0\\]"),
    ({"betas": (0.9, "0.999")}, TypeError, "betas\\[1\\]"),
    ({"betas": 0.9}, TypeError, "betas"),
    ({"betas": (0.9,)}, ValueError, "betas"),
    ({"betas": (1.0, 0.999)}, ValueError, "beta1"),
    ({"betas": (0.9, 0.0)}, ValueError, "beta2"),
    ({"eps": 1}, TypeError, "eps"),
    ({"eps": 0.0}, ValueError, "eps"),
    ({"eps": -1e-8}, ValueError, "eps"),
    ({"weight_decay": "0.1"}, TypeError, "weight_decay"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ({"weight_decay": math.nan}, ValueError, "weight_decay"),
    ({"learning_rate": "0.1"}, TypeError, "learning_rate"),
    ({"learning_rate": -1e-3}, ValueError, "learning"),
    ({"learning_rate": math.nan}, ValueError, "learning_rate"),
    ({"learning_rate": math.inf}, ValueError, "learning_rate"),
    ({"learning_rate": Tensor(np.array([0.1, math.nan], np.float32))}, ValueError, "learning_rate"),
    ({"learning_rate": [0.1, -0.1]}, ValueError, "learning_rate"),
    # valid in float64, not in float32 (the kernel's arithmetic)
    ({"betas": (0.9, 0.99999999)}, ValueError, "'betas\\[1\\]' \\(beta2\\) must be in \\(0, 1\\) in float32"),
    ({"betas": (1e-50, 0.999)}, ValueError, "'betas\\[0\\]' \\(beta1\\)"),
    ({"betas": (math.nan, 0.999)}, ValueError, "beta1"),
    ({"betas": (0.9, math.nan)}, ValueError, "beta2"),
    ({"eps": 1e-50}, ValueError, "'eps' must be finite and > 0 in float32"),
    ({"eps": 1e39}, ValueError, "'eps' must be finite"),
    ({"eps": math.nan}, ValueError, "eps"),
    ({"weight_decay": 1e39}, ValueError, "'weight_decay' must be finite and >= 0 in float32"),
    ({"weight_decay": math.inf}, ValueError, "weight_decay"),
    ({"learning_rate": 1e39}, ValueError, "'learning_rate' must be finite and >= 0 in float32"),
    ({"learning_rate": [0.1, 1e39]}, ValueError, "learning_rate.*at step 1"),
])
def test_bad_constructor_arguments(rng, kwargs, error, match):
    with pytest.raises(error, match=match):
        FusedAdamW(_params(rng), **kwargs)


def test_bad_group_values_in_float32(rng):
    params = _params(rng)
    with pytest.raises(ValueError, match="'weight_decay' of parameter group 1 must be finite"):
        FusedAdamW([{"params": params[:1]}, {"params": params[1:], "weight_decay": 1e39}])
    with pytest.raises(ValueError, match="'lr' of parameter group 0 must be finite"):
        FusedAdamW([{"params": params[:1], "lr": 1e39}, {"params": params[1:]}])


@pytest.mark.parametrize("layout", ["list", "groups", "order_params"])
def test_duplicate_parameters_are_rejected(rng, layout):
    """A parameter listed twice would be updated twice per step, with two states."""
    a, b = _params(rng, ((3,), (4,)))
    params = {"list": [a, b, a],
              "groups": [{"params": [a, b]}, {"params": [a], "lr": 0.1}],
              "order_params": [{"params": [a, b]}, {"order_params": [a, b, a]}]}[layout]
    with pytest.raises(ValueError, match="'layer0.weight'"):
        FusedAdamW(params)


@pytest.mark.parametrize("value", [2**31 - 1, -1])
def test_global_step_that_cannot_be_incremented(mode, rng, value):
    """int32 global_step at its maximum would wrap to a negative step inside the kernel."""
    opt = _started(rng, FusedAdamW(_params(rng), learning_rate=0.01))
    opt.global_step.set_data(Tensor(np.array([value], np.int32)))
    _bad_call(opt, _grads(rng, opt.parameters), ValueError, "global_step must be in \\[0, 2147483646\\]")
    opt = _rebuilt(opt) if mode == "graph" else opt  # docs/robustness.md
    opt.global_step.set_data(Tensor(np.array([2**31 - 2], np.int32)))  # the last step that fits
    opt(_grads(rng, opt.parameters))
    assert int(opt.global_step.asnumpy()[0]) == 2**31 - 1


def _rebuilt(opt):
    """docs/robustness.md: after an error raised while a GRAPH_MODE step runs, MindSpore refuses
    every later call of that compiled graph; a new optimizer over the same parameters, given the
    old one's states (same names) by load_param_into_net, carries on."""
    new = FusedAdamW(list(opt.parameters), learning_rate=opt.learning_rate.asnumpy().item(),
                     betas=opt.betas, eps=opt.eps_value)
    not_loaded, _ = ms.load_param_into_net(new, {p.name: p for p in opt.get_parameters()})
    assert not_loaded == []
    return new


def test_graph_mode_recovery_after_a_runtime_refusal(rng):
    """The recovery docs/robustness.md describes continues exactly as if the bad call never happened."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        values = _params(rng)
        opt = FusedAdamW(_params(rng), learning_rate=0.01)
        twin = FusedAdamW([Parameter(p.copy(), name=p.name) for p in opt.parameters], learning_rate=0.01)
        for _ in range(2):
            grads = _grads(rng, values)
            opt(grads)
            twin(grads)
        opt.learning_rate.set_data(Tensor(math.nan, ms.float32))
        _bad_call(opt, _grads(rng, values), ValueError, "learning rate of parameter group 0")
        opt.learning_rate.set_data(Tensor(0.01, ms.float32))
        with pytest.raises(RuntimeError, match="previous step"):
            opt(_grads(rng, values))  # MindSpore's behaviour, documented
        opt = _rebuilt(opt)
        grads = _grads(rng, values)
        opt(grads)
        twin(grads)
        for a, b in zip(list(opt.get_parameters()), list(twin.get_parameters())):
            np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=a.name)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


class _MixedDtypeSchedule(nn.learning_rate_schedule.LearningRateSchedule):
    def construct(self, global_step):
        if global_step < 2:
            return ms.ops.cast(global_step, ms.float16) * 0.01 + 0.01
        return ms.ops.cast(global_step, ms.float32) * 0.01


def test_schedule_whose_branches_return_other_dtypes(mode, rng):
    """GRAPH_MODE cannot join the branches: MindSpore's TypeError at compile time, before
    anything runs. PYNATIVE_MODE runs the branch taken; its value is cast to float32."""
    opt = FusedAdamW(_params(rng), learning_rate=_MixedDtypeSchedule())
    if mode == "graph":
        _bad_call(opt, _grads(rng, opt.parameters), TypeError, "Float16")
    else:
        _started(rng, opt)
        assert int(opt.global_step.asnumpy()[0]) == 2


def test_bad_parameter_lists(rng):
    with pytest.raises(ValueError, match="must not be empty"):
        FusedAdamW([])
    with pytest.raises(TypeError):
        FusedAdamW([Tensor(np.ones(3, np.float32))])
    with pytest.raises(TypeError, match="float32, float16, bfloat16"):
        FusedAdamW([Parameter(Tensor(np.ones(3, np.int32)), name="counts")])
    with pytest.raises(ValueError, match="lr"):
        FusedAdamW([{"params": _params(rng), "lr": math.nan}])


def test_zero_element_parameter_is_skipped(mode, rng):
    """Documented behaviour: a zero-element parameter is accepted; it has nothing to
    update, joins no kernel call, and its (empty) gradient is still checked."""
    params = _params(rng) + [Parameter(Tensor(np.zeros((0, 4), np.float32)), name="empty")]
    opt = FusedAdamW(params, learning_rate=0.01)
    before = params[0].asnumpy().copy()
    grads = _grads(rng, params[:3]) + (Tensor(np.zeros((0, 4), np.float32)),)
    opt(grads)
    assert not np.array_equal(before, params[0].asnumpy())
    assert opt.exp_avg[3].shape == (0, 4)
    _bad_call(opt, grads[:3] + (Tensor(np.zeros((4, 0), np.float32)),), ValueError, "empty")


def test_nan_and_inf_gradients_propagate_like_mindformers(mode, rng):
    values = [rng.standard_normal(s).astype(np.float32) for s in ((6,), (3, 2))]
    ours = FusedAdamW([Parameter(Tensor(v.copy()), name=f"p{i}") for i, v in enumerate(values)],
                      learning_rate=0.01, weight_decay=0.1)
    theirs = mindformers_adamw_class()([Parameter(Tensor(v.copy()), name=f"p{i}")
                                        for i, v in enumerate(values)], learning_rate=0.01, weight_decay=0.1)
    for step in range(3):
        grads = [rng.standard_normal(v.shape).astype(np.float32) for v in values]
        if step == 1:
            grads[0][2], grads[1][1, 0] = np.nan, np.inf
        ours(tuple(Tensor(g) for g in grads))
        theirs(tuple(Tensor(g) for g in grads))
    for i in range(2):
        for a, b in ((ours.parameters[i], theirs.parameters[i]), (ours.exp_avg[i], theirs.exp_avg[i]),
                     (ours.exp_avg_sq[i], theirs.exp_avg_sq[i])):
            a, b = a.asnumpy(), b.asnumpy()
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-5)
    assert np.isnan(ours.parameters[0].asnumpy()[2]) and np.isnan(ours.parameters[1].asnumpy()[1, 0])
    assert np.isinf(ours.exp_avg_sq[1].asnumpy()[1, 0])
