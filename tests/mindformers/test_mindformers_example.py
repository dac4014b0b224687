"""examples/mindformers_pretrain.py trains, leaves nothing in the current directory, and its
checkpoint is one MindFormers' AdamW takes; run as the README says without hyper_parallel, it
stops with one line saying what is missing and where it comes from."""
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys

import mindspore as ms
import numpy as np
from mindspore import nn

from mindformers.core.lr import build_lr
from mindformers.core.optim import BasicAdamW
from mindformers.tools.register import MindFormerConfig

_EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "mindformers_pretrain.py")


def test_example_pretrains_and_writes_a_mindformers_checkpoint(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("mindformers_pretrain_example", _EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # GRAPH_MODE looks the model's source up by module
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)  # the default output goes to a temporary directory, not here
    try:
        losses, path = example.main(["--steps", "40"])
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert list(tmp_path.iterdir()) == []
    assert os.path.dirname(path) == example._SCRATCH
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3

    # MindFormers' AdamW on the same model finds every one of its states in the file.
    model = example.TinyCausalLM(64, 32, np.random.default_rng(1))
    schedule = build_lr(MindFormerConfig(example.DEFAULT_CONFIG).lr_schedule)
    optimizer = BasicAdamW(model.trainable_params(), learning_rate=schedule, weight_decay=0.1)
    param_dict = ms.load_checkpoint(path)
    param_not_load, ckpt_not_load = ms.load_param_into_net(nn.TrainOneStepCell(model, optimizer), param_dict)
    assert param_not_load == [] and ckpt_not_load == []
    assert int(optimizer.global_step.asnumpy()[0]) == 40
    assert np.abs(optimizer.exp_avg_sq[0].asnumpy()).max() > 0
    shutil.rmtree(example._SCRATCH)


def test_example_run_as_the_readme_says(tmp_path):
    """`python examples/mindformers_pretrain.py` in a fresh process, where the tests' placeholder
    for hyper_parallel is not installed: one line naming it and its source, or (where the real
    package is installed) a run; nothing left in the current directory either way."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p))
    proc = subprocess.run([sys.executable, _EXAMPLE, "--steps", "3"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    if importlib.machinery.PathFinder.find_spec("hyper_parallel") is None:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "hyper_parallel is not installed" in line
        assert "PyPI does not carry it" in line and "https://atomgit.com/mindspore/hyper-parallel" in line
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "saved" in proc.stdout
    assert list(tmp_path.iterdir()) == []
