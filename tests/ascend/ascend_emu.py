"""Runs the Ascend C kernel's own source on the CPU for the tests: builds
tests/ascend/emu/adamw_group_driver.cpp (the op_kernel/fused_adamw_group.cpp source
and the host tiling plan, against the emulated Ascend C API in tests/ascend/emu)
with g++, once per dtype column (param, grad, state dtype) as CANN builds one
binary per OpDef column, and lays a group out in guarded NumPy buffers
(tests/cuda/cuda_emu.Guarded)."""
import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EMU = HERE / "emu"
OP_KERNEL = ROOT / "kernels" / "ascend" / "op_kernel"
OP_HOST = ROOT / "kernels" / "ascend" / "op_host"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "cuda"))
import reference  # noqa: E402  (the float64 model shared by every backend's tests)
from cuda_emu import NP_STORAGE, Guarded  # noqa: E402
from step_check import AMSGRAD, BF16_STATE, MASTER, STOCHASTIC, StepSpec, check_step  # noqa: E402,F401

C_TYPE = {"float32": "float", "float16": "half", "bfloat16": "bfloat16_t"}
UB_910B = 192 * 1024
CORES_910B = 48
# -ffp-contract=off: every vector op rounds once, as on the vector unit.
CXXFLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-ffp-contract=off",
            "-fPIC", "-shared"]
STATS = ("blocks", "vector_ops", "copies_in", "copies_out", "ub_high_water", "gm_shared_blocks")
PAD_POISON = np.uint32(0x7FC0DEAD)  # a NaN payload in the state padding (check_step: never written)


class EmulationError(AssertionError):
    """The emulated launch stopped: a tiling error or an Ascend C protocol error."""


