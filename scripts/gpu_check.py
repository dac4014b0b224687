#!/usr/bin/env python3
"""Checks the CUDA backend on a machine with an NVIDIA GPU (sm_80 or newer,
driver R580+). Nothing in the project's CI has a GPU: this script is how the
CUDA kernel gets verified for real. See docs/cuda.md.

It calls the library's GPU entries (the ones MindSpore calls: FusedAdamWGPU,
FusedAdamWGPU_v<flags>, FusedGradNormGPU) with device memory from PyTorch, and checks:
  correctness   every dtype, sizes 1..2^20+3, misaligned starts, 1,000- and
                2,000-tensor groups (table split into launches), NaN/Inf, invalid
                values; against the float64 model (tests/reference.py) and bit for
                bit against the CPU kernel (fused_adamw._C.adamw_step on host copies)
  variants      every compile-time variant (amsgrad, fp32 masters, stochastic
                rounding, bf16 states), gradient factors, float32 grads for 16-bit
                params, and the device-side skip flag (nothing written); model + bits
  grad-norm     FusedGradNormGPU against the CPU's grad_sumsq, bit for bit, and its
                NaN/Inf flag
  torch-fused   float32 params/states against torch.optim.AdamW(fused=True)
  cuda-graph    the norm pass and a step captured in one CUDA graph and replayed
                with new lr and step values written to device memory
  throughput    GB/s of a step (and of the norm pass) against a device-to-device
                copy moving the same bytes
  mindspore     fused_adamw.FusedAdamW on MindSpore's GPU target, when it runs here
  sanitize      (--sanitize) the correctness checks again under compute-sanitizer memcheck

Bitwise agreement with the CPU kernel holds because both round every float32
operation the same way (no FMA contraction: -fmad=false / -ffp-contract=off) and
share kernels/common; the one expected exception is a step t whose bias
correction the device's double pow rounds differently from glibc's powf (18 of
11 million (beta, t) pairs, tests/cuda/test_cuda_bias_correction.py): such
steps are compared with the model only, and the script says so.

Usage (from the repository root, after `pip install .` with nvcc present):
  python scripts/gpu_check.py [--sanitize] [--quick] [--no-bench] [--lib PATH]
  python scripts/gpu_check.py --selftest-cpu   # no GPU: runs the correctness, variant and
                                               # norm cases through the CPU entries (checks this script)
Exit status 0 only if every check that ran passed.
"""
import argparse
import ctypes
import glob
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "cuda"))
import reference  # noqa: E402
from step_check import AMSGRAD, MASTER, STOCHASTIC, StepSpec, check_step, model_step, state_dtype  # noqa: E402

DTYPES = ("float32", "float16", "bfloat16")
NP_STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16, "int32": np.int32,
              "int64": np.int64, "float64": np.float64}
VARIANTS = [f for f in range(16) if not (f & MASTER and f & STOCHASTIC)]
BYTES_PER_PARAM = {"float32": 28, "float16": 22, "bfloat16": 22}  # read p g m v, write p m v


# ---------------------------------------------------------------- the library

def find_library(explicit):
    if explicit:
        return Path(explicit)
    if os.environ.get("FUSED_ADAMW_LIB"):
        return Path(os.environ["FUSED_ADAMW_LIB"])
    spec = importlib.util.find_spec("fused_adamw")
    dirs = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
    dirs.append(str(ROOT / "python" / "fused_adamw"))
    for d in dirs:
        found = sorted(glob.glob(os.path.join(d, "_C*.so")))
        if found:
            return Path(found[0])
    sys.exit("fused_adamw's library (_C*.so) not found: pip install . first, or pass --lib")


class AotEntry:
    """An ops.Custom AOT entry point called the way MindSpore calls it."""

    def __init__(self, lib_path, symbol):
        lib = ctypes.CDLL(str(lib_path))
        if not hasattr(lib, symbol):
            sys.exit(f"{lib_path} has no {symbol}: it was built without the CUDA backend (no nvcc at build time?)")
        self.fn = getattr(lib, symbol)
        self.fn.restype = ctypes.c_int
        self.fn.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 6

    def __call__(self, args, stream=0):
        """args: [(pointer, dtype name, shape)] in the op's order; returns the entry's status."""
        k = len(args)
        ptrs = (ctypes.c_void_p * k)(*[a[0] for a in args])
        ndims = (ctypes.c_int * k)(*[len(a[2]) for a in args])
        shapes = [(ctypes.c_int64 * max(len(a[2]), 1))(*a[2]) for a in args]
        shape_ptrs = (ctypes.c_void_p * k)(*[ctypes.addressof(s) for s in shapes])
        names = (ctypes.c_char_p * k)(*[a[1].encode() for a in args])
        return self.fn(k, ptrs, ndims, shape_ptrs, names, stream or None, None)


