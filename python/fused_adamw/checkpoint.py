"""Checkpoints in MindFormers' AdamW layout, through MindSpore's own save and load.

MindFormers' AdamW keeps one float32 state per parameter, saved as ``adam_m.<param>`` and
``adam_v.<param>`` next to ``global_step`` (FusedAdamW's amsgrad state and fp32 masters convert
the same way, as ``max_exp_avg_sq.<param>`` (MindFormers' fused AdamW's name) and
``master.<param>``); MindFormers' resume, its MoE expert relocation and
its LoRA checkpoint tools look for those names. FusedAdamW keeps each kernel group's states
in one flat buffer (``fused_adamw.<tag>.exp_avg.<k>``, ``fused_adamw.<tag>.exp_avg_sq.<k>``,
with a layout record ``fused_adamw.<tag>.layout``: _layout.py), which
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
for the exact same parameter groups (a load into others is refused, by the layout record).

``from_mindformers`` also loads flat checkpoints written before the tag
(``fused_adamw.exp_avg.<k>``) into a cell holding one FusedAdamW.
"""
import warnings
from collections import OrderedDict

import numpy as np
from mindspore import Parameter, Tensor

from ._layout import layout_mismatch, legacy_state_name
from ._sharding import merge_shards, split_shards  # ZeRO-1 sets (shard_states=True)
from ._state_view import _float32_numpy
from .optimizer import FusedAdamW

__all__ = ["to_mindformers", "from_mindformers", "merge_shards", "split_shards"]


def _optimizers(cell):
    """The FusedAdamW instances in `cell` (itself included), each once."""
    found = {}
    for _, sub in cell.cells_and_names():
        if isinstance(sub, FusedAdamW):
            found.setdefault(id(sub), sub)
    return list(found.values())


def _state_views(opt):
    """(view, flat buffers, members only) of every per-parameter state of `opt`: adam_m / adam_v,
    amsgrad's ``max_exp_avg_sq.<param>`` and the fp32 masters ``master.<param>`` (only for the
    16-bit parameters that have one: members only)."""
    views = [(opt.exp_avg, opt.exp_avg_flat, False), (opt.exp_avg_sq, opt.exp_avg_sq_flat, False)]
    if hasattr(opt, "max_exp_avg_sq"):
        views.append((opt.max_exp_avg_sq, opt.max_exp_avg_sq_flat, False))
    if hasattr(opt, "master"):
        views.append((opt.master, opt.master_flat, True))
    return views


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
    dropped = set()  # ids of the view's other flat buffers, and of the layout records
    at_end = []    # states of an optimizer without buffers (all its parameters empty)
    for opt in _optimizers(cell):
        dropped.add(id(opt.state_layout[0]))
        for view, flats, members_only in _state_views(opt):
            states = view.to_numpy_dict()  # adam_x.<param> -> array, parameters order
            if members_only:
                states = OrderedDict((n, a) for i, (n, a) in enumerate(states.items()) if view.location(i))
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


def from_mindformers(param_dict, cell, strict=False):
    """`param_dict` (from ``mindspore.load_checkpoint``) for ``mindspore.load_param_into_net(cell, ...)``.

    For every FusedAdamW in `cell`, the entries ``adam_m.<param>`` / ``adam_v.<param>`` of its
    parameters are gathered into its flat buffers' names. A state missing from the checkpoint
    keeps its current value (as MindFormers' AdamW does) and is reported: a UserWarning names
    the missing states of every optimizer some of whose states are in the checkpoint, and
    with ``strict=True`` any missing state raises instead. A buffer none of whose states is in
    the checkpoint is left out, so ``load_param_into_net`` reports it as not loaded.

    A FusedAdamW checkpoint saved with flat buffers passes through unchanged, after its layout
    record is checked; one written before flat names carried a tag (``fused_adamw.exp_avg.<k>``)
    is renamed for a cell holding one FusedAdamW.

    Returns:
        A new dict; `param_dict` is not modified.

    Raises:
        ValueError: a state's shape differs from its parameter's; flat states laid out for
            other parameters; missing states with ``strict=True``; untagged flat states and
            more than one FusedAdamW in `cell`.
    """
    optimizers = _optimizers(cell)
    out = _renamed_legacy(dict(param_dict), optimizers)
    for opt in optimizers:
        _check_layout_record(out, opt)
        found, missing = False, []
        for view, flats, _ in _state_views(opt):
            merged = {}
            flat_saved = any(flat.name in out for flat in flats)  # a FusedAdamW checkpoint
            for i, k, offset in _members(view):
                name = view.name(i)
                if name not in param_dict:
                    if not flat_saved:
                        missing.append(name)
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
            found = found or bool(merged)
        if found:  # laid out by name here: the record is this optimizer's own
            layout = opt.state_layout[0]
            out[layout.name] = Parameter(Tensor(opt._layout_record), name=layout.name, requires_grad=False)
        _report_missing(missing, found, strict)
    return out


