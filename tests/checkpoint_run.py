"""A deterministic little training run with FusedAdamW that can stop after a checkpoint and
resume from one; run in-process by the tests and as a fresh process (`python checkpoint_run.py`)."""
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from fused_adamw import FusedAdamW
from twin import TwoLayerNet, recipe_groups

# FusedAdamW options by name, as JSON-able keyword arguments (state_dtype by name).
OPTIONS = {
    "default": {}, "amsgrad": {"amsgrad": True}, "maximize": {"maximize": True},
    "bf16_states": {"state_dtype": "bfloat16"}, "master_weights": {"master_weights": True},
    "stochastic_rounding": {"stochastic_rounding": True, "seed": 11},
}
_BF16_PARAMS = ("master_weights", "stochastic_rounding")


class Bf16TwoLayerNet(TwoLayerNet):
    """TwoLayerNet with bfloat16 parameters, computed in float32 (the CPU backend has no
    bfloat16 matmul): the options for 16-bit parameters need 16-bit parameters."""

    def __init__(self, rng):
        super().__init__(rng)
        for p in self.trainable_params():
            p.set_dtype(ms.bfloat16)

    def _dense(self, layer, x):
        return ops.matmul(x, ops.cast(layer.weight, ms.float32).T) + ops.cast(layer.bias, ms.float32)

    def construct(self, x):
        return self._dense(self.fc2, self.relu(self._dense(self.fc1, x)))


def build(seed, option="default"):
    """The same network, optimizer (two groups, a warm-up schedule) and train cell every time."""
    rng = np.random.default_rng(seed)
    net = Bf16TwoLayerNet(rng) if option in _BF16_PARAMS else TwoLayerNet(rng)
    groups = recipe_groups(net)
    groups[1]["lr"] = nn.WarmUpLR(0.1, 6)
    kwargs = dict(OPTIONS[option])
    if "state_dtype" in kwargs:
        kwargs["state_dtype"] = getattr(ms, kwargs["state_dtype"])
    opt = FusedAdamW(groups, learning_rate=0.01, betas=(0.9, 0.95), weight_decay=0.1, **kwargs)
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.L1Loss()), opt)


def train(cell, seed, first_step, last_step):
    for step in range(first_step, last_step):
        rng = np.random.default_rng(seed * 1000 + step)  # batch depends only on the step
        cell(Tensor(rng.standard_normal((8, 8)).astype(np.float32)),
             Tensor(rng.standard_normal((8, 4)).astype(np.float32)))


def final_state(cell):
    """Every Parameter of the train cell (network, states, global_step, lr) by name, as
    comparable bits (bfloat16 as uint16)."""
    out = {}
    for p in cell.get_parameters():
        value = p.asnumpy().copy()
        out[p.name] = value.view(np.uint16) if p.dtype == ms.bfloat16 else value
    return out


def main(mode, seed, checkpoint, resume_at, last_step, out, option="default"):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    cell = build(seed, option)
    ms.load_checkpoint(checkpoint, cell)
    train(cell, seed, resume_at, last_step)
    np.savez(out, **final_state(cell))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6],
         *sys.argv[7:8])
