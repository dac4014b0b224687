#!/usr/bin/env python3
"""Checks the CUDA backend on a machine with an NVIDIA GPU (sm_80 or newer,
driver R580+). Nothing in the project's CI has a GPU: this script is how the
CUDA kernel gets verified for real. See docs/cuda.md.

It calls the library's GPU entry `FusedAdamWGPU` (the one MindSpore calls) with
device memory from PyTorch, and checks:
  correctness   every dtype, sizes 1..2^20+3, misaligned starts, 1,000- and
                2,000-tensor groups (table split into launches), NaN/Inf, invalid
                values; against the float64 model (tests/reference.py)
  torch-fused   float32 params/states against torch.optim.AdamW(fused=True)
  cuda-graph    one step captured in a CUDA graph and replayed with new lr and
                step values written to device memory
  throughput    GB/s of a step against a device-to-device copy moving the same bytes
  mindspore     fused_adamw.FusedAdamW on MindSpore's GPU target, when it runs here
  sanitize      (--sanitize) the correctness checks again under compute-sanitizer memcheck

Usage (from the repository root, after `pip install .` with nvcc present):
  python scripts/gpu_check.py [--sanitize] [--quick] [--no-bench] [--lib PATH]
  python scripts/gpu_check.py --selftest-cpu   # no GPU: runs the correctness cases
                                               # through the CPU entry (checks this script)
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
from step_check import check_step, model_step  # noqa: E402

DTYPES = ("float32", "float16", "bfloat16")
NP_STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
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


# ------------------------------------------------- memory: PyTorch or NumPy (selftest)

class TorchMemory:
    """Device arrays from PyTorch; `put` places an array `offset` elements past an
    allocation's start (allocations are 512-byte aligned), to misalign it."""

    def __init__(self):
        import torch

        self.torch = torch
        self.tdtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                       "int32": torch.int32}
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
        raw = np.empty(a.size + offset + 64, dtype=np.int32 if dtype == "int32" else NP_STORAGE[dtype])
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

class DeviceGroup:
    """A group in memory: params/grads at element offsets, flat states, scalars."""

    def __init__(self, mem, rng, sizes, dtypes, offsets=None, state_offset=0, lr=0.05, weight_decay=0.1,
                 step=3, hyper=(0.9, 0.999, 1e-8), specials=False):
        self.mem, self.sizes, self.dtypes = mem, list(sizes), list(dtypes)
        offsets = offsets or [(0, 0)] * len(sizes)
        self.h_p = [reference.random_param(rng, n, dt) for n, dt in zip(sizes, dtypes)]
        self.h_g = [reference.from_f64(0.1 * rng.standard_normal(n), dt) for n, dt in zip(sizes, dtypes)]
        total = sum(sizes)
        self.h_m = (0.01 * rng.standard_normal(total)).astype(np.float32)
        self.h_v = (1e-3 * rng.random(total)).astype(np.float32)
        if specials:  # NaN/Inf in grads and params, NaN in m, Inf in v
            for arrs in (self.h_g, self.h_p):
                for a, dt in zip(arrs, dtypes):
                    idx = rng.choice(a.size, size=min(6, a.size), replace=False)
                    for j, i in enumerate(idx):
                        a[i] = reference.from_f64(np.array([(np.nan, np.inf, -np.inf)[j % 3]]), dt)[0]
            self.h_m[rng.choice(total, min(3, total), replace=False)] = np.nan
            self.h_v[rng.choice(total, min(3, total), replace=False)] = np.inf
        self.p = [mem.put(a, dt, o[0]) for a, dt, o in zip(self.h_p, dtypes, offsets)]
        self.g = [mem.put(a, dt, o[1]) for a, dt, o in zip(self.h_g, dtypes, offsets)]
        self.m = mem.put(self.h_m, "float32", state_offset)
        self.v = mem.put(self.h_v, "float32", state_offset)
        self.lr = mem.put(np.array([lr], np.float32), "float32")
        self.wd = mem.put(np.array([weight_decay], np.float32), "float32")
        self.step = mem.put(np.array([step], np.int32), "int32")
        self.hyper = mem.put(np.array(hyper, np.float32), "float32")
        self.out = mem.put(np.array([np.nan], np.float32), "float32")  # poisoned: a step writes 0
        self.values = (lr, weight_decay, step, hyper)

    def args(self):
        mem = self.mem
        a = lambda t, dt, shape: (mem.ptr(t), dt, shape)  # noqa: E731
        return ([a(self.lr, "float32", (1,)), a(self.wd, "float32", (1,)), a(self.step, "int32", (1,)),
                 a(self.hyper, "float32", (3,))]
                + [a(t, dt, (n,)) for t, dt, n in zip(self.p, self.dtypes, self.sizes)]
                + [a(t, dt, (n,)) for t, dt, n in zip(self.g, self.dtypes, self.sizes)]
                + [a(self.m, "float32", (sum(self.sizes),)), a(self.v, "float32", (sum(self.sizes),)),
                   a(self.out, "float32", (1,))])

    def before(self):
        mem = self.mem
        return ([mem.get(t, dt) for t, dt in zip(self.p, self.dtypes)],
                [mem.get(t, dt) for t, dt in zip(self.g, self.dtypes)],
                mem.get(self.m, "float32"), mem.get(self.v, "float32"))

    def after(self):
        mem = self.mem
        return ([mem.get(t, dt) for t, dt in zip(self.p, self.dtypes)], mem.get(self.m, "float32"),
                mem.get(self.v, "float32"))

    def status(self):
        return float(self.mem.get(self.out, "float32")[0])


