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
from ._custom_op import MASTER, make_group_op, make_norm_op
from ._gather import gather, gather_plan
from ._groups import locate_states, plan_kernel_groups
from ._options import check_options, group_flags, state_device
from ._sharding import check_parallel_context, make_sharded_step, use_sharded_views
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
        use_fused: accepted for MindFormers 2.0 compatibility (FusedAdamW is always fused).
        amsgrad: keep ``max_exp_avg_sq`` and divide by its root (torch.optim.AdamW's meaning).
        maximize: ascend the objective (the gradient is negated), as torch.optim.AdamW.
        swap: keep the flat states in host memory (``Parameter(device="CPU")``) where the device
            has memory of its own (GPU/Ascend), as MindFormers' swap; no effect on the CPU target.
        master_weights: float32 master copies of float16/bfloat16 parameters (flat per group,
            ``master``); the kernel updates the master and writes the parameter as its RNE rounding.
        stochastic_rounding: 16-bit parameters without masters are written back with stochastic
            rounding (bits from (seed, step, element index): reproducible, thread-count independent).
        state_dtype: mindspore.float32 (default) or mindspore.bfloat16 for exp_avg / exp_avg_sq.
        seed: int in [0, 2**63), the stochastic-rounding seed.
        shard_states: in a data-parallel run of N ranks, each rank keeps and updates only its 1/N
            slice of every group's flat states (masters included) and all-gathers the updated
            parameters (ZeRO-1: _sharding.py, docs/distributed.md). No effect on one process.

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
    def __init__(self, params, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 use_fused=False, amsgrad=False, maximize=False, swap=False, *, master_weights=False,
                 stochastic_rounding=False, state_dtype=mstype.float32, seed=0, shard_states=False):
        check_parallel_context(shard_states, self.cls_name)
        options = check_options(self.cls_name, use_fused, amsgrad, maximize, swap, master_weights,
                                stochastic_rounding, state_dtype, seed)
        check_hyper_params(betas, eps, weight_decay, self.cls_name)
        check_learning_rate_value(learning_rate, self.cls_name)
        check_params_argument(params, self.cls_name)
        super().__init__(learning_rate, params, weight_decay=weight_decay)
        check_parameters(self.parameters, self.cls_name)
        self._follow_thread_setting()
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps_value = float(eps)
        self._hyper = Tensor(np.array([betas[0], betas[1], eps], np.float32))
        self.options = options
        # grad_scale, grad_clip, skip: a plain step scales nothing (maximize: negates) and skips nothing.
        self._grad_sign = -1.0 if options.maximize else 1.0
        self._grad_ctl = Tensor(np.array([self._grad_sign, 1.0, 0.0], np.float32))
        self._rng = Tensor(np.array([options.seed, 0], np.int64))  # seed, index base

        # Master weights need 16-bit parameters in groups of their own (the Ascend operator
        # needs one dtype per call anyway).
        split = ms.get_context("device_target") == "Ascend" or options.master_weights or shard_states
        groups = plan_kernel_groups(self, split_by_dtype=split)
        self._num_groups = len(groups)
        self._group_indices = tuple(g.indices for g in groups)
        self._group_runs = tuple(gather_plan(g.indices) for g in groups)
        # Each group's parameters, picked once here: a step then gathers only its gradients
        # (_gather.py), and GRAPH_MODE compiles faster for non-contiguous groups.
        self._group_params = tuple(ParameterTuple(self.parameters[i] for i in g.indices) for g in groups)
        self._group_reps = tuple(g.rep for g in groups)
        self._group_flags = tuple(group_flags(options, [self.parameters[i].dtype for i in g.indices])
                                  for g in groups)
        self._group_ops = tuple(make_group_op(len(g.indices), flags=f) for g, f in zip(groups, self._group_flags))
        self._norm_ops = tuple(make_norm_op(len(g.indices)) for g in groups)
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
        device = state_device(options)
        # ZeRO-1 hook (_sharding.py): None unless shard_states on more than one rank; then every
        # flat state holds this rank's slice (sizes) and _apply hands the step to it.
        self._sharded = make_sharded_step(self, groups, self._group_flags, shard_states)
        sizes = self._sharded.shards if self._sharded is not None else tuple(g.total for g in groups)
        flat = lambda kind, k: self._zeros(sizes[k], state_name(tag, kind, k), state_dtype, device)
        self.exp_avg_flat = ParameterTuple(flat("exp_avg", k) for k in range(len(groups)))
        self.exp_avg_sq_flat = ParameterTuple(flat("exp_avg_sq", k) for k in range(len(groups)))
        self.max_exp_avg_sq_flat = ParameterTuple(flat("max_exp_avg_sq", k) for k in range(len(groups))
                                                  if options.amsgrad)
        # Masters exist for the groups that run the master variant; initialised from the parameters.
        self._master_index = []
        masters = []
        for k, g in enumerate(groups):
            if self._group_flags[k] & MASTER:
                self._master_index.append(len(masters))
                masters.append(self._master_from_params(k, g, state_name(tag, "master", k), device))
            else:
                self._master_index.append(-1)
        self._master_index = tuple(self._master_index)
        self.master_flat = ParameterTuple(masters)
        where = locate_states(groups, len(self.parameters))
        self.exp_avg = FlatStateView(self.exp_avg_flat, where, self.parameters, "adam_m")
        self.exp_avg_sq = FlatStateView(self.exp_avg_sq_flat, where, self.parameters, "adam_v")
        # amsgrad's max_exp_avg_sq (MindFormers' fused AdamW names it so) and the master weights,
        # per parameter like exp_avg; a parameter without a master (float32) maps to None.
        if options.amsgrad:
            self.max_exp_avg_sq = FlatStateView(self.max_exp_avg_sq_flat, where, self.parameters, "max_exp_avg_sq")
        master_where = [None if w is None or self._master_index[w[0]] < 0 else (self._master_index[w[0]], w[1])
                        for w in where]
        if any(w is not None for w in master_where):
            self.master = FlatStateView(self.master_flat, master_where, self.parameters, "master")
        if self._sharded is not None:  # ZeRO-1 hook: a rank holds slices, not per-parameter states
            use_sharded_views(self)
        self._grad_specs = tuple((p.name, tuple(p.shape), p.dtype) for p in self.parameters)
        # Every Parameter of this cell (the model's, states, masters, global_step, fixed learning
        # rates, the layout record) keeps its shape and dtype while this optimizer lives (_guard.py).
        model = {id(p) for p in self.parameters}
        guard.own(self, [(p, "parameter" if id(p) in model else "optimizer Parameter",
                          self._check_layout if p is self.state_layout[0] else None)
                         for _, p in self.parameters_and_names(expand=False)])

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
    def _zeros(n, name, dtype=mstype.float32, device=None):
        return Parameter(Tensor(np.zeros(n, np.float32), dtype), name=name, requires_grad=False, device=device)

    def _master_from_params(self, k, group, name, device):
        """A group's float32 master buffer (padded layout), initialised from its parameters."""
        flat = np.zeros(group.total, np.float32)
        for i, offset in zip(group.indices, group.offsets):
            param = self.parameters[i]
            flat[offset:offset + param.size] = F.cast(param, mstype.float32).asnumpy().reshape(-1)
        if self._sharded is not None:  # ZeRO-1 hook: this rank's slice
            flat = self._sharded.own_slice(k, flat)
        return Parameter(Tensor(flat), name=name, requires_grad=False, device=device)

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
        """The members of kernel group k out of a tuple in `parameters` order (_gather.py)."""
        return gather(items, self._group_runs[k])

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

    def _states(self, k):
        """The flat state inputs of kernel group k, in the variant's argument order."""
        states = (self.exp_avg_flat[k], self.exp_avg_sq_flat[k])
        if self.options.amsgrad:
            states = states + (self.max_exp_avg_sq_flat[k],)
        if self._master_index[k] >= 0:
            states = states + (self.master_flat[self._master_index[k]],)
        return states

    def _lrs_wds(self):
        lrs = ()
        wds = ()
        for k in range(self._num_groups):
            lrs = lrs + (self._group_lr(k),)
            wds = wds + (self._group_wd(k),)
        return self._checked(lrs, wds), wds

    def _apply(self, gradients, lrs, wds, grad_ctl):
        """One kernel call per group, after global_step was advanced."""
        if self._sharded is not None:  # ZeRO-1 hook
            states = ()
            for k in range(self._num_groups):
                states = states + (self._states(k),)
            return self._sharded(lrs, wds, self.global_step, self._hyper, grad_ctl, self._group_params,
                                 gradients, states)
        outs = ()
        for k in range(self._num_groups):
            params = self._group_params[k]
            grads = self._take(gradients, k)
            outs = outs + (self._group_ops[k](lrs[k], wds[k], self.global_step, self._hyper, grad_ctl,
                                              self._rng, *params, *grads, *self._states(k)),)
        return outs

    def construct(self, gradients):
        check_gradients(self._grad_specs, gradients)
        lrs, wds = self._lrs_wds()
        # Everything is checked: from here on the step is applied whole.
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        return self._apply(gradients, lrs, wds, self._grad_ctl)

    def grad_norm(self, gradients, grad_scale):
        """Pass 1 of the whole step: (global norm of the unscaled gradients, float32; whether
        any unscaled gradient is NaN/Inf, bool). `grad_scale` is a float32 [1] Tensor
        (1/loss_scale). Deterministic: float64 chunk sums in a fixed order (adamw_cpu.h)."""
        total = F.zeros((), mstype.float64)
        bad = F.zeros((), mstype.float64)
        for k in range(self._num_groups):
            out = self._norm_ops[k](grad_scale, *self._take(gradients, k))
            total = total + out[0]
            bad = bad + out[1]
        return F.cast(F.sqrt(total), mstype.float32), bad > 0.0

    def fused_step(self, gradients, loss_scale=None, max_grad_norm=None, skip_norm_threshold=None):
        """The whole optimizer step in two passes, decided on the device (no host sync):
        gradients are unscaled by float32 1/loss_scale; pass 1 gives the global norm and the
        overflow flag; clipping multiplies every gradient by ClipGradNorm's coefficient
        min(1, max_norm / (max(norm, max_norm) + 1e-6)) (also below max_norm, as MindFormers);
        the step is skipped (nothing written, global_step unchanged) on overflow, or when
        skip_norm_threshold is given and norm >= threshold. Pass 2 is the AdamW kernel with
        those factors folded into its gradient read.

        Args:
            gradients: tuple of gradients in `parameters` order (float32 allowed for 16-bit params).
            loss_scale: None or a float32 scalar/[1] Tensor (or number). max_grad_norm: None (no
                clipping) or a number > 0. skip_norm_threshold: None or a number > 0.

        Returns:
            (applied: bool Tensor, global_norm: float32 Tensor, overflow: bool Tensor).
        """
        check_gradients(self._grad_specs, gradients)
        one = F.ones((1,), mstype.float32)
        if loss_scale is None:
            inv_scale = one
        else:
            inv_scale = F.reciprocal(F.cast(F.reshape(loss_scale, (1,)), mstype.float32))
        global_norm, overflow = self.grad_norm(gradients, inv_scale)
        if max_grad_norm is None:
            clip = one
        else:
            max_norm = F.cast(max_grad_norm, mstype.float32)
            clip = F.minimum(one, max_norm / (F.maximum(global_norm, max_norm) + 1e-6))
            clip = F.reshape(clip, (1,))
        skip = overflow
        if skip_norm_threshold is not None:
            skip = skip | F.logical_not(global_norm < skip_norm_threshold)
        skip_f = F.reshape(F.cast(skip, mstype.float32), (1,))
        grad_ctl = F.concat((inv_scale * self._grad_sign, clip, skip_f))
        lrs, wds = self._lrs_wds()
        # A skipped step leaves global_step where it was (MindFormers runs no optimizer then).
        self.assignadd(self.global_step, F.cast(1.0 - skip_f, mstype.int32))
        outs = self._apply(gradients, lrs, wds, grad_ctl)
        applied = F.depend(F.logical_not(skip), outs)
        return applied, global_norm, overflow
