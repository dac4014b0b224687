"""scripts/gpu_check.py runs only where a GPU is; its --selftest-cpu mode sends the
same correctness, variant and norm cases through the CPU entries, so the script's
argument layouts and checks are exercised here (no GPU is involved)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_selftest_passes_through_the_cpu_entries():
    res = subprocess.run([sys.executable, str(ROOT / "scripts/gpu_check.py"), "--selftest-cpu", "--quick"],
                         capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    for name in ("correctness", "variants", "grad-norm"):
        assert f"[PASS] {name} (CPU entr" in out, out[-3000:]
    assert "3 passed, 0 failed" in out
