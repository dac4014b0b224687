"""Pass 1 of the whole step on Ascend (issue 14): the FusedGradNormGroup kernel
(kernels/ascend/op_kernel/fused_grad_norm_group.cpp) compiled with g++ against the
emulated Ascend C API and run block by block: the per-chunk lane sums are
bit-identical for any core count, agree with the float64 model (sum of
float64(float32(g * grad_scale))^2 per 16,384-element chunk) within 1e-6, combine to
the CPU kernel's norm pass (`_C.grad_sumsq`) within 1e-6, and NaN/Inf gradients
make exactly their chunks non-finite."""
import ctypes

import numpy as np
import pytest

import ascend_emu
from ascend_emu import EMU, NP_STORAGE, OP_HOST, UB_910B, EmulationError, Guarded, reference

CHUNK, LANES = 16384, 8


@pytest.fixture(scope="module")
def norm_lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("grad_norm")
    libs = {}

    def get(dtype):
        if dtype not in libs:
            lib = ascend_emu.compile_lib([EMU / "grad_norm_driver.cpp", OP_HOST / "grad_norm_plan.cpp"],
                                         out / f"grad_norm_{dtype}.so", [f"DTYPE_GRAD={ascend_emu.C_TYPE[dtype]}"])
            P = ctypes.c_void_p
            lib.fa_emu_grad_norm.restype = ctypes.c_int
            lib.fa_emu_grad_norm.argtypes = [ctypes.c_uint32, P, P, P, P, ctypes.c_uint32, ctypes.c_uint32, P,
                                             ctypes.c_char_p, ctypes.c_int]
            libs[dtype] = lib
        return libs[dtype]

    return get


@pytest.fixture
def rng():
    seed = np.random.SeedSequence().entropy
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)


def make_grads(rng, sizes, dtype, magnitude=1.0):
    grads = []
    for n in sizes:
        g = Guarded(n, NP_STORAGE[dtype])
        g.a[:] = reference.from_f64(magnitude * rng.standard_normal(n), dtype)
        grads.append(g)
    return grads


def run(lib, grads, sizes, scale=1.0, cores=48):
    n = len(sizes)
    chunks = -(-sum(sizes) // CHUNK)
    partials = Guarded(max(chunks, 1) * LANES, np.float32)
    partials.a[:] = np.nan
    ptrs = (ctypes.c_void_p * max(n, 1))(*[g.ptr for g in grads])
    numels = (ctypes.c_int64 * max(n, 1))(*sizes)
    s = np.array([scale], np.float32)
    blocks = ctypes.c_uint32(0)
    err = ctypes.create_string_buffer(1024)
    rc = lib.fa_emu_grad_norm(n, ptrs, numels, s.ctypes.data, partials.ptr, cores, UB_910B, ctypes.byref(blocks),
                              err, len(err))
    if rc != 0:
        raise EmulationError(err.value.decode())
    assert partials.guards_intact() and all(g.guards_intact() for g in grads)
    return partials.a[:chunks * LANES].reshape(chunks, LANES).copy(), blocks.value


def model_chunks(grads, dtype, scale):
    g = np.concatenate([reference.to_f64(x.a, dtype) for x in grads])
    unscaled = (g.astype(np.float32) * np.float32(scale)).astype(np.float64)  # float32(g * grad_scale)
    sq = unscaled * unscaled
    return np.array([sq[i:i + CHUNK].sum() for i in range(0, sq.size, CHUNK)])


@pytest.mark.parametrize("dtype", reference.DTYPES)
@pytest.mark.parametrize("sizes", [[1], [CHUNK], [CHUNK + 1], [3 * CHUNK + 77], [0, 5, 0, 9000, 30000, 1, 0, 777],
                                   "many"], ids=["1", "chunk", "chunk+1", "3chunks+77", "mixed", "many"])
def test_chunks_match_model_and_any_core_count(norm_lib, rng, dtype, sizes):
    if sizes == "many":
        sizes = [int(x) for x in rng.integers(0, 3000, 60)]
    lib = norm_lib(dtype)
    scale = 1.0 / 1024
    grads = make_grads(rng, sizes, dtype, magnitude=1024.0)
    before = [g.a.copy() for g in grads]
    results = [run(lib, grads, sizes, scale, cores) for cores in (1, 3, 48)]
    assert all(g.a.tobytes() == b.tobytes() for g, b in zip(grads, before)), "a gradient was written"
    chunks = -(-sum(sizes) // CHUNK)
    assert [r[1] for r in results] == [1, min(3, chunks), min(48, chunks)]
    for other, _ in results[1:]:
        np.testing.assert_array_equal(other.view(np.uint32), results[0][0].view(np.uint32))  # deterministic
    got = results[0][0].astype(np.float64).sum(axis=1)
    want = model_chunks(grads, dtype, scale)
    np.testing.assert_array_less(np.abs(got - want), 1e-6 * want + 1e-300)


@pytest.mark.parametrize("dtype", reference.DTYPES)
def test_total_matches_cpu_norm_pass(norm_lib, rng, dtype):
    from fused_adamw import _C

    sizes = [CHUNK * 2 + 3, 100, 0, 70000]
    grads = make_grads(rng, sizes, dtype, magnitude=512.0)
    partials, _ = run(norm_lib(dtype), grads, sizes, 1.0 / 512)
    total = float(partials.astype(np.float64).sum())  # the caller's combination, chunk and lane order
    cpu_sumsq, cpu_nonfinite = _C.grad_sumsq([g.a for g in grads], 1.0 / 512)
    assert not cpu_nonfinite and abs(total - cpu_sumsq) <= 1e-6 * cpu_sumsq


@pytest.mark.parametrize("dtype", reference.DTYPES)
def test_nonfinite_gradients_mark_their_chunks(norm_lib, rng, dtype):
    sizes = [3 * CHUNK + 5]
    grads = make_grads(rng, sizes, dtype)
    bad = {"float32": (np.float32(np.nan), np.float32(np.inf)), "float16": (np.float16(np.nan), np.float16(-np.inf)),
           "bfloat16": (np.uint16(0x7FC0), np.uint16(0xFF80))}[dtype]
    grads[0].a[CHUNK + 17] = bad[0]
    grads[0].a[3 * CHUNK + 2] = bad[1]
    partials, _ = run(norm_lib(dtype), grads, sizes)
    finite = np.isfinite(partials).all(axis=1)
    assert finite.tolist() == [True, False, True, False]
