"""FusedAdamW: MindFormers' AdamW, computed by one fused in-place kernel call per
parameter group.

The update (shared/reference/semantics.md) lives in kernels/common/adamw_math.h.
This class is the MindSpore glue: nn.Optimizer supplies groups, order_params,
learning-rate schedules and dynamic weight decay; we plan kernel groups
(_groups.py), keep each group's exp_avg / exp_avg_sq in two flat float32
Parameters, check every input before anything is written (_validation.py), and
call one ops.Custom per group (_custom_op.py) that writes the model's own
Parameters and the flat states in place.
"""
import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor
from mindspore.common import dtype as mstype
from mindspore.nn.optim.optimizer import Optimizer, opt_init_args_register
from mindspore.ops import functional as F

from . import _C
from ._custom_op import make_group_op
from ._groups import as_slice, locate_states, plan_kernel_groups
from ._state_view import FlatStateView
from . import _guard as guard
from ._layout import layout_mismatch, layout_record, state_name, state_tag
from ._validation import (check_gradients, check_params_argument, check_hyper_params,
                          check_learning_rate_value, check_parameters)

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT32_MAX = int(np.iinfo(np.int32).max)


class FusedAdamW(Optimizer):
    r"""AdamW with decoupled weight decay and bias correction, as MindFormers' ``AdamW``.

    Per parameter, with :math:`t` the step after the increment (1 on the first call), lr and
    weight decay read at step :math:`t-1`, all in float32:

    .. math::
        p \leftarrow p(1 - lr\,wd) - \frac{lr}{1-\beta_1^t}\,
            \frac{m}{\sqrt{v / (1-\beta_2^t)} + \epsilon},\quad
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2

    Args:
        params: list of Parameters, or list of dicts with keys ``params``, ``lr``,
            ``weight_decay``, ``order_params`` (as :class:`mindspore.nn.Optimizer`).
            Parameters may be float32, float16 or bfloat16; states are float32.
        learning_rate: float/int >= 0, 0-d Tensor, 1-D Tensor or Iterable (value i at step i),
            or a LearningRateSchedule. Default 1e-3.
        betas: two floats in (0, 1). Default (0.9, 0.999).
        eps: float > 0, added after the square root. Default 1e-8.
        weight_decay: float/int >= 0 (or, inside a group, a Cell for dynamic decay). Default 0.0.

    Inputs:
        gradients (tuple[Tensor]): one per parameter, in ``parameters`` order, each with its
        parameter's shape and dtype.

    Outputs:
        tuple[Tensor]: one float32 element per kernel call, for ordering (``F.depend``) only. A
        constant result would let GRAPH_MODE fold the whole step away, so the op outputs are returned.

    Attributes:
        exp_avg, exp_avg_sq: per-parameter states (``exp_avg[i]`` is a float32 Tensor shaped like
        parameter i), views of the flat buffers ``exp_avg_flat`` / ``exp_avg_sq_flat``.
        global_step: int32 [1], the number of steps taken.
    """

    @opt_init_args_register
    def __init__(self, params, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        check_hyper_params(betas, eps, weight_decay, self.cls_name)
        check_learning_rate_value(learning_rate, self.cls_name)
        check_params_argument(params, self.cls_name)
        super().__init__(learning_rate, params, weight_decay=weight_decay)
        check_parameters(self.parameters, self.cls_name)
        self._follow_thread_setting()
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps_value = float(eps)
        self._hyper = Tensor(np.array([betas[0], betas[1], eps], np.float32))

        groups = plan_kernel_groups(self, split_by_dtype=ms.get_context("device_target") == "Ascend")
        self._num_groups = len(groups)
        self._group_indices = tuple(g.indices for g in groups)
        self._group_runs = tuple(as_slice(g.indices) for g in groups)
        self._group_reps = tuple(g.rep for g in groups)
        self._group_ops = tuple(make_group_op(len(g.indices)) for g in groups)
        self._group_wd_dynamic = tuple(self._wd_is_dynamic(g.rep) for g in groups)
        self._group_wd_fixed = tuple(Tensor(self._wd_value(g.rep), mstype.float32) for g in groups)
        self._lr_errors = tuple(f"For 'FusedAdamW', the learning rate of parameter group {k} "
                                f"(first parameter '{self.parameters[g.rep].name}') must be finite and "
                                f">= 0." for k, g in enumerate(groups))
        self._wd_errors = tuple(f"For 'FusedAdamW', the weight decay of parameter group {k} "
                                f"(first parameter '{self.parameters[g.rep].name}') must be finite and "
                                f">= 0." for k, g in enumerate(groups))
        # Flat states and their layout record, named by this optimizer's parameters (_layout.py).
        # The record is in a ParameterTuple, as the states are, so that MindSpore's renaming of a
        # cell's parameters (prefixes) keeps its name rather than the attribute's.
        tag = self._state_tag = state_tag(self.parameters)
        self._layout_record = layout_record(self.parameters, groups)
        self.state_layout = ParameterTuple((Parameter(Tensor(self._layout_record), requires_grad=False,
                                                      name=state_name(tag, "layout", None)),))
        self._put_first(self.state_layout[0])
        self.exp_avg_flat = ParameterTuple(self._zeros(g.total, state_name(tag, "exp_avg", k))
                                           for k, g in enumerate(groups))
        self.exp_avg_sq_flat = ParameterTuple(self._zeros(g.total, state_name(tag, "exp_avg_sq", k))
                                              for k, g in enumerate(groups))
        where = locate_states(groups, len(self.parameters))
        self.exp_avg = FlatStateView(self.exp_avg_flat, where, self.parameters, "adam_m")
        self.exp_avg_sq = FlatStateView(self.exp_avg_sq_flat, where, self.parameters, "adam_v")
        self._grad_specs = tuple((p.name, tuple(p.shape), p.dtype) for p in self.parameters)
        guard.own(self, [(p, "parameter", None) for p in self.parameters]
                  + [(f, "optimizer state", None) for f in self.exp_avg_flat + self.exp_avg_sq_flat]
                  + [(self.global_step, "global_step", None),
                     (self.state_layout[0], "layout record", self._check_layout)])

    def _put_first(self, param):
        """MindSpore's loader writes a cell's Parameters in registration order: the layout record
        goes first, so that a checkpoint of other flat states is refused (_check_layout) before
        global_step, the learning rate or any state is written."""
        entries = list(self._params.items())
        self._params.clear()
        self._params.update([e for e in entries if e[1] is param] + [e for e in entries if e[1] is not param])

    def _check_layout(self, data):
        """Refuses a layout record other than this optimizer's (a checkpoint of other flat states)."""
        error = layout_mismatch(self._layout_record, data.asnumpy(), "the value loaded into "
                                f"'{self.state_layout[0].name}'")
        if error is not None:
            raise error

    @staticmethod
    def _follow_thread_setting():
        """The CPU kernel uses MindSpore's CPU thread setting (`runtime_num_threads`), capped
        by OpenMP's (OMP_NUM_THREADS). The setting is process-wide in the library."""
        threads = ms.get_context("runtime_num_threads")
        if threads and threads > 0:
            _C.set_num_threads(min(int(threads), _C.openmp_max_threads()))

    @staticmethod
    def _zeros(n, name):
        return Parameter(Tensor(np.zeros(n, np.float32)), name=name, requires_grad=False)

    def _wd_is_dynamic(self, i):
        return bool(self.dynamic_weight_decay and (not self.is_group or self.dynamic_decay_flags[i]))

    def _wd_value(self, i):
        """The fixed weight decay of parameter i (0.0 placeholder when it is dynamic)."""
        if self._wd_is_dynamic(i):
            return 0.0
        return float(self.group_weight_decay[i]) if self.is_group else float(self.weight_decay.asnumpy())

    def _group_lr(self, k):
        """Learning rate of kernel group k at the current (not yet incremented) step."""
        i = self._group_reps[k]
        if self.dynamic_lr:
            schedule = self.learning_rate[i] if self.is_group_lr else self.learning_rate
            return F.cast(schedule(self.global_step).reshape(()), mstype.float32)
        if self.is_group_lr:
            return self.learning_rate[i]
        return self.learning_rate

    def _group_wd(self, k):
        i = self._group_reps[k]
        if self._group_wd_dynamic[k]:
            schedule = self.weight_decay[i] if self.is_group else self.weight_decay
            return F.cast(schedule(self.global_step).reshape(()), mstype.float32)
        return self._group_wd_fixed[k]

    def _take(self, items, k):
        """The members of kernel group k out of a tuple in `parameters` order."""
        run = self._group_runs[k]
        if run is not None:
            return items[run[0]:run[1]]
        return tuple([items[i] for i in self._group_indices[k]])

    def _checked(self, lrs, wds):
        """Raises ValueError naming the group if a learning rate or a dynamic weight decay is
        NaN, inf or negative, or if global_step cannot be incremented (int32: the kernel needs
        a step >= 1 and would see a wrapped one); returns lrs. A method of its own so that in GRAPH_MODE the
        raise's control flow stays in this small subgraph: inlined into construct, the kernel
        calls after it would run as a control-flow continuation (1,000 tensors: 4.0-5.3 ms
        against 4.5-7.4 ms per step, measured side by side on a shared machine)."""
        for k in range(self._num_groups):
            lr = lrs[k]
            if not ((lr >= 0.0) & (lr <= _FLOAT32_MAX)):  # NaN fails both
                raise ValueError(self._lr_errors[k])
            if self._group_wd_dynamic[k]:
                wd = wds[k]
                if not ((wd >= 0.0) & (wd <= _FLOAT32_MAX)):
                    raise ValueError(self._wd_errors[k])
        step = self.global_step.reshape(())
        if not ((step >= 0) & (step < _INT32_MAX)):
            raise ValueError(f"For 'FusedAdamW', global_step must be in [0, {_INT32_MAX - 1}] before a step "
                             f"(it is int32 and the step increments it); set it with "
                             f"optimizer.global_step.set_data(...).")
        return lrs

    def construct(self, gradients):
        check_gradients(self._grad_specs, gradients)
        lrs = ()
        wds = ()
        for k in range(self._num_groups):
            lrs = lrs + (self._group_lr(k),)
            wds = wds + (self._group_wd(k),)
        lrs = self._checked(lrs, wds)
        # Everything is checked: from here on the step is applied whole.
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        outs = ()
        for k in range(self._num_groups):
            params = self._take(self._parameters, k)
            grads = self._take(gradients, k)
            outs = outs + (self._group_ops[k](lrs[k], wds[k], self.global_step, self._hyper, *params, *grads,
                                              self.exp_avg_flat[k], self.exp_avg_sq_flat[k]),)
        return outs
