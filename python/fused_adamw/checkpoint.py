"""Checkpoints in MindFormers' AdamW layout, through MindSpore's own save and load.

MindFormers' AdamW keeps one float32 state per parameter, saved as ``adam_m.<param>`` and
``adam_v.<param>`` next to ``global_step``; MindFormers' resume, its MoE expert relocation and
its LoRA checkpoint tools look for those names. FusedAdamW keeps each kernel group's states
in one flat buffer (``fused_adamw.exp_avg.<k>``, ``fused_adamw.exp_avg_sq.<k>``), which
``mindspore.save_checkpoint(net)`` writes as it is. Two converters translate between the
layouts and leave the file I/O to MindSpore::

    import mindspore as ms
    from fused_adamw.checkpoint import from_mindformers, to_mindformers

    # a checkpoint MindFormers' AdamW (or FusedAdamW) resumes from
    ms.save_checkpoint(to_mindformers(train_net), "step_25.ckpt")

    # resume from a MindFormers AdamW checkpoint (or one written as above)
    param_dict = ms.load_checkpoint("step_25.ckpt")
    ms.load_param_into_net(train_net, from_mindformers(param_dict, train_net))

``train_net`` is any Cell holding the FusedAdamW optimizer(s) (a TrainOneStepCell, the
optimizer itself, ...). ``global_step`` and ``learning_rate`` have the same names in both
optimizers and need no conversion. The MindFormers layout is also the robust one for
FusedAdamW itself: it names each state by its parameter, while a flat buffer is only valid
for the exact same parameter groups.
"""
from collections import OrderedDict

import numpy as np
from mindspore import Parameter, Tensor
from mindspore.common import dtype as mstype

from ._sharding import merge_shards, split_shards  # ZeRO-1 sets (shard_states=True)
from .optimizer import FusedAdamW

__all__ = ["to_mindformers", "from_mindformers", "merge_shards", "split_shards"]


def _optimizers(cell):
    """The FusedAdamW instances in `cell` (itself included), each once."""
    found = {}
    for _, sub in cell.cells_and_names():
        if isinstance(sub, FusedAdamW):
            found.setdefault(id(sub), sub)
    return list(found.values())


def _members(view):
    """(parameter index, flat buffer index, offset) of every state stored in `view`'s buffers,
    so that loading touches each flat buffer once, not once per parameter."""
    locations = (view.location(i) for i in range(len(view)))
    return [(i, loc[0], loc[1]) for i, loc in enumerate(locations) if loc is not None]


def to_mindformers(cell):
    """The parameters of `cell` for ``mindspore.save_checkpoint``, in MindFormers' AdamW layout.

    Every FusedAdamW in `cell` has its flat state buffers replaced by one float32 Parameter
    per model parameter, ``adam_m.<param>`` and ``adam_v.<param>`` (MindFormers' names and
    order); everything else is passed through. The state Parameters are copies.

    Returns:
        OrderedDict name -> Parameter, accepted by ``mindspore.save_checkpoint`` (which also
        takes its ``append_dict`` and ``choice_func`` with it).
    """
    at_flat = {}   # id(first flat buffer of a view) -> that view's states, emitted in its place
    dropped = set()  # ids of the view's other flat buffers
    at_end = []    # states of an optimizer without buffers (all its parameters empty)
    for opt in _optimizers(cell):
        for view, flats in ((opt.exp_avg, opt.exp_avg_flat), (opt.exp_avg_sq, opt.exp_avg_sq_flat)):
            states = view.to_numpy_dict()  # adam_x.<param> -> array, parameters order
            if len(flats):
                at_flat[id(flats[0])] = states
                dropped.update(id(flat) for flat in flats[1:])
            else:
                at_end.append(states)
    out = OrderedDict()
    for _, param in cell.parameters_and_names():
        if id(param) in at_flat:
            _add_states(out, at_flat[id(param)])
        elif id(param) not in dropped:
            out[param.name] = param
    for states in at_end:
        _add_states(out, states)
    return out


def _add_states(out, states):
    for name, value in states.items():
        out[name] = Parameter(Tensor(value), name=name, requires_grad=False)


def from_mindformers(param_dict, cell):
    """`param_dict` (from ``mindspore.load_checkpoint``) for ``mindspore.load_param_into_net(cell, ...)``.

    For every FusedAdamW in `cell`, the entries ``adam_m.<param>`` / ``adam_v.<param>`` of its
    parameters are gathered into its flat buffers' names. A state missing from the checkpoint
    keeps its current value (as MindFormers' AdamW does); a buffer none of whose states is in
    the checkpoint is left out, so ``load_param_into_net`` reports it as not loaded. A
    FusedAdamW checkpoint saved with flat buffers passes through unchanged.

    Returns:
        A new dict; `param_dict` is not modified.

    Raises:
        ValueError: a state's shape differs from its parameter's.
    """
    out = dict(param_dict)
    for opt in _optimizers(cell):
        for view, flats in ((opt.exp_avg, opt.exp_avg_flat), (opt.exp_avg_sq, opt.exp_avg_sq_flat)):
            merged = {}
            for i, k, offset in _members(view):
                name = view.name(i)
                if name not in param_dict:
                    continue
                param = opt.parameters[i]
                value = _float32_numpy(param_dict[name])
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(f"For 'from_mindformers', checkpoint entry '{name}' has shape "
                                     f"{tuple(value.shape)}, but parameter '{param.name}' has shape "
                                     f"{tuple(param.shape)}.")
                if k not in merged:
                    merged[k] = flats[k].asnumpy().copy()
                merged[k][offset:offset + param.size] = value.reshape(-1)
            for i in range(len(view)):  # consumed, including states of empty parameters
                out.pop(view.name(i), None)
            for k, data in merged.items():
                out[flats[k].name] = Parameter(Tensor(data), name=flats[k].name, requires_grad=False)
    return out


def _float32_numpy(value):
    tensor = value if isinstance(value, Tensor) else Tensor(np.asarray(value))
    if tensor.dtype != mstype.float32:
        tensor = tensor.astype(mstype.float32)  # bfloat16 has no NumPy dtype
    return tensor.asnumpy()
