"""The implementations the benchmark times, side by side, and the memory floor.

Each entry builds its own copy of a parameter set (params, grads, states) and
returns a `step()` that performs one optimizer step and waits for it to finish
(MindSpore may run ops asynchronously: we synchronise before the clock is read).
Hyper-parameters are the same everywhere: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
weight decay 0.1. Gradients are made once and reused, so only the update is timed.

Adding an implementation: a builder `build(pset, dtype, threads) -> (step, close)`
(or, for a MindSpore optimizer, `_ms_builder(make_optimizer, mode)`) and one `Impl`
line in `all_impls()`; a named selection for `--impls` is one line in SUITES.
bench/NOTES.md has the details.
"""
import gc
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import _C

LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.1


class Unavailable(Exception):
    """The implementation cannot run here (not installed, unsupported dtype...)."""


@dataclass
class Impl:
    key: str                        # what --impls takes
    label: str                      # the table's and the plot's name
    group: str                      # "ours" or "peer"
    build: Callable                 # build(pset, dtype, threads) -> (step, close)
    # Bytes resident per parameter (all copies and states), to skip a set that does not fit.
    bytes_per_param: dict = field(default_factory=lambda: {"float32": 16, "bfloat16": 12})
    # In the default selection (the "default" suite).
    default: bool = True
    # Quick mode runs it on the GPT-like set only: in graph mode its compile time grows with
    # the tensor count (1,000 tensors: tens of seconds) and its steps are slow.
    quick_gpt_only: bool = False
    # Bytes per parameter the step streams, by dtype, when not plain AdamW's (28 fp32, 22 bf16):
    # its "x floor" then uses the floor's bandwidth on these bytes (runner.apply_floor).
    traffic: dict = None


# ---------------------------------------------------------------- data

_POOL = None


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    return _POOL


def _values(n, scale, shift=0):
    """n float32 values: a random pool, started at an offset that depends on `shift`
    and tiled (cheap to make at 1B elements or for 1,000 tensors)."""
    pool = _pool()
    start = (shift * 7919) % pool.size
    head = pool[start:start + n]
    out = np.resize(head, n) if n <= pool.size - start else np.resize(np.concatenate([head, pool[:start]]), n)
    return out * np.float32(scale)


def _as_dtype_np(x, dtype):
    """float32 -> the array our kernel takes (bfloat16 as uint16 bits, truncated)."""
    return x if dtype == "float32" else (x.view(np.uint32) >> 16).astype(np.uint16)


def _numpy_group(pset, dtype):
    params, grads = [], []
    for i, (_, shape) in enumerate(pset.shapes):
        n = int(np.prod(shape))
        params.append(_as_dtype_np(_values(n, 0.02, i), dtype).reshape(shape))
        grads.append(_as_dtype_np(_values(n, 1e-3, i + 7), dtype).reshape(shape))
    total = _C.state_size([int(np.prod(s)) for _, s in pset.shapes])  # padded flat layout
    m = np.zeros(total, np.float32)
    v = np.full(total, 1e-8, np.float32)
    return params, grads, m, v


# ---------------------------------------------------------------- ours, on NumPy arrays

def build_floor(pset, dtype, threads):
    params, grads, m, v = _numpy_group(pset, dtype)

    def step():
        _C.floor_pass(params, grads, m, v)
    return step, lambda: None


def build_direct(pset, dtype, threads):
    params, grads, m, v = _numpy_group(pset, dtype)
    t = [0]

    def step():
        t[0] += 1
        _C.adamw_step(params, grads, m, v, LR, WD, t[0], BETAS[0], BETAS[1], EPS)
    return step, lambda: None


# ---------------------------------------------------------------- MindSpore

def _ms():
    import mindspore as ms
    return ms


def _ms_group(pset, dtype):
    ms = _ms()
    from mindspore import Parameter, Tensor
    ms_dtype = {"float32": ms.float32, "bfloat16": ms.bfloat16}[dtype]
    params, grads = [], []
    for i, (name, shape) in enumerate(pset.shapes):
        n = int(np.prod(shape))
        p = Tensor(_values(n, 0.02, i).reshape(shape))
        g = Tensor(_values(n, 1e-3, i + 7).reshape(shape))
        if dtype != "float32":
            p, g = p.astype(ms_dtype), g.astype(ms_dtype)
        params.append(Parameter(p, name=name))
        grads.append(g)
    return params, tuple(grads)


def _ms_wait(param):
    """Returns once the step is done. `ms.runtime.synchronize()` is documented for Ascend
    and GPU only (on the CPU its first call logs an error and returns at once), and an
    optimizer's output may be a Python bool; but `Tensor.asnumpy()` drains MindSpore's
    whole queue of pending ops before it reads (measured: as long a wait as the private
    PyNative `sync()`), and for a Parameter it shares storage, so it costs no copy."""
    param.asnumpy()


