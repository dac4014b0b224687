"""FusedAdamW against MindFormers' own AdamW file (mindformers 2.0.0), fed the same gradients."""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn

import pytest

from fused_adamw import FusedAdamW, _C
from fused_adamw.bench.peers import mindformers_adamw_class
from ms_helpers import MS_DTYPE, read64
from twin import TwoLayerNet, compare_states, copy_weights, make_optimizers, recipe_groups


def _params(values, prefix):
    return [Parameter(Tensor(v.copy()), name=f"{prefix}.{i}") for i, v in enumerate(values)]


def test_same_gradients_twenty_steps(mode, rng):
    shapes = [(4, 6), (6,), (17,), (1,), (1000,)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    pf, pm = _params(values, "w"), _params(values, "w")
    schedule = nn.CosineDecayLR(1e-4, 2e-2, 12)
    groups = lambda ps: [{"params": ps[:2], "lr": 0.01, "weight_decay": 0.05},
                         {"params": ps[2:], "weight_decay": 0.0}]
    fused = FusedAdamW(groups(pf), learning_rate=schedule, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    mf = mindformers_adamw_class()(groups(pm), learning_rate=schedule, betas=(0.9, 0.95), eps=1e-8,
                                   weight_decay=0.1)
    for _ in range(20):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        fused(tuple(Tensor(g) for g in grads))
        mf(tuple(Tensor(g) for g in grads))
    assert compare_states(fused, mf) <= 1e-6
    assert int(fused.global_step.asnumpy()[0]) == int(mf.global_step.asnumpy()[0]) == 20


def test_mindformers_optimizer_test_recipe(mode, rng):
    """Two-layer net, L1 loss, groups [{fc1: wd 0.01, lr 0.01}, {fc2: lr 0.1}], weight_decay 0.1,
    20 TrainOneStepCell steps: the same exp_avg / exp_avg_sq as MindFormers AdamW."""
    net_f, net_m = TwoLayerNet(rng), TwoLayerNet(rng)
    copy_weights(net_f, net_m)
    fused, mf = make_optimizers(net_f, net_m, recipe_groups, weight_decay=0.1)
    loss = nn.L1Loss()
    step_f = nn.TrainOneStepCell(nn.WithLossCell(net_f, loss), fused)
    step_m = nn.TrainOneStepCell(nn.WithLossCell(net_m, loss), mf)
    for _ in range(20):
        x = Tensor(rng.standard_normal((16, 8)).astype(np.float32))
        y = Tensor(rng.standard_normal((16, 4)).astype(np.float32))
        loss_f, loss_m = step_f(x, y), step_m(x, y)
        assert abs(float(loss_f.asnumpy()) - float(loss_m.asnumpy())) <= 1e-5 * abs(float(loss_m.asnumpy()))
    assert compare_states(fused, mf) <= 1e-6
    # MindFormers' test reads states by index: the same indices give the same tensors here.
    np.testing.assert_allclose(fused.exp_avg[0].asnumpy(), mf.exp_avg[0].asnumpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fused.exp_avg_sq[2].asnumpy(), mf.exp_avg_sq[2].asnumpy(), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_bit_identical_to_mindformers_on_cpu(mode, rng, isa, dtype):
    """Same operation order, float32 bias corrections and no FMA contraction: on the CPU every
    ISA path reproduces MindFormers' AdamW bit for bit, parameters and states. (bfloat16 cannot
    be compared here: MindFormers' AdamW fails on the CPU backend, which has no bfloat16 Assign.)"""
    if not _C.isa_supported(isa):
        pytest.skip(f"this CPU cannot run {isa}")
    previous = _C.get_isa()
    _C.set_isa(isa)
    try:
        shapes = [(1000,), (37,), (4, 5)]
        values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        make = lambda: [Parameter(Tensor(v).astype(MS_DTYPE[dtype]), name=f"w.{i}") for i, v in enumerate(values)]
        fused = FusedAdamW(make(), learning_rate=0.01, betas=(0.9, 0.95), weight_decay=0.1)
        mf = mindformers_adamw_class()(make(), learning_rate=0.01, betas=(0.9, 0.95), weight_decay=0.1)
        for _ in range(30):
            grads = [Tensor(rng.standard_normal(s).astype(np.float32)).astype(MS_DTYPE[dtype]) for s in shapes]
            fused(tuple(grads))
            mf(tuple(grads))
        for i in range(len(shapes)):
            np.testing.assert_array_equal(read64(fused.parameters[i]), read64(mf.parameters[i]))
            np.testing.assert_array_equal(fused.exp_avg[i].asnumpy(), mf.exp_avg[i].asnumpy())
            np.testing.assert_array_equal(fused.exp_avg_sq[i].asnumpy(), mf.exp_avg_sq[i].asnumpy())
    finally:
        _C.set_isa(previous)
