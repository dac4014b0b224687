"""Each FusedAdamW option survives a checkpoint: a fresh process that loads what
mindspore.save_checkpoint wrote (network, flat states, masters, max_exp_avg_sq, global_step)
continues exactly as the uninterrupted run (GRAPH_MODE; the default layout is checked in
both modes by test_checkpoint.py)."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from checkpoint_run import OPTIONS, build, final_state, train

EXTRA_STATES = {"amsgrad": ".max_exp_avg_sq.", "master_weights": ".master."}


@pytest.mark.parametrize("option", [o for o in OPTIONS if o != "default"])
def test_resume_with_option_in_a_fresh_process(rng, tmp_path, option):
    ms.set_context(mode=ms.GRAPH_MODE)
    seed, stop_at, last = int(rng.integers(1 << 30)), 5, 10
    uninterrupted = build(seed, option)
    train(uninterrupted, seed, 0, last)
    expected = final_state(uninterrupted)

    first_half = build(seed, option)
    train(first_half, seed, 0, stop_at)
    checkpoint = str(tmp_path / "run.ckpt")
    ms.save_checkpoint(first_half, checkpoint)
    saved = ms.load_checkpoint(checkpoint)
    if option in EXTRA_STATES:
        assert any(name.startswith("fused_adamw.") and EXTRA_STATES[option] in name for name in saved), sorted(saved)
    if option == "bf16_states":
        (exp_avg,) = [v for k, v in saved.items() if k.startswith("fused_adamw.") and k.endswith(".exp_avg.0")]
        assert exp_avg.dtype == ms.bfloat16

    out = str(tmp_path / "resumed.npz")
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here] + sys.path))
    subprocess.run([sys.executable, os.path.join(here, "checkpoint_run.py"), "graph", str(seed), checkpoint,
                    str(stop_at), str(last), out, option], check=True, env=env, timeout=300)
    resumed = np.load(out)
    assert sorted(resumed.files) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


@pytest.mark.parametrize("option", ["amsgrad", "master_weights", "bf16_states"])
def test_mindformers_layout_carries_amsgrad_states_and_masters(rng, option):
    """to_mindformers names max_exp_avg_sq / master per parameter (bfloat16 states as the float32
    values MindFormers keeps); from_mindformers puts them back exactly into a fresh optimizer's
    flat buffers."""
    from fused_adamw.checkpoint import from_mindformers, to_mindformers
    ms.set_context(mode=ms.PYNATIVE_MODE)
    seed = int(rng.integers(1 << 30))
    trained = build(seed, option)
    train(trained, seed, 0, 4)
    saved = to_mindformers(trained)
    prefix = {"amsgrad": "max_exp_avg_sq.", "master_weights": "master.", "bf16_states": "adam_m."}[option]
    names = [n for n in saved if n.startswith(prefix)]
    assert len(names) == len(trained.optimizer.parameters)
    assert all(saved[n].dtype == ms.float32 for n in names)
    fresh = build(seed, option)
    not_loaded, _ = ms.load_param_into_net(fresh, from_mindformers(saved, fresh))
    assert not_loaded == []
    expected, got = final_state(trained), final_state(fresh)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
