"""A deterministic little training run with FusedAdamW that can stop after a checkpoint and
resume from one; run in-process by the tests and as a fresh process (`python checkpoint_run.py`)."""
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from fused_adamw import FusedAdamW
from twin import TwoLayerNet, recipe_groups


def build(seed):
    """The same network, optimizer (two groups, a warm-up schedule) and train cell every time."""
    net = TwoLayerNet(np.random.default_rng(seed))
    groups = recipe_groups(net)
    groups[1]["lr"] = nn.WarmUpLR(0.1, 6)
    opt = FusedAdamW(groups, learning_rate=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.L1Loss()), opt)


def train(cell, seed, first_step, last_step):
    for step in range(first_step, last_step):
        rng = np.random.default_rng(seed * 1000 + step)  # batch depends only on the step
        cell(Tensor(rng.standard_normal((8, 8)).astype(np.float32)),
             Tensor(rng.standard_normal((8, 4)).astype(np.float32)))


def final_state(cell):
    """Every Parameter of the train cell (network, states, global_step, lr) by name."""
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters()}


def main(mode, seed, checkpoint, resume_at, last_step, out):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    cell = build(seed)
    ms.load_checkpoint(checkpoint, cell)
    train(cell, seed, resume_at, last_step)
    np.savez(out, **final_state(cell))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
