"""Builds the native library with CMake and ships it inside the fused_adamw package.

`pip install .` runs CMake (see CMakeLists.txt); the environment variables
FUSED_ADAMW_CUDA / FUSED_ADAMW_ASCEND (AUTO|ON|OFF) pass through to it.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        # pip builds in a fresh isolated environment every time, so a cache left by an
        # earlier `pip install .` in this checkout points at a ninja/pybind11 that is gone.
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        for option in ("FUSED_ADAMW_CUDA", "FUSED_ADAMW_ASCEND"):
            if os.environ.get(option):
                args.append(f"-D{option}={os.environ[option]}")
        try:
            import ninja  # noqa: F401

            args.append("-GNinja")
        except ImportError:
            pass
        subprocess.run(["cmake", str(ROOT), *args], cwd=build_dir, check=True)
        subprocess.run(["cmake", "--build", ".", "-j", str(os.cpu_count() or 2)], cwd=build_dir, check=True)


setup(
    ext_modules=[CMakeExtension("fused_adamw._C")],
    cmdclass={"build_ext": CMakeBuild},
)
