"""The Ascend kernel's variants (docs/kernel-interface.md), run through the emulated
Ascend C API like test_kernel_emulated.py: the gradient factors (grad_scale,
grad_clip) and the skip flag, amsgrad, bfloat16 states, fp32 master weights and
float32 gradients for 16-bit params, alone and combined, for every param dtype,
and stochastic rounding of 16-bit params:
against the float64 model (tests/cuda/step_check.py, shared with the CUDA
emulation) and bit for bit against the CPU
kernel's same variant where the operation order is the same (bias corrections
that are powers of two: see test_kernel_emulated.py)."""
import numpy as np
import pytest

from ascend_emu import AMSGRAD, MASTER, STOCHASTIC, Group, reference

# (param dtype, grad dtype, state dtype, flags)
COLUMNS = []
for _dt in reference.DTYPES:
    COLUMNS += [(_dt, _dt, "float32", 0), (_dt, _dt, "float32", AMSGRAD), (_dt, _dt, "bfloat16", 0),
                (_dt, _dt, "bfloat16", AMSGRAD)]
    if _dt != "float32":
        COLUMNS += [(_dt, "float32", "float32", 0), (_dt, _dt, "float32", MASTER),
                    (_dt, "float32", "bfloat16", AMSGRAD | MASTER)]
SIZES = [1, 0, 17, 3000, 64, 999, 7000]


def ids(c):
    names = {AMSGRAD: "amsgrad", MASTER: "master", AMSGRAD | MASTER: "amsgrad+master", 0: "plain"}
    return f"p_{c[0]}-g_{c[1]}-s_{c[2]}-{names[c[3]]}"


@pytest.fixture
def rng():
    seed = np.random.SeedSequence().entropy
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)


def run_and_check(lib, group, **kw):
    before = group.snapshot()
    stats = group.run(lib, **kw)
    group.check_against_model(before)
    assert stats["gm_shared_blocks"] == 0
    return before


@pytest.mark.parametrize("column", COLUMNS, ids=ids)
def test_variant_matches_model(emu, rng, column):
    dtype, gdt, sdt, flags = column
    lib = emu(dtype, gdt, sdt)
    for step, scale, clip in [(int(rng.integers(1, 5000)), 1.0, 1.0), (7, 1.0 / 1024, 0.37)]:
        group = Group(rng, SIZES, dtype, gdt, sdt, flags, step=step, grad_scale=scale, grad_clip=clip)
        if scale != 1.0:  # loss-scaled gradients, as they arrive before the unscale
            for g in group.g:
                g.a[:] = reference.from_f64(reference.to_f64(g.a, gdt) * 1024, gdt)
        run_and_check(lib, group, cores=7)


@pytest.mark.parametrize("column", COLUMNS, ids=ids)
def test_variant_bitwise_against_cpu_kernel(emu, rng, column):
    from fused_adamw import _C

    dtype, gdt, sdt, flags = column
    betas, scale, clip = (0.875, 0.75), 0.5, 0.75
    group = Group(rng, SIZES, dtype, gdt, sdt, flags, step=1, betas=betas, lr=1e-2, grad_scale=scale,
                  grad_clip=clip)
    before = run_and_check(emu(dtype, gdt, sdt), group, cores=5)
    params = [p.copy() for p in before[0]]
    states = [s.copy() for s in before[2]]
    master = None if before[3] is None else before[3].copy()
    _C.adamw_step(params, [g.copy() for g in before[1]], states[0], states[1], 1e-2, 0.1, 1, betas[0], betas[1],
                  1e-8, max_exp_avg_sq=states[2] if flags & AMSGRAD else None, master=master, grad_scale=scale,
                  grad_clip=clip)
    for got, want in zip([p.a for p in group.p] + [s.a for s in group.states], params + states):
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    if master is not None:
        np.testing.assert_array_equal(group.master.a.view(np.uint32), master.view(np.uint32))


@pytest.mark.parametrize("column", [c for c in COLUMNS if c[3] in (0, AMSGRAD | MASTER)], ids=ids)
def test_skip_writes_nothing(emu, rng, column):
    dtype, gdt, sdt, flags = column
    group = Group(rng, SIZES, dtype, gdt, sdt, flags, skip=1.0)
    before = group.snapshot()
    stats = group.run(emu(dtype, gdt, sdt))
    assert group.unchanged_since(before) and group.guards_intact() and np.isnan(group.done[0])
    assert stats["copies_in"] == stats["copies_out"] == 0


def test_float32_params_ignore_the_master(emu, rng):
    """kMaster changes nothing for float32 params (no master exists for them): the
    master buffer is neither read nor written."""
    group = Group(rng, SIZES, "float32", flags=MASTER)
    master_before = group.master.a.copy()
    group.master.a[~group.pad] = np.nan  # would poison the update if it were read
    run_and_check(emu("float32"), group)
    assert np.isnan(group.master.a[~group.pad]).all()
    assert master_before[group.pad].tobytes() == group.master.a[group.pad].tobytes()


