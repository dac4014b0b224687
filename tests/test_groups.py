"""Kernel-group planning: which parameters share one kernel call."""
import numpy as np
from mindspore import Parameter, Tensor, nn

from fused_adamw import FusedAdamW
from fused_adamw._groups import as_slice, plan_kernel_groups


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
    assert as_slice((0, 2)) is None and as_slice((3, 4, 5)) == (3, 6)


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
