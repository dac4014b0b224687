"""Misuse that used to kill the process (exit 139/134): changing the shape or dtype of a
Parameter a FusedAdamW updates, after a step. Run as a fresh process by test_guard.py
(`python resize_run.py <mode> <seed>`): every attempt must raise a clear error and change
nothing, the optimizer must keep stepping, and the process must end normally."""
import sys

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor

from fused_adamw import FusedAdamW


def snapshot(opt):
    return [t.asnumpy().copy() for t in list(opt.parameters) + list(opt.exp_avg_flat)
            + list(opt.exp_avg_sq_flat) + [opt.global_step]]


def main(mode, seed):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    rng = np.random.default_rng(seed)
    w = Parameter(Tensor(rng.standard_normal((40, 37)).astype(np.float32)), name="w")
    b = Parameter(Tensor(rng.standard_normal(7).astype(np.float16)), name="b")
    opt = FusedAdamW([w, b], learning_rate=0.01, weight_decay=0.1)

    def grads():
        return (Tensor(rng.standard_normal(w.shape).astype(np.float32)),
                Tensor(rng.standard_normal(b.shape).astype(np.float16)))

    opt(grads())
    attempts = {
        "set_data smaller": lambda: w.set_data(Tensor(np.ones(10, np.float32))),
        "set_data larger": lambda: w.set_data(Tensor(np.ones((41, 37), np.float32))),
        "set_data scalar": lambda: w.set_data(1.0),
        "assign_value": lambda: w.assign_value(Tensor(np.ones(10, np.float32))),
        "set_dtype": lambda: b.set_dtype(ms.float32),
        "shrink exp_avg": lambda: opt.exp_avg_flat[0].set_data(Tensor(np.zeros(10, np.float32))),
        "shrink exp_avg_sq": lambda: opt.exp_avg_sq_flat[0].set_data(Tensor(np.zeros(10, np.float32))),
        "global_step": lambda: opt.global_step.set_data(Tensor(np.array([1, 2], np.int32))),
        "learning_rate": lambda: opt.learning_rate.set_data(Tensor(np.full(3, 0.1, np.float32))),
        "load_param_into_net": lambda: ms.load_param_into_net(
            opt, {"w": Parameter(Tensor(np.ones(10, np.float32)), name="w")}),
    }
    for what, attempt in attempts.items():
        before = snapshot(opt)
        try:
            attempt()
        except (ValueError, TypeError, RuntimeError) as error:
            print(f"refused {what}: {type(error).__name__}: {str(error).splitlines()[0]}")
        else:
            print(f"ACCEPTED {what}")
        for x, y in zip(before, snapshot(opt)):
            assert x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), what
    w.set_data(Tensor(np.full(w.shape, 0.5, np.float32)))  # same shape: allowed
    opt(grads())
    assert int(opt.global_step.asnumpy()[0]) == 2
    assert w.shape == (40, 37) and np.all(np.isfinite(w.asnumpy())) and np.all(w.asnumpy() != 0.5)
    print("DONE")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