def _report_missing(missing, found, strict):
    if not missing or not (found or strict):
        return
    message = (f"For 'from_mindformers', {len(missing)} optimizer state(s) are not in the checkpoint and "
               f"keep their current values: {', '.join(missing[:20])}"
               + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "") + ".")
    if strict:
        raise ValueError(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def _check_layout_record(entries, opt):
    """Refuses flat states saved for another layout before anything is loaded."""
    name = opt.state_layout[0].name
    if name in entries:
        error = layout_mismatch(opt._layout_record, _numpy(entries[name]), f"checkpoint entry '{name}'")
        if error is not None:
            raise error


def _renamed_legacy(entries, optimizers):
    """Untagged flat states (``fused_adamw.exp_avg.<k>``, from before tags) renamed to the cell's
    one FusedAdamW's, and laid out again where its slices are padded (legacy slices were
    packed end to end); with several FusedAdamW, which one they belong to is unknown: refused.
    Legacy files carry no layout record: the parameters and groups must be the same."""
    renames = {}
    for opt in optimizers:
        for view, flats, _ in _state_views(opt):
            for k, flat in enumerate(flats):
                legacy = legacy_state_name(flat.name, opt._state_tag)
                if legacy in entries and flat.name not in entries:
                    renames.setdefault(legacy, []).append((opt, view, k, flat))
    if renames and len(optimizers) > 1:
        raise ValueError(f"For 'from_mindformers', the checkpoint holds flat states without an optimizer "
                         f"tag ({', '.join(sorted(renames))}: saved before flat names carried one) and the "
                         f"cell holds {len(optimizers)} FusedAdamW: which one they belong to is unknown.")
    for legacy, ((opt, view, k, flat),) in renames.items():
        data = _relaid(_numpy(entries.pop(legacy)).reshape(-1), view, k, flat, legacy)
        entries[flat.name] = Parameter(Tensor(data), name=flat.name, requires_grad=False)
        record = opt.state_layout[0]
        entries[record.name] = Parameter(Tensor(opt._layout_record), name=record.name, requires_grad=False)
    return entries


def _relaid(data, view, k, flat, legacy):
    """A legacy flat buffer in `flat`'s layout: as it is when it has `flat`'s size (written with
    padded slices), else its members packed end to end (written before padding) are moved to
    their padded offsets."""
    if data.size == flat.size:
        return data.astype(np.float32)
    members = [(offset, view.size(i)) for i, group, offset in _members(view) if group == k]
    packed = sum(size for _, size in members)
    if data.size != packed:
        raise ValueError(f"For 'from_mindformers', checkpoint entry '{legacy}' has {data.size} elements, "
                         f"but the states of '{flat.name}' hold {packed} ({flat.size} padded): saved for "
                         f"other parameters.")
    out, start = np.zeros(flat.size, np.float32), 0
    for offset, size in members:
        out[offset:offset + size] = data[start:start + size]
        start += size
    return out


def _numpy(value):
    return value.asnumpy() if isinstance(value, Tensor) else np.asarray(value)
