"""FusedAdamW inside the ways people train with MindSpore: mindspore.jit, a value_and_grad
step, nn.TrainOneStepCell; each checked against MindFormers AdamW doing the same."""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from twin import TwoLayerNet, compare_states, copy_weights, make_optimizers, recipe_groups


def _batches(rng, n):
    return [(Tensor(rng.standard_normal((8, 8)).astype(np.float32)),
             Tensor(rng.standard_normal((8, 4)).astype(np.float32))) for _ in range(n)]


def _value_and_grad_step(net, optimizer, use_jit):
    loss_fn = nn.MSELoss()

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    def step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    return ms.jit(step) if use_jit else step


def test_value_and_grad_step(mode, rng):
    net_f, net_m = TwoLayerNet(rng), TwoLayerNet(rng)
    copy_weights(net_f, net_m)
    fused, mf = make_optimizers(net_f, net_m, lambda n: n.trainable_params(), learning_rate=0.01,
                                weight_decay=0.1)
    step_f, step_m = _value_and_grad_step(net_f, fused, False), _value_and_grad_step(net_m, mf, False)
    for x, y in _batches(rng, 10):
        step_f(x, y)
        step_m(x, y)
    assert compare_states(fused, mf) <= 1e-6


def test_under_mindspore_jit(rng):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net_f, net_m = TwoLayerNet(rng), TwoLayerNet(rng)
    copy_weights(net_f, net_m)
    fused, mf = make_optimizers(net_f, net_m, recipe_groups, weight_decay=0.1)
    step_f, step_m = _value_and_grad_step(net_f, fused, True), _value_and_grad_step(net_m, mf, True)
    for x, y in _batches(rng, 10):
        step_f(x, y)
        step_m(x, y)
    assert compare_states(fused, mf) <= 1e-6
    assert int(fused.global_step.asnumpy()[0]) == 10


def test_train_one_step_cell_with_schedule(mode, rng):
    net_f, net_m = TwoLayerNet(rng), TwoLayerNet(rng)
    copy_weights(net_f, net_m)
    schedule = nn.WarmUpLR(0.05, 5)
    fused, mf = make_optimizers(net_f, net_m, lambda n: n.trainable_params(), learning_rate=schedule,
                                betas=(0.9, 0.95), weight_decay=0.01)
    cells = [nn.TrainOneStepCell(nn.WithLossCell(n, nn.MSELoss()), o) for n, o in ((net_f, fused), (net_m, mf))]
    for x, y in _batches(rng, 12):
        for cell in cells:
            cell(x, y)
    assert compare_states(fused, mf) <= 1e-6
