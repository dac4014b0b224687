"""examples/distributed_train.py runs under msrun with 2 CPU ranks, and its merged
checkpoint loads into the same model on one process."""
import os
import sys

import mindspore as ms
import numpy as np

from harness import msrun

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def test_distributed_example(tmp_path):
    out = tmp_path / "out"
    msrun(os.path.join(EXAMPLES, "distributed_train.py"), ["--steps", "12", "--out", str(out)], 2,
          str(tmp_path / "logs"))
    log = (tmp_path / "logs" / "worker_0.log").read_text(errors="replace")
    losses = [float(line.split()[-1]) for line in log.splitlines() if line.startswith("step ")]
    assert len(losses) == 3 and losses[-1] < losses[0], log[-2000:]
    sys.path.insert(0, EXAMPLES)
    try:
        import distributed_train
    finally:
        sys.path.remove(EXAMPLES)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    train, opt = distributed_train.build(24, True)
    merged = ms.load_checkpoint(str(out / "merged.ckpt"))
    rank0 = ms.load_checkpoint(str(out / "rank0.ckpt"))
    not_loaded, _ = ms.load_param_into_net(train, merged)
    assert not not_loaded
    for flats in (opt.exp_avg_flat, opt.exp_avg_sq_flat):
        for flat in flats:
            full = flat.asnumpy()
            half = rank0[flat.name].asnumpy()  # rank 0 held the first slice
            assert full.any() and half.size < full.size
            np.testing.assert_array_equal(full[:half.size], half)
