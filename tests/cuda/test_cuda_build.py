"""Static checks of the CUDA build, with no GPU:

- cmake/cuda.cmake's own kernel objects (configured in a temporary build
  directory with FUSED_ADAMW_CUDA=ON) hold SASS for sm_80 and sm_90 and PTX for
  compute_90; ptxas reports no spills and no stack for any function; the SASS
  of every AdamW kernel has 128-bit global loads and stores and no local memory;
  the PTX has no contractible float32 operation (-fmad=false).
- The GPU AOT entry, built from the real sources with a static CUDA runtime,
  depends on no libcudart and, on a machine without a GPU, fails with a
  non-zero return and a message naming the CUDA call.
"""
import ctypes
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cuda_tools import find_cuobjdump, find_nvcc, ptxas_function_reports, sass_by_arch

ROOT = Path(__file__).resolve().parents[2]
NVCC = find_nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (CUDACXX, PATH, /usr/local/cuda/bin)")
ARCHS = ("sm_80", "sm_90")


def _run(cmd):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def cmake_kernels(tmp_path_factory):
    """Configures the project with FUSED_ADAMW_CUDA=ON and builds only the CUDA
    kernel objects, with ptxas -v. Returns (object file, build log)."""
    import pybind11

    build = tmp_path_factory.mktemp("cuda_cmake")
    cmake = Path(sys.executable).with_name("cmake")
    cmake = str(cmake) if cmake.exists() else "cmake"
    configure = [cmake, "-S", str(ROOT), "-B", str(build), "-DFUSED_ADAMW_CUDA=ON", "-DFUSED_ADAMW_ASCEND=OFF",
                 f"-DCMAKE_CUDA_COMPILER={NVCC}", "-DCMAKE_CUDA_FLAGS=-Xptxas=-v",
                 f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPython_EXECUTABLE={sys.executable}"]
    _run(configure)
    log = _run([cmake, "--build", str(build), "--target", "fa_cuda_kernels", "-j", "2", "--verbose"])
    objects = list(build.rglob("adamw_cuda.cu.o"))
    assert len(objects) == 1, f"expected one kernel object, found {objects}"
    return objects[0], log


@pytest.fixture(scope="module")
def cuobjdump():
    tool, env = find_cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump/nvdisasm not found: pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm "
                    "(listed in requirements-test.txt)")
    return lambda *args: subprocess.run([tool, *args], check=True, capture_output=True, text=True, env=env).stdout


@needs_nvcc
def test_cmake_builds_sm80_sm90_sass_and_compute90_ptx(cmake_kernels, cuobjdump):
    obj, _ = cmake_kernels
    listing = cuobjdump("-lelf", "-lptx", str(obj))
    elves = set(re.findall(r"ELF file\s+\d+: \S+\.(sm_\d+)\.cubin", listing))
    ptx = set(re.findall(r"PTX file\s+\d+: \S+\.(sm_\d+)\.ptx", listing))
    assert elves == {"sm_80", "sm_90"}, listing
    assert ptx == {"sm_90"}, listing


@needs_nvcc
def test_ptxas_reports_no_spills_and_no_stack(cmake_kernels):
    _, log = cmake_kernels
    reports = ptxas_function_reports(log)
    kernels = [r for r in reports if "adamw_kernel" in r[1]]
    assert {r[0] for r in kernels} == set(ARCHS), f"no ptxas report for every arch:\n{log[-3000:]}"
    for arch, func, props, usage in reports:
        assert props == "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads", \
            f"{arch} {func}: {props} ({usage})"


@needs_nvcc
def test_sass_has_128bit_global_accesses_and_no_local_memory(cmake_kernels, cuobjdump):
    obj, _ = cmake_kernels
    by_arch = sass_by_arch(cuobjdump("-sass", str(obj)))
    assert set(by_arch) == set(ARCHS), f"archs in SASS: {sorted(by_arch)}"
    for arch, funcs in by_arch.items():
        kernels = {name: body for name, body in funcs.items() if "adamw_kernel" in name}
        assert kernels, f"{arch}: no AdamW kernel in {sorted(funcs)}"
        for name, body in kernels.items():
            # LDG.E.128 / STG.E.128 and qualified forms (LDG.E.EF.128, STG.E.EF.128, ...).
            assert re.search(r"\bLDG\.E(\.\w+)*\.128\b", body), f"{arch} {name}: no 128-bit global load"
            assert re.search(r"\bSTG\.E(\.\w+)*\.128\b", body), f"{arch} {name}: no 128-bit global store"
        for name, body in funcs.items():
            assert not re.search(r"\b(LDL|STL)\b", body), f"{arch} {name}: uses local memory"


