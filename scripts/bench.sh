#!/usr/bin/env bash
# The project's main job: the CPU benchmark of every AdamW a MindSpore user can run.
#   scripts/bench.sh --quick      # a smoke test: about 2 minutes of runs (after the one-time setup)
#   scripts/bench.sh              # GPT-like / single tensor at 10M, 100M, 1B (memory allowing)
# Sets up .venv with the package and its `bench` extra (torch, deepspeed, matplotlib),
# then runs `python -m fused_adamw.bench` with the arguments given; results (table,
# JSON, PNG) go to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=bench scripts/setup_env.sh
# DeepSpeedCPUAdam compiles its C++ op on first use (about 4 minutes here, then cached
# under ~/.cache/torch_extensions): do it now, outside the timed run.
if ! .venv/bin/python -c "from deepspeed.ops.op_builder import CPUAdamBuilder; CPUAdamBuilder().load()" \
    >/tmp/fused_adamw_deepspeed_build.log 2>&1; then
  echo "note: DeepSpeedCPUAdam did not build (see /tmp/fused_adamw_deepspeed_build.log);" \
       "the benchmark will list it as unavailable" >&2
fi
# Run from outside python/ so the installed package is what gets measured.
exec .venv/bin/python -m fused_adamw.bench "$@"