def _graph_step_cell(opt, grads):
    """GRAPH_MODE: the optimizer inside a compiled graph whose gradients are graph values, as in
    a training step, rather than 196-1,000 Tensors converted from Python on every call (that
    argument conversion alone costs MindSpore ~0.1 ms per tensor, whatever the optimizer)."""
    from mindspore import Parameter, ParameterTuple, nn

    class OptimizerStep(nn.Cell):
        def __init__(self):
            super().__init__()
            self.opt = opt
            self.grads = ParameterTuple(Parameter(g, name=f"bench_grad.{i}", requires_grad=False)
                                        for i, g in enumerate(grads))

        def construct(self):
            return self.opt(self.grads)

    return OptimizerStep()


def _ms_builder(make_optimizer, mode):
    """A builder for a MindSpore optimizer class run in `mode` ("graph" or "pynative")."""
    def build(pset, dtype, threads):
        ms = _ms()
        ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
        params, grads = _ms_group(pset, dtype)
        opt = make_optimizer(params)
        if mode == "graph":
            cell = _graph_step_cell(opt, grads)

            def step():
                cell()
                _ms_wait(params[-1])
        else:
            def step():
                opt(grads)
                _ms_wait(params[-1])

        def close():
            nonlocal opt, params, grads
            del opt, params, grads
            ms.set_context(mode=ms.PYNATIVE_MODE)
            gc.collect()
        return step, close
    return build


def fused_adamw(**options):
    """A FusedAdamW factory for _ms_builder; `options` are extra constructor arguments, so a
    row for a new option is `_ms_builder(fused_adamw(option=value), "graph")`."""
    def make(params):
        from ..optimizer import FusedAdamW
        return FusedAdamW(params, learning_rate=LR, betas=BETAS, eps=EPS, weight_decay=WD, **options)
    return make


def _bf16_only(builder):
    """Options that act on 16-bit parameters only (masters, stochastic rounding)."""
    def build(pset, dtype, threads):
        if dtype != "bfloat16":
            raise Unavailable("acts on 16-bit parameters only")
        return builder(pset, dtype, threads)
    return build


# ---------------------------------------------------------------- the whole step (issue 14)
# Fixed gradients, loss scale 1.0 and the same max norm everywhere; the rows differ only in how
# unscale, global norm, clipping, the overflow test and AdamW are done. Nothing mutates the
# gradients (torch unscales and clips in place: scale 1.0 and a max norm above the norm keep its
# values, while every pass still runs).
MAX_NORM = 1.0e6


def _is_bf16(params):
    return str(params[0].dtype) == "BFloat16"


def _fused_whole(params):
    from mindspore import Tensor, nn
    from ..optimizer import FusedAdamW
    opt = FusedAdamW(params, learning_rate=LR, betas=BETAS, eps=EPS, weight_decay=WD)

    class Step(nn.Cell):
        def __init__(self):
            super().__init__()
            self.opt = opt
            self.scale = Tensor(1.0)

        def construct(self, grads):
            return self.opt.fused_step(grads, self.scale, MAX_NORM)
    return Step()


def _composed_whole(make_optimizer, clip):
    """MindFormers' order from MindSpore's and MindFormers' pieces (composition.py);
    `clip(max_norm)` gives a cell grads -> (clipped grads, global norm)."""
    def make(params):
        from .composition import AtFixedScale, ComposedWholeStep
        return AtFixedScale(ComposedWholeStep(make_optimizer(params), clip(MAX_NORM)))
    return make


def _mindformers_clip(max_norm):
    from .peers import mindformers_clip_grad_norm_class
    try:
        return mindformers_clip_grad_norm_class()(max_norm=max_norm)
    except Exception as e:
        raise Unavailable(f"MindFormers' clip_grad.py not available: {e}") from e


def _ms_clip(max_norm):
    from .composition import MindSporeClip
    return MindSporeClip(max_norm)


def _mindformers_whole(params):
    if _is_bf16(params):
        raise Unavailable("MindFormers' AdamW cannot run bfloat16 on the CPU backend")
    return _composed_whole(_mindformers_adamw, _mindformers_clip)(params)


def _ms_adamweightdecay_whole(params):
    if _is_bf16(params):
        raise Unavailable("float32 only (the unscaled float32 gradients would not match bf16 parameters)")
    return _composed_whole(_ms_adam_weight_decay, _ms_clip)(params)


