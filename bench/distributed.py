"""Correctness-scale measurement of FusedAdamW data parallel on this machine's CPU:
optimizer-state bytes per rank and step time per rank for N = 1, 2, 4 ranks, unsharded
and with shard_states=True (ZeRO-1). N > 1 runs under msrun on 127.0.0.1 with MindSpore's
mccl (TCP) collectives; all ranks share the machine's cores, so the times show the cost
of the extra work on a CPU, not what an interconnect would do (docs/distributed.md).

    python bench/distributed.py                  # N = 1, 2, 4; writes bench/runs/<date>-distributed.json
    python bench/distributed.py --ranks 1 2 --hidden 512

Per rank and variant: `state_bytes` (exp_avg + exp_avg_sq Parameters this rank holds),
`shard_buffer_bytes` (the sharded step's parameter-slice buffers), `train_ms` (median
TrainOneStepCell step: forward, backward, gradient AllReduce, optimizer) and `opt_ms`
(median optimizer call alone on fixed gradients, GRAPH_MODE, including its AllGather).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "distributed"))  # the msrun launcher


def _median_ms(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def worker(args):
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn, ops
    from mindspore.communication import get_group_size, get_rank, init
    from mindspore.context import ParallelMode

    from fused_adamw import FusedAdamW

    ms.set_context(mode=ms.GRAPH_MODE)
    rank, size = 0, 1
    if os.environ.get("MS_ROLE"):
        init()
        ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True)
        rank, size = get_rank(), get_group_size()
    rng = np.random.default_rng(rank)
    x = Tensor(rng.standard_normal((args.batch // size, args.hidden)).astype(np.float32))
    y = Tensor(rng.standard_normal((args.batch // size, args.hidden)).astype(np.float32))

    class OptStep(nn.Cell):
        def __init__(self, opt):
            super().__init__()
            self.opt = opt

        def construct(self, grads):
            return self.opt(grads)

    rows = []
    for shard in (False, True):
        ms.set_seed(0)
        layers = []
        for _ in range(args.layers):
            layers += [nn.Dense(args.hidden, args.hidden), nn.Tanh()]
        net = nn.SequentialCell(layers[:-1])
        opt = FusedAdamW(net.trainable_params(), learning_rate=1e-4, weight_decay=0.01, shard_states=shard)
        train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
        train.set_train()
        train_ms = _median_ms(lambda: train(x, y).asnumpy(), args.warmup, args.repeat)
        grads = tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32) * 1e-3) for p in opt.parameters)
        step = OptStep(opt)
        opt_ms = _median_ms(lambda: [o.asnumpy() for o in step(grads)], args.warmup, args.repeat)
        sharded = opt._sharded
        states = tuple(opt.exp_avg_flat) + tuple(opt.exp_avg_sq_flat)
        rows.append({
            "ranks": size, "rank": rank, "shard_states": shard,
            "params": int(sum(p.size for p in opt.parameters)),
            "state_bytes": int(sum(f.size * f.itemsize for f in states)),
            "shard_buffer_bytes": int(sum(b.size * b.itemsize for b in sharded.param_shard)) if sharded else 0,
            "train_ms": round(train_ms, 3), "opt_ms": round(opt_ms, 3)})
    with open(os.path.join(args.out_dir, f"ranks{size}.rank{rank}.json"), "w") as f:
        json.dump(rows, f)
    if size > 1:  # leave together (docs: a rank exiting after a collective can fail its peers)
        ms.set_context(mode=ms.PYNATIVE_MODE)
        ops.AllReduce()(Tensor(np.ones(1, np.float32)))
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", default=os.path.join(HERE, "runs", f"{datetime.date.today()}-distributed.json"))
    parser.add_argument("--as_worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_worker:
        return worker(args)

    from harness import msrun

    passed = ["--hidden", str(args.hidden), "--layers", str(args.layers), "--batch", str(args.batch),
              "--warmup", str(args.warmup), "--repeat", str(args.repeat)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.ranks:
            cmd = [os.path.abspath(__file__), "--as_worker", "--out_dir", tmp] + passed
            if n == 1:
                subprocess.run([sys.executable] + cmd, check=True, timeout=600)
            else:
                msrun(cmd[0], cmd[1:], n, os.path.join(tmp, f"logs{n}"), timeout=600)
            for r in range(n):
                with open(os.path.join(tmp, f"ranks{n}.rank{r}.json")) as f:
                    rows += json.load(f)
    result = {"date": str(datetime.datetime.now()), "load_at_end": os.getloadavg(),
              "config": vars(args), "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"| N | shard_states | params | state bytes / rank | shard buffer bytes / rank | "
          f"train step ms (rank median, max over ranks) | optimizer ms (max over ranks) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.ranks:
        for shard in (False, True):
            mine = [r for r in rows if r["ranks"] == n and r["shard_states"] == shard]
            print(f"| {n} | {shard} | {mine[0]['params']} | {max(r['state_bytes'] for r in mine)} | "
                  f"{max(r['shard_buffer_bytes'] for r in mine)} | {max(r['train_ms'] for r in mine):.1f} | "
                  f"{max(r['opt_ms'] for r in mine):.1f} |")
    print(f"written {args.out}")


if __name__ == "__main__":
    sys.exit(main())
