"""Benchmark of the Ascend operator on an NPU (never run in this project: no NPU).

    FUSED_ADAMW_TEST_NPU=1 python tests/ascend/npu_bench.py [--params 100000000] [--tensors 1 196]

Prints ms per step for one group of N float32 params split into T tensors, and
the ratio to a same-process memory floor: a device copy moving the same 28 bytes
per parameter (14 read + 14 written), the access volume of a fused AdamW step.
Only the ratio is comparable between runs (bandwidth drifts)."""
import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("fused_adamw_ascend", ROOT / "python" / "fused_adamw" / "_ascend.py")
_ascend = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_ascend)


def timed(fn, repeats):
    import mindspore as ms
    fn()
    ms.runtime.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        ms.runtime.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times), float(np.median(times))


def _ascend_state_len(sizes):
    """The padded flat state length (docs/kernel-interface.md), as the optimizer lays it out."""
    from fused_adamw._groups import state_offsets

    return state_offsets(sizes)[1]


def main():
    import mindspore as ms
    from mindspore import ops
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=int, default=100_000_000)
    parser.add_argument("--tensors", type=int, nargs="+", default=[1, 196])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    ms.set_device("Ascend")
    ms.set_context(mode=ms.GRAPH_MODE, jit_config={"jit_level": "O0"})
    n = args.params
    src = ms.Tensor(np.zeros(n * 7 // 2, np.float32))
    dst = ms.Parameter(ms.Tensor(np.zeros(n * 7 // 2, np.float32)), name="floor_dst")
    floor = timed(lambda: ops.assign(dst, src), args.repeats)
    print(f"floor (copy of 28 B/param): min {floor[0]:.2f} ms, median {floor[1]:.2f} ms")
    for t in args.tensors:
        sizes = [n // t + (1 if i < n % t else 0) for i in range(t)]
        params = [ms.Parameter(ms.Tensor(np.random.randn(s).astype(np.float32)), name=f"p{i}")
                  for i, s in enumerate(sizes)]
        grads = [ms.Tensor(np.random.randn(s).astype(np.float32)) for s in sizes]
        state_len = _ascend_state_len(sizes)
        m = ms.Parameter(ms.Tensor(np.zeros(state_len, np.float32)), name="m")
        v = ms.Parameter(ms.Tensor(np.zeros(state_len, np.float32)), name="v")
        op = _ascend.make_ascend_group_op(t)
        scalars = (ms.Tensor([1e-3], ms.float32), ms.Tensor([0.1], ms.float32), ms.Tensor([1], ms.int32),
                   ms.Tensor([0.9, 0.999, 1e-8], ms.float32), ms.Tensor([1.0, 1.0, 0.0], ms.float32),
                   ms.Tensor([0, 0], ms.int64))
        best, median = timed(lambda: op(*scalars, *params, *grads, m, v), args.repeats)
        print(f"{t} tensors, {n} fp32 params: min {best:.2f} ms, median {median:.2f} ms, "
              f"x floor {floor[0] / best:.2f} (min) {floor[1] / median:.2f} (median)")


if __name__ == "__main__":
    main()
