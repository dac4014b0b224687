"""ZeRO-1 for FusedAdamW (``shard_states=True``): each data-parallel rank keeps and updates
a contiguous 1/N slice of every kernel group's flat states.

Layout. A kernel group's flat state has ``total`` elements (each member parameter at its
padded offset, docs/kernel-interface.md). It is padded to ``N * shard`` elements,
``shard = round_up(ceil(total / N), 32)``; rank r owns elements ``[r * shard, (r + 1) * shard)``.
Its ``exp_avg`` / ``exp_avg_sq`` (and ``max_exp_avg_sq``, ``master`` when those options are
on) Parameters hold just that slice. Elements past ``total`` and the gaps between members are
padding: their parameter and gradient are zero, so their states stay exactly zero.

Step (per group, on every rank, inside the optimizer's graph):
  1. the parts of the (already reduced) gradients and of the current parameter values that
     fall into this rank's range are copied into flat slices (gradients as float32, which is
     exact and what the kernel computes in anyway; parameters in their own dtype, into the
     group's ``param_shard`` Parameter, which the kernel updates in place);
  2. one fused kernel call updates that parameter slice and the rank's state slices, with
     the rng index base set to the slice's start, so stochastic rounding draws the same bits
     for each element as the unsharded run;
  3. ``ops.AllGather`` collects every rank's updated slice, and each member Parameter is
     assigned its part, so every rank ends the step with the same full parameters. The
     gathered group is a transient of the group's size in the parameters' dtype.

Communication: MindSpore's collectives only. The gradients arrive all-reduced by the
``DistributedGradReducer`` that ``nn.TrainOneStepCell`` (and FusedTrainOneStepCell) inserts
under DATA_PARALLEL (``gradients_mean=True``); the optimizer adds one AllGather of the
parameters per group. DeepSpeed's ZeRO-1 and Megatron's distributed optimizer reduce-scatter
the gradients instead ((N-1)/N of their bytes per rank, where the AllReduce moves 2(N-1)/N), so
they move what plain data parallel moves and this moves up to 1.5 times that. Doing the same
needs the reducer replaced by a ReduceScatter, which the CPU backend (mccl) does not have; we
keep MindSpore's reducer unchanged on every backend. docs/distributed.md has the numbers.

Groups are split by parameter dtype whenever ``shard_states=True`` (a parameter slice has one
dtype), also on one process, so the grouping, and therefore the checkpoint layout, does not
depend on the world size. On one process the optimizer runs exactly as without sharding.
bfloat16 parameters are refused on the CPU target (its backend lacks bfloat16 copy kernels).
"""
import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore.common import dtype as mstype
from mindspore.communication import GlobalComm, get_group_size, get_rank
from mindspore.context import ParallelMode
from mindspore.ops import composite as C
from mindspore.ops import functional as F

from ._custom_op import make_group_op
from ._gather import gather, gather_plan
from ._layout import state_name
from ._state_view import _float32_numpy

SHARD_ALIGN = 32  # elements: every shard starts on a 128-byte boundary of float32 state

_PARAM_SHARD = "param_shard"  # kind of the parameter-slice buffers' names (_layout.state_name)


def check_parallel_context(shard_states, prim_name):
    """Raises before anything is built when the parallel context rules the optimizer out.

    MindSpore's parallel optimizer (``enable_parallel_optimizer``) shards parameters and
    states underneath the optimizer (semi-/auto-parallel, or data parallel on Ascend for the
    optimizers it knows); FusedAdamW's flat per-group states and in-place kernel cannot run
    under it, and ``shard_states=True`` is the same saving done by the optimizer itself."""
    if not isinstance(shard_states, bool):
        raise TypeError(f"For '{prim_name}', 'shard_states' must be bool, got "
                        f"{type(shard_states).__name__}.")
    if ms.get_auto_parallel_context("enable_parallel_optimizer"):
        raise RuntimeError(
            f"For '{prim_name}', MindSpore's parallel optimizer is switched on "
            f"(set_auto_parallel_context(enable_parallel_optimizer=True)); it shards parameters "
            f"and optimizer states underneath the optimizer, which FusedAdamW's fused flat states "
            f"do not support. Set enable_parallel_optimizer=False and use "
            f"FusedAdamW(..., shard_states=True) with parallel_mode='data_parallel' to shard the "
            f"optimizer states across data-parallel ranks.")
    if not shard_states:
        return
    mode = ms.get_auto_parallel_context("parallel_mode")
    if mode not in (ParallelMode.STAND_ALONE, ParallelMode.DATA_PARALLEL):
        raise ValueError(f"For '{prim_name}', 'shard_states=True' needs parallel_mode "
                         f"'data_parallel' (or 'stand_alone' on one process), got '{mode}'.")
    if mode == ParallelMode.STAND_ALONE and world_size() > 1:
        raise ValueError(f"For '{prim_name}', 'shard_states=True' on {world_size()} ranks needs "
                         f"set_auto_parallel_context(parallel_mode='data_parallel'): in "
                         f"'stand_alone' mode the ranks' gradients are not reduced.")