class Entries:
    """The AdamW entry of each variant and the norm entry: the GPU ones, or the
    CPU ones for --selftest-cpu."""

    def __init__(self, lib_path, gpu):
        suffix = "GPU" if gpu else ""
        self.lib_path, self.gpu = lib_path, gpu
        self.adamw = {f: AotEntry(lib_path, f"FusedAdamW{suffix}_v{f}") for f in VARIANTS}
        self.adamw[0] = AotEntry(lib_path, f"FusedAdamW{suffix}")
        self.norm = AotEntry(lib_path, f"FusedGradNorm{suffix}")


def load_cpu_module(lib_path):
    """fused_adamw._C from the library file itself (no MindSpore import needed):
    the CPU kernel the GPU results are compared with, bit for bit."""
    import importlib.machinery

    loader = importlib.machinery.ExtensionFileLoader("_C", str(lib_path))
    spec = importlib.util.spec_from_file_location("_C", str(lib_path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# ------------------------------------------------- memory: PyTorch or NumPy (selftest)

class TorchMemory:
    """Device arrays from PyTorch; `put` places an array `offset` elements past an
    allocation's start (allocations are 512-byte aligned), to misalign it."""

    def __init__(self):
        import torch

        self.torch = torch
        self.tdtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                       "int32": torch.int32, "int64": torch.int64, "float64": torch.float64}
        torch.cuda.init()
        self.device = torch.device("cuda")

    def put(self, a, dtype, offset=0):
        torch = self.torch
        host = torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16) \
            if dtype == "bfloat16" else torch.from_numpy(np.ascontiguousarray(a))
        buf = torch.empty(a.size + offset, dtype=self.tdtype[dtype], device=self.device)
        t = buf[offset:]
        t.copy_(host.reshape(-1))
        return t

    def get(self, t, dtype):
        if dtype == "bfloat16":
            return t.view(self.torch.int16).cpu().numpy().view(np.uint16)
        return t.cpu().numpy()

    def ptr(self, t):
        return t.data_ptr()

    def stream(self):
        return self.torch.cuda.current_stream().cuda_stream

    def sync(self):
        self.torch.cuda.synchronize()


class HostMemory:
    """NumPy arrays for --selftest-cpu (the CPU entry takes host pointers)."""

    def put(self, a, dtype, offset=0):
        raw = np.empty(a.size + offset + 64, dtype=NP_STORAGE[dtype])
        start = (-raw.ctypes.data % 64) // raw.itemsize + offset
        t = raw[start:start + a.size]
        t[:] = a.reshape(-1)
        return t

    def get(self, t, dtype):
        return t.copy()

    def ptr(self, t):
        return t.ctypes.data

    def stream(self):
        return 0

    def sync(self):
        pass


# ------------------------------------------------------------------ one group

