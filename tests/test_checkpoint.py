"""Checkpoints of FusedAdamW's flat states: save_checkpoint of a cell holding the network and
FusedAdamW, loaded by a fresh process that continues, matches an uninterrupted run exactly;
names are unique per optimizer; a load into another layout is refused; old names still load;
from_mindformers reports what it did not load."""
import os
import subprocess
import sys

import warnings

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from checkpoint_run import build, final_state, train
from fused_adamw import FusedAdamW
from fused_adamw._layout import legacy_state_name
from fused_adamw.checkpoint import from_mindformers, to_mindformers


def test_resume_in_a_fresh_process_matches_uninterrupted_run(mode, rng, tmp_path):
    seed, stop_at, last = int(rng.integers(1 << 30)), 7, 15
    uninterrupted = build(seed)
    train(uninterrupted, seed, 0, last)
    expected = final_state(uninterrupted)

    first_half = build(seed)
    train(first_half, seed, 0, stop_at)
    checkpoint = str(tmp_path / "run.ckpt")
    ms.save_checkpoint(first_half, checkpoint)
    saved = ms.load_checkpoint(checkpoint)
    assert "global_step" in saved and int(saved["global_step"].asnumpy()[0]) == stop_at
    assert any(name.startswith("fused_adamw.") and ".exp_avg." in name for name in saved)

    out = str(tmp_path / "resumed.npz")
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here] + sys.path))
    subprocess.run([sys.executable, os.path.join(here, "checkpoint_run.py"), mode, str(seed), checkpoint,
                    str(stop_at), str(last), out], check=True, env=env, timeout=300)
    resumed = np.load(out)
    assert sorted(resumed.files) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


# --- flat state names and the layout record (_layout.py) ---------------------------------------

def _params(rng, shapes, prefix="w"):
    return [Parameter(Tensor(rng.standard_normal(s).astype(np.float32)), name=f"{prefix}{i}")
            for i, s in enumerate(shapes)]


def _trained(rng, opt, steps=2):
    for _ in range(steps):
        opt(tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in opt.parameters))
    return opt


def _values(cell):
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters()}


def _assert_values(cell, expected):
    now = _values(cell)
    assert sorted(now) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(now[name], value, err_msg=name)


class _TwoSubModels(nn.Cell):
    """Two optimizers in one cell that, like TrainOneStepCell, gives its members no name prefix:
    only the names the parameters and optimizers chose tell their entries apart."""

    def __init__(self, rng):
        super().__init__(auto_prefix=False)
        self.opt_a = FusedAdamW(_params(rng, [(3, 4), (5,)], "gen.w"), learning_rate=0.01)
        self.opt_b = FusedAdamW(_params(rng, [(3, 4), (5,)], "dis.w"), learning_rate=0.01)

    def construct(self, grads_a, grads_b):
        return self.opt_a(grads_a), self.opt_b(grads_b)


def test_two_optimizers_in_one_cell_round_trip(mode, rng, tmp_path):
    cell = _TwoSubModels(rng)
    names = [p.name for p in list(cell.opt_a.get_parameters()) + list(cell.opt_b.get_parameters())
             if p.name.startswith("fused_adamw.")]
    assert len(names) == 6 and len(set(names)) == 6, names
    for _ in range(3):
        cell(*[tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in opt.parameters)
               for opt in (cell.opt_a, cell.opt_b)])
    # The call made MindSpore prefix the optimizers' names (opt_a.global_step, ...: they were
    # not unique); the fresh cell has not been called, and its loader strips the prefixes.
    path = str(tmp_path / "two.ckpt")
    ms.save_checkpoint(cell, path)

    fresh = _TwoSubModels(np.random.default_rng(int(rng.integers(1 << 30))))
    ms.load_checkpoint(path, fresh)
    for saved, loaded in zip(cell.get_parameters(), fresh.get_parameters()):
        np.testing.assert_array_equal(loaded.asnumpy(), saved.asnumpy(), err_msg=loaded.name)
    a, b = fresh.opt_a.exp_avg[0].asnumpy(), fresh.opt_b.exp_avg[0].asnumpy()
    assert not np.array_equal(a, b)


