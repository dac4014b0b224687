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
from mindspore.common import dtype as mstype
from mindspore.ops import composite as C
from mindspore.ops import constexpr
from mindspore.ops import functional as F

SUPPORTED_DTYPES = (mstype.float32, mstype.float16, mstype.bfloat16)


def check_hyper_params(betas, eps, weight_decay, prim_name):
    validator.check_value_type("betas", betas, [list, tuple], prim_name)
    if len(betas) != 2:
        raise ValueError(f"For '{prim_name}', 'betas' must hold two floats, got {len(betas)} values.")
    validator.check_value_type("betas[0]", betas[0], [float], prim_name)
    validator.check_value_type("betas[1]", betas[1], [float], prim_name)
    validator.check_float_range(betas[0], 0.0, 1.0, validator.INC_NEITHER, "beta1", prim_name)
    validator.check_float_range(betas[1], 0.0, 1.0, validator.INC_NEITHER, "beta2", prim_name)
    validator.check_value_type("eps", eps, [float], prim_name)
    validator.check_positive_float(eps, "eps", prim_name)
    if not math.isfinite(eps):
        raise ValueError(f"For '{prim_name}', 'eps' must be finite, got {eps}.")
    # bool is an int in Python; MindSpore's validator rejects it, and so do we.
    validator.check_value_type("weight_decay", weight_decay, [float, int], prim_name)
    if not math.isfinite(weight_decay):
        raise ValueError(f"For '{prim_name}', 'weight_decay' must be finite, got {weight_decay}.")


def check_learning_rate_value(learning_rate, prim_name, what="learning_rate"):
    """Fixed learning rates (numbers, Tensors, Iterables of numbers) must be finite and >= 0.
    nn.Optimizer rejects negative numbers but lets NaN, inf and bad Tensor values through;
    schedules are checked on every step instead (FusedAdamW.construct)."""
    if isinstance(learning_rate, (bool, str, bytes)):
        raise TypeError(f"For '{prim_name}', '{what}' must be float, int, Tensor, Iterable or "
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
    bad = ~(np.isfinite(values) & (values >= 0.0))
    if bad.any():
        raise ValueError(f"For '{prim_name}', '{what}' must be finite and >= 0, got {values[bad][0]}"
                         + (f" at step {int(np.argmax(bad))}." if values.size > 1 else "."))


def check_parameters(parameters, prim_name):
    for param in parameters:
        if param.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"For '{prim_name}', parameter '{param.name}' has dtype {param.dtype}; "
                            f"supported: float32, float16, bfloat16.")


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
