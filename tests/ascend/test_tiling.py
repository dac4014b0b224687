"""Host tiling of the Ascend operator, checked with g++ (no CANN): coverage,
32-byte alignment, UB budget, core balance; sizes 1..1e10, 1..48 cores, both
param widths (tiling_check.cpp). The mutation tests plant bugs in copies of the
tiling sources and require the checker to catch each one."""
import subprocess

import pytest

from conftest import OP_HOST, OP_KERNEL, build_tiling_checker


def run_checker(exe):
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)


def test_tiling_invariants(tiling_checker):
    result = run_checker(tiling_checker)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


# (file, original text, planted bug, what it breaks)
MUTATIONS = [
    ("plan", "const int64_t my_units = base + (c < extra ? 1 : 0);",
     "const int64_t my_units = base;", "coverage: the remainder units are dropped"),
    ("plan", "/ per_elem / kFaCoreAlignElems * kFaCoreAlignElems;",
     "/ per_elem / 8 * 8 + 4;", "32-byte alignment of tile buffers and copies"),
    ("plan", "return 2 * sum(b.in, kInSlots) + 2 * sum(b.out, kOutSlots) + sum(b.calc, kCalcSlots);",
     "return sum(b.in, kInSlots) + sum(b.out, kOutSlots) + sum(b.calc, kCalcSlots);",
     "UB budget: double buffering not counted"),
    ("plan", "b.in[kInVmax] = ams ? sb : 0;", "b.in[kInVmax] = 0;", "amsgrad: no room for max_exp_avg_sq"),
    ("plan", "b.calc[kCalcG32] = c.gradBytes == 2 ? 4 : 0;", "b.calc[kCalcG32] = c.gradBytes == 2 ? 2 : 0;",
     "16-bit grads: float32 copy too small"),
    ("plan", "const int64_t base = units / used;\n    const int64_t extra = units % used;",
     "const int64_t base = units / used;\n    const int64_t extra = 0;\n    (void)(units % used);",
     "coverage/balance: the last core does not get the remainder"),
    ("plan", "td.coreFirstOffset[c] = start - tensor_start;",
     "td.coreFirstOffset[c] = start;", "core start inside the wrong tensor"),
    ("schedule", "if (len > static_cast<int64_t>(tileLen)) len = tileLen;",
     "if (len > static_cast<int64_t>(tileLen)) len = tileLen + 16;", "tile larger than its buffers"),
    ("schedule", "tile.padded = (tile.len + kFaPadElems - 1) / kFaPadElems * kFaPadElems;",
     "tile.padded = tile.len;", "tail not padded to 32-byte blocks"),
    ("schedule", "c.flat = (c.flat + kFaStateAlignElems - 1) / kFaStateAlignElems * kFaStateAlignElems;",
     "c.flat = c.flat + 0 * kFaStateAlignElems;", "padded layout: next slice not aligned"),
    ("plan", "tensor_start = align_state(tensor_start + numels[tensor]);",
     "tensor_start = tensor_start + numels[tensor];", "padded layout: core start in the wrong tensor"),
]


@pytest.mark.parametrize("where,original,planted,what", MUTATIONS, ids=[m[3] for m in MUTATIONS])
def test_checker_catches_planted_bug(tmp_path, where, original, planted, what):
    plan = (OP_HOST / "adamw_tiling_plan.cpp").read_text()
    kernel_dir = tmp_path / "op_kernel"
    kernel_dir.mkdir()
    for header in OP_KERNEL.glob("*.h"):
        (kernel_dir / header.name).write_text(header.read_text())
    target = kernel_dir / "adamw_schedule.h" if where == "schedule" else tmp_path / "plan.cpp"
    text = target.read_text() if where == "schedule" else plan
    assert original in text, f"mutation anchor vanished: {original!r}"
    target.write_text(text.replace(original, planted))
    plan_source = tmp_path / "plan.cpp"
    if where == "schedule":
        plan_source.write_text(plan)
    # The copied plan must include the mutated kernel headers, not the originals.
    plan_source.write_text(plan_source.read_text().replace(
        '#include "adamw_tiling_plan.h"', f'#include "{OP_HOST / "adamw_tiling_plan.h"}"'))
    exe = build_tiling_checker(tmp_path, plan_source=plan_source, kernel_dir=kernel_dir)
    result = run_checker(exe)
    assert result.returncode != 0, f"planted bug not caught ({what}):\n{result.stdout}"
