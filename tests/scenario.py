"""Runs FusedAdamW for several steps on random gradients next to the float64 model
(tests/reference.py) and checks it, for any groups, schedules and dtype."""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from fused_adamw import FusedAdamW
from ms_helpers import make_param, read64, read_stored, representable, to_tensor
from reference import adamw_step64, rel_err, rounding_excess, update_magnitude64


class Const:
    """A fixed learning rate or weight decay."""

    def __init__(self, value):
        self.ms_value, self.value = value, float(value)

    def at(self, step):
        return self.value


class TensorLR:
    """A 1-D Tensor learning rate: value s at step s."""

    def __init__(self, values):
        self.values = np.asarray(values, np.float32)
        self.ms_value = Tensor(self.values)

    def at(self, step):
        return float(self.values[step])


class Schedule:
    """A LearningRateSchedule or weight-decay Cell, evaluated by MindSpore itself."""

    def __init__(self, cell):
        self.ms_value, self._cache = cell, {}

    def at(self, step):
        if step not in self._cache:
            out = self.ms_value(Tensor(np.array([step], np.int32)))
            self._cache[step] = float(np.asarray(out.asnumpy(), np.float32).reshape(-1)[0])
        return self._cache[step]


class LinearWeightDecay(nn.Cell):
    """Dynamic weight decay: start + slope * step."""

    def __init__(self, start, slope):
        super().__init__()
        self.start, self.slope = start, slope

    def construct(self, global_step):
        return self.start + self.slope * ms.ops.cast(global_step, ms.float32)


def run_scenario(rng, groups, dtype="float32", learning_rate=Const(1e-3), weight_decay=Const(0.0),
                 steps=20, betas=(0.9, 0.999), eps=1e-8, shuffle_order=False):
    """groups: list of dicts {"shapes": [...], optional "lr": spec, "weight_decay": spec}.
    shuffle_order adds an `order_params` entry that interleaves the groups' parameters.
    Returns a dict of the measured errors; asserts nothing itself."""
    params, lr_of, wd_of, group_dicts = [], {}, {}, []
    for gi, group in enumerate(groups):
        members = []
        for j, shape in enumerate(group["shapes"]):
            p = make_param(rng.standard_normal(shape), dtype, f"g{gi}.p{j}")
            lr_of[p.name] = group.get("lr", learning_rate)
            wd_of[p.name] = group.get("weight_decay", weight_decay)
            members.append(p)
        params += members
        d = {"params": members}
        if "lr" in group:
            d["lr"] = group["lr"].ms_value
        if "weight_decay" in group:
            d["weight_decay"] = group["weight_decay"].ms_value
        group_dicts.append(d)
    if shuffle_order:
        group_dicts.append({"order_params": [params[i] for i in rng.permutation(len(params))]})
    opt = FusedAdamW(group_dicts if len(group_dicts) > 1 or "lr" in groups[0] or "weight_decay" in groups[0]
                     else params, learning_rate=learning_rate.ms_value, betas=betas, eps=eps,
                     weight_decay=weight_decay.ms_value)
    order = list(opt.parameters)
    p64 = [read64(p) for p in order]
    m64 = [np.zeros(p.shape) for p in order]
    v64 = [np.zeros(p.shape) for p in order]
    m_abs = [np.zeros(p.shape) for p in order]  # running average of |g|: exp_avg's error scale
    worst_excess = 0.0
    for s in range(steps):
        grads = [representable(rng.standard_normal(p.shape), dtype).astype(np.float64) for p in order]
        if dtype != "float32":
            # 16-bit parameters are rounded every step: check each step from the kernel's own
            # previous value, so one legitimate rounding difference does not compound.
            p64 = [read64(p) for p in order]
        opt(tuple(to_tensor(g, dtype) for g in grads))
        for i, p in enumerate(order):
            lr, wd = lr_of[p.name].at(s), wd_of[p.name].at(s)
            before = p64[i]
            p64[i], m64[i], v64[i] = adamw_step64(before, grads[i], m64[i], v64[i], lr, wd, s + 1,
                                                 betas[0], betas[1], eps)
            m_abs[i] = float(np.float32(betas[0])) * m_abs[i] + (1 - float(np.float32(betas[0]))) * np.abs(grads[i])
            if dtype != "float32":
                decayed = before * (1.0 - float(np.float32(lr)) * float(np.float32(wd)))
                scale = np.abs(decayed) + update_magnitude64(m_abs[i], v64[i], lr, s + 1, betas[0], betas[1], eps)
                excess = rounding_excess(read_stored(p, dtype), p64[i], scale, dtype)
                worst_excess = max(worst_excess, float(excess.max()))
    flat = lambda xs: np.concatenate([np.ravel(x) for x in xs])
    return {
        "param_rel_err": rel_err(flat([read64(p) for p in order]), flat(p64)),
        "exp_avg_rel_err": rel_err(flat([opt.exp_avg[i].asnumpy() for i in range(len(order))]), flat(m64)),
        "exp_avg_sq_rel_err": rel_err(flat([opt.exp_avg_sq[i].asnumpy() for i in range(len(order))]),
                                      flat(v64)),
        "worst_rounding_excess": worst_excess,
        "global_step": int(opt.global_step.asnumpy()[0]),
        "optimizer": opt,
    }


def assert_matches_model(result, dtype, steps=20):
    assert result["global_step"] == steps
    assert result["exp_avg_rel_err"] <= 1e-6, result
    assert result["exp_avg_sq_rel_err"] <= 1e-6, result
    if dtype == "float32":
        assert result["param_rel_err"] <= 1e-6, result
    else:
        assert result["worst_rounding_excess"] <= 1.0, result
