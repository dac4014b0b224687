"""Per-parameter views of a FusedAdamW state that lives in flat group buffers.

`optimizer.exp_avg[i]` / `optimizer.exp_avg_sq[i]` give parameter i's state (in
`parameters` order) as a float32 Parameter of the parameter's shape named as
MindFormers names it (`adam_m.<param>` / `adam_v.<param>`): a copy taken out of the
flat buffer, for inspection, logging and checkpoint conversion.

Writes reach the flat buffer through `view[i] = value` and through the Python methods
MindFormers AdamW users call on its per-parameter states: `opt.exp_avg[i].set_data(v)`,
`.assign_value(v)`, `.copy_(v)` (_guard.py routes them here). A kernel-level write to the
copy, `ops.assign(opt.exp_avg[i], v)` or an in-place op, cannot be seen from Python and
changes only the copy: write with one of the above instead. Each write copies the flat
buffer once; for bulk work use `location`, `flats` and `to_numpy_dict`.
"""
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from mindspore.common import dtype as mstype
from mindspore import Parameter, Tensor

from . import _guard


class FlatStateView(Sequence):
    def __init__(self, flats, where, parameters, prefix):
        self._flats = flats            # ParameterTuple: one flat buffer per kernel group
        self._where = where            # parameter index -> (group, offset) or None
        self._parameters = parameters  # ParameterTuple, `parameters` order
        self.prefix = prefix           # checkpoint name prefix: "adam_m" / "adam_v"

    def __len__(self):
        return len(self._parameters)

    @property
    def flats(self):
        """The flat float32 buffers, one per kernel group."""
        return self._flats

    def location(self, i):
        """(kernel group, offset) of parameter i's state in `flats`, or None (zero-element)."""
        return self._where[i]

    def to_numpy_dict(self):
        """{state name: float32 array shaped like its parameter}, in `parameters` order,
        copying each flat buffer off the device once."""
        host = {}
        out = OrderedDict()
        for i, param in enumerate(self._parameters):
            if self._where[i] is None:
                out[self.name(i)] = np.zeros(param.shape, np.float32)
                continue
            group, offset = self._where[i]
            if group not in host:
                host[group] = _float32_numpy(self._flats[group])  # bfloat16 states: exact
            out[self.name(i)] = host[group][offset:offset + param.size].reshape(param.shape).copy()
        return out

    def size(self, i):
        """Number of elements of parameter i (and of its state)."""
        return int(self._parameters[i].size)

    def name(self, i):
        """MindFormers' checkpoint name of parameter i's state, e.g. 'adam_m.fc1.weight'."""
        return f"{self.prefix}.{self._parameters[i].name}"

    def numpy(self, i):
        param = self._parameters[i]
        if self._where[i] is None:
            return np.zeros(param.shape, np.float32)
        group, offset = self._where[i]
        flat = _float32_numpy(self._flats[group])  # bfloat16 states: exact
        return flat[offset:offset + param.size].reshape(param.shape).copy()

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"state index {i} out of range for {len(self)} parameters")
        view = Parameter(Tensor(self.numpy(i)), name=self.name(i), requires_grad=False)
        _guard.write_through(view, lambda value, i=i: self._write(i, value, broadcast=True))
        return view

    def __setitem__(self, i, value):
        self._write(i, value)

    def _write(self, i, value, broadcast=False):
        param = self._parameters[i]
        data = _float32_numpy(value)
        if broadcast and data.shape != tuple(param.shape):  # copy_ broadcasts its source
            try:
                data = np.broadcast_to(data, tuple(param.shape))
            except ValueError:
                pass
        if tuple(data.shape) != tuple(param.shape):
            raise ValueError(f"For 'FusedAdamW', the state '{self.name(i)}' must have shape "
                             f"{tuple(param.shape)}, got {tuple(data.shape)}.")
        if self._where[i] is None:
            return
        group, offset = self._where[i]
        flat = self._flats[group]
        updated = flat.asnumpy().copy()
        updated[offset:offset + param.size] = data.reshape(-1)
        flat.set_data(Tensor(updated))


def _float32_numpy(value):
    """A NumPy float32 copy of a Tensor (any float dtype, bfloat16 included), array or number."""
    if isinstance(value, Tensor):
        if value.dtype != mstype.float32:
            value = value.astype(mstype.float32)  # bfloat16 has no NumPy dtype
        return value.asnumpy()
    return np.asarray(value, np.float32)
