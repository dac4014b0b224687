"""MindFormers' own optimizer test, run through build_optim with FusedAdamW and with AdamW.

The recipe of MindFormers' tests/st/test_optim (two Dense layers, L1 loss, parameter groups
{fc1: weight_decay 0.01, lr 0.01} and {fc2: lr 0.1}, optimizer weight_decay 0.1, 20
TrainOneStepCell steps on the batches x = i, label = i + 1), with fresh random weights.
"""
import numpy as np
from mindspore import Tensor, nn

from mindformers.core.optim import build_optim
from mindformers.core.optim import BasicAdamW

import fused_adamw
from mf_helpers import MINDFORMERS_RTOL, TwoLayerNet, assert_same_training, snapshot


def _train(optimizer_type, seed):
    net = TwoLayerNet(np.random.default_rng(seed))
    net.set_train()
    fc1 = [p for p in net.trainable_params() if "fc1" in p.name]
    rest = [p for p in net.trainable_params() if "fc1" not in p.name]
    config = {"type": optimizer_type, "weight_decay": 0.1,
              "params": [{"params": fc1, "weight_decay": 0.01, "lr": 0.01}, {"params": rest, "lr": 0.1}]}
    optimizer = build_optim(config)
    step = nn.TrainOneStepCell(net, optimizer)
    losses = []
    for i in range(20):
        x = Tensor(np.full((2, 8), i, np.float32))
        label = Tensor(np.full((2, 1), i + 1, np.float32))
        losses.append(float(step(x, label).asnumpy()))
    return optimizer, np.array(losses)


def test_recipe_matches_mindformers_adamw(mode, rng):
    seed = int(rng.integers(2**31))
    fused, _ = _train("FusedAdamW", seed)
    reference, _ = _train("AdamW", seed)
    assert type(fused) is fused_adamw.FusedAdamW
    assert type(reference) is BasicAdamW
    expected = snapshot(reference)
    assert expected["global_step"] == 20
    assert np.abs(expected["exp_avg"][2]).max() > 0.1  # the recipe really trained fc2
    what = f"{mode}, seed {seed}"
    assert_same_training(snapshot(fused), expected, MINDFORMERS_RTOL, what)
    # Losses are not compared: an L1 loss is a difference of close numbers (20-step drift ~1e-4).
