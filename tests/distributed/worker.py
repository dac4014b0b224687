"""msrun worker for the distributed tests: runs a list of tasks on this rank and writes
what they produced under the output directory (never judges anything itself).

    msrun ... worker.py '<json>'   with json = {"seed": S, "out": DIR, "tasks": [task, ...]}

A task is {"name", "mode": "graph"|"pynative", "sharded": bool, "variant", "start", "stop",
"save_at": [steps], "resume_from": [rank checkpoint paths] or null}. It trains steps
start..stop-1 data parallel and writes <name>.rank<r>.npz (parameters, this rank's flat
states, global_step) and, at each step in save_at, <name>.step<s>.rank<r>.ckpt.
"""
import json
import os
import sys
import time

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops
from mindspore.communication import get_group_size, get_rank, init
from mindspore.context import ParallelMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dp_model  # noqa: E402
from fused_adamw.checkpoint import merge_shards, split_shards  # noqa: E402


def run_task(task, seed, out, rank, size):
    dp_model.set_mode(task["mode"])
    train, net, opt = dp_model.build(seed, task["sharded"], task.get("variant", "plain"))
    if task.get("resume_from"):
        dicts = [ms.load_checkpoint(path) for path in task["resume_from"]]
        ms.load_param_into_net(train, split_shards(merge_shards(dicts, train), train))
    step = task["start"]
    for stop in sorted(task.get("save_at", [])) + [task["stop"]]:
        dp_model.train(train, seed, step, stop, rank, size)
        step = stop
        if stop != task["stop"] or stop in task.get("save_at", []):
            ms.save_checkpoint(train, os.path.join(out, f"{task['name']}.step{stop}.rank{rank}.ckpt"))
    np.savez(os.path.join(out, f"{task['name']}.rank{rank}.npz"), **dp_model.snapshot(net, opt))


def main():
    spec = json.loads(sys.argv[1])
    init()
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True)
    rank, size = get_rank(), get_group_size()
    for task in spec["tasks"]:
        run_task(task, spec["seed"], spec["out"], rank, size)
    # A rank leaving right after a collective can fail its peers' last one: finish together.
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ops.AllReduce()(Tensor(np.ones(1, np.float32)))
    time.sleep(1)


if __name__ == "__main__":
    main()
