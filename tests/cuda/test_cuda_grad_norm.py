"""Pass 1 of the whole step on the GPU (issue 14): the gradient-norm kernels'
own source (kernels/cuda/grad_norm_kernel.cuh) and host plan (grad_norm_table.h)
run through the CPU emulation. The sum of squares of the unscaled gradients
must have the CPU kernel's bits (fused_adamw._C.grad_sumsq: fixed 16,384-element
chunks, 16 float64 lanes each, chunk sums in chunk order) and agree with the
model's exactly rounded sum (reference.grad_sumsq64); the flag says whether any scaled gradient is NaN/Inf."""
import math

import numpy as np
import pytest

from cuda_emu import grad_norm, reference

CHUNK = 16384


@pytest.fixture(scope="module")
def _C():
    from fused_adamw import _C

    return _C


def random_grads(rng, sizes, dtypes):
    return [reference.from_f64(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3), dt) for n, dt in zip(sizes, dtypes)]


def check(emu, _C, grads, dtypes, scale=1.0, **kw):
    total, flag, launches = grad_norm(emu, grads, dtypes, scale, **kw)
    cpu_total, cpu_flag = _C.grad_sumsq(grads, scale)
    assert np.float64(total).view(np.uint64) == np.float64(cpu_total).view(np.uint64), \
        f"sum of squares {total!r} differs from the CPU kernel's {cpu_total!r}"
    assert flag == (1.0 if cpu_flag else 0.0)
    if not cpu_flag:
        exact, _ = reference.grad_sumsq64([reference.to_f64(g, dt) for g, dt in zip(grads, dtypes)], scale)
        # Recursive summation of positive terms (each square is exact in float64): relative
        # error at most (additions on the longest path) * 2^-53, here a lane's 1,024, the 16
        # lanes and the chunk sums.
        chunks = math.ceil(sum(g.size for g in grads) / CHUNK)
        assert abs(total - exact) <= (CHUNK // 16 + 16 + chunks) * 2.0**-53 * exact, (total, exact)
    return total, flag, launches


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
# 69 * CHUNK + 3: more chunk sums than the total kernel's 64-sum batch, and a partial batch.
@pytest.mark.parametrize("size", [1, 15, 16, 17, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7, 69 * CHUNK + 3])
def test_one_gradient(emu, _C, rng, dtype, size):
    check(emu, _C, random_grads(rng, [size], [dtype]), [dtype], scale=float(rng.choice([1.0, 2.0**-12, 0.37])))


def test_many_small_tensors_across_chunk_boundaries(emu, _C, rng):
    """Tensors of odd sizes and mixed dtypes, so chunks and lanes start inside
    tensors and a chunk spans dozens of them; empty tensors own nothing."""
    sizes = [int(x) for x in rng.integers(0, 3000, 300)]
    sizes[5] = sizes[77] = 0
    sizes[100] = 2 * CHUNK + 3
    dtypes = [("float32", "float16", "bfloat16")[int(x)] for x in rng.integers(0, 3, 300)]
    check(emu, _C, random_grads(rng, sizes, dtypes), dtypes, scale=1 / 1024)


@pytest.mark.parametrize("capacity", [1, 2, 7, 64])
def test_tables_split_inside_a_chunk(emu, _C, rng, capacity):
    """A group larger than one table: a chunk that spans two lanes launches
    continues, in the second, from the accumulators the first left; the bits
    are the same for every split and every grid."""
    sizes = [int(x) for x in rng.integers(1, 9000, 40)]
    dtypes = [("float32", "bfloat16")[i % 2] for i in range(40)]
    grads = random_grads(rng, sizes, dtypes)
    one, _, launches_one = check(emu, _C, grads, dtypes)
    split, _, launches = check(emu, _C, grads, dtypes, capacity=capacity, device_blocks=3)
    assert launches_one == 1 and launches == math.ceil(40 / capacity)
    assert np.float64(one).view(np.uint64) == np.float64(split).view(np.uint64)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_nonfinite_gradient_sets_the_flag(emu, _C, rng, dtype, bad):
    grads = random_grads(rng, [5000, 3 * CHUNK], [dtype, dtype])
    grads[1][int(rng.integers(0, 3 * CHUNK))] = reference.from_f64(np.array([bad]), dtype)[0]
    _, flag, _ = check(emu, _C, grads, [dtype, dtype])
    assert flag == 1.0


def test_scaling_that_overflows_sets_the_flag(emu, _C, rng):
    """The flag is about the unscaled gradients float32(g * grad_scale), as in
    MindFormers' overflow check after the unscale."""
    grads = [np.array([1e30, 1.0], np.float32)]
    total, flag, _ = check(emu, _C, grads, ["float32"], scale=1e10)
    assert flag == 1.0 and math.isinf(total)
    total, flag, _ = check(emu, _C, grads, ["float32"], scale=1e-10)
    assert flag == 0.0


def test_empty_gradients(emu, _C):
    total, flag, launches = check(emu, _C, [np.zeros(0, np.float32)] * 3, ["float32"] * 3)
    assert (total, flag, launches) == (0.0, 0.0, 0)
