"""The Ascend operator itself, through MindSpore, against the float64 reference.

Skipped everywhere except on an Ascend machine with the operator package
installed and FUSED_ADAMW_TEST_NPU=1 (docs/ascend.md, "On a 910B"). It has never
run: this project has no NPU."""
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from reference import DTYPES, adamw_step64, random_param, rel_err, rounding_excess, to_f64  # noqa: E402

_SPEC = importlib.util.spec_from_file_location("fused_adamw_ascend", ROOT / "python" / "fused_adamw" / "_ascend.py")
_ascend = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_ascend)

pytestmark = pytest.mark.skipif(
    os.environ.get("FUSED_ADAMW_TEST_NPU") != "1" or not _ascend.is_operator_package_installed(),
    reason="needs an Ascend NPU, the installed FusedAdamwGroup package and FUSED_ADAMW_TEST_NPU=1")

SIZES = [1, 17, 3 * 3136 + 5, 0, 4096, 65, 100003]


def to_ms(array, dtype):
    import mindspore as ms
    if dtype == "bfloat16":
        return ms.Tensor(to_f64(array, dtype).astype(np.float32)).astype(ms.bfloat16)
    return ms.Tensor(array)


def from_ms(tensor, dtype):
    import mindspore as ms
    if dtype == "bfloat16":
        return tensor.astype(ms.float32).asnumpy().astype(np.float64)
    return tensor.asnumpy().astype(np.float64)


@pytest.mark.parametrize("mode", ["pynative", "graph"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_group_update_matches_reference(dtype, mode):
    import mindspore as ms
    ms.set_device("Ascend")
    ms.set_context(mode=ms.PYNATIVE_MODE if mode == "pynative" else ms.GRAPH_MODE, jit_config={"jit_level": "O0"})
    rng = np.random.default_rng(0)
    sizes = [n for n in SIZES if n > 0]
    p_np = [random_param(rng, n, dtype) for n in sizes]
    g_np = [random_param(rng, n, dtype) for n in sizes]
    from fused_adamw._groups import state_offsets

    offsets, total = state_offsets(sizes)  # the padded flat state layout
    live = np.zeros(total, bool)
    for off, n in zip(offsets, sizes):
        live[off:off + n] = True
    m_np = np.zeros(total, np.float32)
    v_np = np.zeros(total, np.float32)
    m_np[live] = rng.standard_normal(sum(sizes)) * 0.1
    v_np[live] = rng.random(sum(sizes)) * 0.01
    params = [ms.Parameter(to_ms(p, dtype), name=f"p{i}") for i, p in enumerate(p_np)]
    grads = [to_ms(g, dtype) for g in g_np]
    m, v = ms.Parameter(ms.Tensor(m_np), name="m"), ms.Parameter(ms.Tensor(v_np), name="v")
    lr, wd, step = 1e-3, 0.1, 3
    op = _ascend.make_ascend_group_op(len(params))
    op(ms.Tensor([lr], ms.float32), ms.Tensor([wd], ms.float32), ms.Tensor([step], ms.int32),
       ms.Tensor([0.9, 0.999, 1e-8], ms.float32), ms.Tensor([1.0, 1.0, 0.0], ms.float32),
       ms.Tensor([0, 0], ms.int64), *params, *grads, m, v)

    p64 = np.concatenate([to_f64(p, dtype) for p in p_np])
    ref_p, ref_m, ref_v = adamw_step64(p64, np.concatenate([to_f64(g, dtype) for g in g_np]),
                                       m_np[live].astype(np.float64), v_np[live].astype(np.float64), lr, wd, step)
    got_p = np.concatenate([from_ms(p, dtype) for p in params])
    assert rel_err(m.asnumpy()[live], ref_m) <= 1e-6 and rel_err(v.asnumpy()[live], ref_v) <= 1e-6
    assert not m.asnumpy()[~live].any() and not v.asnumpy()[~live].any(), "state padding written"
    decayed = p64 * (1.0 - float(np.float32(lr)) * float(np.float32(wd)))
    scale = np.abs(decayed) + np.abs(decayed - ref_p)
    if dtype == "float32":
        # The NPU's vector Sqrt/Div need not round correctly: allow 16 ulps of the scale.
        assert (np.abs(got_p - ref_p) <= 16 * 2.0**-24 * scale).all()
    else:
        # bfloat16 -> float32 is exact, so the high half of the float32 bits is the stored bfloat16.
        stored = np.concatenate([p.asnumpy() if dtype == "float16" else
                                 (p.astype(ms.float32).asnumpy().view(np.uint32) >> 16).astype(np.uint16)
                                 for p in params])
        assert rounding_excess(stored, ref_p, scale, dtype).max() <= 1