def compile_lib(sources, out, defines=(), kernel_dir=OP_KERNEL):
    cxx = shutil.which("g++")
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++) on PATH")
    cmd = [cxx, *CXXFLAGS, *[f"-D{d}" for d in defines], f"-I{EMU}", f"-I{kernel_dir}", f"-I{OP_HOST}",
           *map(str, sources), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("g++ failed:\n" + result.stderr[-4000:])
    return ctypes.CDLL(str(out))


def build(out_dir, dtype, grad_dtype=None, state_dtype="float32", kernel_dir=OP_KERNEL):
    """The kernel for one dtype column, compiled into out_dir; the ctypes handle."""
    grad_dtype = grad_dtype or dtype
    name = f"fa_ascend_emu_{dtype}_{grad_dtype}_{state_dtype}.so"
    lib = compile_lib([EMU / "adamw_group_driver.cpp", OP_HOST / "adamw_tiling_plan.cpp"], Path(out_dir) / name,
                      [f"DTYPE_VAR={C_TYPE[dtype]}", f"DTYPE_GRAD={C_TYPE[grad_dtype]}",
                       f"DTYPE_STATES={C_TYPE[state_dtype]}"], kernel_dir)
    P = ctypes.c_void_p
    lib.fa_emu_adamw_group.restype = ctypes.c_int
    lib.fa_emu_adamw_group.argtypes = [ctypes.c_uint32, P, P, P, ctypes.c_uint32, P, P, ctypes.c_int64, P, P, P,
                                       ctypes.c_uint32, ctypes.c_uint32, P, ctypes.c_char_p, ctypes.c_int]
    lib.fa_emu_one_minus_pow.restype = ctypes.c_float
    lib.fa_emu_one_minus_pow.argtypes = [ctypes.c_float, ctypes.c_int64]
    lib.fa_emu_coeffs.restype = None
    lib.fa_emu_coeffs.argtypes = [ctypes.c_float, ctypes.c_float, ctypes.c_int32, ctypes.c_float,
                                  ctypes.c_float, ctypes.c_float, P]
    lib.fa_emu_param_bytes.restype = ctypes.c_uint32
    lib.fa_emu_tile_len.restype = ctypes.c_uint32
    lib.fa_emu_tile_len.argtypes = [ctypes.c_uint32, ctypes.c_uint32]
    lib.fa_emu_state_align.restype = ctypes.c_uint32
    lib.fa_emu_sr_mismatches.restype = ctypes.c_uint32
    lib.fa_emu_sr_mismatches.argtypes = [ctypes.c_uint64, ctypes.c_uint32]
    assert lib.fa_emu_param_bytes() == np.dtype(NP_STORAGE[dtype]).itemsize
    return lib


def state_to_f64(a, state_dtype):
    return reference.to_f64(a, state_dtype)


class Group:
    """One parameter group of one dtype column in guarded buffers: params/grads of
    the given sizes (each its own allocation, as the tensors of a list are), flat
    states (and the fp32 master with MASTER) in the padded layout
    (fused_adamw._groups.state_offsets, the optimizer's own) with poisoned pads,
    the operator's coeffs/counters inputs, and the poisoned `done` output that
    the kernel must leave alone."""

    def __init__(self, rng, sizes, dtype, grad_dtype=None, state_dtype="float32", flags=0, lr=1e-3,
                 weight_decay=0.1, step=3, betas=(0.9, 0.999), eps=1e-8, grad_scale=1.0, grad_clip=1.0, skip=0.0,
                 seed=0, index_base=0):
        from fused_adamw._groups import state_offsets

        self.sizes, self.dtype, self.flags = list(sizes), dtype, flags
        self.grad_dtype, self.state_dtype = grad_dtype or dtype, state_dtype
        self.p, self.g = [], []
        for n in self.sizes:
            p, g = Guarded(n, NP_STORAGE[dtype]), Guarded(n, NP_STORAGE[self.grad_dtype])
            p.a[:] = reference.random_param(rng, n, dtype)
            g.a[:] = reference.from_f64(0.1 * rng.standard_normal(n), self.grad_dtype)
            self.p.append(p)
            self.g.append(g)
        self.offsets, total = state_offsets(self.sizes)
        self.pad = np.ones(total, bool)
        for off, n in zip(self.offsets, self.sizes):
            self.pad[off:off + n] = False
        live = int((~self.pad).sum())
        # Mid-training states: every term matters.
        init = [0.01 * rng.standard_normal(live), 1e-3 * rng.random(live)]
        if flags & AMSGRAD:
            init.append(init[1] * rng.choice([0.5, 2.0], live))  # vmax above v for about half the elements
        self.states = []
        for values in init:
            s = Guarded(total, NP_STORAGE[state_dtype])
            s.a.view(np.uint16 if state_dtype == "bfloat16" else np.uint32)[:] = PAD_POISON >> (
                16 if state_dtype == "bfloat16" else 0)
            s.a[~self.pad] = reference.from_f64(values, state_dtype)
            self.states.append(s)
        self.master = None
        if flags & MASTER:
            self.master = Guarded(total, np.float32)
            self.master.a.view(np.uint32)[:] = PAD_POISON
            # The params are the master's RNE copies, as after any step.
            for p, off, n in zip(self.p, self.offsets, self.sizes):
                self.master.a[off:off + n] = rng.standard_normal(n).astype(np.float32)
                p.a[:] = reference.from_f64(self.master.a[off:off + n], dtype)
        self.coeffs = np.array([lr, weight_decay, betas[0], betas[1], eps, grad_scale, grad_clip, skip], np.float32)
        self.counters = np.array([step, seed, index_base, 1 if flags & STOCHASTIC else 0], np.int64)
        self.done = np.array([np.nan], np.float32)

    @property
    def m(self):
        return self.states[0]

    @property
    def v(self):
        return self.states[1]

    def snapshot(self):
        """Everything the launch may write or must not: params, grads, states, master."""
        return ([p.a.copy() for p in self.p], [g.a.copy() for g in self.g], [s.a.copy() for s in self.states],
                None if self.master is None else self.master.a.copy())

    def compact(self, state):
        """The tensors' slices of a padded state, concatenated (the model's layout)."""
        return state[~self.pad]

    def run(self, lib, cores=CORES_910B, ub=UB_910B):
        """One emulated launch; returns the launch statistics (STATS) as a dict."""
        n = len(self.sizes)
        arr = lambda xs: (ctypes.c_void_p * max(len(xs), 1))(*xs)  # noqa: E731
        params, grads = arr([p.ptr for p in self.p]), arr([g.ptr for g in self.g])
        states = arr([s.ptr for s in self.states])
        numels = (ctypes.c_int64 * max(n, 1))(*self.sizes)
        stats = (ctypes.c_uint64 * 6)()
        err = ctypes.create_string_buffer(1024)
        rc = lib.fa_emu_adamw_group(n, params, grads, numels, len(self.states), states,
                                    None if self.master is None else self.master.ptr, self.m.a.size,
                                    self.coeffs.ctypes.data, self.counters.ctypes.data, self.done.ctypes.data,
                                    cores, ub, stats, err, len(err))
        if rc != 0:
            raise EmulationError(err.value.decode())
        return dict(zip(STATS, stats))

    def buffers(self):
        return self.p + self.g + self.states + ([] if self.master is None else [self.master])

    def guards_intact(self):
        return all(x.guards_intact() for x in self.buffers())

    def unchanged_since(self, before):
        now = self.snapshot()
        flat = lambda s: [s[0], s[1], s[2], [] if s[3] is None else [s[3]]]  # noqa: E731
        return all(a.tobytes() == b.tobytes() for xs, ys in zip(flat(now), flat(before)) for a, b in zip(xs, ys))

    def check_against_model(self, before):
        """Everything the launch wrote agrees with the float64 model (tests/cuda/step_check.py,
        the suite's shared step checker, every variant); nothing else changed."""
        assert self.guards_intact(), "a write landed outside its tensor"
        assert np.isnan(self.done[0]), "the kernel wrote the `done` placeholder"
        for g, g0 in zip(self.g, before[1]):
            assert g.a.tobytes() == g0.tobytes(), "a gradient was written"
        lr, wd, b1, b2, eps, scale, clip, _ = (float(x) for x in self.coeffs)
        n = len(self.sizes)
        spec = StepSpec([self.dtype] * n, [self.grad_dtype] * n, self.offsets, lr, wd, int(self.counters[0]),
                        [b1, b2, eps], self.flags | (BF16_STATE if self.state_dtype == "bfloat16" else 0),
                        scale, clip)
        names = ["m", "v", "x"][:len(self.states)]
        arrays = lambda p, g, st, w: dict(p=p, g=g, w=w, **dict(zip(names, st)))  # noqa: E731
        check_step(spec, arrays(*before), arrays([p.a for p in self.p], [g.a for g in self.g],
                                                  [s.a for s in self.states],
                                                  None if self.master is None else self.master.a))
