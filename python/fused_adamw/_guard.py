"""Refuses shape and dtype changes of the Parameters a live FusedAdamW updates.

A FusedAdamW sizes its flat states, and GRAPH_MODE compiles its step, for the shapes and
dtypes its parameters have at construction. MindSpore lets `Parameter.set_data` replace a
parameter's data with data of another shape (and `set_dtype` change its dtype); a compiled
graph keeps handing the kernel the old shapes with the new, smaller buffer, so the kernel
cannot see the change and writes out of bounds (a segfault). Nothing the kernel receives
tells it the truth, so the change is refused where it is made: `set_data`, `assign_value`
and `set_dtype` of a Parameter (the paths through which `load_checkpoint`,
`load_param_into_net` and users change a Parameter's data) check, for Parameters that a
live FusedAdamW owns, that shape and dtype stay as they were, and raise before anything is
written. Other Parameters take one dictionary lookup per call and are otherwise untouched.

`set_data(..., slice_shape=True)` is MindSpore's parallel slicing and is let through.

The same three methods (and `copy_`) make the per-parameter state views of _state_view.py
write through: a view Parameter registered with `write_through` passes what it is given
to its flat buffer before taking it itself.
"""
import functools
import gc
import threading
import weakref
from typing import Callable, NamedTuple, Optional, Tuple

from mindspore import Parameter, Tensor

# Live owners (FusedAdamW instances); each has `_guarded`: {id(Parameter): Spec}.
_OWNERS = weakref.WeakSet()


class Spec(NamedTuple):
    name: str
    shape: Tuple[int, ...]
    dtype: object
    role: str                                  # "parameter", "state", "global_step", ...
    check_value: Optional[Callable] = None     # called with the incoming Tensor; raises to refuse


def own(optimizer, entries):
    """Registers `entries` ((Parameter, role, check_value or None), ...) as owned by `optimizer`."""
    _install()
    optimizer._guarded = {id(p): Spec(p.name, tuple(p.shape), p.dtype, role, check)
                          for p, role, check in entries}
    _OWNERS.add(optimizer)


# id(view Parameter) -> (weak reference to it, callable taking the incoming value)
_WRITERS = {}


def write_through(view, write):
    """Makes `set_data` / `assign_value` / `copy_` of the Parameter `view` call `write(value)` first."""
    _install()
    key = id(view)
    _WRITERS[key] = (weakref.ref(view, lambda _: _WRITERS.pop(key, None)), write)


def _write_through(param, data):
    entry = _WRITERS.get(id(param))
    if entry is not None and entry[0]() is param:
        entry[1](data)


def _spec(param):
    for owner in list(_OWNERS):
        spec = owner._guarded.get(id(param))
        if spec is not None:
            return spec
    return None


def _refusal(param, shape, dtype):
    """The error for changing `param` to `shape` / `dtype` (None: unchanged), or None."""
    spec = _spec(param)
    if spec is None:
        return None
    shape_changes = shape is not None and tuple(shape) != spec.shape
    dtype_changes = dtype is not None and dtype != spec.dtype
    if not (shape_changes or dtype_changes):
        return None
    gc.collect()  # an optimizer no longer referenced but not yet collected owns nothing
    spec = _spec(param)
    if spec is None:
        return None
    what = (f"shape {spec.shape} to {tuple(shape)}" if shape_changes
            else f"dtype {spec.dtype} to {dtype}")
    error = ValueError if shape_changes else TypeError
    return error(f"For 'FusedAdamW', cannot change {spec.role} '{spec.name}' from {what}: a live "
                 f"FusedAdamW updates it, with states and a compiled step sized for the old one (the "
                 f"kernel would write out of bounds). Change parameters before building the optimizer, "
                 f"or build a new FusedAdamW after the change and drop every reference to the old one.")


def _check(param, data):
    if not _OWNERS:
        return
    shape = () if isinstance(data, (int, float)) else getattr(data, "shape", None)
    error = _refusal(param, shape, None)
    if error is not None:
        raise error
    spec = _spec(param)
    if spec is not None and spec.check_value is not None and isinstance(data, Tensor):
        spec.check_value(data)


_set_data = Parameter.set_data
_set_dtype = Parameter.set_dtype
_assign_value = Tensor.assign_value
_copy = Parameter.copy_


_slicing = threading.local()


def _guarded_set_data(self, data, slice_shape=False):
    if not slice_shape:
        _check(self, data)
        return _set_data(self, data, slice_shape)
    _slicing.active = True  # set_data's own assign_value call is part of the slicing
    try:
        return _set_data(self, data, slice_shape)
    finally:
        _slicing.active = False


def _guarded_assign_value(self, value):
    if not getattr(_slicing, "active", False):
        _check(self, value)
    _write_through(self, value)  # set_data ends here too, with the value cast to the view's dtype
    return _assign_value(self, value)


def _guarded_copy(self, src, *args, **kwargs):
    _write_through(self, src)  # copy_ keeps the shape and dtype; only views need to know
    return _copy(self, src, *args, **kwargs)


def _guarded_set_dtype(self, dtype):
    if _OWNERS:
        error = _refusal(self, None, dtype)
        if error is not None:
            raise error
    return _set_dtype(self, dtype)


def _install():
    if Parameter.set_data is _guarded_set_data:
        return
    for name, guarded, original in (("set_data", _guarded_set_data, _set_data),
                                    ("assign_value", _guarded_assign_value, _assign_value),
                                    ("copy_", _guarded_copy, _copy),
                                    ("set_dtype", _guarded_set_dtype, _set_dtype)):
        # wraps: MindSpore's own metadata (docs, its jit-forbidden mark) stays on the method
        setattr(Parameter, name, functools.wraps(original)(guarded))
