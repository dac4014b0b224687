"""The emulated Ascend C API refuses protocol misuse loudly: planted kernels
(emu/misuse_kernels.cpp), each with one misuse, must fail with the matching
message, while the correct kernel built the same way passes and computes its
result; and single-line mutations of the real kernel's source must fail too."""
import ctypes
import re
import shutil

import numpy as np
import pytest

import ascend_emu
from ascend_emu import EMU, OP_KERNEL, EmulationError, Group, reference

MISUSES = {
    "read_before_enque": "before its DeQue",
    "read_while_queued": r"sits in its queue \(after EnQue, before DeQue\)",
    "copy_out_before_deque": "VECOUT buffer before its DeQue",
    "depth_exceeded": "queue depth 1 exceeded",
    "alloc_exhausted": "all 2 buffers of the queue are in use",
    "double_free": "freed twice",
    "use_after_free": "not allocated",
    "leak": "still allocated or queued",
    "vector_outside_buffer": r"Duplicate: UB range \[\d+, \d+\) is outside its buffer",
    "copy_outside_buffer": r"DataCopyPad GM->UB: UB range .* outside its buffer",
    "ub_overflow": "exceed the 196608-byte Unified Buffer",
    "copy_not_32_bytes": "28 bytes is not a whole number of 32-byte blocks",
    "unaligned_operand": r"UB address \d+ is not 32-byte aligned",
    "missing_barrier": "no PipeBarrier<PIPE_V> in between",
    "gm_outside": "outside every buffer of the launch",
    "bad_cast_mode": "CAST_ODD are not supported",
}


@pytest.fixture(scope="module")
def misuse_lib(tmp_path_factory):
    lib = ascend_emu.compile_lib([EMU / "misuse_kernels.cpp"], tmp_path_factory.mktemp("misuse") / "misuse.so")
    lib.fa_misuse.restype = ctypes.c_int
    lib.fa_misuse.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.fa_cast.restype = ctypes.c_int
    lib.fa_cast.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_char_p, ctypes.c_int]
    return lib


def run_kernel(lib, name, gm):
    err = ctypes.create_string_buffer(1024)
    rc = lib.fa_misuse(name.encode(), gm.ctypes.data, err, len(err))
    assert rc != 2, f"no planted kernel named {name}"
    return rc, err.value.decode()


def test_correct_kernel_passes(misuse_lib, rng):
    gm = rng.standard_normal(256).astype(np.float32)
    x = gm[:64].copy()
    rc, msg = run_kernel(misuse_lib, "correct", gm)
    assert rc == 0, msg
    np.testing.assert_array_equal(gm[128:192], x * np.float32(2) + x)


@pytest.mark.parametrize("name", list(MISUSES))
def test_planted_misuse_fails(misuse_lib, name):
    rc, msg = run_kernel(misuse_lib, name, np.zeros(256, np.float32))
    assert rc == 1, f"{name} was not caught"
    assert msg.startswith("block 0: ")
    assert re.search(MISUSES[name], msg), msg


# (file, original, planted, expected message): one-line misuses planted in the real kernel.
KERNEL_MUTATIONS = [
    ("fused_adamw_group.cpp", "        inQue_.FreeTensor(in);\n", "",
     "all 2 buffers of the queue are in use"),
    ("fused_adamw_group.cpp", "        inQue_.EnQue(buf);\n", "", "DeQue on an empty queue"),
    ("fused_adamw_group.cpp", "        outQue_.EnQue(out);\n        inQue_.FreeTensor(in);\n",
     "        inQue_.FreeTensor(in);\n        inQue_.FreeTensor(in);\n", "freed twice"),
    ("fused_adamw_group.cpp", "pipe_.InitBuffer(inQue_, kBufferNum, td->inBufBytes);",
     "pipe_.InitBuffer(inQue_, kBufferNum, td->inBufBytes * 2);", "exceed the 196608-byte Unified Buffer"),
    ("fused_adamw_group.cpp",  # copy-out of the padded tail
     "        Store(p, buf, td_->outOff[kOutP], tile.len);",
     "        Store(p, buf, td_->outOff[kOutP], tile.padded);", "outside every buffer of the launch"),
    ("adamw_tile_math.h", "    Sqrt(t1, t1, n);\n    PipeBarrier<PIPE_V>();\n", "    Sqrt(t1, t1, n);\n",
     "Adds reads UB bytes .* no PipeBarrier<PIPE_V> in between"),
]


@pytest.mark.parametrize("file,original,planted,message", KERNEL_MUTATIONS,
                         ids=[m[3].split()[0] + str(i) for i, m in enumerate(KERNEL_MUTATIONS)])
