"""Shared fixtures: the MindSpore execution mode, fresh randomness, helpers to build
parameters of every dtype and read them back exactly."""
import os
import sys

import mindspore as ms
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/reference.py

MODES = {"pynative": ms.PYNATIVE_MODE, "graph": ms.GRAPH_MODE}


@pytest.fixture(params=list(MODES))
def mode(request):
    """Runs the test in PYNATIVE_MODE and in GRAPH_MODE."""
    ms.set_context(mode=MODES[request.param])
    yield request.param
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def rng():
    """Fresh random inputs on every run; the seed is printed so a failure can be replayed."""
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"numpy seed {seed}")
    return np.random.default_rng(seed)
