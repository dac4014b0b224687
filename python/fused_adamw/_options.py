"""The opt-in options of FusedAdamW beyond MindFormers' default AdamW (issue 11's
signature), their checks, and the kernel variant each kernel group runs.

All default off: with the defaults every group runs variant 0, the MindFormers update.
"""
from typing import NamedTuple

import mindspore as ms
from mindspore.common import dtype as mstype

from ._custom_op import AMSGRAD, BF16_STATE, MASTER, STOCHASTIC

_SIXTEEN_BIT = (mstype.float16, mstype.bfloat16)
_STATE_DTYPES = (mstype.float32, mstype.bfloat16)


class Options(NamedTuple):
    amsgrad: bool
    maximize: bool
    master_weights: bool
    stochastic_rounding: bool
    state_dtype: object
    seed: int
    swap: bool


def _check_bool(value, name, prim_name):
    if not isinstance(value, bool):
        raise TypeError(f"For '{prim_name}', '{name}' must be a bool, got {type(value).__name__}.")


def check_options(prim_name, use_fused, amsgrad, maximize, swap, master_weights, stochastic_rounding,
                  state_dtype, seed):
    for name, value in (("use_fused", use_fused), ("amsgrad", amsgrad), ("maximize", maximize), ("swap", swap),
                        ("master_weights", master_weights), ("stochastic_rounding", stochastic_rounding)):
        _check_bool(value, name, prim_name)
    if master_weights and stochastic_rounding:
        raise ValueError(f"For '{prim_name}', 'master_weights' and 'stochastic_rounding' exclude each other: "
                         f"with float32 master weights every update is kept exactly, so there is nothing to "
                         f"round stochastically.")
    if state_dtype not in _STATE_DTYPES:
        raise ValueError(f"For '{prim_name}', 'state_dtype' must be mindspore.float32 or mindspore.bfloat16, "
                         f"got {state_dtype}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"For '{prim_name}', 'seed' must be an int, got {type(seed).__name__}.")
    if not 0 <= seed < 2**63:
        raise ValueError(f"For '{prim_name}', 'seed' must be in [0, 2**63), got {seed}.")
    return Options(amsgrad, maximize, master_weights, stochastic_rounding, state_dtype, seed, swap)


def is_16bit(dtype):
    return dtype in _SIXTEEN_BIT


def group_flags(options, dtypes):
    """The variant flags of a kernel group whose parameters have these dtypes."""
    flags = 0
    if options.amsgrad:
        flags |= AMSGRAD
    if options.state_dtype == mstype.bfloat16:
        flags |= BF16_STATE
    # Master weights: the planner puts 16-bit parameters in groups of their own, so a
    # group either has a master for every member or none.
    if options.master_weights and all(is_16bit(d) for d in dtypes):
        flags |= MASTER
    if options.stochastic_rounding and any(is_16bit(d) for d in dtypes):
        flags |= STOCHASTIC
    return flags


def state_device(options):
    """`Parameter(device=...)` for the flat states: host memory with swap=True where the
    target has device memory of its own (as MindFormers' swap); nothing changes on CPU."""
    if options.swap and ms.get_context("device_target") != "CPU":
        return "CPU"
    return None
