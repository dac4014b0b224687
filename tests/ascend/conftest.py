"""Builds the Ascend checks that run without CANN: the tiling checker executable
and the CPU model of the kernel, both with g++ into a temporary directory, from
the sources the operator package itself uses (kernels/ascend/op_host, op_kernel)."""
import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OP_HOST = ROOT / "kernels" / "ascend" / "op_host"
OP_KERNEL = ROOT / "kernels" / "ascend" / "op_kernel"
HERE = Path(__file__).resolve().parent
CXXFLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"]


def gxx(args, cwd):
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    subprocess.run(["g++", *args], cwd=cwd, check=True, capture_output=True, text=True)


def build_tiling_checker(out_dir, plan_source=OP_HOST / "adamw_tiling_plan.cpp", kernel_dir=OP_KERNEL):
    """The tiling checker, optionally against a modified plan or schedule (mutation tests)."""
    exe = Path(out_dir) / "tiling_check"
    gxx([*CXXFLAGS, f"-I{kernel_dir}", f"-I{OP_HOST}", str(HERE / "tiling_check.cpp"), str(plan_source),
         "-o", str(exe)], cwd=out_dir)
    return exe


@pytest.fixture(scope="session")
def tiling_checker(tmp_path_factory):
    return build_tiling_checker(tmp_path_factory.mktemp("ascend_tiling"))


@pytest.fixture(scope="session")
def model_lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("ascend_model") / "fa_ascend_model.so"
    # -ffp-contract=off: each vector op is its own rounding, as on the NPU.
    gxx([*CXXFLAGS, "-ffp-contract=off", "-fPIC", "-shared", f"-I{OP_KERNEL}", f"-I{OP_HOST}",
         f"-I{HERE / 'model'}", str(HERE / "model" / "tile_model.cpp"), str(OP_HOST / "adamw_tiling_plan.cpp"),
         "-o", str(out)], cwd=out.parent)
    lib = ctypes.CDLL(str(out))
    lib.fa_model_step.restype = ctypes.c_char_p
    lib.fa_model_step.argtypes = [
        ctypes.POINTER(ctypes.c_int64), ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64,
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_float, ctypes.c_float, ctypes.c_int32, ctypes.POINTER(ctypes.c_float)]
    lib.fa_model_one_minus_pow.restype = ctypes.c_float
    lib.fa_model_one_minus_pow.argtypes = [ctypes.c_float, ctypes.c_int64]
    lib.fa_model_coeffs.restype = None
    lib.fa_model_coeffs.argtypes = [ctypes.c_float, ctypes.c_float, ctypes.c_int32, ctypes.c_float,
                                    ctypes.c_float, ctypes.c_float, ctypes.POINTER(ctypes.c_float)]
    return lib
