"""shard_states and the parallel context on one process (no msrun): the option is a no-op,
MindSpore's parallel optimizer is refused with a pointer to shard_states, and the
checkpoint merge refuses what is not a sharding of the optimizer's states."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor
from mindspore.context import ParallelMode

import dp_model
from fused_adamw import FusedAdamW
from fused_adamw.checkpoint import merge_shards, split_shards


@pytest.fixture
def seed(rng):
    return int(rng.integers(2**31))


@pytest.mark.parametrize("variant", list(dp_model.VARIANTS))
def test_one_process_is_unchanged(mode, seed, variant):
    snaps = []
    for shard in (False, True):
        train, net, opt = dp_model.build(seed, shard, variant)
        dp_model.train(train, seed, 0, 5)
        snaps.append(dp_model.snapshot(net, opt))
        assert tuple(f.size for f in opt.exp_avg_flat) == dp_model.GROUP_TOTALS
    assert snaps[0].keys() == snaps[1].keys()
    for k in snaps[0]:
        assert np.array_equal(snaps[0][k], snaps[1][k]), f"seed {seed}: {k}"


def test_one_process_keeps_per_parameter_states(seed):
    _, net, opt = dp_model.build(seed, True)
    assert len(opt.exp_avg) == len(net.trainable_params())
    assert opt.exp_avg[0].shape == net.w1.shape


@pytest.fixture
def parallel_context():
    yield
    ms.reset_auto_parallel_context()


@pytest.mark.parametrize("parallel_mode", [ParallelMode.SEMI_AUTO_PARALLEL, ParallelMode.AUTO_PARALLEL,
                                           ParallelMode.DATA_PARALLEL])
@pytest.mark.parametrize("shard", [False, True])
def test_parallel_optimizer_is_refused(parallel_context, parallel_mode, shard):
    ms.set_auto_parallel_context(parallel_mode=parallel_mode, enable_parallel_optimizer=True)
    param = Parameter(Tensor(np.ones(4, np.float32)), name="p")
    with pytest.raises(RuntimeError, match="enable_parallel_optimizer.*shard_states=True"):
        FusedAdamW([param], shard_states=shard)


@pytest.mark.parametrize("parallel_mode", [ParallelMode.SEMI_AUTO_PARALLEL, ParallelMode.AUTO_PARALLEL])
def test_shard_states_needs_data_parallel(parallel_context, parallel_mode):
    ms.set_auto_parallel_context(parallel_mode=parallel_mode)
    param = Parameter(Tensor(np.ones(4, np.float32)), name="p")
    with pytest.raises(ValueError, match="shard_states.*data_parallel"):
        FusedAdamW([param], shard_states=True)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_shard_states_must_be_bool(value):
    param = Parameter(Tensor(np.ones(4, np.float32)), name="p")
    with pytest.raises(TypeError, match="shard_states"):
        FusedAdamW([param], shard_states=value)


def _state(name, values):
    return Parameter(Tensor(np.asarray(values, np.float32)), name=name)


def test_merge_and_split_shards(rng, seed):
    """Two made-up rank slices of each state merge into the unsharded state; padding that is
    not zero (ranks out of order, other groups) and unequal slices are refused."""
    train, _, opt = dp_model.build(seed, True)
    names = [f.name for f in opt.exp_avg_flat] + [f.name for f in opt.exp_avg_sq_flat]
    totals = dp_model.GROUP_TOTALS * 2
    full = {n: rng.standard_normal(t).astype(np.float32) for n, t in zip(names, totals)}
    shard = {n: 32 * -(-t // 64) for n, t in zip(names, totals)}
    param_shard = names[0].replace(".exp_avg.0", ".param_shard.0")  # the rank's parameter slice
    ranks = []
    for r in range(2):
        d = {"w1": Parameter(Tensor(np.zeros(3, np.float32)), name="w1"),
             param_shard: _state(param_shard, np.zeros(3))}
        for n in names:
            padded = np.zeros(2 * shard[n], np.float32)
            padded[:full[n].size] = full[n]
            d[n] = _state(n, padded[r * shard[n]:(r + 1) * shard[n]])
        ranks.append(d)
    merged = merge_shards(ranks, train)
    assert param_shard not in merged and "w1" in merged
    for n in names:
        assert np.array_equal(merged[n].asnumpy(), full[n])
    assert split_shards(merged, train).keys() == merged.keys()  # one process: passes through
    with pytest.raises(ValueError, match="out of order"):
        merge_shards(ranks[::-1], train)
    ranks[1][names[0]] = _state(names[0], np.zeros(shard[names[0]] + 32))
    with pytest.raises(ValueError, match="differ in size"):
        merge_shards(ranks, train)
    del ranks[1][names[0]]
    with pytest.raises(ValueError, match="missing from rank 1"):
        merge_shards(ranks, train)
    merged[names[1]] = _state(names[1], np.zeros(3))
    with pytest.raises(ValueError, match="has 3 elements"):
        split_shards(merged, train)


@pytest.mark.parametrize("ranks", [2, 3, 4, 8])
def test_rank_pieces_tile_the_padded_layout(rng, ranks):
    """The pieces of ranks 0..N-1, laid end to end, are the group's flat layout (members at
    their offsets, zeros in the gaps and the tail) over N equal shards; every rank has the
    same number of pieces (one per member, and the tail)."""
    from fused_adamw._groups import KernelGroup
    from fused_adamw._sharding import _pieces, shard_size

    sizes = [int(n) for n in rng.integers(1, 90, size=int(rng.integers(1, 7)))]
    gaps = [int(g) for g in rng.integers(0, 40, size=len(sizes))]  # any gap rule the layout may use
    offsets, at = [], 0
    for n, gap in zip(sizes, gaps):
        offsets.append(at + gap)
        at = offsets[-1] + n
    group = KernelGroup(tuple(range(len(sizes))), 0, tuple(offsets), at)
    shard = shard_size(at, ranks)
    values = [rng.standard_normal(n) for n in sizes]
    expected = np.zeros(shard * ranks)
    for v, o in zip(values, offsets):
        expected[o:o + v.size] = v
    laid = []
    for r in range(ranks):
        pieces, tail = _pieces(group, sizes, r * shard, (r + 1) * shard)
        assert len(pieces) == len(sizes)
        part = []
        for i, (gap, a, b) in enumerate(pieces):
            part += [np.zeros(gap), values[i][a:b]]
        part.append(np.zeros(tail))
        assert sum(p.size for p in part) == shard
        laid += part
    np.testing.assert_array_equal(np.concatenate(laid), expected)


def test_bfloat16_parameters_refused_on_cpu(parallel_context, monkeypatch):
    """The CPU backend cannot copy bfloat16 parameters in a sharded step: a clear error at
    construction (world size faked to 2: only the check runs, nothing communicates)."""
    from fused_adamw import _sharding

    monkeypatch.setattr(_sharding, "world_size", lambda: 2)
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL)
    params = [Parameter(Tensor(np.ones(4, np.float32)), name="a"),
              Parameter(Tensor(np.ones(4, np.float32)).astype(ms.bfloat16), name="b")]
    with pytest.raises(ValueError, match="shard_states=True.*bfloat16 parameter 'b'"):
        FusedAdamW(params, shard_states=True)


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_constructed_shard_of_a_three_rank_world(parallel_context, monkeypatch, rng, rank):
    """A FusedAdamW built as rank `rank` of 3 (world faked, nothing communicates): its states
    hold that rank's slice, its masters are that slice of the parameters, per-parameter views
    and to_mindformers refuse, and split_shards cuts the same slice out of a full checkpoint."""
    from fused_adamw import _sharding
    from fused_adamw.checkpoint import to_mindformers

    monkeypatch.setattr(_sharding, "world_size", lambda: 3)
    monkeypatch.setattr(_sharding, "world_rank", lambda: rank)
    ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL)
    values = [rng.standard_normal(n).astype(np.float32) for n in (70, 5, 33)]
    params = [Parameter(Tensor(v).astype(ms.float16), name=f"p{i}") for i, v in enumerate(values)]
    opt = FusedAdamW(params, master_weights=True, shard_states=True)
    padded = np.zeros(3 * 64, np.float32)  # offsets 0, 96, 128 (multiples of 32); total 161
    for v, offset in zip(values, (0, 96, 128)):
        padded[offset:offset + v.size] = v.astype(np.float16).astype(np.float32)
    mine = slice(rank * 64, (rank + 1) * 64)
    assert [f.size for f in opt.exp_avg_flat] == [64]
    np.testing.assert_array_equal(opt.master_flat[0].asnumpy(), padded[mine])
    with pytest.raises(RuntimeError, match="merge_shards"):
        opt.exp_avg[0]
    with pytest.raises(RuntimeError, match="merge_shards"):
        to_mindformers(opt)
    full = {f.name: Parameter(Tensor(rng.standard_normal(161).astype(np.float32)), name=f.name)
            for f in tuple(opt.exp_avg_flat) + tuple(opt.exp_avg_sq_flat)}
    full[opt.master_flat[0].name] = Parameter(Tensor(padded[:161]), name=opt.master_flat[0].name)
    split = split_shards(full, opt)
    for name, value in full.items():
        expected = np.zeros(3 * 64, np.float32)
        expected[:161] = value.asnumpy()
        np.testing.assert_array_equal(split[name].asnumpy(), expected[mine])