@needs_nvcc
def test_ptx_has_no_float32_contraction(cmake_kernels, cuobjdump):
    """-fmad=false (cmake/cuda.cmake): every float32 multiply, add and subtract in
    the PTX carries .rn, which ptxas never fuses into an FMA, and no f32 fma is
    emitted, so the kernel rounds each operation as the CPU kernel does and its
    results equal the CPU kernel's bit for bit (test_cuda_emulation.py checks the
    bits). Division and sqrt are single .rn instructions here; ptxas expands them
    into correctly rounded FFMA sequences, so SASS FFMA counts prove nothing.
    (The double-precision pow of the bias corrections uses fma.rn.f64 by design.)"""
    obj, _ = cmake_kernels
    ptx = cuobjdump("-ptx", str(obj))
    ops = re.findall(r"^\s*(?:@!?%p\d+\s+)?((?:fma|mul|add|sub)(?:\.\w+)*\.f32)\b", ptx, re.M)
    assert sum(op.startswith(("mul", "add")) for op in ops) > 20, f"too few f32 operations found: {ops[:20]}"
    unrounded = sorted({op for op in ops if op.startswith("fma") or ".rn" not in op})
    assert not unrounded, f"contractible or fused float32 operations in the PTX: {unrounded}"


@pytest.fixture(scope="module")
def gpu_entry(tmp_path_factory, cmake_kernels):
    """The GPU entry points built from csrc/aot_cuda.cpp and csrc/aot_args.cpp,
    linked with CMake's kernel objects (above) and a static CUDA runtime."""
    obj, _ = cmake_kernels
    lib = tmp_path_factory.mktemp("cuda_entry") / "libfa_gpu_entry.so"
    _run([NVCC, "-std=c++17", "-O2", "-shared", "-Xcompiler", "-fPIC", "-cudart", "static", "-arch=sm_80",
          "-o", lib, ROOT / "csrc/aot_cuda.cpp", ROOT / "csrc/aot_args.cpp", obj])
    return lib


@needs_nvcc
def test_entry_needs_no_cuda_runtime_library(gpu_entry):
    deps = subprocess.run(["ldd", str(gpu_entry)], capture_output=True, text=True).stdout
    assert "libcudart" not in deps, deps


# Calls FusedAdamWGPU in a child process (its messages go to the C stderr) with
# a 1-tensor group of host buffers; argv[2] selects a valid or a broken layout.
_CALL = r"""
import ctypes, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
n = 8
bufs = [np.array([1e-3], np.float32), np.array([0.1], np.float32), np.array([1], np.int32),
        np.array([0.9, 0.999, 1e-8], np.float32), np.array([1, 1, 0], np.float32), np.zeros(2, np.int64),
        np.ones(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
        np.zeros(1, np.float32)]
dtypes = ["float32", "float32", "int32", "float32", "float32", "int64", "float32", "float32", "float32", "float32",
          "float32"]
if sys.argv[2] == "bad-layout":
    dtypes[7] = "float16"  # a float16 gradient for a float32 parameter
shapes = [(1,), (1,), (1,), (3,), (3,), (2,), (n,), (n,), (n,), (n,), (1,)]
k = len(bufs)
params = (ctypes.c_void_p * k)(*[b.ctypes.data for b in bufs])
ndims = (ctypes.c_int * k)(*[len(s) for s in shapes])
shape_arrays = [(ctypes.c_int64 * len(s))(*s) for s in shapes]
shape_ptrs = (ctypes.POINTER(ctypes.c_int64) * k)(*[ctypes.cast(a, ctypes.POINTER(ctypes.c_int64)) for a in shape_arrays])
names = (ctypes.c_char_p * k)(*[d.encode() for d in dtypes])
rc = lib.FusedAdamWGPU(k, params, ndims, shape_ptrs, names, None, None)
print("rc", rc)
"""


def _call_entry(lib, layout):
    return subprocess.run([sys.executable, "-c", _CALL, str(lib), layout], capture_output=True, text=True, timeout=60)


@needs_nvcc
def test_entry_reports_a_cuda_failure_as_nonzero_with_a_message(gpu_entry):
    """Without a GPU (or driver) the first CUDA call fails: the entry must say so
    and return non-zero, never crash or report success. (On a GPU machine
    this passes host pointers to a kernel, so it is skipped there.)"""
    res = _call_entry(gpu_entry, "valid")
    if "rc 0" in res.stdout:
        pytest.skip("a CUDA device is present; scripts/gpu_check.py tests the entry on it")
    assert "rc 1" in res.stdout, res.stdout + res.stderr
    assert re.search(r"fused_adamw FusedAdamWGPU: cudaGetDevice failed: cudaError\w+ \(.+\)", res.stderr), res.stderr


@needs_nvcc
def test_entry_exports_every_variant_and_the_norm_pass(gpu_entry):
    """The names docs/kernel-interface.md gives: FusedAdamWGPU, FusedAdamWGPU_v<flags>
    for every valid flag value (master and stochastic exclude each other), FusedGradNormGPU."""
    lib = ctypes.CDLL(str(gpu_entry))
    valid = [f for f in range(16) if not (f & 2 and f & 4)]
    for name in ["FusedAdamWGPU", "FusedGradNormGPU"] + [f"FusedAdamWGPU_v{f}" for f in valid]:
        assert hasattr(lib, name), name
    for f in set(range(16)) - set(valid):
        assert not hasattr(lib, f"FusedAdamWGPU_v{f}"), f


@needs_nvcc
def test_entry_rejects_a_bad_layout_before_any_cuda_call(gpu_entry):
    res = _call_entry(gpu_entry, "bad-layout")
    assert "rc 1" in res.stdout, res.stdout + res.stderr
    assert "gradient 0: dtype float16 must be its parameter's (float32) or float32" in res.stderr, res.stderr
