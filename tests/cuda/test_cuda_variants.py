"""The CUDA kernel's compile-time variants (docs/kernel-interface.md: amsgrad,
float32 masters, stochastic rounding, bfloat16 states), its run-time gradient
factors and skip flag, and float32 gradients for 16-bit params, run through the
CPU emulation of the kernel source (cuda_emu.py) against the float64 model and,
bit for bit, against the CPU kernel with the same options."""
import numpy as np
import pytest

from cuda_emu import AMSGRAD, MASTER, STOCHASTIC, VARIANTS, Group, assert_matches_model, assert_unchanged

CHUNK = 32 * 1024
# (param dtype, grad dtype): gradients are the param's dtype or float32.
PAIRS = [("float32", "float32"), ("float16", "float16"), ("bfloat16", "bfloat16"), ("float16", "float32"),
         ("bfloat16", "float32")]


def mixed_group(rng, flags, **kw):
    """Every dtype pair, odd sizes (one spanning two chunks), one misaligned
    param and one misaligned grad; random gradient factors and rounding seed."""
    sizes = [1, 5, 4099, CHUNK + 3, 17, 64]
    pairs = [PAIRS[i % len(PAIRS)] for i in range(len(sizes))]
    offsets = [(0, 0)] * len(sizes)
    offsets[2], offsets[4] = (1, 0), (0, 3)
    kw.setdefault("grad_scale", float(np.float32(1.0 / 2.0 ** int(rng.integers(0, 16)))))
    kw.setdefault("grad_clip", float(rng.uniform(0.2, 1.0)))
    return Group(rng, sizes, [p for p, _ in pairs], grad_dtypes=[g for _, g in pairs], offsets=offsets,
                 flags=flags, seed=int(rng.integers(0, 2**63)), index_base=int(rng.integers(0, 2**40)),
                 step=int(rng.integers(1, 5000)), **kw)


@pytest.mark.parametrize("flags", VARIANTS)
def test_every_variant_matches_the_model_and_the_cpu_kernel(emu, rng, flags):
    group = mixed_group(rng, flags)
    before = group.snapshot()
    group.run(emu)
    assert_matches_model(group, before)


@pytest.mark.parametrize("flags", VARIANTS)
def test_misaligned_state_buffers(emu, rng, flags):
    """State buffers that start off a vector boundary take the element path."""
    group = mixed_group(rng, flags, state_offset=1)
    before = group.snapshot()
    _, _, vec = group.run(emu)
    assert_matches_model(group, before)
    # no state is accessed by vector (params and grads still are, where aligned)
    assert vec < 7 * sum(n // 4 for n in group.sizes)


@pytest.mark.parametrize("flags", [0, AMSGRAD | MASTER, STOCHASTIC | 8])
def test_repeated_steps_stay_bitwise_with_the_cpu_kernel(emu, rng, flags):
    """Five steps, each from the kernel's own output (masters, maxima and
    stochastically rounded params carry over)."""
    group = mixed_group(rng, flags)
    for t in range(1, 6):
        group.step[0] = t
        group.status[0] = np.nan
        before = group.snapshot()
        group.run(emu)
        assert_matches_model(group, before)


@pytest.mark.parametrize("flags", VARIANTS)
def test_a_skipped_step_writes_nothing(emu, rng, flags):
    """grad_ctl[2] != 0 (overflow or norm spike, decided on the device): no
    param, state or master changes; the status says the call itself was fine."""
    group = mixed_group(rng, flags, skip=1.0)
    before = group.snapshot()
    group.run(emu)
    assert group.status[0] == 0.0
    assert_unchanged(group, before)


def test_stochastic_rounding_depends_on_the_element_position(emu, rng):
    """The random bits follow the element's group position (rng index base +
    flat offset): the same inputs at another index base round differently,
    each result still one of the two neighbours (the model check)."""
    a = Group(np.random.default_rng(5), [4099], ["bfloat16"], flags=STOCHASTIC, seed=11, index_base=0)
    b = Group(np.random.default_rng(5), [4099], ["bfloat16"], flags=STOCHASTIC, seed=11, index_base=4096)
    for g in (a, b):
        before = g.snapshot()
        g.run(emu)
        assert_matches_model(g, before)
    differ = np.mean(a.p[0].a != b.p[0].a)
    assert 0.05 < differ < 0.95, differ


def test_float32_grads_for_16bit_params_are_read_as_float32(emu, rng):
    """A float32 gradient that a 16-bit one cannot hold must reach the update
    unrounded: compared with the same gradient rounded to the param dtype first,
    the states differ."""
    full = Group(np.random.default_rng(3), [1000], ["bfloat16"], grad_dtypes=["float32"])
    rounded = Group(np.random.default_rng(3), [1000], ["bfloat16"], grad_dtypes=["float32"])
    rounded.g[0].a.view(np.uint32)[:] &= np.uint32(0xFFFF0000)  # exactly representable in bfloat16
    for g in (full, rounded):
        before = g.snapshot()
        g.run(emu)
        assert_matches_model(g, before)
    assert not np.array_equal(full.m.a, rounded.m.a)
