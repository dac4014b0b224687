"""Data-parallel training with FusedAdamW's sharded optimizer states (ZeRO-1), under msrun.

    msrun --worker_num=2 --local_worker_num=2 --master_addr=127.0.0.1 --master_port=8118 \\
          --log_dir=msrun_log --join=True examples/distributed_train.py

Each rank trains a small MLP regression on its own rows of every batch (MindSpore's
DATA_PARALLEL: nn.TrainOneStepCell all-reduces the gradients); FusedAdamW(shard_states=True)
keeps only this rank's 1/N of the Adam states and all-gathers the updated parameters. On the
CPU the collectives are MindSpore's mccl (TCP); the same command runs on NPUs / GPUs with
`--device_target Ascend` / `GPU` (HCCL / NCCL), which was not tried here. Rank 0 prints the
loss; every rank saves its checkpoint, and rank 0 merges the set into one single-process
checkpoint (`fused_adamw.checkpoint.merge_shards`). Runs in well under a minute on 2 cores.
"""
import argparse
import os
import time

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.communication import get_group_size, get_rank, init
from mindspore.context import ParallelMode

from fused_adamw import FusedAdamW
from fused_adamw.checkpoint import merge_shards


def make_data(steps, batch, features, seed=0):
    """The same synthetic regression problem on every rank: y = tanh(x W) V + noise."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((features, 32)) / np.sqrt(features)
    v = rng.standard_normal((32, 4)) / np.sqrt(32)
    x = rng.standard_normal((steps, batch, features))
    y = np.tanh(x @ w) @ v + 0.01 * rng.standard_normal((steps, batch, 4))
    return x.astype(np.float32), y.astype(np.float32)


def build(features, shard_states):
    net = nn.SequentialCell(nn.Dense(features, 64), nn.Tanh(), nn.Dense(64, 64), nn.Tanh(), nn.Dense(64, 4))
    decay = [p for p in net.trainable_params() if "weight" in p.name]
    no_decay = [p for p in net.trainable_params() if "weight" not in p.name]
    opt = FusedAdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay}],
                     learning_rate=3e-3, shard_states=shard_states)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    train.set_train()
    return train, opt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device_target", default="CPU")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64, help="global batch, split over the ranks")
    parser.add_argument("--no_shard", action="store_true", help="plain data parallel (full states)")
    parser.add_argument("--out", default="output_distributed")
    args = parser.parse_args()

    ms.set_context(mode=ms.GRAPH_MODE, device_target=args.device_target)
    init()
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True)
    rank, size = get_rank(), get_group_size()
    if args.batch % size:
        raise SystemExit(f"--batch {args.batch} must be divisible by the {size} ranks")
    ms.set_seed(1)  # the same initial parameters on every rank

    features = 24
    train, opt = build(features, not args.no_shard)
    state_bytes = sum(f.size * 4 for f in opt.exp_avg_flat) + sum(f.size * 4 for f in opt.exp_avg_sq_flat)
    print(f"rank {rank}/{size}: {sum(p.size for p in opt.parameters)} parameters, "
          f"Adam states on this rank {state_bytes} bytes", flush=True)

    x, y = make_data(args.steps, args.batch, features)
    rows = slice(rank * args.batch // size, (rank + 1) * args.batch // size)
    for step in range(args.steps):
        loss = train(Tensor(x[step, rows]), Tensor(y[step, rows]))
        if rank == 0 and (step % 10 == 0 or step == args.steps - 1):
            print(f"step {step:3d}  loss (rank 0's rows) {float(loss.asnumpy()):.5f}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    ms.save_checkpoint(train, os.path.join(args.out, f"rank{rank}.ckpt"))
    # Everyone's file is written before rank 0 reads them (and no rank leaves mid-collective).
    ops.AllReduce()(Tensor(np.ones(1, np.float32)))
    if rank == 0:
        dicts = [ms.load_checkpoint(os.path.join(args.out, f"rank{r}.ckpt")) for r in range(size)]
        merged = merge_shards(dicts, train)
        path = os.path.join(args.out, "merged.ckpt")
        ms.save_checkpoint(list(merged.values()), path)
        print(f"merged {size} rank checkpoints into {path} (single-process layout)", flush=True)
    ops.AllReduce()(Tensor(np.ones(1, np.float32)))
    time.sleep(1)


if __name__ == "__main__":
    main()