def world_size():
    """Ranks in the world group; 1 when communication is not initialised."""
    return get_group_size() if GlobalComm.INITED else 1


def world_rank():
    return get_rank() if GlobalComm.INITED else 0


def shard_size(total, size):
    """Elements per rank for a flat state of `total` elements over `size` ranks."""
    return SHARD_ALIGN * math.ceil(math.ceil(total / size) / SHARD_ALIGN) if total else SHARD_ALIGN


def _pieces(group, sizes, lo, hi):
    """What of a group's flat layout falls into [lo, hi): for each member, in order, (n, a, b):
    n padding elements before it, then elements a..b of the member flattened; and the
    padding after the last member. Every rank gets one entry per member, empty where its
    range misses it: see ShardedStep for why the structure must not vary."""
    pieces, at = [], 0
    for i, offset in zip(group.indices, group.offsets):
        gap = max(0, min(offset, hi) - max(at, lo))
        a, b = max(offset, lo), min(offset + sizes[i], hi)
        pieces.append((gap, a - offset, b - offset) if a < b else (gap, 0, 0))
        at = offset + sizes[i]
    return tuple(pieces), max(0, hi - max(at, lo))


# Per-member operations of the sharded step, applied with one flat C.Map over a group's
# members: a Python loop of tuple concatenations compiles as a nested call chain that
# exceeds MindSpore's call depth limit for a few hundred members (_gather.py).
_param_piece = C.MultitypeFuncGraph("fused_adamw_param_piece")
_grad_piece = C.MultitypeFuncGraph("fused_adamw_grad_piece")
_write_back = C.MultitypeFuncGraph("fused_adamw_write_back")


@_param_piece.register("Tensor", "Tensor", "Number", "Number")
def _param_piece_of(param, pad, a, b):
    """`pad`, then elements a..b of the flattened parameter."""
    return ops.concat((pad, F.reshape(param, (-1,))[a:b]))


@_grad_piece.register("Tensor", "Tensor", "Number", "Number")
def _grad_piece_of(grad, pad, a, b):
    # float32: exact, what the kernel computes in, and one dtype to concatenate (a 16-bit
    # parameter's gradient may come as float32).
    return ops.concat((pad, F.cast(F.reshape(grad, (-1,))[a:b], mstype.float32)))


@_write_back.register("Tensor", "Tensor", "Number", "Number", "Tuple")
def _write_back_to(full, param, offset, size, shape):
    return F.assign(param, F.reshape(full[offset:offset + size], shape))


def call_kernel(op, lr, wd, step, hyper, grad_ctl, rng, params, grads, states):
    """The one place the sharded step calls the fused kernel (docs/kernel-interface.md's
    layout). `rng` is (seed, index base): the base is the slice's first position in its
    group's padded flat state, so stochastic rounding draws the bits of the unsharded run."""
    return op(lr, wd, step, hyper, grad_ctl, rng, *params, *grads, *states)


