import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cuda_emu  # noqa: E402


@pytest.fixture(scope="session")
def emu(tmp_path_factory):
    """The CUDA kernel's source compiled for the CPU (built once per session)."""
    return cuda_emu.build(tmp_path_factory.mktemp("cuda_emu"))
