#!/usr/bin/env bash
# The README's test command: sets up .venv (MindSpore 2.10.0, numpy<2, the package
# built from this checkout with CMake, test requirements) and runs the whole suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k mindformers -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
# Run from tests/ so `import fused_adamw` finds the installed package, not python/.
cd tests
exec ../.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
