"""The implementations the benchmark (fused_adamw.bench) times, side by side.

Each entry builds its own copy of a parameter set (params, grads, states) and
returns a `step()` that performs one optimizer step and waits for it to finish
(MindSpore may run ops asynchronously: we synchronise before the clock is read).
Hyper-parameters are the same everywhere: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
weight decay 0.1. Gradients are made once and reused, so only the update is timed.
"""
import gc
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import _C

LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.1


class Unavailable(Exception):
    """The implementation cannot run here (not installed, unsupported dtype...)."""


@dataclass
class Impl:
    key: str
    label: str
    group: str                      # "floor", "ours" or "peer"
    build: Callable                 # build(pset, dtype, threads) -> (step, close)
    # Bytes resident per parameter (all copies and states), to skip a set that does not fit.
    bytes_per_param: dict = field(default_factory=lambda: {"float32": 16, "bfloat16": 12})


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
    m = np.zeros(pset.numel, np.float32)
    v = np.full(pset.numel, 1e-8, np.float32)
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


def _ms_wait(out):
    """Returns once the step is done: ms.runtime.synchronize() does not support the CPU
    device, so drain PyNative's queue and read one output back."""
    from mindspore.common.api import _pynative_executor
    _pynative_executor.sync()
    while isinstance(out, (tuple, list)) and out:
        out = out[-1]
    if hasattr(out, "asnumpy"):
        out.asnumpy()


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
                _ms_wait(cell())
        else:
            def step():
                _ms_wait(opt(grads))

        def close():
            nonlocal opt, params, grads
            del opt, params, grads
            ms.set_context(mode=ms.PYNATIVE_MODE)
            gc.collect()
        return step, close
    return build


def _fused_adamw(params):
    from .optimizer import FusedAdamW
    return FusedAdamW(params, learning_rate=LR, betas=BETAS, eps=EPS, weight_decay=WD)


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
    ms_mem = {"float32": 32, "bfloat16": 24}   # composite ops keep temporaries
    return [
        Impl("floor", "memory floor (AdamW's bytes, no math)", "floor", build_floor),
        Impl("direct", "fused_adamw kernel, direct call", "ours", build_direct),
        Impl("fused_graph", "FusedAdamW GRAPH_MODE", "ours", _ms_builder(_fused_adamw, "graph"),
             {"float32": 20, "bfloat16": 16}),
        Impl("fused_pynative", "FusedAdamW PYNATIVE_MODE", "ours",
             _ms_builder(_fused_adamw, "pynative"), {"float32": 20, "bfloat16": 16}),
        Impl("torch_fused", "torch.optim.AdamW(fused=True)", "peer", build_torch_fused),
        Impl("deepspeed", "DeepSpeedCPUAdam(adamw_mode=True)", "peer", build_deepspeed),
        Impl("ms_adamweightdecay_graph", "mindspore.nn.AdamWeightDecay GRAPH", "peer",
             _ms_builder(_ms_adam_weight_decay, "graph"), ms_mem),
        Impl("ms_experimental_adamw_graph", "mindspore.experimental.optim.AdamW GRAPH", "peer",
             _ms_builder(_ms_experimental_adamw, "graph"), ms_mem),
        Impl("mindformers_adamw_graph", "MindFormers AdamW GRAPH", "peer",
             _ms_builder(_mindformers_adamw, "graph"), ms_mem),
        Impl("ms_adamweightdecay_pynative", "mindspore.nn.AdamWeightDecay PYNATIVE", "peer",
             _ms_builder(_ms_adam_weight_decay, "pynative"), ms_mem),
        Impl("mindformers_adamw_pynative", "MindFormers AdamW PYNATIVE", "peer",
             _ms_builder(_mindformers_adamw, "pynative"), ms_mem),
    ]