def test_planted_misuse_in_the_real_kernel(tmp_path, rng, file, original, planted, message):
    kernel_dir = tmp_path / "op_kernel"
    shutil.copytree(OP_KERNEL, kernel_dir)
    text = (kernel_dir / file).read_text()
    assert text.count(original) == 1, f"mutation anchor vanished: {original!r}"
    (kernel_dir / file).write_text(text.replace(original, planted))
    lib = ascend_emu.build(tmp_path, "float16", kernel_dir=kernel_dir)
    # One core, several tiles, a tail that is not a whole 32-byte block.
    group = Group(rng, [3 * lib.fa_emu_tile_len(ascend_emu.UB_910B, 0) + 5], "float16")
    with pytest.raises(EmulationError, match=message):
        group.run(lib, cores=1)


# ---- Cast round modes, against an independent model -----------------------------
MODES = {"CAST_NONE": 0, "CAST_RINT": 1, "CAST_FLOOR": 2, "CAST_CEIL": 3, "CAST_ROUND": 4, "CAST_TRUNC": 5,
         "CAST_ODD": 6}


def neighbours(x, decode, all_bits):
    """For each float32 x: the largest encoding <= x and the smallest >= x (finite x
    in range), from a sorted table of every finite 16-bit value."""
    vals = decode(all_bits)
    order = np.argsort(vals, kind="stable")
    vals, bits = vals[order], all_bits[order]
    keep = np.concatenate([[True], vals[1:] != vals[:-1]])  # one zero (+0 first after the sort)
    vals, bits = vals[keep], bits[keep]
    x64 = x.astype(np.float64)
    hi = np.searchsorted(vals, x64, side="left")
    lo = np.searchsorted(vals, x64, side="right") - 1
    return bits[lo], vals[lo], bits[hi], vals[hi]


def expected(x, mode, decode, all_bits):
    lob, lov, hib, hiv = neighbours(x, decode, all_bits)
    x64 = x.astype(np.float64)
    exact = lov == x64
    dl, dh = x64 - lov, hiv - x64
    even = np.where((lob & 1) == 0, lob, hib)
    odd = np.where((lob & 1) == 1, lob, hib)
    nearest_even = np.where(dl < dh, lob, np.where(dh < dl, hib, even))
    pick = {
        "CAST_RINT": nearest_even, "CAST_NONE": nearest_even,
        "CAST_FLOOR": lob, "CAST_CEIL": hib,
        "CAST_TRUNC": np.where(x64 > 0, lob, hib),
        "CAST_ROUND": np.where(dl < dh, lob, np.where(dh < dl, hib, np.where(x64 > 0, hib, lob))),
        "CAST_ODD": odd,
    }[mode]
    out = np.where(exact, lob, pick).astype(np.uint16)
    # A result of zero keeps the sign of x (IEEE rounding), which the table's one zero lacks.
    zero = (out & 0x7FFF) == 0
    return np.where(zero & (x64 < 0), np.uint16(0x8000), np.where(zero, np.uint16(0), out)).astype(np.uint16)


@pytest.mark.parametrize("mode", list(MODES))
def test_cast_round_modes(misuse_lib, rng, mode):
    """Cast float32 -> half / bfloat16_t in every documented round mode, against an
    independent model built from the table of all finite 16-bit values (inputs
    inside the finite range, nonzero)."""
    x = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-6, 4, 2000),
                        rng.uniform(-3, 3, 2000)]).astype(np.float32)
    x[:8] = [1.0, -1.0, 0.5, 1 + 2**-11, 1 + 2**-8, -(1 + 2**-11), 3 * 2**-12, 65504.0]  # ties and exact values
    x = x[np.abs(x) < 60000]
    x = x[(x != 0)]
    half_bits, bf16_bits = np.zeros(x.size, np.uint16), np.zeros(x.size, np.uint16)
    err = ctypes.create_string_buffer(512)
    rc = misuse_lib.fa_cast(x.ctypes.data, x.size, MODES[mode], half_bits.ctypes.data, bf16_bits.ctypes.data,
                            err, len(err))
    assert rc == 0, err.value.decode()
    all16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    finite_h = all16[np.isfinite(all16.view(np.float16))]
    want_h = expected(x, mode, lambda b: b.view(np.float16).astype(np.float64), finite_h)
    np.testing.assert_array_equal(half_bits, want_h)
    if mode not in ("CAST_NONE", "CAST_ODD"):
        decode_b = lambda b: reference.bf16_bits_to_f32(b).astype(np.float64)  # noqa: E731
        with np.errstate(invalid="ignore"):
            finite_b = all16[np.isfinite(decode_b(all16))]
        np.testing.assert_array_equal(bf16_bits, expected(x, mode, decode_b, finite_b))
