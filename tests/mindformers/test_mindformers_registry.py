"""FusedAdamW in MindFormers' optimizer registry: YAML types, auto_register, replacing AdamW."""
import importlib
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor

from mindformers.core.lr import build_lr
from mindformers.core.optim import BasicAdamW, build_optim
from mindformers.tools.register import MindFormerConfig, MindFormerModuleType, MindFormerRegister

import fused_adamw
import fused_adamw.mindformers as fused_mindformers
from fused_adamw import FusedAdamW

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
_OPTIMIZER = MindFormerModuleType.OPTIMIZER


@pytest.fixture
def registry():
    """MindFormers' optimizer registry, restored after the test."""
    saved = dict(MindFormerRegister.registry[_OPTIMIZER])
    yield MindFormerRegister.registry[_OPTIMIZER]
    MindFormerRegister.registry[_OPTIMIZER].clear()
    MindFormerRegister.registry[_OPTIMIZER].update(saved)


def _params(rng, n=3):
    return [Parameter(Tensor(rng.standard_normal((n, 2)).astype(np.float32)), name=f"w{i}") for i in range(n)]


def test_import_registers_fused_adamw_before_mindformers_is_imported():
    """`import fused_adamw` registers it even when MindFormers is imported only afterwards."""
    script = ("import sys; sys.path.insert(0, {here!r})\n"
              "import hyper_parallel_placeholder; hyper_parallel_placeholder.install()\n"
              "{first}\n{second}\n"
              "from mindformers.tools.register import MindFormerRegister\n"
              "print(MindFormerRegister.get_cls('optimizer', 'FusedAdamW').__module__)\n")
    # MindFormers imported first is every other test here (conftest imports it); this is the other order.
    for first, second in (("import fused_adamw", "import mindformers"),):
        out = subprocess.run([sys.executable, "-c", script.format(here=_HERE, first=first, second=second)],
                             capture_output=True, text=True, env=dict(os.environ), timeout=300, check=True)
        assert out.stdout.strip().splitlines()[-1] == "fused_adamw.optimizer", (first, out.stderr[-2000:])


def test_registration_hook_survives_a_failed_import(tmp_path, monkeypatch):
    """The import of MindFormers' optimizer module fails once (a dependency missing, then
    installed): the hook stays and registers on the retry. A stand-in module plays MindFormers'
    optimizer module, whose package cannot be imported twice in one process."""
    (tmp_path / "stand_in_optim.py").write_text(
        "import os\nif os.environ.get('STAND_IN_FAIL'):\n    raise ImportError('a dependency is missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registered = []
    monkeypatch.setattr(fused_mindformers, "_OPTIM_MODULE", "stand_in_optim")
    monkeypatch.setattr(fused_mindformers, "_register_fused_adamw", lambda: registered.append(True))
    hook = fused_mindformers._RegisterAfterImport()
    sys.meta_path.insert(0, hook)
    try:
        monkeypatch.setenv("STAND_IN_FAIL", "1")
        with pytest.raises(ImportError, match="dependency"):
            importlib.import_module("stand_in_optim")
        assert registered == [] and hook in sys.meta_path
        monkeypatch.delenv("STAND_IN_FAIL")
        importlib.import_module("stand_in_optim")
        assert registered == [True] and hook not in sys.meta_path
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)
        sys.modules.pop("stand_in_optim", None)


def test_yaml_optimizer_builds_fused_adamw_with_trainer_arguments(rng):
    """The YAML section, with the trainer's two parameter groups and LR schedule as default_args."""
    config = MindFormerConfig(os.path.join(_REPO, "examples", "mindformers_fused_adamw.yaml"))
    assert config.optimizer.type == "FusedAdamW"
    params = _params(rng, 4)
    schedule = build_lr(config.lr_schedule)
    groups = [{"params": params[:2], "weight_decay": config.optimizer.weight_decay},
              {"params": params[2:], "weight_decay": 0.0}]
    optimizer = build_optim(config.optimizer, default_args={"params": groups, "learning_rate": schedule})
    assert type(optimizer) is FusedAdamW
    assert optimizer.betas == tuple(config.optimizer.betas)
    # What MindFormers' training wrapper and callbacks read.
    assert optimizer.learning_rate is schedule and optimizer.dynamic_lr and not optimizer.is_group_lr
    assert optimizer.global_step.name == "global_step" and int(optimizer.global_step.asnumpy()[0]) == 0
    assert list(optimizer.parameters) == params
    assert len(optimizer.exp_avg) == len(optimizer.exp_avg_sq) == 4
    assert optimizer.exp_avg.name(0) == "adam_m.w0" and optimizer.exp_avg_sq.name(3) == "adam_v.w3"


def test_replace_adamw_opt_in(registry, rng):
    config = {"type": "AdamW", "betas": [0.9, 0.95], "eps": 1.e-8, "weight_decay": 0.1}
    assert type(build_optim(dict(config), default_args={"params": _params(rng)})) is BasicAdamW
    fused_mindformers.register(replace_adamw=True)
    assert fused_mindformers.is_adamw_replaced()
    assert type(build_optim(dict(config), default_args={"params": _params(rng)})) is FusedAdamW
    assert type(build_optim(dict(config, use_fused=False), default_args={"params": _params(rng)})) is FusedAdamW
    # use_fused asks for MindFormers' Ascend kernel, with other semantics: still MindFormers'.
    adamw_entry = MindFormerRegister.get_cls(_OPTIMIZER, "AdamW")
    assert adamw_entry.get_actual_adamw_cls(True).__module__ == "mindformers.core.optim.fused_adamw"
    assert type(adamw_entry(_params(rng), weight_decay=0.1)) is FusedAdamW
    assert adamw_entry(_params(rng), amsgrad=True, swap=True).options.amsgrad
    fused_mindformers.register()
    assert not fused_mindformers.is_adamw_replaced()
    assert type(build_optim(dict(config), default_args={"params": _params(rng)})) is BasicAdamW


@pytest.mark.parametrize("reference, built", [("mindformers.FusedAdamW", "FusedAdamW"),
                                              ("mindformers.AdamW", "AdamW")])
def test_yaml_auto_register(registry, reference, built, monkeypatch, rng):
    """`auto_register` with REGISTER_PATH at the installed package: what run_mindformer.py users write."""
    registry.pop("FusedAdamW")
    monkeypatch.setenv("REGISTER_PATH", os.path.dirname(fused_adamw.__file__))
    config = {"type": built, "auto_register": reference, "weight_decay": 0.1}
    optimizer = build_optim(config, default_args={"params": _params(rng)})
    assert type(optimizer) is FusedAdamW