def build_torch_whole(pset, dtype, threads):
    """GradScaler's unscale (torch._amp_foreach_non_finite_check_and_unscale_), clip_grad_norm_
    (foreach), then AdamW(fused=True) told found_inf, as GradScaler.step does for fused optimizers."""
    torch = _torch()
    params = _torch_group(pset, dtype, threads)
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, fused=True)
    inv_scale = torch.ones((), dtype=torch.float32)
    found_inf = torch.zeros((), dtype=torch.float32)
    grads = [p.grad for p in params]

    def step():
        found_inf.zero_()
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale)
        torch.nn.utils.clip_grad_norm_(params, MAX_NORM, foreach=True)
        opt.found_inf = found_inf
        opt.step()
    return step, lambda: None


def build_torch_fused_amsgrad(pset, dtype, threads):
    torch = _torch()
    params = _torch_group(pset, dtype, threads)
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, fused=True, amsgrad=True)
    return opt.step, lambda: None


def _ms_adam_weight_decay(params):
    from mindspore import nn
    return nn.AdamWeightDecay(params, learning_rate=LR, beta1=BETAS[0], beta2=BETAS[1], eps=EPS,
                              weight_decay=WD)


def _ms_experimental_adamw(params):
    from mindspore.experimental.optim import AdamW
    return AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)


def _mindformers_adamw(params):
    from .peers import mindformers_adamw_class
    try:
        cls = mindformers_adamw_class()
    except Exception as e:  # no network and no cached wheel
        raise Unavailable(f"MindFormers' adamw.py not available: {e}") from e
    return cls(params, learning_rate=LR, betas=BETAS, eps=EPS, weight_decay=WD)


# ---------------------------------------------------------------- PyTorch / DeepSpeed

def _torch():
    try:
        import torch
    except ImportError as e:
        raise Unavailable("torch not installed (pip install 'fused-adamw[bench]')") from e
    return torch


def _torch_group(pset, dtype, threads):
    torch = _torch()
    torch.set_num_threads(threads)
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    params = []
    for i, (_, shape) in enumerate(pset.shapes):
        n = int(np.prod(shape))
        p = torch.nn.Parameter(torch.from_numpy(_values(n, 0.02, i).reshape(shape)).to(tdtype))
        p.grad = torch.from_numpy(_values(n, 1e-3, i + 7).reshape(shape)).to(tdtype)
        params.append(p)
    return params


def build_torch_fused(pset, dtype, threads):
    torch = _torch()
    params = _torch_group(pset, dtype, threads)
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, fused=True)
    return opt.step, lambda: None


def build_deepspeed(pset, dtype, threads):
    _torch()
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
    except Exception as e:
        raise Unavailable(f"deepspeed not importable: {type(e).__name__}: {e}") from e
    params = _torch_group(pset, dtype, threads)
    try:
        opt = DeepSpeedCPUAdam(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD,
                               adamw_mode=True)
    except Exception as e:  # the op is JIT-built on first use (needs ninja and a compiler)
        raise Unavailable(f"DeepSpeedCPUAdam could not be built: {type(e).__name__}: {e}") from e
    return opt.step, lambda: None


# ---------------------------------------------------------------- the table

