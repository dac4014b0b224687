"""FusedAdamW data parallel under msrun on 127.0.0.1 (2 and 4 CPU ranks, MindSpore's mccl
collectives), unsharded and with shard_states=True (ZeRO-1), against one process on the
full batch; checkpoints resumed 4 -> 2 -> 1 ranks.

Two msrun launches for the whole file (each runs several tasks, worker.py): 4 ranks first
(its step-10 checkpoints feed the 2-rank resume), then 2 ranks. The workers only train and
write what they hold; every judgement is made here.
"""
import json
import math
import os

import mindspore as ms
import numpy as np
import pytest

import dp_model
from harness import msrun
from fused_adamw.checkpoint import merge_shards

HERE = os.path.dirname(os.path.abspath(__file__))
RTOL = 1e-6        # parameters after 20 steps, norm-wise relative to the single-process run
STATE_RTOL = 1e-5  # merged states (v ~ g^2 doubles the gradient's relative difference)

RUNS = {  # task name -> (mode, sharded, clip)
    "graph-plain": ("graph", False, False),
    "graph-sharded": ("graph", True, False),
    "graph-sharded-clip": ("graph", True, True),
    "pynative-plain": ("pynative", False, False),
    "pynative-sharded": ("pynative", True, False),
}
RANKS = (4, 2)
# 4 ranks save at step 10, 2 ranks resume from those for steps 10..14 and save at 15,
# one process resumes from those for steps 15..19.
RESUME = (10, 15)


def _task(run, **extra):
    mode, sharded, clip = RUNS[run]
    return dict({"name": run, "mode": mode, "sharded": sharded, "clip": clip,
                 "start": 0, "stop": dp_model.STEPS}, **extra)


def _ckpts(out, name, step, ranks):
    return [os.path.join(out, f"{name}.step{step}.rank{r}.ckpt") for r in range(ranks)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"distributed seed {seed}")
    base = tmp_path_factory.mktemp("msrun")
    results = {"seed": seed}
    for ranks in RANKS:
        out = str(base / f"ranks{ranks}")
        os.makedirs(out)
        tasks = [_task(name) for name in RUNS]
        if ranks == 4:
            tasks[1]["save_at"] = [RESUME[0]]
        else:
            tasks.append(_task("graph-sharded", name="resume", start=RESUME[0], stop=RESUME[1],
                               save_at=[RESUME[1]],
                               resume_from=_ckpts(results[4]["dir"], "graph-sharded", RESUME[0], 4)))
        spec = {"seed": seed, "out": out, "tasks": tasks}
        msrun(os.path.join(HERE, "worker.py"), [json.dumps(spec)], ranks, os.path.join(out, "logs"))
        results[ranks] = {"dir": out}
        for task in tasks:
            results[ranks][task["name"]] = [dict(np.load(os.path.join(out, f"{task['name']}.rank{r}.npz")))
                                            for r in range(ranks)]
    return results


def _single(seed, clip=False, mode="graph"):
    dp_model.set_mode(mode)
    try:
        train, net, opt = dp_model.build(seed, False, clip)
        dp_model.train(train, seed, 0, dp_model.STEPS)
        return dp_model.snapshot(net, opt)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="module")
def single(runs):
    """One process, full batch, 20 steps (with and without clipping)."""
    return {clip: _single(runs["seed"], clip) for clip in (False, True)}


def _rel(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


def _params(snap):
    return {k: v for k, v in snap.items() if k.startswith("param.")}


@pytest.mark.parametrize("ranks", RANKS)
@pytest.mark.parametrize("name", list(RUNS))
def test_ranks_equal_and_match_one_process(runs, single, ranks, name):
    seed, per_rank = runs["seed"], runs[ranks][name]
    ref = single[RUNS[name][2]]
    for r, snap in enumerate(per_rank[1:], 1):
        for k, v in _params(snap).items():
            assert np.array_equal(v.view(np.uint32), per_rank[0][k].view(np.uint32)), \
                f"seed {seed}: {k} differs between rank 0 and rank {r}"
    for k, v in _params(per_rank[0]).items():
        assert _rel(v, ref[k]) <= RTOL, f"seed {seed}: {k} rel err {_rel(v, ref[k]):.3g}"
    assert all(int(s["global_step"][0]) == dp_model.STEPS for s in per_rank)


@pytest.mark.parametrize("ranks", RANKS)
@pytest.mark.parametrize("name", [n for n in RUNS if RUNS[n][1]])
def test_states_are_sharded(runs, single, ranks, name):
    """Each rank holds round_up(ceil(total / N), 32) elements of every group's states, and the
    ranks' slices laid end to end are the single-process states plus zero padding."""
    seed, per_rank = runs["seed"], runs[ranks][name]
    ref = single[RUNS[name][2]]
    for k, total in enumerate(dp_model.GROUP_TOTALS):
        expected = 32 * math.ceil(math.ceil(total / ranks) / 32)
        for state in ("exp_avg", "exp_avg_sq"):
            key = f"{state}.{k}"
            assert all(s[key].shape == (expected,) for s in per_rank), [s[key].shape for s in per_rank]
            assert expected < total / ranks + 32
            full = np.concatenate([s[key] for s in per_rank])
            assert not full[total:].any()
            assert _rel(full[:total], ref[key]) <= STATE_RTOL, f"seed {seed}: {key}"


def test_resume_4_2_1(runs, single):
    """4 ranks to step 10, 2 ranks to 15, one process to 20, through merged and split
    checkpoints, ends where the uninterrupted run ends."""
    seed = runs["seed"]
    for snap in runs[2]["resume"]:
        assert int(snap["global_step"][0]) == RESUME[1]
    dp_model.set_mode("graph")
    try:
        train, net, opt = dp_model.build(seed, True)  # one process: shard_states is a no-op
        dicts = [ms.load_checkpoint(p) for p in _ckpts(runs[2]["dir"], "resume", RESUME[1], 2)]
        not_loaded, _ = ms.load_param_into_net(train, merge_shards(dicts, train))
        assert not not_loaded
        dp_model.train(train, seed, RESUME[1], dp_model.STEPS)
        snap = dp_model.snapshot(net, opt)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    ref = single[False]
    assert int(snap["global_step"][0]) == dp_model.STEPS
    for k, v in _params(snap).items():
        assert _rel(v, ref[k]) <= RTOL, f"seed {seed}: {k} rel err {_rel(v, ref[k]):.3g}"