# ---- stochastic rounding of 16-bit params ----
SR_COLUMNS = [("bfloat16", "bfloat16", "float32", 0), ("bfloat16", "float32", "bfloat16", AMSGRAD),
              ("bfloat16", "bfloat16", "bfloat16", 0), ("float16", "float16", "float32", 0),
              ("float16", "float32", "bfloat16", AMSGRAD)]


def test_random_bits_match_the_cpp_kernels(emu, rng):
    """The kernel's scalar key and hash (adamw_stochastic.h) against kernels/common/rounding.h."""
    assert emu("bfloat16").fa_emu_sr_mismatches(int(rng.integers(0, 2**63)), 200000) == 0


@pytest.mark.parametrize("column", SR_COLUMNS, ids=ids)
def test_stochastic_rounding_bitwise_against_cpu_kernel(emu, rng, column):
    """Same random bits for the same (seed, step, index), same rounding: bit-identical
    params, including a shard's index base beyond 2^32."""
    from fused_adamw import _C

    dtype, gdt, sdt, flags = column
    seed, index_base = int(rng.integers(0, 2**63)), int(rng.choice([0, 12345 * 64, 2**33 + 4096]))
    betas = (0.875, 0.75)
    group = Group(rng, SIZES, dtype, gdt, sdt, flags | STOCHASTIC, step=1, betas=betas, lr=1e-2, seed=seed,
                  index_base=index_base)
    before = run_and_check(emu(dtype, gdt, sdt), group, cores=5)
    params, states = [p.copy() for p in before[0]], [s.copy() for s in before[2]]
    _C.adamw_step(params, [g.copy() for g in before[1]], states[0], states[1], 1e-2, 0.1, 1, betas[0], betas[1],
                  1e-8, max_exp_avg_sq=states[2] if flags & AMSGRAD else None, stochastic=True, seed=seed,
                  index_base=index_base)
    for got, want in zip([p.a for p in group.p] + [s.a for s in group.states], params + states):
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    # ...and it is not round-to-nearest: the same step with RNE differs in many elements.
    rne = [p.copy() for p in before[0]]
    _C.adamw_step(rne, [g.copy() for g in before[1]], before[2][0].copy(), before[2][1].copy(), 1e-2, 0.1, 1,
                  betas[0], betas[1], 1e-8, max_exp_avg_sq=before[2][2].copy() if flags & AMSGRAD else None)
    differ = sum(int((a.a != b).sum()) for a, b in zip(group.p, rne))
    assert differ > 0.1 * sum(SIZES)


@pytest.mark.parametrize("column", SR_COLUMNS, ids=ids)
def test_stochastic_rounding_matches_model(emu, rng, column):
    dtype, gdt, sdt, flags = column
    group = Group(rng, SIZES, dtype, gdt, sdt, flags | STOCHASTIC, step=int(rng.integers(1, 5000)),
                  seed=int(rng.integers(0, 2**63)))
    run_and_check(emu(dtype, gdt, sdt), group, cores=7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_stochastic_rounding_edge_values_bitwise(emu, rng, dtype):
    """Zeros of both signs, float16 subnormals, values that stay exact (zero gradient,
    no decay), values pushed past float16's largest finite value (Inf under the
    overflow rule) and ordinary ones: bit-identical to the CPU kernel."""
    from fused_adamw import _C

    n = 4096
    x = rng.standard_normal(n)
    x[:512] = rng.choice([0.0, -0.0], 512)
    x[512:1024] = rng.uniform(-6e-5, 6e-5, 512)  # float16 subnormals (and bfloat16's tiny normals)
    x[1024:1536] = rng.choice([-1.0, 1.0], 512) * rng.uniform(65000, 65504, 512)
    group = Group(rng, [n], dtype, step=1, betas=(0.875, 0.75), lr=30.0, weight_decay=0.0,
                  flags=STOCHASTIC, seed=int(rng.integers(0, 2**63)))
    group.p[0].a[:] = reference.from_f64(x, dtype)
    g = reference.to_f64(group.g[0].a, dtype)
    g[1536:2048] = 0.0  # zero update on zero states: the param must come back exactly
    group.g[0].a[:] = reference.from_f64(g, dtype)
    group.m.a[1536:2048] = 0.0
    group.v.a[1536:2048] = 0.0
    before = group.snapshot()
    group.run(emu(dtype), cores=3)
    params, states = [before[0][0].copy()], [s.copy() for s in before[2]]
    _C.adamw_step(params, [before[1][0].copy()], states[0], states[1], 30.0, 0.0, 1, 0.875, 0.75, 1e-8,
                  stochastic=True, seed=int(group.counters[1]))
    np.testing.assert_array_equal(group.p[0].a.view(np.uint16), params[0].view(np.uint16))
    np.testing.assert_array_equal(group.p[0].a.view(np.uint16)[1536:2048], before[0][0].view(np.uint16)[1536:2048])
    if dtype == "float16":
        assert np.isinf(group.p[0].a[1024:1536]).any() and np.isfinite(group.p[0].a[1024:1536]).any()