def all_impls():
    """Every implementation, in table order (the floor is not one: it is always measured)."""
    ms_mem = {"float32": 32, "bfloat16": 24}   # composite ops keep temporaries
    ours_mem = {"float32": 20, "bfloat16": 16}
    return [
        Impl("direct", "fused_adamw kernel, direct call", "ours", build_direct),
        Impl("fused_graph", "FusedAdamW GRAPH_MODE", "ours", _ms_builder(fused_adamw(), "graph"), ours_mem),
        Impl("fused_pynative", "FusedAdamW PYNATIVE_MODE", "ours", _ms_builder(fused_adamw(), "pynative"),
             ours_mem),
        Impl("torch_fused", "torch.optim.AdamW(fused=True)", "peer", build_torch_fused),
        Impl("deepspeed", "DeepSpeedCPUAdam(adamw_mode=True)", "peer", build_deepspeed),
        Impl("ms_adamweightdecay_graph", "mindspore.nn.AdamWeightDecay GRAPH", "peer",
             _ms_builder(_ms_adam_weight_decay, "graph"), ms_mem, quick_gpt_only=True),
        Impl("ms_experimental_adamw_graph", "mindspore.experimental.optim.AdamW GRAPH", "peer",
             _ms_builder(_ms_experimental_adamw, "graph"), ms_mem, quick_gpt_only=True),
        Impl("mindformers_adamw_graph", "MindFormers AdamW GRAPH", "peer",
             _ms_builder(_mindformers_adamw, "graph"), ms_mem, quick_gpt_only=True),
        Impl("ms_adamweightdecay_pynative", "mindspore.nn.AdamWeightDecay PYNATIVE", "peer",
             _ms_builder(_ms_adam_weight_decay, "pynative"), ms_mem, default=False, quick_gpt_only=True),
        Impl("mindformers_adamw_pynative", "MindFormers AdamW PYNATIVE", "peer",
             _ms_builder(_mindformers_adamw, "pynative"), ms_mem, default=False, quick_gpt_only=True),
        # Issue 11's modes, each judged on its own bytes (the label says how many).
        Impl("fused_graph_master", "FusedAdamW GRAPH bf16 + fp32 masters (28 B/param)", "ours",
             _bf16_only(_ms_builder(fused_adamw(master_weights=True), "graph")), {"float32": 24, "bfloat16": 20},
             default=False, traffic={"float32": 28, "bfloat16": 28}),
        Impl("fused_graph_sr", "FusedAdamW GRAPH bf16 + stochastic rounding (22 B/param)", "ours",
             _bf16_only(_ms_builder(fused_adamw(stochastic_rounding=True), "graph")), ours_mem, default=False),
        Impl("fused_graph_bf16_states", "FusedAdamW GRAPH bf16 states (20 B/param fp32, 14 bf16)", "ours",
             _ms_builder(fused_adamw(state_dtype=_ms().bfloat16), "graph"), ours_mem, default=False,
             traffic={"float32": 20, "bfloat16": 14}),
        Impl("fused_graph_amsgrad", "FusedAdamW GRAPH amsgrad (36 B/param fp32, 30 bf16)", "ours",
             _ms_builder(fused_adamw(amsgrad=True), "graph"), {"float32": 24, "bfloat16": 20}, default=False,
             traffic={"float32": 36, "bfloat16": 30}),
        Impl("torch_fused_amsgrad", "torch.optim.AdamW(fused=True, amsgrad=True)", "peer",
             build_torch_fused_amsgrad, default=False, traffic={"float32": 36, "bfloat16": 24}),
        # Issue 14's whole step: unscale + global norm + clip + AdamW (32 B/param fp32, 24 bf16:
        # AdamW's bytes plus one more read of the gradients).
        Impl("fused_whole_graph", "FusedAdamW.fused_step GRAPH (whole step)", "ours",
             _ms_builder(_fused_whole, "graph"), ours_mem, default=False, traffic=WHOLE_STEP_TRAFFIC),
        Impl("torch_whole", "torch unscale + clip_grad_norm_ + fused AdamW", "peer", build_torch_whole,
             default=False, traffic=WHOLE_STEP_TRAFFIC),
        Impl("mindformers_whole_graph", "MindFormers unscale + ClipGradNorm + AdamW GRAPH", "peer",
             _ms_builder(_mindformers_whole, "graph"), ms_mem, default=False, traffic=WHOLE_STEP_TRAFFIC),
        Impl("ms_clip_adamweightdecay_graph", "MindSpore clip_by_global_norm + AdamWeightDecay GRAPH", "peer",
             _ms_builder(_ms_adamweightdecay_whole, "graph"), ms_mem, default=False, traffic=WHOLE_STEP_TRAFFIC),
    ]


WHOLE_STEP_TRAFFIC = {"float32": 32, "bfloat16": 24}


# Named selections `--impls` takes besides single keys: name -> keys (table order kept).
SUITES = {
    "default": lambda impls: [i.key for i in impls if i.default],
    "all": lambda impls: [i.key for i in impls],
    # Issue 11: each precision/state mode, with the peers that offer the same mode.
    "options": lambda impls: ["fused_graph", "fused_graph_master", "fused_graph_sr", "fused_graph_bf16_states",
                              "fused_graph_amsgrad", "torch_fused", "torch_fused_amsgrad", "deepspeed"],
    # Issue 14: the whole optimizer step.
    "whole_step": lambda impls: ["fused_whole_graph", "torch_whole", "mindformers_whole_graph",
                                 "ms_clip_adamweightdecay_graph"],
}


def select(spec, impls=None):
    """The implementations `spec` names: comma-separated keys and/or SUITES names. "floor"
    is accepted and ignored (the floor is always measured). Raises ValueError on an unknown name."""
    impls = all_impls() if impls is None else impls
    known = {i.key: i for i in impls}
    keys = []
    for name in (n.strip() for n in spec.split(",")):
        if name in SUITES:
            keys += SUITES[name](impls)
        elif name in known:
            keys.append(name)
        elif name and name != "floor":
            raise ValueError(f"unknown implementation {name!r}; known: {', '.join(known)}; "
                             f"suites: {', '.join(SUITES)}")
    return [known[k] for k in dict.fromkeys(keys)]
