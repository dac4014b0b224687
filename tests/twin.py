"""Two copies of a small network, one trained with FusedAdamW and one with MindFormers'
own AdamW (its adamw.py from the mindformers 2.0.0 wheel), for side-by-side checks."""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn

from fused_adamw import FusedAdamW
from fused_adamw.bench.peers import mindformers_adamw_class
from reference import rel_err


class TwoLayerNet(nn.Cell):
    """The shape of MindFormers' optimizer test: two Dense layers."""

    def __init__(self, rng, d_in=8, d_hidden=16, d_out=4):
        super().__init__()
        self.fc1 = nn.Dense(d_in, d_hidden)
        self.fc2 = nn.Dense(d_hidden, d_out)
        self.relu = nn.ReLU()
        for p in self.trainable_params():  # fresh random weights, identical in both twins
            p.set_data(Tensor(rng.standard_normal(p.shape).astype(np.float32) * 0.5))

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def copy_weights(src, dst):
    for a, b in zip(src.trainable_params(), dst.trainable_params()):
        b.set_data(Tensor(a.asnumpy().copy()))


def recipe_groups(net):
    """MindFormers' optimizer-test groups: fc1 with its own weight decay and lr, fc2 with its own lr."""
    return [{"params": net.fc1.trainable_params(), "weight_decay": 0.01, "lr": 0.01},
            {"params": net.fc2.trainable_params(), "lr": 0.1}]


def make_optimizers(net_fused, net_mf, groups_fn, **kwargs):
    fused = FusedAdamW(groups_fn(net_fused), **kwargs)
    mf = mindformers_adamw_class()(groups_fn(net_mf), **kwargs)
    return fused, mf


def compare_states(fused, mf):
    """Largest relative error over parameters, exp_avg and exp_avg_sq (norm-wise, per tensor)."""
    errs = []
    for i, (p_f, p_m) in enumerate(zip(fused.parameters, mf.parameters)):
        errs.append(rel_err(p_f.asnumpy(), p_m.asnumpy().astype(np.float64)))
        errs.append(rel_err(fused.exp_avg[i].asnumpy(), mf.exp_avg[i].asnumpy().astype(np.float64)))
        errs.append(rel_err(fused.exp_avg_sq[i].asnumpy(), mf.exp_avg_sq[i].asnumpy().astype(np.float64)))
    return max(errs)
