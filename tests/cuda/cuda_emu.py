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
        [cxx, "-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas", "-Werror",
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

    def expected(self, before):
        """The float64 model's p, m, v for a snapshot taken before the step."""
        ps, gs, m, v = before
        out_p, out_m, out_v, at = [], [], [], 0
        b1, b2, eps = (float(x) for x in self.hyper)
        for p, g, dt, n in zip(ps, gs, self.dtypes, self.sizes):
            with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf tests
                rp, rm, rv = reference.adamw_step64(
                    reference.to_f64(p, dt), reference.to_f64(g, dt), m[at:at + n].astype(np.float64),
                    v[at:at + n].astype(np.float64), float(self.lr[0]), float(self.weight_decay[0]),
                    int(self.step[0]), b1, b2, eps)
            out_p.append(rp)
            out_m.append(rm)
            out_v.append(rv)
            at += n
        return out_p, np.concatenate(out_m) if out_m else np.zeros(0), np.concatenate(out_v) if out_v else np.zeros(0)

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


def _same_specials(out, ref, what):
    """NaN where the model has NaN, the same infinities; returns the mask of the rest."""
    out = np.asarray(out, np.float64)
    assert np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN positions differ from the model"
    inf = np.isinf(ref)
    assert np.array_equal(np.isinf(out), inf) and np.array_equal(out[inf], ref[inf]), \
        f"{what}: infinities differ from the model"
    return np.isfinite(ref)


def _close_f32(out, ref, scale, what):
    """float32 results: norm-wise relative error <= 1e-6 and, element by element,
    within 1e-6 of the size of the operands (so one wrong element fails too)."""
    ok = _same_specials(out, ref, what)
    out, ref, scale = np.asarray(out, np.float64)[ok], ref[ok], scale[ok]
    if out.size == 0:
        return
    err = reference.rel_err(out, ref)
    assert err <= 1e-6, f"{what}: relative error {err:.3g} > 1e-6"
    bad = np.abs(out - ref) > 1e-6 * scale + 1e-30
    assert not bad.any(), f"{what}: {bad.sum()} elements off, first at {np.argmax(bad)}: " \
                          f"{out[np.argmax(bad)]!r} vs {ref[np.argmax(bad)]!r}"


def assert_matches_model(group, before):
    """Everything a step wrote agrees with the float64 model, the guards are
    untouched and the status says success."""
    assert group.guards_intact(), "a write landed outside its tensor"
    assert group.status[0] == 0.0, f"status {group.status[0]} after a valid step"
    exp_p, exp_m, exp_v = group.expected(before)
    ps, gs, m0, v0 = before
    b1, b2 = (float(x) for x in group.hyper[:2])
    decay = 1.0 - float(group.lr[0]) * float(group.weight_decay[0])
    g64 = np.concatenate([reference.to_f64(g, dt) for g, dt in zip(gs, group.dtypes)] or [np.zeros(0)])
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # Size of the operands each float32 result is rounded against.
        m_ops = b1 * np.abs(m0) + (1 - b1) * np.abs(g64)
        v_ops = b2 * np.abs(v0) + (1 - b2) * g64 * g64
        _close_f32(group.m.a, exp_m, m_ops, "exp_avg")
        _close_f32(group.v.a, exp_v, v_ops, "exp_avg_sq")
        # The update u = step_size * m / (sqrt(v') + eps) inherits m's and v's
        # relative rounding errors, magnified where m cancels: their condition
        # numbers widen the bound for that element only.
        cond = np.nan_to_num(m_ops / np.abs(exp_m), nan=0.0, posinf=1e30) + 0.5 * np.nan_to_num(
            v_ops / exp_v, nan=0.0, posinf=1e30)
        at = 0
        for k, (p, p_in, ref, dt) in enumerate(zip(group.p, ps, exp_p, group.dtypes)):
            n = group.sizes[k]
            what = f"param {k} ({dt}, {n} elements)"
            out = reference.to_f64(p.a, dt)
            if dt == "float32":
                p64 = p_in.astype(np.float64)
                update = np.abs(decay * p64 - ref)
                _close_f32(out, ref, np.abs(p64) + update * (1.0 + cond[at:at + n]), what)
            else:
                ok = _same_specials(out, ref, what)
                ulps = reference.ulp_distance(p.a[ok], ref[ok], dt)
                assert ulps.size == 0 or ulps.max() <= 1, \
                    f"{what}: {int((ulps > 1).sum())} elements more than one rounding off"
            at += n