def state_layout(cpu, sizes):
    """Each tensor's state offset in the padded flat layout (docs/kernel-interface.md:
    a multiple of _C.state_align()), and the total, which must be _C.state_size's."""
    align, offsets, end = cpu.state_align(), [], 0
    for n in sizes:
        offsets.append((end + align - 1) // align * align)
        end = offsets[-1] + n
    assert end == cpu.state_size(list(sizes)), "padded layout differs from the library's"
    return offsets, end


class DeviceGroup:
    """A group in memory: params/grads at element offsets, padded flat states of
    the variant `flags` (pads poisoned), and the per-step values."""

    def __init__(self, mem, cpu, rng, sizes, dtypes, grad_dtypes=None, offsets=None, state_offset=0, lr=0.05,
                 weight_decay=0.1, step=3, hyper=(0.9, 0.999, 1e-8), flags=0, grad_scale=1.0, grad_clip=1.0,
                 skip=0.0, seed=0, index_base=0, specials=False):
        self.mem, self.sizes, self.dtypes = mem, list(sizes), list(dtypes)
        self.grad_dtypes = list(grad_dtypes or dtypes)
        self.flags = flags
        offsets = offsets or [(0, 0)] * len(sizes)
        self.h_p = [reference.random_param(rng, n, dt) for n, dt in zip(sizes, dtypes)]
        self.h_g = [reference.from_f64(0.1 * rng.standard_normal(n), dt) for n, dt in zip(sizes, self.grad_dtypes)]
        self.state_offsets, total = state_layout(cpu, sizes)
        sd = state_dtype(flags)
        used = np.zeros(total, bool)
        for o, n in zip(self.state_offsets, sizes):
            used[o:o + n] = True

        def state(values):
            a = reference.from_f64(values, sd)
            a.view(np.uint8).reshape(-1, a.itemsize)[~used] = 0xA5  # pads: never read or written
            return a

        h_m, h_v = 0.01 * rng.standard_normal(total), 1e-3 * rng.random(total)
        if specials:  # NaN/Inf in grads and params, NaN in m, Inf in v
            for arrs, dts in ((self.h_g, self.grad_dtypes), (self.h_p, dtypes)):
                for a, dt in zip(arrs, dts):
                    idx = rng.choice(a.size, size=min(6, a.size), replace=False)
                    for j, i in enumerate(idx):
                        a[i] = reference.from_f64(np.array([(np.nan, np.inf, -np.inf)[j % 3]]), dt)[0]
            live = np.flatnonzero(used)
            h_m[rng.choice(live, min(3, live.size), replace=False)] = np.nan
            h_v[rng.choice(live, min(3, live.size), replace=False)] = np.inf
        self.h = {"m": state(h_m), "v": state(h_v)}
        if flags & AMSGRAD:
            self.h["x"] = state(2e-3 * rng.random(total))
        if flags & MASTER:
            w = np.full(total, np.nan, np.float32)
            for p, dt, o, n in zip(self.h_p, dtypes, self.state_offsets, sizes):
                if dt != "float32":
                    w[o:o + n] = reference.to_f64(p, dt) * (1 + 2.0**-10 * rng.standard_normal(n))
            self.h["w"] = w
        self.p = [mem.put(a, dt, o[0]) for a, dt, o in zip(self.h_p, dtypes, offsets)]
        self.g = [mem.put(a, dt, o[1]) for a, dt, o in zip(self.h_g, self.grad_dtypes, offsets)]
        self.state_dtypes = {"m": sd, "v": sd, "x": sd, "w": "float32"}
        self.s = {k: mem.put(a, self.state_dtypes[k], state_offset) for k, a in self.h.items()}
        self.lr = mem.put(np.array([lr], np.float32), "float32")
        self.wd = mem.put(np.array([weight_decay], np.float32), "float32")
        self.step = mem.put(np.array([step], np.int32), "int32")
        self.hyper = mem.put(np.array(hyper, np.float32), "float32")
        self.grad_ctl = mem.put(np.array([grad_scale, grad_clip, skip], np.float32), "float32")
        self.rng = mem.put(np.array([seed, index_base], np.int64), "int64")
        self.out = mem.put(np.array([np.nan], np.float32), "float32")  # poisoned: a step writes 0
        self.values = dict(lr=lr, weight_decay=weight_decay, step=step, hyper=hyper, grad_scale=grad_scale,
                           grad_clip=grad_clip, seed=seed, index_base=index_base)
        self.total = total

    def set_step(self, lr, step):
        """New per-step values, written to device memory only (as a training loop does)."""
        self.lr.fill_(lr) if hasattr(self.lr, "fill_") else self.lr.fill(lr)
        self.step.fill_(step) if hasattr(self.step, "fill_") else self.step.fill(step)
        self.values.update(lr=lr, step=step)

    def args(self):
        mem = self.mem
        a = lambda t, dt, shape: (mem.ptr(t), dt, shape)  # noqa: E731
        return ([a(self.lr, "float32", (1,)), a(self.wd, "float32", (1,)), a(self.step, "int32", (1,)),
                 a(self.hyper, "float32", (3,)), a(self.grad_ctl, "float32", (3,)), a(self.rng, "int64", (2,))]
                + [a(t, dt, (n,)) for t, dt, n in zip(self.p, self.dtypes, self.sizes)]
                + [a(t, dt, (n,)) for t, dt, n in zip(self.g, self.grad_dtypes, self.sizes)]
                + [a(self.s[k], self.state_dtypes[k], (self.total,)) for k in ("m", "v", "x", "w") if k in self.s]
                + [a(self.out, "float32", (1,))])

    def norm_args(self, scale_tensor, out):
        mem = self.mem
        return ([(mem.ptr(scale_tensor), "float32", (1,))]
                + [(mem.ptr(t), dt, (n,)) for t, dt, n in zip(self.g, self.grad_dtypes, self.sizes)]
                + [(mem.ptr(out), "float64", (2,))])

    def arrays(self):
        """Host copies, as step_check takes them."""
        mem = self.mem
        d = {"p": [mem.get(t, dt) for t, dt in zip(self.p, self.dtypes)],
             "g": [mem.get(t, dt) for t, dt in zip(self.g, self.grad_dtypes)], "x": None, "w": None}
        d.update({k: mem.get(t, self.state_dtypes[k]) for k, t in self.s.items()})
        return d

    def spec(self):
        v = self.values
        return StepSpec(self.dtypes, self.grad_dtypes, self.state_offsets, v["lr"], v["weight_decay"], v["step"],
                        list(v["hyper"]), self.flags, v["grad_scale"], v["grad_clip"])

    def status(self):
        return float(self.mem.get(self.out, "float32")[0])


def device_pow_agrees(beta, t):
    """Whether glibc's powf (the CPU) and the correctly rounded double pow (the
    device, kernels/common/adamw_math.h fa_powf) give the same bias correction."""
    host = np.float32(1) - np.float32(beta) ** np.float32(t)
    device = np.float32(1) - np.float32(float(np.float32(beta)) ** int(t))
    return host == device


def cpu_kernel_step(cpu, group, before):
    """The CPU kernel on host copies of `before`: what every bit of the GPU's result must be."""
    out = {k: ([a.copy() for a in v] if isinstance(v, list) else (None if v is None else v.copy()))
           for k, v in before.items()}
    s, v = group.spec(), group.values
    cpu.adamw_step(out["p"], out["g"], out["m"], out["v"], s.lr, s.weight_decay, s.step, *s.hyper,
                   max_exp_avg_sq=out["x"], master=out["w"], stochastic=bool(s.flags & STOCHASTIC), seed=v["seed"],
                   index_base=v["index_base"], grad_scale=s.grad_scale, grad_clip=s.grad_clip)
    return out


def assert_same_bits(cpu, group, before, after):
    """Every bit as the CPU kernel's; returns False (nothing compared) when this step's
    bias corrections legitimately differ between the device and glibc."""
    s = group.spec()
    if not (device_pow_agrees(s.hyper[0], s.step) and device_pow_agrees(s.hyper[1], s.step)):
        return False
    exp = cpu_kernel_step(cpu, group, before)
    pairs = [(f"param {k}", a, b) for k, (a, b) in enumerate(zip(after["p"], exp["p"]))]
    pairs += [(k, after[k], exp[k]) for k in ("m", "v", "x", "w") if after[k] is not None]
    for what, a, b in pairs:
        bits = np.dtype(f"u{a.itemsize}")
        bad = np.flatnonzero(a.view(bits) != b.view(bits))
        assert bad.size == 0, f"{what}: {bad.size} of {a.size} elements differ from the CPU kernel's bits, " \
                              f"first at {bad[0]}: {a[bad[0]]!r} vs {b[bad[0]]!r}"
    return True


def run_and_check(entries, cpu, group):
    """One step; the model check and the bitwise check. Returns 1 if the bits were compared."""
    before = group.arrays()
    rc = entries.adamw[group.flags](group.args(), group.mem.stream())
    group.mem.sync()
    assert rc == 0, f"entry returned {rc} (see stderr)"
    assert group.status() == 0.0, f"status output {group.status()} after a valid step"
    after = group.arrays()
    check_step(group.spec(), before, after)
    return int(assert_same_bits(cpu, group, before, after))


def assert_unchanged(before, after, what):
    for k, v in before.items():
        for x, y in zip(v if isinstance(v, list) else [v], after[k] if isinstance(v, list) else [after[k]]):
            if x is not None:
                assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), f"{what}: {k} changed"


