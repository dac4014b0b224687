"""Builds the Ascend checks that run without CANN, with g++ into a temporary
directory, from the sources the operator package itself uses (kernels/ascend/
op_host, op_kernel): the tiling checker executable and the kernel compiled
against the emulated Ascend C API (ascend_emu.py)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
def emu(tmp_path_factory):
    """emu(dtype, grad_dtype=None, state_dtype="float32"): the kernel compiled
    against the emulated Ascend C API for that dtype column (ascend_emu.build),
    built once per session."""
    import ascend_emu

    out = tmp_path_factory.mktemp("ascend_emu")
    libs = {}

    def get(dtype, grad_dtype=None, state_dtype="float32"):
        key = (dtype, grad_dtype or dtype, state_dtype)
        if key not in libs:
            libs[key] = ascend_emu.build(out, *key)
        return libs[key]

    return get
