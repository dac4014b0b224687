"""Runs the CPU benchmark from a checkout, preferring the dev build in python/:

    python bench/run.py --quick        (same options as `python -m fused_adamw.bench`)

The benchmark itself lives in the package (python/fused_adamw/bench/) so that it also runs
from an installed wheel; scripts/bench.sh is the main entry point.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from fused_adamw.bench.cli import main  # noqa: E402

sys.exit(main())
