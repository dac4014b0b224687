"""The operator host code (kernels/ascend/op_host/fused_*.cpp: OpDef, shape/dtype
inference, tiling functions) needs CANN's headers, which are not available. This
type-checks it with g++ -fsyntax-only against declarations-only stand-ins of the
CANN host API it calls (tests/ascend/host_stub, written from the public API pages):
it catches code that is not well-formed against those declarations -- names, types,
the plain tiling headers' API -- not differences between them and real CANN."""
import shutil
import subprocess

import pytest

from conftest import HERE, OP_HOST, OP_KERNEL

SOURCES = sorted(OP_HOST.glob("fused_*.cpp"))


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_op_host_is_well_formed(source):
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    result = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                             f"-I{HERE / 'host_stub'}", f"-I{OP_HOST}", f"-I{OP_KERNEL}", str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_operator_is_checked():
    assert [s.name for s in SOURCES] == ["fused_adamw_group.cpp", "fused_grad_norm_group.cpp"]
