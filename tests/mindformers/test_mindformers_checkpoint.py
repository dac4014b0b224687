"""Checkpoints between MindFormers' AdamW and FusedAdamW, through real files.

Training is a MindFormers-style pretraining loop in miniature: TinyLM, MindFormers' own
parameter grouping (decay / no decay, interleaved) and a warm-up cosine schedule, optimizers
built by build_optim. A 50-step run switches optimizer through a checkpoint written and read
with mindspore.save_checkpoint / load_checkpoint at step 25.
"""
import functools
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from mindformers.core.lr import build_lr
from mindformers.core.optim import BasicAdamW, build_optim
from mindformers.trainer.optimizer_grouped_parameters import get_optimizer_grouped_parameters

from fused_adamw import FusedAdamW
from fused_adamw.checkpoint import from_mindformers, to_mindformers
from mf_helpers import MINDFORMERS_RTOL, TinyLM, assert_same_training, snapshot, token_batches

STEPS, SWITCH = 50, 25
OPTIMIZER = {"betas": [0.9, 0.95], "eps": 1.e-8, "weight_decay": 0.1}
_SEED = int.from_bytes(os.urandom(4), "little")
print(f"test_mindformers_checkpoint seed {_SEED}")


def _build(optimizer_type, seed):
    """A fresh TinyLM (same weights for the same seed) and its train step, as a MindFormers trainer builds them."""
    net = TinyLM(np.random.default_rng(seed))
    net.set_train()
    schedule = build_lr({"type": "CosineWithWarmUpLR", "learning_rate": 1.e-2, "warmup_steps": 5,
                         "total_steps": STEPS, "lr_end": 1.e-4})
    groups = get_optimizer_grouped_parameters(model=net, weight_decay=OPTIMIZER["weight_decay"],
                                              dynamic_lr_schedule=schedule)
    optimizer = build_optim(dict(OPTIMIZER, type=optimizer_type),
                            default_args={"params": groups, "learning_rate": schedule})
    return optimizer, nn.TrainOneStepCell(net, optimizer)


def _train(step, batches):
    return [float(step(tokens).asnumpy()) for tokens in batches]


def test_fused_adamw_gets_mindformers_layout(mode):
    """to_mindformers gives exactly the names, shapes and dtypes MindFormers' AdamW saves, and the states."""
    seed = 7
    fused, fused_step = _build("FusedAdamW", seed)
    reference, reference_step = _build("AdamW", seed)
    assert isinstance(fused, FusedAdamW) and isinstance(reference, BasicAdamW)
    batches = token_batches(np.random.default_rng(seed), 3)
    _train(fused_step, batches)
    ours = to_mindformers(fused_step)
    theirs = {param.name: param for _, param in reference_step.parameters_and_names()}
    assert list(ours) == list(theirs)
    for name, param in ours.items():
        assert (param.shape, param.dtype) == (theirs[name].shape, theirs[name].dtype), name
    for i in range(len(fused.parameters)):
        np.testing.assert_array_equal(ours[fused.exp_avg.name(i)].asnumpy(), fused.exp_avg[i].asnumpy())
        np.testing.assert_array_equal(ours[fused.exp_avg_sq.name(i)].asnumpy(), fused.exp_avg_sq[i].asnumpy())
        assert np.abs(fused.exp_avg_sq[i].asnumpy()).max() > 0
    assert int(ours["global_step"].asnumpy()[0]) == 3


@functools.lru_cache(maxsize=None)
def _uninterrupted_mindformers_run(mode, seed):
    ms.set_context(mode=mode)
    optimizer, step = _build("AdamW", seed)
    losses = _train(step, token_batches(np.random.default_rng(seed), STEPS))
    return snapshot(optimizer), losses


# Both directions in GRAPH_MODE; PYNATIVE_MODE (an order of magnitude slower here) runs the
# direction in which FusedAdamW resumes from MindFormers' file.
@pytest.mark.parametrize("mode, first, then", [
    (ms.GRAPH_MODE, "AdamW", "FusedAdamW"),
    (ms.GRAPH_MODE, "FusedAdamW", "AdamW"),
    (ms.PYNATIVE_MODE, "AdamW", "FusedAdamW"),
], ids=["graph-AdamW-to-FusedAdamW", "graph-FusedAdamW-to-AdamW", "pynative-AdamW-to-FusedAdamW"])
def test_switch_through_checkpoint_matches_uninterrupted_mindformers(mode, first, then, tmp_path):
    seed = _SEED
    expected, expected_losses = _uninterrupted_mindformers_run(mode, seed)
    batches = token_batches(np.random.default_rng(seed), STEPS)

    # The first SWITCH steps, saved in MindFormers' layout (what MindFormers' own trainer writes).
    ms.set_context(mode=mode)
    try:
        optimizer, step = _build(first, seed)
        losses = _train(step, batches[:SWITCH])
        at_switch = snapshot(optimizer)
        path = os.path.join(tmp_path, f"{first}_step_{SWITCH}.ckpt")
        ms.save_checkpoint(to_mindformers(step) if first == "FusedAdamW" else step, path)

        # A fresh network and optimizer of the other kind, with other weights: all must come from the file.
        resumed, resumed_step = _build(then, seed + 1)
        param_dict = ms.load_checkpoint(path)
        if then == "FusedAdamW":
            param_dict = from_mindformers(param_dict, resumed_step)
        param_not_load, ckpt_not_load = ms.load_param_into_net(resumed_step, param_dict)
        assert param_not_load == [] and ckpt_not_load == []
        assert_same_training(snapshot(resumed), at_switch, 0.0, "loaded exactly")
        losses += _train(resumed_step, batches[SWITCH:])
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)

    what = f"{first}->{then}, mode {mode}, seed {seed}"
    assert_same_training(snapshot(resumed), expected, MINDFORMERS_RTOL, what)
    losses, expected_losses = np.array(losses), np.array(expected_losses)
    assert np.abs(losses - expected_losses).max() <= MINDFORMERS_RTOL * np.abs(expected_losses).max(), what


