"""MindFormers 2.0's AdamW arguments (use_fused, amsgrad, maximize, swap) through build_optim
with `type: FusedAdamW`, and FusedTrainOneStepCell through MindFormers' wrapper registry."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from mindformers.core.optim import build_optim
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindformers.wrapper import build_wrapper

from fused_adamw import FusedAdamW, FusedTrainOneStepCell


def _params(rng, n=3):
    return [Parameter(Tensor(rng.standard_normal((n, 2)).astype(np.float32)), name=f"w{i}") for i in range(n)]


@pytest.mark.parametrize("key", ["use_fused", "amsgrad", "maximize", "swap"])
def test_build_optim_passes_each_mindformers_argument(rng, key):
    config = {"type": "FusedAdamW", "betas": [0.9, 0.95], "eps": 1.e-8, "weight_decay": 0.1, key: True}
    params = _params(rng)
    optimizer = build_optim(config, default_args={"params": params, "learning_rate": 0.01})
    assert type(optimizer) is FusedAdamW
    if key in ("amsgrad", "maximize", "swap"):
        assert getattr(optimizer.options, key) is True
    before = [p.asnumpy().copy() for p in params]
    optimizer(tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in params))
    assert all(not np.array_equal(b, p.asnumpy()) for b, p in zip(before, params))
    if key == "amsgrad":
        assert optimizer.max_exp_avg_sq.name(0) == "max_exp_avg_sq.w0"


def test_runner_wrapper_yaml_builds_the_fused_step(mode, rng):
    assert MindFormerRegister.get_cls(MindFormerModuleType.WRAPPER, "FusedTrainOneStepCell") is FusedTrainOneStepCell
    net = nn.Dense(4, 2)
    optimizer = FusedAdamW(net.trainable_params(), learning_rate=0.01)
    config = {"type": "FusedTrainOneStepCell", "use_clip_grad": True, "max_grad_norm": 1.0,
              "scale_sense": {"type": "DynamicLossScaleUpdateCell", "loss_scale_value": 1024,
                              "scale_factor": 2, "scale_window": 1000},
              "global_norm_spike_threshold": 100.0, "use_skip_data_by_global_norm": True}
    cell = build_wrapper(config, default_args={"network": nn.WithLossCell(net, nn.MSELoss()),
                                               "optimizer": optimizer})
    assert type(cell) is FusedTrainOneStepCell
    x = Tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = Tensor(rng.standard_normal((8, 2)).astype(np.float32))
    loss, overflow, scale, lr, norm = cell(x, y)
    assert not bool(overflow.asnumpy()) and float(scale.asnumpy()) == 1024.0
    assert np.isfinite(float(norm.asnumpy())) and int(optimizer.global_step.asnumpy()[0]) == 1
