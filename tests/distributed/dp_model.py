"""The small model, data and training loop shared by the msrun workers and the
single-process reference runs of the distributed tests.

Everything is derived from one seed: the initial parameters and the 20 full batches. A
data-parallel rank r of N trains on rows [r*B/N, (r+1)*B/N) of each batch; with a mean loss
and `gradients_mean=True` its reduced gradient is the full batch's.
"""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from fused_adamw import FusedAdamW, FusedTrainOneStepCell

STEPS = 20
BATCH = 8            # divisible by 1, 2 and 4 ranks
IN, HIDDEN, OUT = 13, 37, 5


def _padded_total(sizes):
    """Flat state size: each tensor starts at a multiple of 32 elements (docs/kernel-interface.md)."""
    total = 0
    for n in sizes:
        total = -(-total // 32) * 32 + n
    return total


# Kernel groups (by weight decay): the weights, then the biases and the scale. Their flat
# sizes are what the sharding tests divide by N.
GROUP_TOTALS = (_padded_total([IN * HIDDEN, HIDDEN * OUT]), _padded_total([HIDDEN, OUT, OUT]))


# Variants: (weight dtype, FusedAdamW options, train cell). "plain" and "clip" are float32
# and compared with one process; the others check options whose state or rounding the
# sharding must keep exactly (the weights' gradients are 16-bit there, rounded from
# different partial sums on each world size, so they are compared sharded against unsharded).
VARIANTS = {
    "plain": ("float32", {}, "TrainOneStepCell"),
    "clip": ("float32", {}, "FusedTrainOneStepCell"),
    "bf16-master": ("bfloat16", {"master_weights": True}, "TrainOneStepCell"),
    "bf16-sr": ("bfloat16", {"stochastic_rounding": True, "seed": 12345}, "TrainOneStepCell"),
    "fp16-master": ("float16", {"master_weights": True}, "TrainOneStepCell"),
    "fp16-sr": ("float16", {"stochastic_rounding": True, "seed": 12345}, "TrainOneStepCell"),
    "amsgrad-bf16-states": ("float32", {"amsgrad": True, "state_dtype": ms.bfloat16}, "TrainOneStepCell"),
}
# FusedTrainOneStepCell's clipping norm: small enough to clip on every step of this problem
# (its gradient norm is about 1).
MAX_NORM = 0.25


class Mlp(nn.Cell):
    """Weights in `dtype` (float32, float16 or bfloat16), biases and scale float32; computed in
    float32."""

    def __init__(self, init, dtype="float32"):
        super().__init__()
        wtype = getattr(ms, dtype)
        self.w1 = Parameter(Tensor(init["w1"]).astype(wtype), name="w1")
        self.b1 = Parameter(Tensor(init["b1"]), name="b1")
        self.w2 = Parameter(Tensor(init["w2"]).astype(wtype), name="w2")
        self.b2 = Parameter(Tensor(init["b2"]), name="b2")
        self.scale = Parameter(Tensor(init["scale"]), name="scale")

    def construct(self, x):
        w1 = ops.cast(self.w1, ms.float32)
        w2 = ops.cast(self.w2, ms.float32)
        h = ops.tanh(ops.matmul(x, w1) + self.b1)
        return (ops.matmul(h, w2) + self.b2) * self.scale


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


def build(seed, shard_states, variant="plain"):
    """(train cell, net, optimizer) for `seed`: a train cell around an MSE loss and a
    FusedAdamW with two groups and a per-step learning rate (so a resumed run depends on
    the restored global_step), as VARIANTS[variant] says."""
    dtype, options, cell = VARIANTS[variant]
    init, _, _ = problem(seed)
    net = Mlp(init, dtype)
    groups = [{"params": [net.w1, net.w2], "weight_decay": 0.1},
              {"params": [net.b1, net.b2, net.scale], "weight_decay": 0.0}]
    lr = Tensor(np.linspace(2e-2, 5e-3, STEPS + 1).astype(np.float32))
    opt = FusedAdamW(groups, learning_rate=lr, shard_states=shard_states, **options)
    loss_net = nn.WithLossCell(net, nn.MSELoss())
    if cell == "FusedTrainOneStepCell":
        train = FusedTrainOneStepCell(loss_net, opt, use_clip_grad=True, max_grad_norm=MAX_NORM)
    else:
        train = nn.TrainOneStepCell(loss_net, opt)
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
    """Parameters, flat states (named as their Parameters) and global_step as NumPy arrays,
    16-bit values widened exactly to float32."""
    out = {f"param.{p.name}": ops.cast(p, ms.float32).asnumpy() for p in net.trainable_params()}
    for flats in (opt.exp_avg_flat, opt.exp_avg_sq_flat, opt.max_exp_avg_sq_flat, opt.master_flat):
        for flat in flats:
            out[flat.name] = ops.cast(flat, ms.float32).asnumpy()
    out["global_step"] = opt.global_step.asnumpy()
    return out


def set_mode(name):
    ms.set_context(mode={"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}[name])
