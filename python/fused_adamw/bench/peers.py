"""Loads the AdamW implementations we compare against, for tests and benchmarks.

MindFormers' AdamW is taken from its own file inside the mindformers==2.0.0
wheel, downloaded from PyPI on first use (`pip download --no-deps`) and cached;
the file imports only mindspore and numpy, so it is loaded on its own without
installing MindFormers (whose dependency `hyper-parallel` is not on PyPI).
"""
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

MINDFORMERS_VERSION = "2.0.0"
_ADAMW_MEMBER = "mindformers/core/optim/adamw.py"


def _cache_dir():
    base = os.environ.get("FUSED_ADAMW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fused_adamw")
    return Path(base)


def mindformers_wheel():
    """Path of the mindformers wheel, downloading it (no dependencies) if needed."""
    wheel_dir = _cache_dir() / f"mindformers-{MINDFORMERS_VERSION}"
    wheels = sorted(wheel_dir.glob("mindformers-*.whl"))
    if not wheels:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheel_dir),
                        f"mindformers=={MINDFORMERS_VERSION}"], check=True)
        wheels = sorted(wheel_dir.glob("mindformers-*.whl"))
    return wheels[0]


def load_mindformers_file(member):
    """One file of the MindFormers 2.0.0 wheel (e.g. 'mindformers/core/optim/adamw.py'),
    imported as a standalone module. Only files that import nothing but mindspore and numpy
    load this way (adamw.py, clip_grad.py)."""
    name = "_mindformers_reference_" + member.replace("/", "_").replace(".py", "")
    if name in sys.modules:
        return sys.modules[name]
    wheel = mindformers_wheel()
    target = wheel.parent / member.replace("/", "_")
    if not target.exists():
        with zipfile.ZipFile(wheel) as zf:
            target.write_bytes(zf.read(member))
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_mindformers_adamw_module():
    """MindFormers' own `mindformers/core/optim/adamw.py`, imported as a standalone module."""
    return load_mindformers_file(_ADAMW_MEMBER)


def mindformers_adamw_class():
    """The `AdamW` optimizer class of MindFormers 2.0.0."""
    return load_mindformers_adamw_module().AdamW


def mindformers_clip_grad_norm_class():
    """MindFormers 2.0.0's `ClipGradNorm` (mindformers/core/clip_grad.py)."""
    return load_mindformers_file("mindformers/core/clip_grad.py").ClipGradNorm