def _interleaved_optimizer(rng, shapes):
    """FusedAdamW over parameters whose groups interleave (non-contiguous kernel groups), one empty."""
    params = [Parameter(Tensor(rng.standard_normal(s).astype(np.float32)), name=f"layer{i}.w")
              for i, s in enumerate(shapes)]
    groups = [{"params": params[0::2], "weight_decay": 0.1}, {"params": params[1::2], "lr": 0.5},
              {"order_params": params}]
    return FusedAdamW(groups, learning_rate=0.01)


SHAPES = [(3, 5), (7,), (0, 4), (2, 2, 3), (1,), (6,)]


def test_round_trip_through_file_with_interleaved_groups(rng, tmp_path):
    source = _interleaved_optimizer(rng, SHAPES)
    for i, shape in enumerate(SHAPES):
        source.exp_avg[i] = rng.standard_normal(shape).astype(np.float32)
        source.exp_avg_sq[i] = rng.random(shape).astype(np.float32)
    source.global_step.set_data(Tensor(np.array([int(rng.integers(1, 1000))], np.int32)))

    path = os.path.join(tmp_path, "fused.ckpt")
    ms.save_checkpoint(to_mindformers(source), path)
    saved = ms.load_checkpoint(path)
    nonempty = [i for i, shape in enumerate(SHAPES) if np.prod(shape)]  # MindSpore drops empty tensors
    assert sorted(k for k in saved if k.startswith("adam_")) == sorted(
        [f"adam_m.layer{i}.w" for i in nonempty] + [f"adam_v.layer{i}.w" for i in nonempty])
    assert not any(k.startswith("fused_adamw.") for k in saved)

    target = _interleaved_optimizer(rng, SHAPES)
    loaded = from_mindformers(saved, target)
    assert not any(k.startswith("adam_") for k in loaded)
    assert "adam_m.layer0.w" in saved  # the input is left alone
    param_not_load, ckpt_not_load = ms.load_param_into_net(target, loaded)
    assert param_not_load == ["layer2.w"] and ckpt_not_load == []  # the empty one, not in the file
    assert_same_training(snapshot(target), snapshot(source), 0.0, "round trip")


def test_partial_and_mismatched_checkpoints(rng):
    optimizer = _interleaved_optimizer(rng, SHAPES)
    before = [optimizer.exp_avg[i].asnumpy() for i in range(len(SHAPES))]
    for i, shape in enumerate(SHAPES):
        optimizer.exp_avg[i] = rng.standard_normal(shape).astype(np.float32)
    current = [optimizer.exp_avg[i].asnumpy() for i in range(len(SHAPES))]
    assert not all(np.array_equal(a, b) for a, b in zip(before, current) if a.size)

    # One state in the checkpoint: it lands, its buffer's other members keep their values,
    # and the buffers it does not touch are left for load_param_into_net to report.
    new = rng.standard_normal(SHAPES[3]).astype(np.float32)
    with pytest.warns(UserWarning, match="9 optimizer state.*adam_m.layer0.w"):  # the others, reported
        loaded = from_mindformers({"adam_m.layer3.w": Parameter(Tensor(new), name="adam_m.layer3.w")}, optimizer)
    param_not_load, ckpt_not_load = ms.load_param_into_net(optimizer, loaded)
    assert ckpt_not_load == []
    assert optimizer.exp_avg_sq_flat[0].name in param_not_load and optimizer.exp_avg_flat[0].name in param_not_load
    np.testing.assert_array_equal(optimizer.exp_avg[3].asnumpy(), new)
    for i in (1, 5):  # the other members of layer3's kernel group
        np.testing.assert_array_equal(optimizer.exp_avg[i].asnumpy(), current[i])

    # bfloat16 states are widened; a state of the wrong shape is refused by name.
    wide = rng.standard_normal(SHAPES[0]).astype(np.float32)
    bf16 = Parameter(Tensor(wide).astype(ms.bfloat16), name="adam_v.layer0.w")
    with pytest.warns(UserWarning, match="not in the checkpoint"):
        ms.load_param_into_net(optimizer, from_mindformers({"adam_v.layer0.w": bf16}, optimizer))
    np.testing.assert_array_equal(optimizer.exp_avg_sq[0].asnumpy(), bf16.astype(ms.float32).asnumpy())
    wrong = Parameter(Tensor(np.zeros((5, 3), np.float32)), name="adam_m.layer0.w")
    with pytest.raises(ValueError, match="adam_m.layer0.w"):
        from_mindformers({"adam_m.layer0.w": wrong}, optimizer)
