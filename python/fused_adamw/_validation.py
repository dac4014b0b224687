"""Argument checks. Every check here runs before anything is written.

Constructor arguments follow MindFormers AdamW's contract (TypeError for a wrong
type, ValueError for a wrong value, through MindSpore's own validator). Gradient
checks compare static shapes and dtypes, so in GRAPH_MODE they run while the
graph compiles (`constexpr`) and in PYNATIVE_MODE on each call.
"""
import math

import numpy as np

from mindspore import _checkparam as validator
from mindspore import Tensor
from mindspore.nn import Cell
from mindspore.common import dtype as mstype
from mindspore.ops import composite as C
from mindspore.ops import constexpr
from mindspore.ops import functional as F

SUPPORTED_DTYPES = (mstype.float32, mstype.float16, mstype.bfloat16)


def _float32(value):
    """`value` as the kernel sees it: rounded to float32 (1e39 -> inf, 1e-50 -> 0.0)."""
    with np.errstate(over="ignore", under="ignore"):
        return float(np.float32(value))


def check_hyper_params(betas, eps, weight_decay, prim_name):
    """Types through MindSpore's validator (MindFormers' contract); values in float32 terms,
    because the kernel computes in float32: a beta that rounds to 1.0, an eps that rounds
    to 0 or inf, a weight decay that rounds to inf are refused here, not by the kernel."""
    validator.check_value_type("betas", betas, [list, tuple], prim_name)
    if len(betas) != 2:
        raise ValueError(f"For '{prim_name}', 'betas' must hold two floats, got {len(betas)} values.")
    for i in range(2):
        validator.check_value_type(f"betas[{i}]", betas[i], [float], prim_name)
        validator.check_float_range(betas[i], 0.0, 1.0, validator.INC_NEITHER, f"beta{i + 1}", prim_name)
        if not 0.0 < _float32(betas[i]) < 1.0:  # NaN, or rounds to 0 or 1 in float32
            raise ValueError(f"For '{prim_name}', 'betas[{i}]' (beta{i + 1}) must be in (0, 1) in float32, "
                             f"got {betas[i]!r} (float32: {_float32(betas[i])!r}).")
    validator.check_value_type("eps", eps, [float], prim_name)
    validator.check_positive_float(eps, "eps", prim_name)
    if not (math.isfinite(_float32(eps)) and _float32(eps) > 0.0):
        raise ValueError(f"For '{prim_name}', 'eps' must be finite and > 0 in float32, got {eps!r} "
                         f"(float32: {_float32(eps)!r}).")
    check_weight_decay_value(weight_decay, prim_name)


def check_weight_decay_value(weight_decay, prim_name, what="'weight_decay'"):
    """A fixed weight decay: float or int (not bool), finite and >= 0 in float32. A Cell
    (dynamic decay) is checked on every step instead."""
    if isinstance(weight_decay, Cell):
        return
    # bool is an int in Python; MindSpore's validator rejects it, and so do we.
    validator.check_value_type("weight_decay", weight_decay, [float, int], prim_name)
    value = _float32(weight_decay)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"For '{prim_name}', {what} must be finite and >= 0 in float32, got "
                         f"{weight_decay!r} (float32: {value!r}).")


def check_learning_rate_value(learning_rate, prim_name, what="'learning_rate'"):
    """Fixed learning rates (numbers, Tensors, Iterables of numbers) must be finite and >= 0
    in float32. nn.Optimizer rejects negative numbers but lets NaN, inf and bad Tensor values
    through; schedules are checked on every step instead (FusedAdamW.construct)."""
    if isinstance(learning_rate, (bool, str, bytes)):
        raise TypeError(f"For '{prim_name}', {what} must be float, int, Tensor, Iterable or "
                        f"LearningRateSchedule, got {type(learning_rate).__name__}.")
    if isinstance(learning_rate, (float, int)):
        values = np.array([learning_rate], np.float64)
    elif isinstance(learning_rate, Tensor):
        values = learning_rate.asnumpy().astype(np.float64).reshape(-1)
    elif isinstance(learning_rate, (list, tuple)) and all(
            isinstance(x, (float, int)) and not isinstance(x, bool) for x in learning_rate):
        values = np.array(learning_rate, np.float64)
    else:
        return  # a schedule, or a type nn.Optimizer will reject with its own TypeError
    with np.errstate(over="ignore"):
        as_float32 = values.astype(np.float32)
    bad = ~(np.isfinite(as_float32) & (as_float32 >= 0.0))
    if bad.any():
        raise ValueError(f"For '{prim_name}', {what} must be finite and >= 0 in float32, got "
                         f"{values[bad][0]}" + (f" at step {int(np.argmax(bad))}." if values.size > 1 else "."))


