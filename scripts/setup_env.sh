#!/usr/bin/env bash
# Creates (or reuses) .venv in the repository and installs the package with the
# test requirements. Used by scripts/test.sh, scripts/bench.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-test.txt
# MindFormers 2.0.0 for tests/mindformers and the example: its requirements (minus
# hyper-parallel, not on PyPI), then the package itself without dependencies.
.venv/bin/python -m pip install -q -r requirements-mindformers.txt
.venv/bin/python -m pip install -q --no-deps mindformers==2.0.0
# EXTRAS=bench (comma-separated) also installs those optional dependencies of the package.
.venv/bin/python -m pip install -q ${EXTRA_INSTALL:-} ".${EXTRAS:+[$EXTRAS]}"
