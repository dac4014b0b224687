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
.venv/bin/python -m pip install -q ${EXTRA_INSTALL:-} .