def run_and_check(entry, group):
    before = group.before()
    rc = entry(group.args(), group.mem.stream())
    group.mem.sync()
    assert rc == 0, f"entry returned {rc} (see stderr)"
    assert group.status() == 0.0, f"status output {group.status()} after a valid step"
    lr, wd, t, hyper = group.values
    check_step(group.dtypes, before, group.after(), lr, wd, t, hyper)


# ---------------------------------------------------------------------- checks

def check_correctness(entry, mem, quick, gpu):
    rng = np.random.default_rng()
    sizes = [1, 2, 3, 4, 7, 17, 1023, 4099, 32768, 32771] + ([] if quick else [2**20 + 3])
    cases = 0
    for dt in DTYPES:
        for n in sizes:
            run_and_check(entry, DeviceGroup(mem, rng, [n], [dt], step=int(rng.integers(1, 2000))))
            cases += 1
        for offs in ((1, 0, 0), (0, 2, 0), (0, 0, 3), (1, 2, 3), (3, 3, 3)):
            run_and_check(entry, DeviceGroup(mem, rng, [32768 + 5, 257], [dt, dt],
                                             offsets=[offs[:2], offs[1::-1]], state_offset=offs[2]))
            run_and_check(entry, DeviceGroup(mem, rng, [4099, 13], [dt, dt], offsets=[offs[:2]] * 2,
                                             specials=True))
            cases += 2
    for count in (1000, 2000):  # 2,000 tensors: three launches of a 768-tensor table
        sizes_k = [int(x) for x in rng.integers(0, 1500, count)]
        sizes_k[3] = 3 * 32768 + 1
        dts = [DTYPES[int(x)] for x in rng.integers(0, 3, count)]
        offs = [(int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in sizes_k]
        run_and_check(entry, DeviceGroup(mem, rng, sizes_k, dts, offsets=offs, state_offset=1))
        cases += 1
    # Invalid values: the GPU entry cannot see them (device memory); its kernel
    # changes nothing and writes NaN. The CPU entry rejects them with rc != 0.
    for bad in ({"lr": -1.0}, {"step": 0}, {"hyper": (1.0, 0.999, 1e-8)}, {"hyper": (0.9, 0.999, 0.0)}):
        group = DeviceGroup(mem, rng, [1000, 3], ["float32", "bfloat16"], **bad)
        before = group.before()
        rc = entry(group.args(), mem.stream())
        mem.sync()
        if gpu:
            assert rc == 0 and np.isnan(group.status()), f"{bad}: rc {rc}, status {group.status()}"
        else:
            assert rc != 0, f"{bad}: the CPU entry accepted invalid values"
        after = group.after()
        for x, y in zip(before[0] + [before[2], before[3]], after[0] + [after[1], after[2]]):
            assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), f"{bad}: something changed"
        cases += 1
    return f"{cases} groups matched the float64 model"


def check_torch_fused(entry, mem):
    torch = mem.torch
    rng = np.random.default_rng()
    sizes, lr, wd, t, hyper = [1 << 20, 4099, 7], 1e-3, 0.1, 10, (0.9, 0.999, 1e-8)
    group = DeviceGroup(mem, rng, sizes, ["float32"] * 3, lr=lr, weight_decay=wd, step=t, hyper=hyper)
    ps = [torch.nn.Parameter(p.clone()) for p in group.p]
    opt = torch.optim.AdamW(ps, lr=lr, betas=hyper[:2], eps=hyper[2], weight_decay=wd, fused=True)
    at = 0
    for p, g in zip(ps, group.g):
        n = p.numel()
        p.grad = g.clone()
        opt.state[p] = {"step": torch.tensor(float(t - 1), device=p.device),  # torch increments it
                        "exp_avg": group.m[at:at + n].clone(), "exp_avg_sq": group.v[at:at + n].clone()}
        at += n
    opt.step()
    assert entry(group.args(), mem.stream()) == 0
    torch.cuda.synchronize()
    worst = 0.0
    at = 0
    for p, ours in zip(ps, group.p):
        n = p.numel()
        st = opt.state[p]
        for a, b in ((ours, p.detach()), (group.m[at:at + n], st["exp_avg"]), (group.v[at:at + n], st["exp_avg_sq"])):
            worst = max(worst, reference.rel_err(a.double().cpu().numpy(), b.double().cpu().numpy()))
        at += n
    assert worst <= 1e-5, f"relative difference to torch fused AdamW {worst:.3g} > 1e-5"
    return f"max relative difference {worst:.2g} (torch rounds sqrt(v)/sqrt(bc2) differently)"


