"""examples/bf16_char_lm.py, with a tiny model and a few steps: all four precision configurations
train through FusedAdamW from the same weights on the same data, the float32 loss falls, the
bf16 configurations really hold bfloat16 parameters, and the run writes its table (and plot,
where matplotlib is installed) into --out and nothing into the current directory."""
import importlib.util
import json
import math
import os
import sys

import mindspore as ms
import numpy as np
import pytest

_EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "bf16_char_lm.py")
TINY = ["--width", "32", "--layers", "1", "--heads", "2", "--seq-len", "16", "--batch", "8",
        "--val-windows", "8", "--eval-every", "4"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("bf16_char_lm_example", _EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # GRAPH_MODE looks the model's source up by module
    spec.loader.exec_module(module)
    yield module
    ms.set_context(mode=ms.PYNATIVE_MODE)


def test_four_configurations_train_from_the_same_start(example, rng, tmp_path, monkeypatch):
    seed = int(rng.integers(0, 2**31))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out"
    histories, written = example.main(TINY + ["--steps", "8", "--lr", "1e-2", "--seed", str(seed), "--out", str(out)])

    assert [h["config"] for h in histories] == ["fp32", "bf16", "bf16-sr", "bf16-master"]
    for h in histories:
        assert len(h["train_loss"]) == 8 and len(h["step_seconds"]) == 8
        assert h["val_steps"] == [0, 4, 8]
        assert all(math.isfinite(x) for x in h["train_loss"] + h["val_loss"]), h
        assert h["changed_steps"] == [4, 8]
        assert all(0.0 <= x <= 1.0 for x in h["changed_by_step"] + [h["changed_since_start"]])
    # Same bf16-rounded initial weights, float32 compute, same first batch: the losses before
    # any update agree exactly across the four.
    assert len({h["train_loss"][0] for h in histories}) == 1
    assert len({h["val_loss"][0] for h in histories}) == 1
    # From ln(128) = 4.85 nats at the start, lr 1e-2 learns at least the character
    # frequencies (measured drops over 5 seeds: 1.2-1.4 nats train, 1.5-1.8 validation).
    fp32 = histories[0]
    assert np.mean(fp32["train_loss"][-3:]) < fp32["train_loss"][0] - 0.6, fp32["train_loss"]
    assert fp32["val_loss"][-1] < fp32["val_loss"][0] - 0.8, fp32["val_loss"]
    assert fp32["changed_since_start"] > 0.99  # float32 keeps every update (decay moves even unseen rows)

    assert written == str(out)
    assert os.listdir(cwd) == []
    table = (out / "results.md").read_text()
    for name in example.CONFIGS:
        assert f"| {name} |" in table
    saved = json.loads((out / "history.json").read_text())
    assert [h["train_loss"] for h in saved["histories"]] == [h["train_loss"] for h in histories]
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert (out / "loss_curves.png").exists() == has_matplotlib

    # --replot redraws a saved run without training: the same table from the same numbers.
    again = tmp_path / "again"
    example.main(["--replot", str(out / "history.json"), "--out", str(again)])
    assert (again / "results.md").read_text() == table
    assert os.listdir(cwd) == []


def test_bf16_configurations_hold_bf16_parameters(example):
    for config, master, stochastic in (("bf16", False, False), ("bf16-sr", False, True),
                                       ("bf16-master", True, False)):
        model, optimizer, _ = example.build(config, 32, 1, 2, 16, 1e-3, 0)
        assert {p.dtype for p in model.trainable_params()} == {ms.bfloat16}, config
        assert optimizer.options.master_weights == master and optimizer.options.stochastic_rounding == stochastic
        assert len(optimizer.master_flat) == (2 if master else 0), config  # one per weight-decay group
    model, optimizer, _ = example.build("fp32", 32, 1, 2, 16, 1e-3, 0)
    assert {p.dtype for p in model.trainable_params()} == {ms.float32}


def test_data_is_the_documented_split(example):
    train_ids, val_ids = example.load_text()
    assert train_ids.dtype == np.int32 and 0 <= train_ids.min() and train_ids.max() < example.VOCAB
    assert len(val_ids) == pytest.approx(len(train_ids) / 9, rel=1e-3)
    a_train, a_val = example.make_data(3, 4, 16, 5, seed=7)
    b_train, b_val = example.make_data(3, 4, 16, 5, seed=7)
    assert a_train.shape == (3, 4, 17) and a_val.shape == (5, 17)
    assert np.array_equal(a_train, b_train) and np.array_equal(a_val, b_val)
    assert not np.array_equal(a_train, example.make_data(3, 4, 16, 5, seed=8)[0])
    longer_train, longer_val = example.make_data(6, 4, 16, 5, seed=7)  # more steps: same start, same validation
    assert np.array_equal(longer_train[:3], a_train) and np.array_equal(longer_val, a_val)
