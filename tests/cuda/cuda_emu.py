"""Runs the CUDA kernels' own source on the CPU (see kernels/cuda/cuda_on_cpu.h)
for the tests: builds tests/cuda/emu_driver.cpp with g++ and lays a group's
tensors out in guarded NumPy buffers at chosen alignments, with the flat states
in the padded layout (docs/kernel-interface.md) and poisoned pads.
"""
import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import reference  # noqa: E402  (the float64 model shared by every backend's tests)
from step_check import AMSGRAD, BF16_STATE, MASTER, STOCHASTIC, StepSpec, check_step, state_dtype  # noqa: E402
from fused_adamw._groups import state_offsets  # noqa: E402  (the padded layout's one Python definition)

DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}
NP_STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
GUARD = 16  # elements of poison before and after every array
POISON = 0xA5  # byte pattern of the guards and of the states' pads
# Every valid variant: master and stochastic rounding exclude each other.
VARIANTS = [f for f in range(16) if not (f & MASTER and f & STOCHASTIC)]


def build(out_dir):
    """Compiles the emulation library into out_dir; returns the ctypes handle."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++) on PATH")
    lib = Path(out_dir) / "fa_cuda_emu.so"
    subprocess.run(
        [cxx, "-std=c++17", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas", "-Werror",
         "-o", str(lib), str(ROOT / "tests/cuda/emu_driver.cpp")],
        check=True,
    )
    h = ctypes.CDLL(str(lib))
    P, I = ctypes.c_void_p, ctypes.c_int
    h.emu_adamw_step.restype = I
    h.emu_adamw_step.argtypes = [ctypes.c_uint, I, P, P, P, P, P, P, P, I, I, I, P, P, P, P, ctypes.c_char_p, I]
    h.emu_grad_norm.restype = I
    h.emu_grad_norm.argtypes = [I, P, P, P, P, P, I, I, P, ctypes.c_char_p, I]
    for name in ("emu_chunk_elems", "emu_norm_chunk_elems"):
        getattr(h, name).restype = ctypes.c_longlong
    return h


def pointers(ptrs, ctype=ctypes.c_void_p):
    """A C array of `ctype` (at least one element, so empty lists still have an address)."""
    return (ctype * max(len(ptrs), 1))(*ptrs)


class Guarded:
    """An array of n elements whose first element sits `offset` elements past a
    64-byte boundary, inside a buffer whose other bytes are poison."""

    def __init__(self, n, np_dtype, offset=0):
        item = np.dtype(np_dtype).itemsize
        self.raw = np.full((2 * GUARD + offset + n) * item + 64, POISON, dtype=np.uint8)
        base = (-self.raw.ctypes.data) % 64 + GUARD * item  # a 64-byte boundary past the front guard
        start = base + offset * item
        self.lo, self.hi = start, start + n * item
        self.a = self.raw[self.lo:self.hi].view(np_dtype)

    def guards_intact(self):
        return bool((self.raw[:self.lo] == POISON).all() and (self.raw[self.hi:] == POISON).all())

    @property
    def ptr(self):
        return self.a.ctypes.data


class Group:
    """A parameter group: params/grads of the given sizes and dtypes at element
    offsets `offsets` (p, g); flat states (padded layout, pads poisoned) whose
    buffers start `state_offset` elements past a 64-byte boundary; the variant
    `flags` and its extra states; device-style per-step values."""

    def __init__(self, rng, sizes, dtypes, offsets=None, state_offset=0, lr=0.05, weight_decay=0.1,
                 step=3, betas=(0.9, 0.999), eps=1e-8, flags=0, grad_dtypes=None, grad_scale=1.0, grad_clip=1.0,
                 skip=0.0, seed=0, index_base=0):
        self.sizes, self.dtypes = list(sizes), list(dtypes)
        self.grad_dtypes = list(grad_dtypes or dtypes)
        self.flags = flags
        offsets = offsets or [(0, 0)] * len(self.sizes)
        self.p, self.g = [], []
        for n, dt, gdt, (po, go) in zip(self.sizes, self.dtypes, self.grad_dtypes, offsets):
            p, g = Guarded(n, NP_STORAGE[dt], po), Guarded(n, NP_STORAGE[gdt], go)
            p.a[:] = reference.random_param(rng, n, dt)
            g.a[:] = reference.from_f64(0.1 * rng.standard_normal(n), gdt)
            self.p.append(p)
            self.g.append(g)
        self.state_offsets, total = state_offsets(self.sizes)
        sd = state_dtype(flags)
        used = np.zeros(total, bool)
        for o, n in zip(self.state_offsets, self.sizes):
            used[o:o + n] = True

        def state(values):
            buf = Guarded(total, NP_STORAGE[sd], state_offset)
            buf.a[:] = reference.from_f64(values, sd)
            buf.a.view(np.uint8).reshape(-1, buf.a.itemsize)[~used] = POISON  # pads: never read or written
            return buf

        # Mid-training states, so every term of the update matters.
        self.m = state(0.01 * rng.standard_normal(total))
        self.v = state(1e-3 * rng.random(total))
        # amsgrad: a running maximum above the new exp_avg_sq for some elements, below for others.
        self.x = state(2e-3 * rng.random(total)) if flags & AMSGRAD else None
        self.w = None
        if flags & MASTER:  # float32 masters of 16-bit params: the param plus what 16 bits cannot hold
            self.w = Guarded(total, np.float32, state_offset)
            self.w.a.view(np.uint8)[:] = POISON  # float32 params' slices are unused too
            for p, dt, o, n in zip(self.p, self.dtypes, self.state_offsets, self.sizes):
                if dt != "float32":
                    p64 = reference.to_f64(p.a, dt)
                    self.w.a[o:o + n] = p64 * (1 + 2.0**-10 * rng.standard_normal(n))
        self.lr = np.array([lr], np.float32)
        self.weight_decay = np.array([weight_decay], np.float32)
        self.step = np.array([step], np.int32)
        self.hyper = np.array([betas[0], betas[1], eps], np.float32)
        self.grad_ctl = np.array([grad_scale, grad_clip, skip], np.float32)
        self.rng = np.array([seed, index_base], np.int64)
        self.status = np.array([np.nan], np.float32)  # poisoned: a step must overwrite it

    def states(self):
        return [b for b in (self.m, self.v, self.x, self.w) if b is not None]

    def spec(self):
        return StepSpec(self.dtypes, self.grad_dtypes, self.state_offsets, float(self.lr[0]),
                        float(self.weight_decay[0]), int(self.step[0]), [float(h) for h in self.hyper],
                        self.flags, float(self.grad_ctl[0]), float(self.grad_ctl[1]))

    def arrays(self):
        """The group's arrays as step_check takes them (views, not copies)."""
        return {"p": [p.a for p in self.p], "g": [g.a for g in self.g], "m": self.m.a, "v": self.v.a,
                "x": self.x.a if self.x else None, "w": self.w.a if self.w else None}

    def snapshot(self):
        return {k: ([a.copy() for a in v] if isinstance(v, list) else (None if v is None else v.copy()))
                for k, v in self.arrays().items()}

    def run(self, lib, capacity=0, device_blocks=132 * 6, max_launches=64):
        """One step through the emulated launches; returns (grids, counts, vector_accesses)."""
        n = len(self.sizes)
        params, grads = pointers([p.ptr for p in self.p]), pointers([g.ptr for g in self.g])
        numels = pointers(self.sizes, ctypes.c_longlong)
        codes = pointers([DTYPE_CODE[d] for d in self.dtypes], ctypes.c_int)
        grad_codes = pointers([DTYPE_CODE[d] for d in self.grad_dtypes], ctypes.c_int)
        addr = lambda a: a.ctypes.data  # noqa: E731
        states = pointers([b.ptr if b else None for b in (self.m, self.v, self.x, self.w)])
        values = pointers([addr(a) for a in (self.lr, self.weight_decay, self.step, self.hyper, self.grad_ctl,
                                             self.rng, self.status)])
        grids, counts = (ctypes.c_int * max_launches)(), (ctypes.c_int * max_launches)()
        launches, vec = ctypes.c_int(0), ctypes.c_longlong(0)
        err = ctypes.create_string_buffer(512)
        ref = ctypes.addressof
        rc = lib.emu_adamw_step(self.flags, n, ref(params), ref(grads), ref(numels), ref(codes), ref(grad_codes),
                                ref(states), ref(values), capacity, device_blocks, max_launches, ref(grids),
                                ref(counts), ref(launches), ref(vec), err, len(err))
        if rc != 0:
            raise AssertionError("emulated step failed: " + err.value.decode())
        k = launches.value
        return list(grids[:k]), list(counts[:k]), vec.value

    def guards_intact(self):
        return all(x.guards_intact() for x in self.p + self.g + self.states())


