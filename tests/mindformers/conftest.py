"""Tests against the real MindFormers 2.0.0 package (requirements-mindformers.txt).

MindFormers' top-level import needs `hyper_parallel`, which PyPI does not carry; where it is
not installed, a placeholder package stands in for it, in these tests only (see
hyper_parallel_placeholder.py). MindFormers also writes logs under ./output and copies
`auto_register` files into a module cache: both go to a temporary directory here.
"""
import importlib.util
import os
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

_SCRATCH = tempfile.mkdtemp(prefix="fused_adamw_mindformers_")
os.environ.setdefault("LOCAL_DEFAULT_PATH", os.path.join(_SCRATCH, "output"))
os.environ.setdefault("OM_MODULES_CACHE", os.path.join(_SCRATCH, "modules"))

if importlib.util.find_spec("mindformers") is None:
    if os.environ.get("CI"):
        raise RuntimeError("MindFormers is not installed: CI must install requirements-mindformers.txt "
                           "(pip install --no-deps mindformers==2.0.0 -r requirements-mindformers.txt)")
    collect_ignore_glob = ["test_*.py"]
else:
    if importlib.util.find_spec("hyper_parallel") is None:
        import hyper_parallel_placeholder
        hyper_parallel_placeholder.install()
    import mindformers  # noqa: F401  (fails here, once, rather than in every test)

# The `mode` and `rng` fixtures come from tests/conftest.py.
