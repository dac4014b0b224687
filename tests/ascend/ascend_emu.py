"""Runs the Ascend C kernel's own source on the CPU for the tests: builds
tests/ascend/emu/adamw_group_driver.cpp (the unchanged op_kernel/fused_adamw_group.cpp
and the host tiling plan, against the emulated Ascend C API in tests/ascend/emu)
with g++, once per parameter dtype as CANN builds one binary per dtype, and lays
a group out in guarded NumPy buffers (tests/cuda/cuda_emu.Guarded)."""
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
from step_check import check_step  # noqa: E402

C_TYPE = {"float32": "float", "float16": "half", "bfloat16": "bfloat16_t"}
UB_910B = 192 * 1024
CORES_910B = 48
# -ffp-contract=off: every vector op rounds once, as on the vector unit.
CXXFLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-ffp-contract=off",
            "-fPIC", "-shared"]
STATS = ("blocks", "vector_ops", "copies_in", "copies_out", "ub_high_water", "gm_shared_blocks")


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


def build(out_dir, dtype, kernel_dir=OP_KERNEL):
    """The kernel for param dtype `dtype`, compiled into out_dir; the ctypes handle."""
    lib = compile_lib([EMU / "adamw_group_driver.cpp", OP_HOST / "adamw_tiling_plan.cpp"],
                      Path(out_dir) / f"fa_ascend_emu_{dtype}.so", [f"DTYPE_VAR={C_TYPE[dtype]}"], kernel_dir)
    P = ctypes.c_void_p
    lib.fa_emu_adamw_group.restype = ctypes.c_int
    lib.fa_emu_adamw_group.argtypes = [ctypes.c_uint32, P, P, P, P, P, ctypes.c_int64, P, P, P, P, P,
                                       ctypes.c_uint32, ctypes.c_uint32, P, ctypes.c_char_p, ctypes.c_int]
    lib.fa_emu_one_minus_pow.restype = ctypes.c_float
    lib.fa_emu_one_minus_pow.argtypes = [ctypes.c_float, ctypes.c_int64]
    lib.fa_emu_coeffs.restype = None
    lib.fa_emu_coeffs.argtypes = [ctypes.c_float, ctypes.c_float, ctypes.c_int32, ctypes.c_float,
                                  ctypes.c_float, ctypes.c_float, P]
    lib.fa_emu_param_bytes.restype = ctypes.c_uint32
    lib.fa_emu_tile_len.restype = ctypes.c_uint32
    lib.fa_emu_tile_len.argtypes = [ctypes.c_uint32]
    assert lib.fa_emu_param_bytes() == np.dtype(NP_STORAGE[dtype]).itemsize
    return lib


PAD_POISON = np.uint32(0x7FC0DEAD)  # a NaN payload in the state padding, which the kernel must not touch


class Group:
    """One parameter group of one dtype in guarded buffers: params/grads of the
    given sizes (each its own allocation, as the tensors of a list are), flat
    float32 states in the padded layout (fused_adamw._groups.state_offsets, the
    optimizer's own), the device scalars, and the poisoned `done` output that the
    kernel must leave alone."""

    def __init__(self, rng, sizes, dtype, lr=1e-3, weight_decay=0.1, step=3, betas=(0.9, 0.999), eps=1e-8):
        self.sizes, self.dtype = list(sizes), dtype
        self.p, self.g = [], []
        for n in self.sizes:
            p, g = Guarded(n, NP_STORAGE[dtype]), Guarded(n, NP_STORAGE[dtype])
            p.a[:] = reference.random_param(rng, n, dtype)
            g.a[:] = reference.from_f64(0.1 * rng.standard_normal(n), dtype)
            self.p.append(p)
            self.g.append(g)
        from fused_adamw._groups import state_offsets

        self.offsets, total = state_offsets(self.sizes)
        self.m, self.v = Guarded(total, np.float32), Guarded(total, np.float32)
        self.pad = np.ones(total, bool)
        for off, n in zip(self.offsets, self.sizes):
            self.pad[off:off + n] = False
        for s in (self.m, self.v):
            s.a.view(np.uint32)[:] = PAD_POISON
        # Mid-training states: every term matters.
        self.m.a[~self.pad] = 0.01 * rng.standard_normal(sum(self.sizes))
        self.v.a[~self.pad] = 1e-3 * rng.random(sum(self.sizes))
        self.lr = np.array([lr], np.float32)
        self.weight_decay = np.array([weight_decay], np.float32)
        self.step = np.array([step], np.int32)
        self.hyper = np.array([betas[0], betas[1], eps], np.float32)
        self.done = np.array([np.nan], np.float32)

    def snapshot(self):
        return [p.a.copy() for p in self.p], [g.a.copy() for g in self.g], self.m.a.copy(), self.v.a.copy()

    def compact(self, state):
        """The tensors' slices of a padded state, concatenated (the model's layout)."""
        return state[~self.pad]

    def run(self, lib, cores=CORES_910B, ub=UB_910B):
        """One emulated launch; returns the launch statistics (STATS) as a dict."""
        n = len(self.sizes)
        arr = lambda xs: (ctypes.c_void_p * max(n, 1))(*xs)  # noqa: E731
        params, grads = arr([p.ptr for p in self.p]), arr([g.ptr for g in self.g])
        numels = (ctypes.c_int64 * max(n, 1))(*self.sizes)
        stats = (ctypes.c_uint64 * 6)()
        err = ctypes.create_string_buffer(1024)
        addr = lambda a: a.ctypes.data  # noqa: E731
        rc = lib.fa_emu_adamw_group(n, params, grads, numels, self.m.ptr, self.v.ptr, self.m.a.size,
                                    addr(self.lr), addr(self.weight_decay), addr(self.step), addr(self.hyper),
                                    addr(self.done), cores, ub, stats, err, len(err))
        if rc != 0:
            raise EmulationError(err.value.decode())
        return dict(zip(STATS, stats))

    def guards_intact(self):
        return all(x.guards_intact() for x in self.p + self.g + [self.m, self.v])

    def check_against_model(self, before):
        """Everything the launch wrote agrees with the float64 model; nothing else changed."""
        assert self.guards_intact(), "a write landed outside its tensor"
        for s in (self.m, self.v):
            assert (s.a.view(np.uint32)[self.pad] == PAD_POISON).all(), "a state pad element was written"
        assert np.isnan(self.done[0]), "the kernel wrote the `done` placeholder"
        for g, g0 in zip(self.g, before[1]):
            assert g.a.tobytes() == g0.tobytes(), "a gradient was written"
        before = before[0], before[1], self.compact(before[2]), self.compact(before[3])
        after = [p.a for p in self.p], self.compact(self.m.a), self.compact(self.v.a)
        check_step([self.dtype] * len(self.sizes), before, after,
                   float(self.lr[0]), float(self.weight_decay[0]), int(self.step[0]),
                   [float(x) for x in self.hyper])
