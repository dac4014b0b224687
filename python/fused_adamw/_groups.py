"""Plans the kernel calls of one optimizer step.

nn.Optimizer resolves user parameter groups into per-parameter learning rates and
weight decays (in `parameters` order, possibly interleaved by `order_params`).
Parameters sharing both become one kernel group: one flat exp_avg / exp_avg_sq
pair and one kernel call per step. Zero-element parameters join no group: there
is nothing to update, and MindSpore may hand the kernel no storage for them.
"""
from typing import NamedTuple, Tuple

from mindspore.nn import Cell

# Inputs one ops.Custom call is known to handle (4,002 were tested); a larger
# group is split into several calls.
MAX_TENSORS_PER_CALL = 2000

# Each tensor's state slice starts at a multiple of this many elements
# (kStateAlignElems in kernels/common/adamw_math.h; docs/kernel-interface.md).
STATE_ALIGN = 32


def align_state(n):
    return -(-n // STATE_ALIGN) * STATE_ALIGN


def state_offsets(sizes):
    """(offsets, total) of tensors of these sizes in a padded flat state."""
    offsets, total = [], 0
    for n in sizes:
        offsets.append(align_state(total))
        total = offsets[-1] + n
    return tuple(offsets), total


class KernelGroup(NamedTuple):
    indices: Tuple[int, ...]   # parameter indices, ascending, in `parameters` order
    rep: int                   # index whose lr / weight decay the group uses
    offsets: Tuple[int, ...]   # start of each member's state in the flat buffers (padded)
    total: int                 # elements in the flat buffers


def _lr_key(opt, i):
    return id(opt.group_lr[i]) if opt.is_group_lr else None


def _wd_key(opt, i):
    if not opt.is_group:
        return None
    wd = opt.group_weight_decay[i]
    return ("cell", id(wd)) if isinstance(wd, Cell) else ("value", float(wd))


def plan_kernel_groups(opt, max_tensors=MAX_TENSORS_PER_CALL, split_by_dtype=False):
    """Kernel groups of an initialised nn.Optimizer, in order of first appearance.

    The CPU and CUDA kernels take any mix of dtypes in one call; the Ascend operator's
    tensor lists have one dtype each, so there a group is also split by dtype."""
    members = {}
    for i, param in enumerate(opt.parameters):
        if param.size == 0:
            continue
        dtype_key = str(param.dtype) if split_by_dtype else None
        members.setdefault((_lr_key(opt, i), _wd_key(opt, i), dtype_key), []).append(i)
    groups = []
    for indices in members.values():
        for start in range(0, len(indices), max_tensors):
            chunk = tuple(indices[start:start + max_tensors])
            offsets, total = state_offsets(opt.parameters[i].size for i in chunk)
            groups.append(KernelGroup(chunk, chunk[0], offsets, total))
    return groups


def locate_states(groups, num_params):
    """For each parameter index: (group number, offset) of its state, or None."""
    where = [None] * num_params
    for k, group in enumerate(groups):
        for i, offset in zip(group.indices, group.offsets):
            where[i] = (k, offset)
    return where

