"""save_checkpoint of a cell holding the network and FusedAdamW, loaded by a fresh process
that continues, matches an uninterrupted run exactly."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np

from checkpoint_run import build, final_state, train


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
    assert any(name.startswith("fused_adamw.exp_avg.") for name in saved)

    out = str(tmp_path / "resumed.npz")
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here] + sys.path))
    subprocess.run([sys.executable, os.path.join(here, "checkpoint_run.py"), mode, str(seed), checkpoint,
                    str(stop_at), str(last), out], check=True, env=env, timeout=300)
    resumed = np.load(out)
    assert sorted(resumed.files) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
