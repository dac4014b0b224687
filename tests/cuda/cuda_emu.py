"""Runs the CUDA kernel's own source on the CPU (see kernels/cuda/cuda_on_cpu.h)
for the tests: builds tests/cuda/emu_driver.cpp with g++ and lays a group's
tensors out in guarded NumPy buffers at chosen alignments.
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
from step_check import check_step  # noqa: E402

DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}
NP_STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
GUARD = 16  # elements of poison before and after every array
POISON = 0xA5  # byte pattern of the guards


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
    P = ctypes.c_void_p
    h.emu_adamw_step.restype = ctypes.c_int
    h.emu_adamw_step.argtypes = [ctypes.c_int, P, P, P, P, P, P, P, P, P, P, P, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, P, P, P, P, ctypes.c_char_p, ctypes.c_int]
    h.emu_chunk_elems.restype = ctypes.c_longlong
    return h


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
    offsets `offsets` (p, g), flat float32 states starting `state_offset`
    elements past a 64-byte boundary, and device-style scalars."""

    def __init__(self, rng, sizes, dtypes, offsets=None, state_offset=0, lr=0.05, weight_decay=0.1,
                 step=3, betas=(0.9, 0.999), eps=1e-8):
        self.sizes, self.dtypes = list(sizes), list(dtypes)
        offsets = offsets or [(0, 0)] * len(self.sizes)
        self.p, self.g = [], []
        for n, dt, (po, go) in zip(self.sizes, self.dtypes, offsets):
            p, g = Guarded(n, NP_STORAGE[dt], po), Guarded(n, NP_STORAGE[dt], go)
            p.a[:] = reference.random_param(rng, n, dt)
            g.a[:] = reference.from_f64(0.1 * rng.standard_normal(n), dt)
            self.p.append(p)
            self.g.append(g)
        total = sum(self.sizes)
        self.m, self.v = Guarded(total, np.float32, state_offset), Guarded(total, np.float32, state_offset)
        # Mid-training states, so every term of the update matters.
        self.m.a[:] = 0.01 * rng.standard_normal(total)
        self.v.a[:] = 1e-3 * rng.random(total)
        self.lr = np.array([lr], np.float32)
        self.weight_decay = np.array([weight_decay], np.float32)
        self.step = np.array([step], np.int32)
        self.hyper = np.array([betas[0], betas[1], eps], np.float32)
        self.status = np.array([np.nan], np.float32)  # poisoned: a step must overwrite it

    def snapshot(self):
        return ([p.a.copy() for p in self.p], [g.a.copy() for g in self.g], self.m.a.copy(), self.v.a.copy())

    def run(self, lib, capacity=0, device_blocks=132 * 6, max_launches=64):
        """One step through the emulated launches; returns (grids, counts, vector_accesses)."""
        n = len(self.sizes)
        vp = lambda xs: (ctypes.c_void_p * max(n, 1))(*xs)  # noqa: E731
        params, grads = vp([p.ptr for p in self.p]), vp([g.ptr for g in self.g])
        numels = (ctypes.c_longlong * max(n, 1))(*self.sizes)
        codes = (ctypes.c_int * max(n, 1))(*[DTYPE_CODE[d] for d in self.dtypes])
        grids, counts = (ctypes.c_int * max_launches)(), (ctypes.c_int * max_launches)()
        launches, vec = ctypes.c_int(0), ctypes.c_longlong(0)
        err = ctypes.create_string_buffer(512)
        addr = lambda a: a.ctypes.data  # noqa: E731
        rc = lib.emu_adamw_step(
            n, ctypes.addressof(params), ctypes.addressof(grads), ctypes.addressof(numels), ctypes.addressof(codes),
            self.m.ptr, self.v.ptr, addr(self.lr), addr(self.weight_decay), addr(self.step), addr(self.hyper),
            addr(self.status), capacity, device_blocks, max_launches, ctypes.addressof(grids),
            ctypes.addressof(counts), ctypes.addressof(launches), ctypes.addressof(vec), err, len(err))
        if rc != 0:
            raise AssertionError("emulated step failed: " + err.value.decode())
        k = launches.value
        return list(grids[:k]), list(counts[:k]), vec.value

    def guards_intact(self):
        return all(x.guards_intact() for x in self.p + self.g + [self.m, self.v])



def cpu_kernel_step(group, before):
    """The CPU kernel (fused_adamw._C.adamw_step, the active ISA path) on copies of
    `before`; returns (params, exp_avg, exp_avg_sq)."""
    from fused_adamw import _C

    ps = [p.copy() for p in before[0]]
    m, v = before[2].copy(), before[3].copy()
    _C.adamw_step(ps, [g.copy() for g in before[1]], m, v, float(group.lr[0]), float(group.weight_decay[0]),
                  int(group.step[0]), *[float(x) for x in group.hyper])
    return ps, m, v


def assert_bitwise_equal_to_cpu_kernel(group, before):
    """The emulated CUDA kernel rounds every operation as the CPU kernel does
    (no contraction on either side, the same adamw_update), so every bit of its
    params and states equals the CPU kernel's. bias corrections: the emulation
    takes the host powf like the CPU; on a GPU the double pow differs in a few
    (beta, t) pairs (test_cuda_bias_correction.py)."""
    exp_ps, exp_m, exp_v = cpu_kernel_step(group, before)
    for k, (out, exp) in enumerate(zip([p.a for p in group.p] + [group.m.a, group.v.a], exp_ps + [exp_m, exp_v])):
        what = f"param {k}" if k < len(exp_ps) else ("exp_avg", "exp_avg_sq")[k - len(exp_ps)]
        bits = np.dtype(f"u{out.itemsize}")
        bad = np.flatnonzero(out.view(bits) != exp.view(bits))
        assert len(bad) == 0, f"{what}: {len(bad)} of {out.size} elements differ from the CPU kernel's bits, " \
                              f"first at {bad[0]}: {out[bad[0]]!r} vs {exp[bad[0]]!r}"


def assert_matches_model(group, before):
    """Everything a step wrote agrees with the float64 model and, bit for bit,
    with the CPU kernel; the guards are untouched and the status says success."""
    assert group.guards_intact(), "a write landed outside its tensor"
    assert group.status[0] == 0.0, f"status {group.status[0]} after a valid step"
    after = ([p.a for p in group.p], group.m.a, group.v.a)
    check_step(group.dtypes, before, after, float(group.lr[0]), float(group.weight_decay[0]),
               int(group.step[0]), [float(x) for x in group.hyper])
    assert_bitwise_equal_to_cpu_kernel(group, before)
