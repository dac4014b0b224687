"""The MindSpore side of the Ascend backend, on CPU: the reg info against
MindSpore 2.10's own aclnn-header parser and callback generator, the argument
packing, the package lookup, and the refusal to build the op off Ascend. The
Custom op itself can only be constructed on an Ascend device (docs/ascend.md)."""
import importlib.util
from pathlib import Path

import pytest

from mindspore.ops.operations._custom_ops_utils import CustomCodeGenerator, CustomInfoGenerator

# Loaded from its file: it needs nothing from the package (in particular not the
# compiled _C), so these checks run whether or not fused_adamw is built/installed.
_SPEC = importlib.util.spec_from_file_location(
    "fused_adamw_ascend", Path(__file__).resolve().parents[2] / "python" / "fused_adamw" / "_ascend.py")
_ascend = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_ascend)


@pytest.fixture
def fake_vendor(tmp_path, monkeypatch):
    """A vendor directory holding only the expected aclnn header (not a real package)."""
    include = tmp_path / "vendors" / _ascend.VENDOR_NAME / "op_api" / "include"
    include.mkdir(parents=True)
    (include / _ascend.ACLNN_HEADER).write_text(
        '#include "aclnn/acl_meta.h"\nextern "C" {\n' + _ascend.EXPECTED_ACLNN_PROTOTYPE + "}\n")
    monkeypatch.setenv("ASCEND_CUSTOM_OPP_PATH", str(include.parents[1]))
    monkeypatch.setenv("ASCEND_OPP_PATH", str(tmp_path / "opp"))
    return include.parents[1]


def test_mindspore_finds_our_header_name():
    # MindSpore derives the header file name from the op name (camel case -> snake case).
    assert CustomInfoGenerator(_ascend.ACLNN_NAME).aclnn_api_file_name == _ascend.ACLNN_HEADER


def test_reg_info_matches_aclnn_prototype(fake_vendor):
    api_types = CustomInfoGenerator(_ascend.ACLNN_NAME).get_aclnn_api_types()
    assert api_types == ["aclTensor*"] * 2 + ["aclTensorList*"] * 3 + ["aclTensor*"] * 2 + [
        "uint64_t*", "aclOpExecutor**"]
    reg = _ascend.group_reg_info()
    # MindSpore's own count check and callback generation accept it...
    code = CustomCodeGenerator().generate_callback_by_types(_ascend.ACLNN_NAME, reg, api_types)
    assert all(f"aclTensorList* input{i}" in code for i in (2, 3, 4)) and "output0" in code
    # ...and would reject reg info that lists the in-place references as outputs
    # (what MindSpore derives from the ops-info JSON when no reg info is given).
    with_refs = dict(reg, outputs=[{"index": i, "name": n, "paramType": p} for i, (n, p) in enumerate(
        [("var", "dynamic"), ("states", "dynamic"), ("master", "required"), ("done", "required")])])
    with pytest.raises(RuntimeError, match="not equal to aclnn api input size"):
        CustomCodeGenerator().generate_callback_by_types(_ascend.ACLNN_NAME, with_refs, api_types)


def test_reg_info_dtypes():
    reg = _ascend.group_reg_info()
    assert [i["name"] for i in reg["inputs"]] == list(_ascend.INPUT_NAMES)
    assert [i["paramType"] for i in reg["inputs"]] == ["required"] * 2 + ["dynamic"] * 3 + ["required"]
    assert [tuple(row[i][0] for i in (2, 3, 4)) for row in reg["dtype_format"]] == list(_ascend.DTYPE_COLUMNS)
    for row in reg["dtype_format"]:
        assert row[1][0] == "int64" and all(row[i][0] == "float32" for i in (0, 5, 6))
    # MindSpore's PyNative custom aclnn path takes at most 12 arguments.
    assert len(reg["inputs"]) + len(reg["outputs"]) <= 12


def test_reg_info_columns_match_the_opdef():
    """The OpDef's dtype columns (op_host, C++) and the reg info's are the same list."""
    import re

    src = (Path(__file__).resolve().parents[2] / "kernels" / "ascend" / "op_host" / "fused_adamw_group.cpp").read_text()
    body = src[src.index("columns = {"):src.index("};", src.index("columns = {"))]
    name = {"DT_FLOAT": "float32", "DT_FLOAT16": "float16", "DT_BF16": "bfloat16"}
    cols = [tuple(name[t] for t in re.findall(r"DT_\w+", c)) for c in re.findall(r"\{(DT_[^}]*)\}", body)]
    assert cols == list(_ascend.DTYPE_COLUMNS)