def test_flat_states_for_another_layout_are_refused(mode, rng, tmp_path):
    """[A, B] saved, loaded into [B, A] of equal sizes (or other sizes, or other groups): a clear
    error before any state is written, through MindSpore's loader and through from_mindformers."""
    a, b = _params(rng, [(4, 3), (12,)], "layer")
    source = _trained(rng, FusedAdamW([a, b], learning_rate=0.01))
    path = str(tmp_path / "ab.ckpt")
    ms.save_checkpoint(source, path)
    c = Parameter(Tensor(np.ones(13, np.float32)), name="layer1")
    for params, detail in (([b, a], "other parameter names, shapes, order or groups with the same counts"),
                           ([{"params": [a]}, {"params": [b], "lr": 0.5}], ""),
                           ([a, c], "44 flat elements \\(this optimizer's states have 45\\)")):
        target = FusedAdamW(params, learning_rate=0.01)
        before = _values(target)
        with pytest.raises(ValueError, match=f"laid out for .*{detail}.*from_mindformers"):
            ms.load_checkpoint(path, target)
        _assert_values(target, before)
        with pytest.raises(ValueError, match=detail):
            from_mindformers(ms.load_checkpoint(path), target)
    same = FusedAdamW([a, b], learning_rate=0.01)
    assert ms.load_checkpoint(path, same) and ms.load_param_into_net(same, ms.load_checkpoint(path)) == ([], [])
    _assert_values(same, _values(source))


def _legacy(opt, packed):
    """The checkpoint of `opt` as this project wrote it before flat names carried a tag: no
    layout record, and (before padding) each group's states packed end to end."""
    out = {}
    for name, value in _values(opt).items():
        if name == opt.state_layout[0].name:
            continue
        out[legacy_state_name(name, opt._state_tag)] = Tensor(value)
    if packed:
        for view, flats in ((opt.exp_avg, opt.exp_avg_flat), (opt.exp_avg_sq, opt.exp_avg_sq_flat)):
            for k, flat in enumerate(flats):
                members = [i for i in range(len(view)) if view.location(i) and view.location(i)[0] == k]
                out[legacy_state_name(flat.name, opt._state_tag)] = Tensor(
                    np.concatenate([view.numpy(i).reshape(-1) for i in members]))
    return out


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
def test_checkpoints_from_before_the_tag_still_load(mode, rng, tmp_path, packed):
    shapes = [(3, 3), (7,), (0, 2), (40,)]
    source = _trained(rng, FusedAdamW(_params(rng, shapes), learning_rate=0.01))
    path = str(tmp_path / "legacy.ckpt")
    ms.save_checkpoint([{"name": k, "data": v} for k, v in _legacy(source, packed).items()], path)
    legacy = ms.load_checkpoint(path)
    assert legacy["fused_adamw.exp_avg.0"].size == (56 if packed else source.exp_avg_flat[0].size)

    target = FusedAdamW(_params(rng, shapes), learning_rate=0.01)
    not_loaded, unused = ms.load_param_into_net(target, from_mindformers(legacy, target))
    assert not_loaded == ["w2"] and unused == []  # MindSpore saves no empty tensor
    _assert_values(target, _values(source))
    _trained(rng, target)  # and it steps on

    with pytest.raises(ValueError, match="without an optimizer tag"):
        from_mindformers(legacy, _TwoSubModels(rng))


def test_from_mindformers_reports_missing_states(rng):
    opt = _trained(rng, FusedAdamW(_params(rng, [(3,), (4,), (2, 2)]), learning_rate=0.01))
    full = to_mindformers(opt)
    partial = {k: v for k, v in full.items() if k not in ("adam_m.w1", "adam_v.w2")}
    before = _values(opt)
    with pytest.raises(ValueError, match="2 optimizer state.*adam_m.w1, adam_v.w2"):
        from_mindformers(partial, opt, strict=True)
    _assert_values(opt, before)
    with pytest.warns(UserWarning, match="not in the checkpoint and keep their current values: adam_m.w1, adam_v.w2"):
        loaded = from_mindformers(partial, opt)
    assert ms.load_param_into_net(opt, loaded) == ([], [])
    _assert_values(opt, before)  # the same values: the two missing ones kept theirs
    network_only = {k: v for k, v in full.items() if not k.startswith("adam_")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no optimizer state at all: load_param_into_net reports the buffers
        loaded = from_mindformers(network_only, opt)
    not_loaded, _ = ms.load_param_into_net(opt, loaded)
    assert sorted(not_loaded) == sorted(f.name for f in list(opt.exp_avg_flat) + list(opt.exp_avg_sq_flat)
                                        + [opt.state_layout[0]])