def check_cuda_graph(entry, mem):
    torch = mem.torch
    rng = np.random.default_rng()
    group = DeviceGroup(mem, rng, [100_003, 5, 32768], ["float32", "bfloat16", "float16"], step=1)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture (lazy loading, grid query)
        assert entry(group.args(), stream.cuda_stream) == 0
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        assert entry(group.args(), torch.cuda.current_stream().cuda_stream) == 0
    torch.cuda.synchronize()
    for t, lr in ((2, 0.05), (3, 0.02), (10, 0.1), (11, 0.0)):
        group.lr.fill_(lr)
        group.step.fill_(t)
        group.out.fill_(float("nan"))
        group.values = (lr, group.values[1], t, group.values[3])
        before = group.before()
        graph.replay()
        torch.cuda.synchronize()
        assert group.status() == 0.0
        check_step(group.dtypes, before, group.after(), lr, group.values[1], t, group.values[3])
    return "4 replays with new lr/step in device memory matched the model"


def check_throughput(entry, mem, n):
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

    for label, sizes, dt in (("1 tensor fp32", [n], "float32"), ("1 tensor bf16", [n], "bfloat16"),
                             ("1000 tensors fp32", [n // 1000] * 1000, "float32")):
        group = DeviceGroup(mem, rng, sizes, [dt] * len(sizes), lr=1e-4)
        args, stream = group.args(), mem.stream()
        assert entry(args, stream) == 0, "entry failed"
        ms_step = time_ms(lambda: entry(args, stream))
        moved = BYTES_PER_PARAM[dt] * sum(sizes)
        src = torch.empty(moved // 2, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        ms_copy = time_ms(lambda: dst.copy_(src))  # reads and writes moved/2 bytes each
        del src, dst, group
        torch.cuda.empty_cache()
        lines.append(f"{label}, {sum(sizes):,} params: {ms_step:.3f} ms = {moved / ms_step / 1e6:.0f} GB/s; "
                     f"copy of the same bytes {ms_copy:.3f} ms = {moved / ms_copy / 1e6:.0f} GB/s; "
                     f"step/copy time {ms_step / ms_copy:.2f}")
    return "\n    ".join(lines)


def check_mindspore():
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
    out_p = [back(p.value(), dt) for p, dt in zip(params, dtypes)]
    zeros = np.zeros(sum(sizes), np.float32)
    _, exp_m, exp_v = model_step(dtypes, (host_p, host_g, zeros, zeros), lr, wd, 1, hyper)
    try:
        out_m = np.concatenate([np.asarray(opt.exp_avg[i].asnumpy()).reshape(-1) for i in range(len(params))])
        out_v = np.concatenate([np.asarray(opt.exp_avg_sq[i].asnumpy()).reshape(-1) for i in range(len(params))])
        note = "params and states"
    except Exception:  # noqa: BLE001  (state layout is the optimizer's business)
        out_m, out_v, note = exp_m.astype(np.float32), exp_v.astype(np.float32), "params (states not readable)"
    check_step(dtypes, (host_p, host_g, zeros, zeros), (out_p, out_m, out_v), lr, wd, 1, hyper)
    return f"FusedAdamW on MindSpore's GPU target: one step of {note} matched the model"


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
                    help="no GPU: run the correctness cases through the CPU entry FusedAdamW")
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

    if args.selftest_cpu:
        run("correctness (CPU entry, selftest)", check_correctness, AotEntry(lib, "FusedAdamW"), HostMemory(),
            args.quick, False)
    else:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is None or not torch.cuda.is_available():
            sys.exit("PyTorch with CUDA is needed to hand device memory to the entry "
                     "(pip install torch); only the MindSpore check would run without it.")
        entry, mem = AotEntry(lib, "FusedAdamWGPU"), TorchMemory()
        print(f"library {lib}\ndevice {torch.cuda.get_device_name()} (sm_{''.join(map(str, torch.cuda.get_device_capability()))})")
        run("correctness", check_correctness, entry, mem, args.quick, True)
        if args.only != "correctness":
            run("torch-fused", check_torch_fused, entry, mem)
            run("cuda-graph", check_cuda_graph, entry, mem)
            if not args.no_bench:
                run("throughput", check_throughput, entry, mem, args.bench_elems)
            if not args.no_mindspore and importlib.util.find_spec("mindspore"):
                run("mindspore", check_mindspore)
            if args.sanitize:
                run("sanitize", check_sanitize, lib)
    failed = [r for r in results if r[1] != "PASS"]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