def test_pack_group_inputs():
    head = ["lr", "wd", "step", "hyper", "ctl", "rng"]
    args = head + ["p0", "p1", "p2", "g0", "g1", "g2", "m", "v"]
    assert _ascend.pack_group_inputs(3, 0, args) == (
        tuple(head), ("p0", "p1", "p2"), ("g0", "g1", "g2"), ("m", "v"), None)
    full = args + ["vmax", "master"]
    assert _ascend.pack_group_inputs(3, _ascend.AMSGRAD | _ascend.MASTER, full) == (
        tuple(head), ("p0", "p1", "p2"), ("g0", "g1", "g2"), ("m", "v", "vmax"), "master")
    with pytest.raises(TypeError):
        _ascend.pack_group_inputs(2, 0, args)
    with pytest.raises(TypeError):
        _ascend.pack_group_inputs(3, _ascend.AMSGRAD, args)


def test_package_lookup(fake_vendor, monkeypatch):
    assert _ascend.find_operator_package() == str(fake_vendor)
    assert _ascend.is_operator_package_installed()
    monkeypatch.setenv("ASCEND_CUSTOM_OPP_PATH", "")
    monkeypatch.setenv("ASCEND_OPP_PATH", str(fake_vendor.parents[1]))  # .../vendors/fused_adamw found by name
    assert _ascend.find_operator_package() == str(fake_vendor)
    monkeypatch.delenv("ASCEND_OPP_PATH")
    assert not _ascend.is_operator_package_installed()


def test_refuses_off_ascend():
    import mindspore as ms
    assert ms.get_context("device_target") != "Ascend"
    with pytest.raises(RuntimeError, match="Ascend"):
        _ascend.make_ascend_group_op(3)


def test_norm_reg_info():
    reg = _ascend.norm_reg_info()
    assert [(i["name"], i["paramType"]) for i in reg["inputs"]] == [("grad_scale", "required"), ("grad", "dynamic")]
    assert [row[1][0] for row in reg["dtype_format"]] == ["float32", "float16", "bfloat16"]
    api_types = ["aclTensor*", "aclTensorList*", "aclTensor*", "uint64_t*", "aclOpExecutor**"]
    code = CustomCodeGenerator().generate_callback_by_types(_ascend.NORM_ACLNN_NAME, reg, api_types)
    assert "aclTensorList* input1" in code


def test_norm_op_refuses_off_ascend():
    with pytest.raises(RuntimeError, match="Ascend"):
        _ascend.make_ascend_norm_op(3)


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_pack_scalars_on_cpu(mode):
    """The device-side packing of the operator's coeffs/counters, with MindSpore's ops
    (they run on any device; only the Custom op itself needs Ascend)."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn

    from fused_adamw._ascend import pack_scalars  # graph mode resolves functions through their module

    class Pack(nn.Cell):
        def construct(self, *args):
            return pack_scalars(*args)

    ms.set_context(mode=ms.PYNATIVE_MODE if mode == "pynative" else ms.GRAPH_MODE)
    try:
        lr = ms.Parameter(Tensor(np.float32(3e-4)), name="lr")  # 0-d, as a learning-rate parameter
        args = (lr, Tensor(np.array([0.1], np.float32)), Tensor(np.array([7], np.int32)),
                Tensor(np.array([0.9, 0.999, 1e-8], np.float32)), Tensor(np.array([0.5, 0.25, 0.0], np.float32)),
                Tensor(np.array([2**40 + 3, 2**33], np.int64)), Tensor(np.array([1], np.int64)))
        coeffs, counters = Pack()(*args)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_array_equal(coeffs.asnumpy(), np.array([3e-4, 0.1, 0.9, 0.999, 1e-8, 0.5, 0.25, 0.0],
                                                               np.float32))
    assert coeffs.dtype == ms.float32 and counters.dtype == ms.int64
    np.testing.assert_array_equal(counters.asnumpy(), [7, 2**40 + 3, 2**33, 1])


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_combine_partials_on_cpu(mode):
    """The norm op's float64 combination of the kernel's lane sums (MindSpore ops)."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn

    from fused_adamw._ascend import combine_partials

    class Combine(nn.Cell):
        def construct(self, x):
            return combine_partials(x)

    parts = np.random.default_rng(0).random((5, 8)).astype(np.float32)
    want = float(parts.astype(np.float64).sum())
    ms.set_context(mode=ms.PYNATIVE_MODE if mode == "pynative" else ms.GRAPH_MODE)
    try:
        ok = Combine()(Tensor(parts)).asnumpy()
        parts[3, 2] = np.inf
        bad = Combine()(Tensor(parts)).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert ok.dtype == np.float64 and ok[0] == pytest.approx(want, rel=1e-15) and ok[1] == 0.0
    assert bad[1] == 1.0