class ShardedStep(nn.Cell):
    """The per-group sharded update of one FusedAdamW on this rank (see the module text).

    Collectives are matched by their order on each rank, and MindSpore orders the
    reducer's gradient AllReduces by the graph's structure: when ranks built only the pieces
    their slice needs, their graphs differed and the AllReduces mismatched ("Memcpy error" in
    RunRingAllReduce). So every rank builds the same pieces (some of them empty: zero-size
    slices and constants), and every AllGather waits for all gradients and for the previous
    group's gather: all ranks issue the collectives in the same order."""

    def __init__(self, parameters, groups, flags, seed, tag, rank, size):
        super().__init__(auto_prefix=False)
        self.rank, self.size = rank, size
        sizes = [p.size for p in parameters]
        self.totals = tuple(g.total for g in groups)
        self.shards = tuple(shard_size(g.total, size) for g in groups)
        self._rngs = tuple(Tensor(np.array([seed, rank * s], np.int64)) for s in self.shards)
        self._plans = tuple(gather_plan(g.indices) for g in groups)
        dtypes = [parameters[g.rep].dtype for g in groups]
        zeros = lambda n, dtype: Tensor(np.zeros(n, np.float32)).astype(dtype)
        starts, stops, param_pads, grad_pads, param_tails, grad_tails = [], [], [], [], [], []
        for g, s, dtype in zip(groups, self.shards, dtypes):
            pieces, tail = _pieces(g, sizes, rank * s, (rank + 1) * s)
            starts.append(tuple(a for _, a, _ in pieces))
            stops.append(tuple(b for _, _, b in pieces))
            param_pads.append(tuple(zeros(n, dtype) for n, _, _ in pieces))
            grad_pads.append(tuple(zeros(n, mstype.float32) for n, _, _ in pieces))
            param_tails.append(zeros(tail, dtype))
            grad_tails.append(zeros(tail, mstype.float32))
        self._starts, self._stops = tuple(starts), tuple(stops)
        self._param_pads, self._grad_pads = tuple(param_pads), tuple(grad_pads)
        self._param_tails, self._grad_tails = tuple(param_tails), tuple(grad_tails)
        self._offsets = tuple(g.offsets for g in groups)
        self._sizes = tuple(tuple(sizes[i] for i in g.indices) for g in groups)
        self._shapes = tuple(tuple(tuple(parameters[i].shape) for i in g.indices) for g in groups)
        self.param_shard = ParameterTuple(
            Parameter(zeros(s, dtype), name=state_name(tag, _PARAM_SHARD, k), requires_grad=False)
            for k, (s, dtype) in enumerate(zip(self.shards, dtypes)))
        self._ops = tuple(make_group_op(1, flags=f) for f in flags)
        self._all_gather = ops.AllGather()
        self._map = C.Map()

    def own_slice(self, k, flat):
        """This rank's slice of group k's unsharded flat state (NumPy), zero-padded."""
        padded = np.zeros(self.shards[k] * self.size, flat.dtype)
        padded[:flat.size] = flat
        return padded[self.rank * self.shards[k]:(self.rank + 1) * self.shards[k]]

    def construct(self, lrs, wds, step, hyper, grad_ctl, group_params, grads, states):
        """group_params: each group's ParameterTuple; grads: all gradients, `parameters` order;
        states: each group's flat state inputs in the kernel's order."""
        outs = ()
        before = grads
        for k in range(len(self.shards)):
            params = group_params[k]
            p_parts = self._map(_param_piece, params, self._param_pads[k], self._starts[k], self._stops[k])
            g_parts = self._map(_grad_piece, gather(grads, self._plans[k]), self._grad_pads[k],
                                self._starts[k], self._stops[k])
            shard = self.param_shard[k]
            F.assign(shard, F.depend(ops.concat(p_parts + (self._param_tails[k],)), before))
            out = call_kernel(self._ops[k], lrs[k], wds[k], step, hyper, grad_ctl, self._rngs[k], (shard,),
                              (ops.concat(g_parts + (self._grad_tails[k],)),), states[k])
            full = self._all_gather(F.depend(shard, out))
            written = self._map(F.partial(_write_back, full), params, self._offsets[k], self._sizes[k],
                                self._shapes[k])
            before = written
            outs = outs + (F.depend(out, written),)
        return outs


def make_sharded_step(opt, groups, flags, shard_states):
    """The optimizer's ShardedStep, or None when the states are not sharded (option off, or
    one process). `flags`: each group's kernel variant."""
    if not shard_states or world_size() == 1:
        return None
    if ms.get_context("device_target") == "CPU":
        for param in opt.parameters:
            if param.dtype == mstype.bfloat16:
                raise ValueError(
                    f"For '{opt.cls_name}', 'shard_states=True' cannot update bfloat16 parameter "
                    f"'{param.name}' on the CPU target: MindSpore's CPU backend has no bfloat16 "
                    f"kernels for the copies a sharded step makes of the parameters (TensorMove, "
                    f"Assign, StridedSlice, AllGather). Use float16 or float32 parameters there, "
                    f"or shard_states=False.")
    return ShardedStep(opt.parameters, groups, flags, opt.options.seed, opt._state_tag, world_rank(), world_size())


def use_sharded_views(opt):
    """Replaces the optimizer's per-parameter state views: a rank holds slices only."""
    opt.exp_avg = ShardedStateView(opt.exp_avg_flat, "adam_m")
    opt.exp_avg_sq = ShardedStateView(opt.exp_avg_sq_flat, "adam_v")
    if opt.options.amsgrad:
        opt.max_exp_avg_sq = ShardedStateView(opt.max_exp_avg_sq_flat, "max_exp_avg_sq")
    if len(opt.master_flat):
        opt.master = ShardedStateView(opt.master_flat, "master")


class ShardedStateView:
    """`exp_avg` / `exp_avg_sq` of a sharded optimizer: the flat buffers hold this rank's
    slice only, so per-parameter states do not exist here. Merge the ranks' checkpoints
    (`merge_shards`) to get them."""

    def __init__(self, flats, prefix):
        self._flats = flats
        self.prefix = prefix

    @property
    def flats(self):
        return self._flats

    def _refuse(self, *_):
        raise RuntimeError(f"FusedAdamW(shard_states=True): this rank holds a slice of the "
                           f"'{self.prefix}' states only; merge the ranks' checkpoints with "
                           f"fused_adamw.checkpoint.merge_shards to read them per parameter.")

    __len__ = __getitem__ = __setitem__ = location = numpy = to_numpy_dict = _refuse


