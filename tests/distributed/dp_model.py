"""The small model, data and training loop shared by the msrun workers and the
single-process reference runs of the distributed tests.

Everything is derived from one seed: the initial parameters and the 20 full batches. A
data-parallel rank r of N trains on rows [r*B/N, (r+1)*B/N) of each batch; with a mean loss
and `gradients_mean=True` its reduced gradient is the full batch's.
"""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from fused_adamw import FusedAdamW

STEPS = 20
BATCH = 8            # divisible by 1, 2 and 4 ranks
IN, HIDDEN, OUT = 13, 37, 5
# Kernel groups (by weight decay): the weights, then the biases and the scale. Their flat
# sizes are what the sharding tests divide by N.
GROUP_TOTALS = (IN * HIDDEN + HIDDEN * OUT, HIDDEN + OUT + OUT)


class Mlp(nn.Cell):
    def __init__(self, init):
        super().__init__()
        self.w1 = Parameter(Tensor(init["w1"]), name="w1")
        self.b1 = Parameter(Tensor(init["b1"]), name="b1")
        self.w2 = Parameter(Tensor(init["w2"]), name="w2")
        self.b2 = Parameter(Tensor(init["b2"]), name="b2")
        self.scale = Parameter(Tensor(init["scale"]), name="scale")

    def construct(self, x):
        h = ops.tanh(ops.matmul(x, self.w1) + self.b1)
        return (ops.matmul(h, self.w2) + self.b2) * self.scale


def problem(seed):
    """(initial parameter arrays, inputs [STEPS, BATCH, IN], targets [STEPS, BATCH, OUT])."""
    rng = np.random.default_rng(seed)
    init = {"w1": rng.standard_normal((IN, HIDDEN)) / np.sqrt(IN),
            "b1": rng.standard_normal(HIDDEN) * 0.1,
            "w2": rng.standard_normal((HIDDEN, OUT)) / np.sqrt(HIDDEN),
            "b2": rng.standard_normal(OUT) * 0.1,
            "scale": 1.0 + rng.standard_normal(OUT) * 0.1}
    init = {k: v.astype(np.float32) for k, v in init.items()}
    x = rng.standard_normal((STEPS, BATCH, IN)).astype(np.float32)
    y = rng.standard_normal((STEPS, BATCH, OUT)).astype(np.float32)
    return init, x, y


class ClippedTrainOneStep(nn.TrainOneStepCell):
    """TrainOneStepCell that clips the gradients by their global norm after the data-parallel
    reducer: every rank holds the full reduced gradients, so the norm is the full one."""

    def __init__(self, network, optimizer, max_norm):
        super().__init__(network, optimizer)
        self.max_norm = max_norm

    def construct(self, *inputs):
        loss = self.network(*inputs)
        grads = self.grad_reducer(self.grad_no_sens(self.network, self.weights)(*inputs))
        grads = ops.clip_by_global_norm(grads, self.max_norm)
        return ops.depend(loss, self.optimizer(grads))


# Small enough to clip on every step of this problem (its gradient norm is about 1).
MAX_NORM = 0.25


def build(seed, shard_states, clip=False):
    """(train cell, net, optimizer) for `seed`: TrainOneStepCell around an MSE loss and a
    FusedAdamW with two groups and a per-step learning rate (so a resumed run depends on
    the restored global_step); with `clip`, gradients clipped to global norm MAX_NORM."""
    init, _, _ = problem(seed)
    net = Mlp(init)
    groups = [{"params": [net.w1, net.w2], "weight_decay": 0.1},
              {"params": [net.b1, net.b2, net.scale], "weight_decay": 0.0}]
    lr = Tensor(np.linspace(2e-2, 5e-3, STEPS + 1).astype(np.float32))
    opt = FusedAdamW(groups, learning_rate=lr, shard_states=shard_states)
    loss_net = nn.WithLossCell(net, nn.MSELoss())
    train = ClippedTrainOneStep(loss_net, opt, MAX_NORM) if clip else nn.TrainOneStepCell(loss_net, opt)
    train.set_train()
    return train, net, opt


def local_rows(rank, size):
    per = BATCH // size
    return slice(rank * per, (rank + 1) * per)


def train(train_cell, seed, start, stop, rank=0, size=1):
    """Steps start..stop-1 (0-based) on this rank's rows of each batch."""
    _, x, y = problem(seed)
    rows = local_rows(rank, size)
    for s in range(start, stop):
        train_cell(Tensor(x[s, rows]), Tensor(y[s, rows]))


def snapshot(net, opt):
    """Parameters, flat states and global_step as NumPy arrays (float32 / int32)."""
    out = {f"param.{p.name}": p.asnumpy() for p in net.trainable_params()}
    for k, (m, v) in enumerate(zip(opt.exp_avg_flat, opt.exp_avg_sq_flat)):
        out[f"exp_avg.{k}"] = m.asnumpy()
        out[f"exp_avg_sq.{k}"] = v.asnumpy()
    out["global_step"] = opt.global_step.asnumpy()
    return out


def set_mode(name):
    ms.set_context(mode={"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}[name])
