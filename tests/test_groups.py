"""Kernel-group planning: which parameters share one kernel call."""
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from fused_adamw import FusedAdamW
from ms_helpers import read64
from reference import adamw_step64, rel_err
from fused_adamw._gather import gather, gather_plan, progressions
from fused_adamw._groups import plan_kernel_groups


def _p(name, shape, dtype=np.float32):
    return Parameter(Tensor(np.zeros(shape, dtype)), name=name)


def test_groups_follow_lr_and_weight_decay_not_user_dicts():
    a, b, c, d = _p("a", (2,)), _p("b", (3,)), _p("c", (4,)), _p("d", (5,))
    # Two user groups with the same (default) lr and the same weight decay share one call.
    opt = FusedAdamW([{"params": [a, b], "weight_decay": 0.1}, {"params": [c], "weight_decay": 0.1},
                      {"params": [d], "weight_decay": 0.0}], learning_rate=0.01)
    assert opt._group_indices == ((0, 1, 2), (3,))
    # Each member's state starts at a multiple of 32 elements: a at 0, b at 32, c at 64.
    assert [int(f.shape[0]) for f in opt.exp_avg_flat] == [64 + 4, 5]


def test_order_params_interleaves_groups():
    a, b, c = _p("a", (2,)), _p("b", (3,)), _p("c", (4,))
    opt = FusedAdamW([{"params": [a, c], "lr": 0.1}, {"params": [b]}, {"order_params": [a, b, c]}])
    assert [p.name for p in opt.parameters] == ["a", "b", "c"]
    assert opt._group_indices == ((0, 2), (1,))
    assert opt._group_runs == ((((0, 3, 2),), None), (((1, 2, 1),), None))  # slices with a stride


def test_large_groups_split_and_dtype_split_for_ascend():
    params = [_p(f"w{i}", (1,)) for i in range(5)] + [_p("h", (2,), np.float16)]
    opt = nn.Optimizer(0.1, params)
    assert [g.indices for g in plan_kernel_groups(opt, max_tensors=2)] == [(0, 1), (2, 3), (4, 5)]
    assert [g.indices for g in plan_kernel_groups(opt, split_by_dtype=True)] == [(0, 1, 2, 3, 4), (5,)]
    assert plan_kernel_groups(opt)[0].offsets == (0, 32, 64, 96, 128, 160)
    assert plan_kernel_groups(opt)[0].total == 162


def test_kernel_threads_follow_mindspore_setting():
    import mindspore as ms
    from fused_adamw import _C

    before = ms.get_context("runtime_num_threads")
    try:
        ms.set_context(runtime_num_threads=1)
        FusedAdamW([_p("t", (3,))])
        assert _C.num_threads() == 1
        ms.set_context(runtime_num_threads=64)
        FusedAdamW([_p("t", (3,))])
        assert _C.num_threads() == _C.openmp_max_threads()
    finally:
        ms.set_context(runtime_num_threads=before)
        FusedAdamW([_p("t", (3,))])


def test_gather_plans_pick_every_index_set(rng):
    """Few arithmetic progressions become constant slices, anything else one Map (_gather.py)."""
    assert progressions((3, 4, 5)) == ((3, 6, 1),)
    assert progressions((0, 2, 4, 5, 6, 9)) == ((0, 5, 2), (5, 7, 1), (9, 10, 1))
    assert gather_plan((1, 3, 5, 7, 8, 9)) == (((1, 8, 2), (8, 10, 1)), None)
    items = tuple(range(500))
    for _ in range(20):
        indices = tuple(sorted(rng.choice(500, size=int(rng.integers(1, 60)), replace=False).tolist()))
        plan = gather_plan(indices)
        assert gather(items, plan) == indices, (indices, plan)
    assert gather_plan((0, 1, 3, 6, 10, 15, 21, 28, 36)) == ((), (0, 1, 3, 6, 10, 15, 21, 28, 36))


def _run_against_model(rng, opt, lr_of, wd_of, steps=3):
    """Steps `opt` and checks every parameter and state against the float64 model."""
    order = list(opt.parameters)
    p64 = [read64(p) for p in order]
    m64 = [np.zeros(p.shape) for p in order]
    v64 = [np.zeros(p.shape) for p in order]
    for s in range(steps):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in order]
        opt(tuple(Tensor(g) for g in grads))
        for i, p in enumerate(order):
            p64[i], m64[i], v64[i] = adamw_step64(p64[i], grads[i].astype(np.float64), m64[i], v64[i],
                                                 lr_of[p.name], wd_of[p.name], s + 1)
    flat = lambda xs: np.concatenate([np.ravel(x) for x in xs])
    assert rel_err(flat([read64(p) for p in order]), flat(p64)) <= 1e-6
    assert rel_err(flat([opt.exp_avg[i].asnumpy() for i in range(len(order))]), flat(m64)) <= 1e-6
    assert rel_err(flat([opt.exp_avg_sq[i].asnumpy() for i in range(len(order))]), flat(v64)) <= 1e-6


@pytest.mark.parametrize("layout", ["strided", "shuffled"])
def test_hundreds_of_interleaved_parameters_with_empty_ones(mode, rng, layout):
    """Issue 9 item 7 (at a few hundred: GRAPH_MODE used to take 45-77 s to compile 300 of them):
    groups interleaved by order_params and zero-element parameters among their members."""
    n = 240
    sizes = rng.integers(1, 40, size=n)
    sizes[[7, n // 2, n - 2]] = 0
    params = [Parameter(Tensor(rng.standard_normal(int(s)).astype(np.float32)), name=f"p{i}")
              for i, s in enumerate(sizes)]
    if layout == "strided":
        members = [params[0::3], params[1::3], params[2::3]]
    else:
        order = rng.permutation(n)
        members = [[params[i] for i in order[:n // 3]], [params[i] for i in order[n // 3:2 * n // 3]],
                   [params[i] for i in order[2 * n // 3:]]]
    settings = [(0.01, 0.1), (0.02, 0.0), (0.005, 0.3)]
    groups = [{"params": m, "lr": lr, "weight_decay": wd} for m, (lr, wd) in zip(members, settings)]
    opt = FusedAdamW(groups + [{"order_params": params}], learning_rate=0.01)
    plans = [plan[1] is None for plan in opt._group_runs]
    assert plans == ([True] * 3 if layout == "strided" else [False] * 3)  # slices / Map
    lr_of = {p.name: lr for m, (lr, _) in zip(members, settings) for p in m}
    wd_of = {p.name: wd for m, (_, wd) in zip(members, settings) for p in m}
    _run_against_model(rng, opt, lr_of, wd_of)