# Checkpoints. Each rank saves its own file (`mindspore.save_checkpoint(train_net, ...)`):
# the full parameters, global_step, the layout record, and its slices of the flat states under
# the same names as a single-process run (`fused_adamw.<tag>.exp_avg.<k>`, ...).

def _fused_optimizers(cell):
    from .checkpoint import _optimizers  # checkpoint.py imports this module

    return _optimizers(cell)


def _flat_states(opt):
    """(flat state Parameter, kernel group, unsharded total) for every flat state of `opt`:
    exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad) and master (master weights)."""
    totals = opt._sharded.totals if opt._sharded is not None else tuple(f.size for f in opt.exp_avg_flat)
    found = []
    for flats in (opt.exp_avg_flat, opt.exp_avg_sq_flat, opt.max_exp_avg_sq_flat):
        found += [(flat, k, totals[k]) for k, flat in enumerate(flats)]
    master_groups = [k for k, j in enumerate(opt._master_index) if j >= 0]
    found += [(flat, k, totals[k]) for flat, k in zip(opt.master_flat, master_groups)]
    return found


def _state(values, like):
    """A Parameter named and typed as the flat state `like` (bfloat16 states round-trip
    exactly through float32)."""
    return Parameter(Tensor(values).astype(like.dtype), name=like.name, requires_grad=False)


def merge_shards(rank_param_dicts, cell):
    """One single-process checkpoint from the per-rank checkpoints of a sharded run.

    Args:
        rank_param_dicts: the ``mindspore.load_checkpoint`` dicts of ranks 0..N-1, in rank
            order (a single dict of an unsharded run is accepted and passed through).
        cell: a Cell holding FusedAdamW(s) built with the same parameters and groups and
            ``shard_states=True``, on any number of ranks (it supplies the state sizes).

    Returns:
        dict name -> Parameter: rank 0's entries (parameters and global_step are the same on
        every rank), each flat state concatenated over the ranks and cut to its unsharded
        size, the ranks' parameter-slice buffers dropped. ``load_param_into_net`` takes it on
        one process; ``split_shards`` turns it into any rank's checkpoint of another world size.

    Raises:
        ValueError: a state is missing, the ranks' slices differ in size, or they do not
            cover the state with zero padding (not the shards of this optimizer, or out of order).
    """
    dicts = list(rank_param_dicts)
    if not dicts:
        raise ValueError("For 'merge_shards', 'rank_param_dicts' is empty.")
    out = {name: value for name, value in dicts[0].items() if f".{_PARAM_SHARD}." not in name}
    for opt in _fused_optimizers(cell):
        for flat, _, total in _flat_states(opt):
            name = flat.name
            missing = [r for r, d in enumerate(dicts) if name not in d]
            if missing:
                raise ValueError(f"For 'merge_shards', state '{name}' is missing from rank {missing[0]}.")
            parts = [_float32_numpy(d[name]).reshape(-1) for d in dicts]
            if len({p.size for p in parts}) != 1:
                raise ValueError(f"For 'merge_shards', the ranks' slices of '{name}' differ in size: "
                                 f"{[p.size for p in parts]}.")
            full = np.concatenate(parts)
            if full.size < total or np.any(full[total:] != 0):
                raise ValueError(f"For 'merge_shards', the {len(parts)} slices of '{name}' "
                                 f"({full.size} elements) are not a zero-padded sharding of its "
                                 f"{total} elements: other groups, or ranks out of order?")
            out[name] = _state(full[:total], flat)
    return out


def split_shards(param_dict, cell):
    """The checkpoint of this process's rank for `cell`, from a single-process (merged) one.

    Args:
        param_dict: a checkpoint with unsharded states (``merge_shards``' result, or
            ``mindspore.load_checkpoint`` of a single-process run with the same groups).
        cell: the Cell to load into; its FusedAdamW's rank and world size pick the slice.
            On one process the states pass through.

    Returns:
        A new dict for ``mindspore.load_param_into_net(cell, ...)``.

    Raises:
        ValueError: a state is missing or has the wrong number of elements.
    """
    out = dict(param_dict)
    for opt in _fused_optimizers(cell):
        step = opt._sharded
        for flat, k, total in _flat_states(opt):
            name = flat.name
            if name not in param_dict:
                raise ValueError(f"For 'split_shards', state '{name}' is missing.")
            full = _float32_numpy(param_dict[name]).reshape(-1)
            if full.size != total:
                raise ValueError(f"For 'split_shards', state '{name}' has {full.size} elements, "
                                 f"the optimizer's group has {total} (merge sharded sets first).")
            if step is None:
                continue
            out[name] = _state(step.own_slice(k, full), flat)
    return out