def cpu_kernel_step(group, before):
    """The CPU kernel (fused_adamw._C.adamw_step, the active ISA path) on copies of
    `before`, with the group's variant; returns the arrays it wrote."""
    from fused_adamw import _C

    out = {k: ([a.copy() for a in v] if isinstance(v, list) else (None if v is None else v.copy()))
           for k, v in before.items()}
    s = group.spec()
    _C.adamw_step(out["p"], out["g"], out["m"], out["v"], s.lr, s.weight_decay, s.step, *s.hyper,
                  max_exp_avg_sq=out["x"], master=out["w"], stochastic=bool(s.flags & STOCHASTIC),
                  seed=int(group.rng[0]), index_base=int(group.rng[1]), grad_scale=s.grad_scale,
                  grad_clip=s.grad_clip)
    return out


def assert_same_bits(got, expected, what):
    bits = np.dtype(f"u{got.itemsize}")
    bad = np.flatnonzero(got.view(bits) != expected.view(bits))
    assert len(bad) == 0, f"{what}: {len(bad)} of {got.size} elements differ from the CPU kernel's bits, " \
                          f"first at {bad[0]}: {got[bad[0]]!r} vs {expected[bad[0]]!r}"


def assert_bitwise_equal_to_cpu_kernel(group, before):
    """The emulated CUDA kernel rounds every operation as the CPU kernel does
    (no contraction on either side, the same adamw_update and rounding.h), so
    every bit of its params and states, pads included, equals the CPU kernel's.
    Bias corrections: the emulation takes the host powf like the CPU; on a GPU
    the double pow differs in a few (beta, t) pairs (test_cuda_bias_correction.py)."""
    exp = cpu_kernel_step(group, before)
    got = group.arrays()
    for k, (a, b) in enumerate(zip(got["p"], exp["p"])):
        assert_same_bits(a, b, f"param {k}")
    for name in ("m", "v", "x", "w"):
        if got[name] is not None:
            assert_same_bits(got[name], exp[name], name)