def check_params_argument(params, prim_name):
    """Before nn.Optimizer reads `params`: no parameter twice (nn.Optimizer takes a plain list
    with duplicates, and raises RuntimeError for groups), and the 'lr' / 'weight_decay' of
    group dicts in float32 terms."""
    if not isinstance(params, list):
        return
    if all(isinstance(group, dict) for group in params):
        _check_unique([p for g in params for p in g.get("params", ())], prim_name, "'params'")
        for group in params:
            _check_unique(list(group.get("order_params", ())), prim_name, "'order_params'")
    else:
        _check_unique(params, prim_name, "'params'")
    for k, group in enumerate(params):
        if not isinstance(group, dict):
            continue
        if "lr" in group:
            check_learning_rate_value(group["lr"], prim_name, f"'lr' of parameter group {k}")
        if "weight_decay" in group:
            check_weight_decay_value(group["weight_decay"], prim_name,
                                     f"'weight_decay' of parameter group {k}")


def _check_unique(params, prim_name, what):
    # A parameter listed twice would be updated twice per step, with two states, and
    # racing when kernel threads meet.
    seen = {}
    for i, param in enumerate(params):
        if id(param) in seen:
            raise ValueError(f"For '{prim_name}', parameter '{getattr(param, 'name', param)}' appears more "
                             f"than once in {what} (positions {seen[id(param)]} and {i}); each parameter "
                             f"must appear once.")
        seen[id(param)] = i


def check_parameters(parameters, prim_name):
    for param in parameters:
        if param.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"For '{prim_name}', parameter '{param.name}' has dtype {param.dtype}; "
                            f"supported: float32, float16, bfloat16.")
    _check_unique(parameters, prim_name, "the optimizer's parameters")


@constexpr
def check_gradient_specs(specs, grad_specs):
    """specs: ((name, shape, dtype), ...) of the parameters; grad_specs: ((shape, dtype) or
    None, ...) of the gradients."""
    if len(grad_specs) != len(specs):
        raise ValueError(f"For 'FusedAdamW', expected {len(specs)} gradients (one per parameter, in "
                         f"`parameters` order), got {len(grad_specs)}.")
    for (name, shape, dtype), grad_spec in zip(specs, grad_specs):
        if grad_spec is None:
            raise ValueError(f"For 'FusedAdamW', the gradient of parameter '{name}' is missing (None).")
        grad_shape, grad_dtype = grad_spec
        if tuple(grad_shape) != tuple(shape):
            raise ValueError(f"For 'FusedAdamW', the gradient of parameter '{name}' has shape "
                             f"{tuple(grad_shape)}, but the parameter has shape {tuple(shape)}.")
        # float32 gradients for 16-bit parameters are MindFormers' pairing after its unscale.
        if grad_dtype != dtype and grad_dtype != mstype.float32:
            raise TypeError(f"For 'FusedAdamW', the gradient of parameter '{name}' has dtype {grad_dtype}, "
                            f"but the parameter has dtype {dtype}; it must be the parameter's dtype or float32.")


# Static (shape, dtype) of each gradient, None for a missing one; a Map over the
# tuple keeps graph compilation flat for thousands of gradients.
_spec_of = C.MultitypeFuncGraph("fused_adamw_gradient_spec")


@_spec_of.register("Tensor")
def _tensor_spec(grad):
    return F.shape(grad), F.dtype(grad)


@_spec_of.register("None")
def _missing_spec(grad):
    return None


_map = C.Map()


def check_gradients(specs, gradients):
    check_gradient_specs(specs, _map(_spec_of, gradients))
