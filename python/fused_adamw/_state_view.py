"""Per-parameter views of a FusedAdamW state that lives in flat group buffers.

`optimizer.exp_avg[i]` / `optimizer.exp_avg_sq[i]` give parameter i's state (in
`parameters` order) as a float32 Tensor of the parameter's shape: a snapshot
copied out of the flat buffer, for inspection and checkpoint conversion.
Assigning `view[i] = value` writes it back into the flat buffer.
"""
from collections.abc import Sequence

import numpy as np
from mindspore import Tensor


class FlatStateView(Sequence):
    def __init__(self, flats, where, parameters, prefix):
        self._flats = flats            # ParameterTuple: one flat buffer per kernel group
        self._where = where            # parameter index -> (group, offset) or None
        self._parameters = parameters  # ParameterTuple, `parameters` order
        self.prefix = prefix           # checkpoint name prefix: "adam_m" / "adam_v"

    def __len__(self):
        return len(self._parameters)

    def name(self, i):
        """MindFormers' checkpoint name of parameter i's state, e.g. 'adam_m.fc1.weight'."""
        return f"{self.prefix}.{self._parameters[i].name}"

    def numpy(self, i):
        param = self._parameters[i]
        if self._where[i] is None:
            return np.zeros(param.shape, np.float32)
        group, offset = self._where[i]
        flat = self._flats[group].asnumpy()
        return flat[offset:offset + param.size].reshape(param.shape).copy()

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"state index {i} out of range for {len(self)} parameters")
        return Tensor(self.numpy(i))

    def __setitem__(self, i, value):
        param = self._parameters[i]
        data = value.asnumpy() if isinstance(value, Tensor) else np.asarray(value)
        if tuple(data.shape) != tuple(param.shape):
            raise ValueError(f"state for '{param.name}' must have shape {tuple(param.shape)}, "
                             f"got {tuple(data.shape)}")
        if self._where[i] is None:
            return
        group, offset = self._where[i]
        flat = self._flats[group]
        updated = flat.asnumpy().copy()
        updated[offset:offset + param.size] = data.astype(np.float32).reshape(-1)
        flat.set_data(Tensor(updated))
