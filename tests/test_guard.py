"""Shape and dtype changes of what a FusedAdamW updates are refused with a clear error, never a
crash (_guard.py); the refusal leaves parameters, states and global_step unchanged."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor

from fused_adamw import FusedAdamW

_HERE = os.path.dirname(os.path.abspath(__file__))


def test_resizing_after_a_step_raises_and_the_process_lives(mode, rng):
    """In a fresh process (a failure here used to be exit 139): see resize_run.py."""
    seed = int(rng.integers(1 << 30))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([_HERE] + sys.path))
    run = subprocess.run([sys.executable, os.path.join(_HERE, "resize_run.py"), mode, str(seed)],
                         capture_output=True, text=True, env=env, timeout=300)
    out = run.stdout
    assert run.returncode == 0 and out.rstrip().endswith("DONE"), (run.returncode, out, run.stderr[-3000:])
    assert "ACCEPTED" not in out, out
    for what, error in (("set_data smaller", "ValueError: For 'FusedAdamW', cannot change parameter 'w' "
                                             "from shape (40, 37) to (10,)"),
                        ("set_data scalar", "ValueError: For 'FusedAdamW', cannot change parameter 'w' "
                                            "from shape (40, 37) to ()"),
                        ("set_dtype", "TypeError: For 'FusedAdamW', cannot change parameter 'b' from dtype "
                                      "Float16 to Float32"),
                        ("shrink exp_avg", "ValueError: For 'FusedAdamW', cannot change optimizer Parameter "
                                           "'fused_adamw."),
                        ("global_step", "ValueError: For 'FusedAdamW', cannot change optimizer Parameter "
                                        "'global_step' from shape (1,) to (2,)"),
                        ("learning_rate", "ValueError: For 'FusedAdamW', cannot change optimizer Parameter "
                                          "'learning_rate'")):
        assert f"refused {what}: {error}" in out, (what, out)


def test_dropped_optimizer_releases_its_parameters(rng):
    p = Parameter(Tensor(rng.standard_normal(6).astype(np.float32)), name="p")
    opt = FusedAdamW([p])
    with pytest.raises(ValueError, match="cannot change parameter 'p'"):
        p.set_data(Tensor(np.zeros(3, np.float32)))
    del opt  # no longer updated by anyone: MindSpore's behaviour again
    p.set_data(Tensor(np.zeros(3, np.float32)))
    assert p.shape == (3,)
    other = Parameter(Tensor(np.zeros(4, np.float32)), name="other")  # never owned
    other.set_dtype(ms.float16)
    assert other.dtype == ms.float16
