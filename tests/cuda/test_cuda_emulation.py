"""The CUDA kernel's own source (kernels/cuda/adamw_kernel.cuh) and its host-side
table planning (adamw_table.h), compiled as host C++ through cuda_on_cpu.h and
run on the CPU against the float64 model and, bit for bit, against the CPU
kernel. Every block and thread of each launch runs; guards around every array
catch stray writes, a NaN-poisoned status must be overwritten, and every element
is compared. `rng` (tests/conftest.py) draws fresh inputs and prints its seed.
"""
import math

import numpy as np
import pytest

from cuda_emu import DTYPE_CODE, Group, assert_matches_model, assert_unchanged, reference

DTYPES = list(DTYPE_CODE)
CHUNK = 32 * 1024


def step_and_check(emu, group, **kw):
    before = group.snapshot()
    launch_info = group.run(emu, **kw)
    assert_matches_model(group, before)
    return launch_info


def test_constants_match_the_tests(emu):
    assert emu.emu_chunk_elems() == CHUNK


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 17, 1023, 1024, 1025, CHUNK - 1, CHUNK, CHUNK + 3, 2**20 + 3])
def test_one_tensor_every_size(emu, rng, dtype, size):
    step_and_check(emu, Group(rng, [size], [dtype], step=int(rng.integers(1, 2000))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p_off,g_off,state_off", [(1, 0, 0), (0, 2, 0), (0, 0, 3), (1, 2, 3), (3, 3, 3), (2, 1, 1)])
def test_misaligned_starts(emu, rng, dtype, p_off, g_off, state_off):
    group = Group(rng, [CHUNK + 5, 257], [dtype, dtype], offsets=[(p_off, g_off), (g_off, p_off)],
                  state_offset=state_off)
    step_and_check(emu, group)


def test_aligned_arrays_take_the_vector_path(emu, rng):
    """7 vector accesses (4 loads, 3 stores) per 4 elements when all is aligned;
    a misaligned param costs its 2 vector accesses, a misaligned state start its 4."""
    n = 4096 + 3
    quads = n // 4
    _, _, vec = step_and_check(emu, Group(rng, [n], ["float32"]))
    assert vec == 7 * quads
    _, _, vec = step_and_check(emu, Group(rng, [n], ["bfloat16"], offsets=[(1, 0)]))
    assert vec == 5 * quads
    _, _, vec = step_and_check(emu, Group(rng, [n], ["float16"], state_offset=2))
    assert vec == 3 * quads
    # A 16-bit param needs only 8-byte alignment: 4 elements past a boundary is aligned.
    _, _, vec = step_and_check(emu, Group(rng, [n], ["float16"], offsets=[(4, 4)]))
    assert vec == 7 * quads


def test_padded_states_put_every_tensor_on_the_vector_path(emu, rng):
    """Flat state layout (docs/kernel-interface.md): each tensor's states start at
    a multiple of 32 elements, so odd sizes before a tensor no longer misalign
    it: with aligned params and grads, every quad is 7 vector accesses."""
    sizes = [5, 7, 33, 1, 4099, 3, CHUNK + 1, 2]
    dtypes = [DTYPES[i % 3] for i in range(len(sizes))]
    group = Group(rng, sizes, dtypes)
    assert all(o % 32 == 0 for o in group.state_offsets)
    _, _, vec = step_and_check(emu, group)
    assert vec == 7 * sum(n // 4 for n in sizes)


def test_mixed_group_with_odd_and_empty_tensors(emu, rng):
    """Odd sizes (padded state starts), misaligned params and grads, dtypes
    that differ per tensor, and empty tensors, which own no chunk."""
    sizes = [0, 7, 1, CHUNK + 1, 0, 3, 2 * CHUNK, 17, 4, 0, 100_003, 5, 0]
    dtypes = [DTYPES[i % 3] for i in range(len(sizes))]
    offsets = [(int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in sizes]
    step_and_check(emu, Group(rng, sizes, dtypes, offsets=offsets, state_offset=1))


def test_thousand_tensors(emu, rng):
    """1,000 tensors: the table holds 768, so a second launch takes the rest."""
    sizes = [int(x) for x in rng.integers(0, 1500, 1000)]
    sizes[10], sizes[500], sizes[999] = CHUNK * 3 + 1, 70_001, CHUNK
    dtypes = [DTYPES[int(x)] for x in rng.integers(0, 3, 1000)]
    offsets = [(int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in sizes]
    grids, counts, _ = step_and_check(emu, Group(rng, sizes, dtypes, offsets=offsets), device_blocks=8)
    assert counts == [768, 232]
    assert grids == [8, 8]


@pytest.mark.parametrize("capacity", [1, 3, 7, 49, 50])
def test_table_overflow_splits_into_launches(emu, rng, capacity):
    """A group larger than a table is split into ceil(n / capacity) launches that
    give, bit for bit, what one launch gives."""
    n = 50
    sizes = [int(x) for x in rng.integers(1, 3000, n)]
    sizes[7] = 2 * CHUNK + 9
    dtypes = [DTYPES[i % 3] for i in range(n)]
    one = Group(np.random.default_rng(7), sizes, dtypes)
    split = Group(np.random.default_rng(7), sizes, dtypes)
    one.run(emu, capacity=n)
    grids, counts, _ = step_and_check(emu, split, capacity=capacity)
    assert counts == [min(capacity, n - i) for i in range(0, n, capacity)]
    assert len(grids) == math.ceil(n / capacity)
    for a, b in zip(one.p + one.states(), split.p + split.states()):
        assert np.array_equal(a.a.view(np.uint8), b.a.view(np.uint8))


@pytest.mark.parametrize("device_blocks", [1, 3, 4, 5, 1000])
def test_grid_stride_over_chunks(emu, rng, device_blocks):
    """Fewer blocks than chunks stride over them; more are capped at the chunk count."""
    sizes = [CHUNK * 2 + 1, 5, CHUNK]
    grids, _, _ = step_and_check(emu, Group(rng, sizes, ["float32", "bfloat16", "float16"]),
                                 device_blocks=device_blocks)
    assert grids == [min(device_blocks, 3 + 1 + 1)]  # chunks: 3 + 1 + 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_propagate_like_the_model(emu, rng, dtype):
    n = 4099
    group = Group(rng, [n, 13], [dtype, dtype], offsets=[(0, 0), (1, 1)])
    for p, g in zip(group.p, group.g):
        for arr, values in ((g.a, (np.nan, np.inf, -np.inf)), (p.a, (np.nan, np.inf, -np.inf))):
            idx = rng.choice(arr.size, size=min(6, arr.size), replace=False)
            for j, i in enumerate(idx):
                arr[i] = _encode(values[j % 3], dtype)
    group.m.a[rng.choice(n, 3, replace=False)] = np.nan
    group.v.a[rng.choice(n, 3, replace=False)] = np.inf
    step_and_check(emu, group)


def _encode(x, dtype):
    return reference.from_f64(np.array([x]), dtype)[0]


@pytest.mark.parametrize("bad", [
    {"lr": -1e-3}, {"lr": np.nan}, {"lr": np.inf}, {"weight_decay": -0.1}, {"weight_decay": np.nan},
    {"step": 0}, {"step": -5}, {"betas": (0.0, 0.999)}, {"betas": (1.0, 0.999)}, {"betas": (0.9, 1.0)},
    {"betas": (0.9, np.nan)}, {"eps": 0.0}, {"eps": -1e-8}, {"eps": np.inf},
    {"grad_scale": np.inf}, {"grad_scale": np.nan}, {"grad_clip": np.nan}, {"grad_clip": -np.inf},
])
def test_invalid_values_change_nothing_and_flag_the_status(emu, rng, bad):
    """The GPU cannot return an error for values it reads from device memory:
    like the CPU entry it leaves everything untouched, and writes NaN to the
    op's output."""
    group = Group(rng, [CHUNK + 1, 9], ["float32", "bfloat16"], **bad)
    group.status[0] = 123.0
    before = group.snapshot()
    group.run(emu)
    assert np.isnan(group.status[0])
    assert_unchanged(group, before)


def test_status_is_written_even_for_an_empty_group(emu, rng):
    group = Group(rng, [0, 0], ["float32", "float16"])
    grids, counts, _ = group.run(emu)
    assert group.status[0] == 0.0 and grids == [1] and counts == [2]


def test_status_is_written_by_the_first_launch_of_a_split_group(emu, rng):
    group = Group(rng, [5] * 10, ["float32"] * 10)
    grids, counts, _ = step_and_check(emu, group, capacity=4)
    assert counts == [4, 4, 2]


def test_repeated_steps_track_the_model(emu, rng):
    """Ten steps with a growing t: each step starts from the kernel's own output."""
    group = Group(rng, [1000, 333], ["float32", "bfloat16"], step=1)
    for t in range(1, 11):
        group.step[0] = t
        group.status[0] = np.nan
        step_and_check(emu, group)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_check_rejects_truncation_and_unwritten_params(emu, rng, dtype):
    """The comparison itself can fail: params rounded toward zero, or left as
    they were, are caught."""
    from step_check import check_step, model_step

    group = Group(rng, [5000], [dtype])
    before = group.snapshot()
    group.run(emu)
    exp_p = model_step(group.spec(), before)["p"][0]
    if dtype == "bfloat16":
        truncated = (exp_p.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    else:  # float16: round toward zero by stepping back where rounding went up in magnitude
        nearest = exp_p.astype(np.float16)
        up = np.abs(nearest.astype(np.float64)) > np.abs(exp_p)
        truncated = np.where(up, np.nextafter(nearest, np.float16(0)), nearest)
    for wrong in (truncated, before["p"][0]):
        with pytest.raises(AssertionError):
            check_step(group.spec(), before, dict(group.arrays(), p=[wrong]))
    check_step(group.spec(), before, group.arrays())