# ---------------------------------------------------------------------- checks

def check_correctness(entries, cpu, mem, quick):
    rng = np.random.default_rng()
    sizes = [1, 2, 3, 4, 7, 17, 1023, 4099, 32768, 32771] + ([] if quick else [2**20 + 3])
    cases = bitwise = 0
    for dt in DTYPES:
        for n in sizes:
            bitwise += run_and_check(entries, cpu, DeviceGroup(mem, cpu, rng, [n], [dt], step=int(rng.integers(1, 2000))))
            cases += 1
        for offs in ((1, 0, 0), (0, 2, 0), (0, 0, 3), (1, 2, 3), (3, 3, 3)):
            bitwise += run_and_check(entries, cpu, DeviceGroup(mem, cpu, rng, [32768 + 5, 257], [dt, dt],
                                                               offsets=[offs[:2], offs[1::-1]], state_offset=offs[2]))
            bitwise += run_and_check(entries, cpu, DeviceGroup(mem, cpu, rng, [4099, 13], [dt, dt],
                                                               offsets=[offs[:2]] * 2, specials=True))
            cases += 2
    for count in (1000, 2000):  # 2,000 tensors: three launches of a 768-tensor table
        sizes_k = [int(x) for x in rng.integers(0, 1500, count)]
        sizes_k[3] = 3 * 32768 + 1
        dts = [DTYPES[int(x)] for x in rng.integers(0, 3, count)]
        offs = [(int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in sizes_k]
        bitwise += run_and_check(entries, cpu, DeviceGroup(mem, cpu, rng, sizes_k, dts, offsets=offs, state_offset=1))
        cases += 1
    # Invalid values: the GPU entry cannot see them (device memory); its kernel
    # changes nothing and writes NaN. The CPU entry rejects them with rc != 0.
    for bad in ({"lr": -1.0}, {"step": 0}, {"hyper": (1.0, 0.999, 1e-8)}, {"hyper": (0.9, 0.999, 0.0)},
                {"grad_scale": float("inf")}):
        group = DeviceGroup(mem, cpu, rng, [1000, 3], ["float32", "bfloat16"], **bad)
        before = group.arrays()
        rc = entries.adamw[0](group.args(), mem.stream())
        mem.sync()
        if entries.gpu:
            assert rc == 0 and np.isnan(group.status()), f"{bad}: rc {rc}, status {group.status()}"
        else:
            assert rc != 0, f"{bad}: the CPU entry accepted invalid values"
        assert_unchanged(before, group.arrays(), str(bad))
        cases += 1
    return f"{cases} groups matched the float64 model; {bitwise} also the CPU kernel bit for bit"


PAIRS = [("float32", "float32"), ("float16", "float16"), ("bfloat16", "bfloat16"), ("float16", "float32"),
         ("bfloat16", "float32")]


def variant_group(mem, cpu, rng, flags, **kw):
    sizes = [1, 5, 4099, 32768 + 3, 17, 64, 100_003]
    pairs = [PAIRS[i % len(PAIRS)] for i in range(len(sizes))]
    offsets = [(0, 0)] * len(sizes)
    offsets[2], offsets[4] = (1, 0), (0, 3)
    kw.setdefault("grad_scale", float(np.float32(2.0 ** -int(rng.integers(0, 16)))))
    kw.setdefault("grad_clip", float(rng.uniform(0.2, 1.0)))
    return DeviceGroup(mem, cpu, rng, sizes, [p for p, _ in pairs], grad_dtypes=[g for _, g in pairs],
                       offsets=offsets, flags=flags, seed=int(rng.integers(0, 2**63)),
                       index_base=int(rng.integers(0, 2**40)), step=int(rng.integers(1, 5000)), **kw)


def check_variants(entries, cpu, mem):
    rng = np.random.default_rng()
    cases = bitwise = 0
    for flags in VARIANTS:
        for state_offset in (0, 1):
            bitwise += run_and_check(entries, cpu, variant_group(mem, cpu, rng, flags, state_offset=state_offset))
            cases += 1
        group = variant_group(mem, cpu, rng, flags, skip=1.0)  # a skipped step writes nothing
        before = group.arrays()
        assert entries.adamw[flags](group.args(), mem.stream()) == 0
        mem.sync()
        assert group.status() == 0.0
        assert_unchanged(before, group.arrays(), f"skipped step of variant {flags}")
        cases += 1
    return f"{len(VARIANTS)} variants, {cases} groups (incl. skips) matched the model; {bitwise} also bit for bit"


def grad_norm(entries, group, mem, scale):
    scale_t = mem.put(np.array([scale], np.float32), "float32")
    out = mem.put(np.array([np.nan, np.nan]), "float64")
    assert entries.norm(group.norm_args(scale_t, out), mem.stream()) == 0
    mem.sync()
    return mem.get(out, "float64")


def check_grad_norm(entries, cpu, mem, quick):
    rng = np.random.default_rng()
    cases = 0
    count = 300 if quick else 3000
    sizes = [int(x) for x in rng.integers(0, 5000, count)]
    sizes[7] = 3 * 16384 + 5
    dts = [DTYPES[int(x)] for x in rng.integers(0, 3, count)]
    overflow = DeviceGroup(mem, cpu, rng, [2], ["float32"])  # finite gradients whose unscaling overflows
    overflow.h_g[0] = np.array([1e30, 1.0], np.float32)
    overflow.g[0] = mem.put(overflow.h_g[0], "float32")
    for group, scale, flagged in [(DeviceGroup(mem, cpu, rng, sizes, dts), 1.0, False),
                                  (DeviceGroup(mem, cpu, rng, sizes, dts), 1 / 1024, False),
                                  (DeviceGroup(mem, cpu, rng, sizes, dts, specials=True), 1.0, True),
                                  (overflow, 1e10, True), (overflow, 1e-10, False)]:
        got = grad_norm(entries, group, mem, scale)
        exp_sum, exp_flag = cpu.grad_sumsq(group.h_g, scale)
        assert exp_flag == flagged, "the case did not test what it meant to"
        assert got[1] == (1.0 if exp_flag else 0.0), f"flag {got[1]} vs the CPU's {exp_flag}"
        assert np.float64(got[0]).view(np.uint64) == np.float64(exp_sum).view(np.uint64), \
            f"sum of squares {got[0]!r} vs the CPU's {exp_sum!r}"
        cases += 1
    return f"{cases} norm passes (up to {count} gradients) equal to the CPU's bit for bit, flags included"


def check_torch_fused(entries, cpu, mem):
    torch = mem.torch
    rng = np.random.default_rng()
    sizes, lr, wd, t, hyper = [1 << 20, 4099, 7], 1e-3, 0.1, 10, (0.9, 0.999, 1e-8)
    group = DeviceGroup(mem, cpu, rng, sizes, ["float32"] * 3, lr=lr, weight_decay=wd, step=t, hyper=hyper)
    ps = [torch.nn.Parameter(p.clone()) for p in group.p]
    opt = torch.optim.AdamW(ps, lr=lr, betas=hyper[:2], eps=hyper[2], weight_decay=wd, fused=True)
    m, v = group.s["m"], group.s["v"]
    for p, g, o in zip(ps, group.g, group.state_offsets):
        n = p.numel()
        p.grad = g.clone()
        opt.state[p] = {"step": torch.tensor(float(t - 1), device=p.device),  # torch increments it
                        "exp_avg": m[o:o + n].clone(), "exp_avg_sq": v[o:o + n].clone()}
    opt.step()
    assert entries.adamw[0](group.args(), mem.stream()) == 0
    torch.cuda.synchronize()
    worst = 0.0
    for p, ours, o in zip(ps, group.p, group.state_offsets):
        n = p.numel()
        st = opt.state[p]
        for a, b in ((ours, p.detach()), (m[o:o + n], st["exp_avg"]), (v[o:o + n], st["exp_avg_sq"])):
            worst = max(worst, reference.rel_err(a.double().cpu().numpy(), b.double().cpu().numpy()))
    assert worst <= 1e-5, f"relative difference to torch fused AdamW {worst:.3g} > 1e-5"
    return f"max relative difference {worst:.2g} (torch rounds sqrt(v)/sqrt(bc2) differently)"


def check_cuda_graph(entries, cpu, mem):
    """The whole step's two passes in one captured graph: the norm pass (which
    allocates its scratch stream-ordered) and a master-weight step."""
    torch = mem.torch
    rng = np.random.default_rng()
    group = DeviceGroup(mem, cpu, rng, [100_003, 5, 32768], ["float32", "bfloat16", "float16"], step=1,
                        flags=MASTER)
    scale_t = mem.put(np.array([1 / 256], np.float32), "float32")
    norm_out = mem.put(np.array([np.nan, np.nan]), "float64")
    norm_args, step_args = group.norm_args(scale_t, norm_out), group.args()
    entry = entries.adamw[MASTER]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture (lazy loading, grid query)
        assert entries.norm(norm_args, stream.cuda_stream) == 0
        assert entry(step_args, stream.cuda_stream) == 0
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        s = torch.cuda.current_stream().cuda_stream
        assert entries.norm(norm_args, s) == 0
        assert entry(step_args, s) == 0
    torch.cuda.synchronize()
    bitwise = 0
    for t, lr in ((2, 0.05), (3, 0.02), (10, 0.1), (11, 0.0)):
        group.set_step(lr, t)
        group.out.fill_(float("nan"))
        norm_out.fill_(float("nan"))
        before = group.arrays()
        graph.replay()
        torch.cuda.synchronize()
        assert group.status() == 0.0
        after = group.arrays()
        check_step(group.spec(), before, after)
        bitwise += assert_same_bits(cpu, group, before, after)
        exp_sum, _ = cpu.grad_sumsq(before["g"], 1 / 256)
        assert mem.get(norm_out, "float64")[0] == exp_sum
    return f"4 replays with new lr/step in device memory matched the model ({bitwise} bit for bit) and the CPU's norm"


def check_throughput(entries, cpu, mem, n):
    torch = mem.torch
    rng = np.random.default_rng()
    lines = []

    def time_ms(fn, iters=20):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return statistics.median(times)

    def copy_ms(moved):
        src = torch.empty(moved // 2, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        return time_ms(lambda: dst.copy_(src))  # reads and writes moved/2 bytes each

    for label, sizes, dt, flags in (("1 tensor fp32", [n], "float32", 0), ("1 tensor bf16", [n], "bfloat16", 0),
                                    ("1000 tensors fp32", [n // 1000] * 1000, "float32", 0),
                                    ("1 tensor bf16 + fp32 master", [n], "bfloat16", MASTER)):
        group = DeviceGroup(mem, cpu, rng, sizes, [dt] * len(sizes), lr=1e-4, flags=flags)
        args, stream, entry = group.args(), mem.stream(), entries.adamw[flags]
        assert entry(args, stream) == 0, "entry failed"
        ms_step = time_ms(lambda: entry(args, stream))
        moved = (BYTES_PER_PARAM[dt] + (8 if flags & MASTER else 0)) * sum(sizes)
        ms_copy = copy_ms(moved)
        lines.append(f"{label}, {sum(sizes):,} params: {ms_step:.3f} ms = {moved / ms_step / 1e6:.0f} GB/s; "
                     f"copy of the same bytes {ms_copy:.3f} ms = {moved / ms_copy / 1e6:.0f} GB/s; "
                     f"step/copy time {ms_step / ms_copy:.2f}")
        if label == "1 tensor fp32":
            scale_t = mem.put(np.array([1.0], np.float32), "float32")
            out = mem.put(np.zeros(2), "float64")
            norm_args = group.norm_args(scale_t, out)
            ms_norm = time_ms(lambda: entries.norm(norm_args, stream))
            read = 4 * sum(sizes)
            lines.append(f"norm pass, {sum(sizes):,} fp32 grads: {ms_norm:.3f} ms = {read / ms_norm / 1e6:.0f} GB/s "
                         f"read; the copy above moves {moved / ms_copy / 1e6:.0f} GB/s")
        del group
        torch.cuda.empty_cache()
    return "\n    ".join(lines)


def check_mindspore(cpu):
    import mindspore as ms

    ms.set_context(device_target="GPU")
    from fused_adamw import FusedAdamW

    rng = np.random.default_rng()
    lr, wd, hyper = 0.05, 0.1, (0.9, 0.999, 1e-8)
    dtypes, sizes = list(DTYPES), [4099, 17, 1 << 16]
    ms_dt = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}
    host_p = [reference.random_param(rng, n, dt) for n, dt in zip(sizes, dtypes)]
    host_g = [reference.from_f64(0.1 * rng.standard_normal(n), dt) for n, dt in zip(sizes, dtypes)]
    as_ms = lambda a, dt: ms.Tensor(reference.to_f64(a, dt).astype(np.float32)).astype(ms_dt[dt])  # noqa: E731
    params = [ms.Parameter(as_ms(a, dt), name=f"p{i}") for i, (a, dt) in enumerate(zip(host_p, dtypes))]
    opt = FusedAdamW(params, learning_rate=lr, betas=hyper[:2], eps=hyper[2], weight_decay=wd)
    opt(tuple(as_ms(g, dt) for g, dt in zip(host_g, dtypes)))
    back = lambda t, dt: reference.from_f64(t.astype(ms.float32).asnumpy().astype(np.float64), dt)  # noqa: E731
    offsets, total = state_layout(cpu, sizes)
    zeros = np.zeros(total, np.float32)
    spec = StepSpec(dtypes, dtypes, offsets, lr, wd, 1, list(hyper))
    before = {"p": host_p, "g": host_g, "m": zeros, "v": zeros, "x": None, "w": None}
    exp = model_step(spec, before)
    after = {"p": [back(p.value(), dt) for p, dt in zip(params, dtypes)], "x": None, "w": None,
             "m": exp["m"].astype(np.float32), "v": exp["v"].astype(np.float32)}
    check_step(spec, before, after)
    return "FusedAdamW on MindSpore's GPU target: one step of params matched the model (states: see the variants check)"


def find_sanitizer():
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for d in ("/usr/local/cuda/bin", *glob.glob("/usr/local/cuda-*/bin")):
        if os.path.exists(os.path.join(d, "compute-sanitizer")):
            return os.path.join(d, "compute-sanitizer")
    try:
        import nvidia

        for p in nvidia.__path__:
            hits = glob.glob(os.path.join(p, "**", "compute-sanitizer"), recursive=True)
            if hits:
                return hits[0]
    except ImportError:
        pass
    return None


def check_sanitize(lib):
    tool = find_sanitizer()
    if tool is None:
        raise RuntimeError("compute-sanitizer not found (CUDA toolkit, or pip install nvidia-cuda-sanitizer-api)")
    cmd = [tool, "--tool", "memcheck", "--error-exitcode", "99", sys.executable, __file__, "--quick",
           "--no-bench", "--no-mindspore", "--lib", str(lib), "--only", "correctness"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    tail = "\n".join((res.stdout + res.stderr).splitlines()[-15:])
    assert res.returncode == 0, f"memcheck run failed (rc {res.returncode}):\n{tail}"
    summary = [ln for ln in (res.stdout + res.stderr).splitlines() if "ERROR SUMMARY" in ln]
    return summary[-1].strip() if summary else "memcheck: no errors"


# ------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", help="path of fused_adamw's _C*.so (default: the importable package's)")
    ap.add_argument("--quick", action="store_true", help="smaller correctness cases")
    ap.add_argument("--no-bench", action="store_true", help="skip the throughput measurement")
    ap.add_argument("--bench-elems", type=int, default=1 << 27, help="params per throughput case (default 2^27)")
    ap.add_argument("--no-mindspore", action="store_true", help="skip the MindSpore FusedAdamW check")
    ap.add_argument("--sanitize", action="store_true", help="also run the correctness checks under memcheck")
    ap.add_argument("--only", choices=["correctness"], help="run only this check")
    ap.add_argument("--selftest-cpu", action="store_true",
                    help="no GPU: run the correctness, variant and norm cases through the CPU entries "
                         "(FusedAdamW_v<flags>, FusedGradNorm) to check this script")
    args = ap.parse_args()
    lib = find_library(args.lib)
    results = []

    def run(name, fn, *a):
        t0 = time.time()
        try:
            detail = fn(*a)
            results.append((name, "PASS", detail))
        except Exception as e:  # noqa: BLE001  (report every check, then fail)
            results.append((name, "FAIL", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"))
        print(f"[{results[-1][1]}] {name} ({time.time() - t0:.1f} s): {results[-1][2]}", flush=True)

    cpu = load_cpu_module(lib)
    if args.selftest_cpu:
        entries, mem = Entries(lib, gpu=False), HostMemory()
        run("correctness (CPU entries, selftest)", check_correctness, entries, cpu, mem, args.quick)
        run("variants (CPU entries, selftest)", check_variants, entries, cpu, mem)
        run("grad-norm (CPU entry, selftest)", check_grad_norm, entries, cpu, mem, args.quick)
    else:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is None or not torch.cuda.is_available():
            sys.exit("PyTorch with CUDA is needed to hand device memory to the entry "
                     "(pip install torch); only the MindSpore check would run without it.")
        entries, mem = Entries(lib, gpu=True), TorchMemory()
        print(f"library {lib}\ndevice {torch.cuda.get_device_name()} (sm_{''.join(map(str, torch.cuda.get_device_capability()))})")
        run("correctness", check_correctness, entries, cpu, mem, args.quick)
        if args.only != "correctness":
            run("variants", check_variants, entries, cpu, mem)
            run("grad-norm", check_grad_norm, entries, cpu, mem, args.quick)
            run("torch-fused", check_torch_fused, entries, cpu, mem)
            run("cuda-graph", check_cuda_graph, entries, cpu, mem)
            if not args.no_bench:
                run("throughput", check_throughput, entries, cpu, mem, args.bench_elems)
            if not args.no_mindspore and importlib.util.find_spec("mindspore"):
                run("mindspore", check_mindspore, cpu)
            if args.sanitize:
                run("sanitize", check_sanitize, lib)
    failed = [r for r in results if r[1] != "PASS"]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
