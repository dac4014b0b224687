"""FUSED_ADAMW_ASCEND in cmake/ascend.cmake, at configure time (nothing is built):
ON without CANN is a configure error, AUTO without CANN adds nothing Ascend, and
AUTO with a CANN toolkit (a stand-in directory with its operator-project
template folder) adds the package target and FUSED_ADAMW_WITH_ASCEND to _C."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ninja") is None,
                                reason="cmake/ninja not found")


def configure(tmp_path, ascend_home, *options):
    pybind11 = pytest.importorskip("pybind11")  # the top-level CMakeLists needs it
    env = {k: v for k, v in os.environ.items() if k != "ASCEND_HOME_PATH"}
    if ascend_home:
        env["ASCEND_HOME_PATH"] = str(ascend_home)
    build = tmp_path / "build"
    return build, subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja", f"-DPython_EXECUTABLE={sys.executable}",
         f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", "-DFUSED_ADAMW_CUDA=OFF", *options],
        env=env, capture_output=True, text=True, timeout=120)


def test_on_without_cann_fails(tmp_path):
    if Path("/usr/local/Ascend/ascend-toolkit/latest").is_dir():
        pytest.skip("a CANN toolkit is installed here")
    _, result = configure(tmp_path, None, "-DFUSED_ADAMW_ASCEND=ON")
    assert result.returncode != 0 and "no CANN toolkit found" in result.stderr


def test_auto_with_and_without_cann(tmp_path):
    if Path("/usr/local/Ascend/ascend-toolkit/latest").is_dir():
        pytest.skip("a CANN toolkit is installed here")
    build, result = configure(tmp_path / "none", None)
    assert result.returncode == 0, result.stderr
    ninja = (build / "build.ninja").read_text()
    assert "build_opp.sh" not in ninja and "FUSED_ADAMW_WITH_ASCEND" not in ninja
    assert "ascend" not in result.stdout.lower()  # quiet

    cann = tmp_path / "cann"
    (cann / "tools" / "op_project_templates" / "ascendc").mkdir(parents=True)
    build, result = configure(tmp_path / "cann_build", cann)
    assert result.returncode == 0, result.stderr
    ninja = (build / "build.ninja").read_text()
    assert "build_opp.sh" in ninja and "FUSED_ADAMW_WITH_ASCEND" in ninja