def assert_matches_model(group, before):
    """Everything a step wrote agrees with the float64 model and, bit for bit,
    with the CPU kernel; the guards are untouched and the status says success."""
    assert group.guards_intact(), "a write landed outside its tensor"
    assert group.status[0] == 0.0, f"status {group.status[0]} after a valid step"
    check_step(group.spec(), before, group.arrays())
    assert_bitwise_equal_to_cpu_kernel(group, before)


def assert_unchanged(group, before):
    """Nothing was written: every array holds its bits from `before`."""
    assert group.guards_intact(), "a write landed outside its tensor"
    now = group.arrays()
    for k, v in before.items():
        for a, b in zip(v if isinstance(v, list) else [v], now[k] if isinstance(v, list) else [now[k]]):
            if a is not None:
                assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{k} changed"


def grad_norm(lib, grads, dtypes, grad_scale=1.0, capacity=0, device_blocks=132 * 8):
    """The gradient-norm pass (kernels/cuda/grad_norm_kernel.cuh) emulated on
    `grads` (arrays in their dtypes); returns (sum of squares, nonfinite flag as
    the kernel wrote it (0.0 or 1.0), number of lanes launches)."""
    ptrs = pointers([g.ctypes.data for g in grads])
    numels = pointers([g.size for g in grads], ctypes.c_longlong)
    codes = pointers([DTYPE_CODE[d] for d in dtypes], ctypes.c_int)
    scale = np.array([grad_scale], np.float32)
    out = np.array([np.nan, np.nan])  # poisoned: the pass must write both
    launches = ctypes.c_int(0)
    err = ctypes.create_string_buffer(512)
    ref = ctypes.addressof
    rc = lib.emu_grad_norm(len(grads), ref(ptrs), ref(numels), ref(codes), scale.ctypes.data, out.ctypes.data,
                           capacity, device_blocks, ref(launches), err, len(err))
    if rc != 0:
        raise AssertionError("emulated norm pass failed: " + err.value.decode())
    return float(out[0]), float(out[1]), launches.value
