"""MindSpore registration of the Ascend backend: the FusedAdamwGroup custom
operator (kernels/ascend) called through ops.Custom(func_type="aot") and its
generated aclnn API.

NOT RUN IN THIS PROJECT'S CI: it needs an Ascend device, CANN and the installed
operator package (docs/ascend.md). What CI checks is the registration data
(reg info, argument packing, the header MindSpore will parse) and the device-side
packing/combining ops (pack_scalars, combine_partials) on CPU.

Why one op per group with tensor-list inputs, and this reg info:
- MindSpore 2.10's PyNative path for custom aclnn ops supports 1 to 12 arguments
  ("Aclnn custom only support arg nums between 1 and 12", libmindspore_ops_ascend.so),
  so the CPU/GPU layout of 2n + 8 (or more) positional tensors cannot reach Ascend.
  The operator takes params, grads and the flat states as DYNAMIC inputs
  (aclTensorList*), which MindSpore's custom aclnn kernels pass as tensor lists
  (CustomV2AclnnKernelMod, kTypeTensorList; dyn_input_sizes in graph mode), and
  the run-time scalars packed into two small tensors (coeffs float32 [8]:
  lr, weight_decay, beta1, beta2, eps, grad_scale, grad_clip, skip; counters
  int64 [4]: step, seed, index_base, stochastic), packed on the device by the
  Cell below: 6 inputs + 1 output, whatever the variant. The variant is read off
  the shapes on the device side: three states = amsgrad, a non-empty master = fp32
  master weights (an empty float32 [0] tensor otherwise), bf16 states and float32
  grads by dtype.
- var, exp_avg and exp_avg_sq are in-place references in the OpDef (outputs named
  like inputs, as CANN's own FusedAdamw declares them). CANN's generated aclnn
  header lists such a reference once, as an input (`aclTensor *expAvgRef`), and
  drops it from the outputs. MindSpore checks that reg-info inputs + outputs + 2
  equals the header's parameter count (CustomCodeGenerator.generate_callback_by_types),
  so the reg info given here mirrors the header: 6 inputs and the one ordinary
  output `done`. The reg info MindSpore would derive from the ops-info JSON lists
  the reference outputs too and fails that check, which is why it is passed explicitly.
"""
import os

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.ops import CustomRegOp, DataType

OP_TYPE = "FusedAdamwGroup"
ACLNN_NAME = "aclnn" + OP_TYPE
ACLNN_HEADER = "aclnn_fused_adamw_group.h"
VENDOR_NAME = "fused_adamw"
INPUT_NAMES = ("coeffs", "counters", "var", "grad", "states", "master")
DYNAMIC_INPUTS = ("var", "grad", "states")
OUTPUT_NAMES = ("done",)
# Variant flags (kernels/common/adamw_math.h VariantFlag; _custom_op.AMSGRAD...).
AMSGRAD, MASTER, STOCHASTIC, BF16_STATE = 1, 2, 4, 8
# (var, grad, states) dtype columns of the OpDef (kernels/ascend/op_host/fused_adamw_group.cpp).
DTYPE_COLUMNS = (
    ("float32", "float32", "float32"), ("float32", "float32", "bfloat16"),
    ("float16", "float16", "float32"), ("float16", "float32", "float32"),
    ("float16", "float16", "bfloat16"), ("float16", "float32", "bfloat16"),
    ("bfloat16", "bfloat16", "float32"), ("bfloat16", "float32", "float32"),
    ("bfloat16", "bfloat16", "bfloat16"), ("bfloat16", "float32", "bfloat16"),
)

# The prototype CANN's opbuild generates for the OpDef in
# kernels/ascend/op_host/fused_adamw_group.cpp, following its rules for DYNAMIC
# inputs (aclTensorList) and same-named outputs (one `...Ref` parameter). Written
# by hand here (CANN is not available): the tests check MindSpore's parser on it,
# and docs/ascend.md asks whoever builds the package to diff the real header.
EXPECTED_ACLNN_PROTOTYPE = (
    "aclnnStatus aclnnFusedAdamwGroupGetWorkspaceSize(\n"
    "    const aclTensor *coeffs,\n"
    "    const aclTensor *counters,\n"
    "    aclTensorList *varRef,\n"
    "    const aclTensorList *grad,\n"
    "    aclTensorList *statesRef,\n"
    "    aclTensor *masterRef,\n"
    "    const aclTensor *doneOut,\n"
    "    uint64_t *workspaceSize,\n"
    "    aclOpExecutor **executor);\n")


def _vendor_dirs():
    """Where an installed custom operator package can be, in MindSpore's search
    order: each ASCEND_CUSTOM_OPP_PATH entry, then $ASCEND_OPP_PATH/vendors/*
    in config.ini's load_priority order (then the vendor named fused_adamw)."""
    dirs = [p for p in os.environ.get("ASCEND_CUSTOM_OPP_PATH", "").split(":") if p]
    opp = os.environ.get("ASCEND_OPP_PATH")
    if opp:
        vendors = os.path.join(opp, "vendors")
        names = []
        config = os.path.join(vendors, "config.ini")
        if os.path.isfile(config):
            with open(config, encoding="utf-8") as f:
                for line in f:
                    key, _, value = line.partition("=")
                    if key.strip() == "load_priority":
                        names = [n.strip() for n in value.split(",") if n.strip()]
        if VENDOR_NAME not in names:
            names.append(VENDOR_NAME)
        dirs += [os.path.join(vendors, n) for n in names]
    return dirs


def find_operator_package():
    """The directory of the installed FusedAdamwGroup package, or None."""
    for d in _vendor_dirs():
        if os.path.isfile(os.path.join(d, "op_api", "include", ACLNN_HEADER)):
            return d
    return None


def is_operator_package_installed():
    return find_operator_package() is not None


def group_reg_info():
    """Reg info matching the generated aclnn API (see the module docstring)."""
    reg = CustomRegOp(OP_TYPE)
    for i, name in enumerate(INPUT_NAMES):
        reg = reg.input(i, name, "dynamic" if name in DYNAMIC_INPUTS else "required")
    reg = reg.output(0, OUTPUT_NAMES[0], "required")
    f32, i64 = DataType.F32_Default, DataType.I64_Default
    of = {"float32": DataType.F32_Default, "float16": DataType.F16_Default, "bfloat16": DataType.BF16_Default}
    for var, grad, states in DTYPE_COLUMNS:
        #                      coeffs counters var      grad      states      master done
        reg = reg.dtype_format(f32, i64, of[var], of[grad], of[states], f32, f32)
    return reg.target("Ascend").get_op_info()


def pack_group_inputs(num_tensors, flags, args):
    """The project's group-op arguments (lr, weight_decay, global_step, hyper,
    grad_ctl, rng, param_0..param_{n-1}, grad_0..grad_{n-1}, exp_avg, exp_avg_sq,
    then max_exp_avg_sq with AMSGRAD and master with MASTER: docs/kernel-interface.md)
    split into (scalars, params, grads, states, master): scalars = (lr, weight_decay,
    global_step, hyper, grad_ctl, rng) for the Cell to pack into coeffs/counters,
    params/grads/states as tuples (tensor lists), master or None."""
    n = num_tensors
    extra = (1 if flags & AMSGRAD else 0) + (1 if flags & MASTER else 0)
    if len(args) != 2 * n + 8 + extra:
        raise TypeError(f"expected {2 * n + 8 + extra} arguments for {n} tensors and flags {flags}, got {len(args)}")
    scalars = tuple(args[:6])
    params = tuple(args[6:6 + n])
    grads = tuple(args[6 + n:6 + 2 * n])
    states = tuple(args[6 + 2 * n:8 + 2 * n + (1 if flags & AMSGRAD else 0)])
    master = args[-1] if flags & MASTER else None
    return scalars, params, grads, states, master


def pack_scalars(lr, weight_decay, step, hyper, grad_ctl, rng, stochastic):
    """The operator's first two inputs from the group op's scalar tensors, on the
    device: coeffs float32 [8] = (lr, weight_decay, beta1, beta2, eps, grad_scale,
    grad_clip, skip), counters int64 [4] = (step, seed, index_base, stochastic).
    Graph-mode code: mindspore is imported at module level for it."""
    coeffs = ops.concat((lr.reshape((1,)).astype(ms.float32), weight_decay.reshape((1,)).astype(ms.float32),
                         hyper, grad_ctl))
    counters = ops.concat((step.reshape((1,)).astype(ms.int64), rng, stochastic))
    return coeffs, counters


def make_ascend_group_op(num_tensors, flags=0):
    """A Cell updating one group in place on Ascend; called with the CPU/GPU
    group op's arguments for variant `flags`, returns the float32 [1] placeholder.

    All params of a group must share one dtype (the tensor lists have one dtype
    per call). Raises RuntimeError off Ascend or without the operator package."""
    if num_tensors < 1:
        raise ValueError("a group needs at least one tensor")
    if flags & ~(AMSGRAD | MASTER | STOCHASTIC | BF16_STATE) or (flags & MASTER and flags & STOCHASTIC):
        raise ValueError(f"invalid variant flags {flags}")
    if ms.get_context("device_target") != "Ascend":
        raise RuntimeError("make_ascend_group_op needs device_target 'Ascend'")
    if not is_operator_package_installed():
        raise RuntimeError(
            f"the {OP_TYPE} operator package is not installed: build it (docs/ascend.md) and put its "
            f"vendors/{VENDOR_NAME} directory on ASCEND_CUSTOM_OPP_PATH")

    class AscendGroupUpdate(nn.Cell):
        def __init__(self):
            super().__init__()
            self.num_tensors, self.flags = num_tensors, flags
            self.no_master = Tensor(np.zeros(0, np.float32))
            self.stochastic = Tensor(np.array([1 if flags & STOCHASTIC else 0], np.int64))
            self.op = ops.Custom(ACLNN_NAME, out_shape=lambda *shapes: (1,),
                                 out_dtype=lambda *dtypes: ms.float32, func_type="aot",
                                 reg_info=group_reg_info())
            # Writes through its inputs; keep it in graphs although `done` is unused.
            self.op.add_prim_attr("side_effect_mem", True)

        def construct(self, *args):
            scalars, params, grads, states, master = pack_group_inputs(self.num_tensors, self.flags, args)
            coeffs, counters = pack_scalars(*scalars, self.stochastic)
            return self.op(coeffs, counters, params, grads, states, self.no_master if master is None else master)

    return AscendGroupUpdate()


NORM_OP_TYPE = "FusedGradNormGroup"
NORM_ACLNN_NAME = "aclnn" + NORM_OP_TYPE


def norm_reg_info():
    """Reg info of the norm pass (kernels/ascend/op_host/fused_grad_norm_group.cpp):
    grad_scale float32 [1], grad (dynamic) -> partials float32 [chunks, 8]."""
    reg = CustomRegOp(NORM_OP_TYPE).input(0, "grad_scale", "required").input(1, "grad", "dynamic")
    reg = reg.output(0, "partials", "required")
    for grad in (DataType.F32_Default, DataType.F16_Default, DataType.BF16_Default):
        reg = reg.dtype_format(DataType.F32_Default, grad, DataType.F32_Default)
    return reg.target("Ascend").get_op_info()


def combine_partials(partials):
    """float32 [chunks, 8] lane sums -> float64 [2] = (their float64 sum, 1.0 if not finite)."""
    total = partials.astype(ms.float64).sum()
    nonfinite = ops.logical_not(ops.isfinite(total)).astype(ms.float64)
    return ops.stack((total, nonfinite))


def make_ascend_norm_op(num_tensors):
    """Pass 1 of the whole step on Ascend, with the CPU/GPU norm op's interface:
    (grad_scale, grads...) -> float64 [2] = (sum of squares of float32(g * grad_scale),
    1.0 if it is not finite). The kernel writes 8 float32 lane sums per 16,384-element
    chunk (deterministic for any core count, docs/ascend.md); they are added here in
    float64. Raises RuntimeError off Ascend or without the operator package."""
    if num_tensors < 1:
        raise ValueError("a group needs at least one tensor")
    if ms.get_context("device_target") != "Ascend":
        raise RuntimeError("make_ascend_norm_op needs device_target 'Ascend'")
    if not is_operator_package_installed():
        raise RuntimeError(f"the {NORM_OP_TYPE} operator package is not installed (docs/ascend.md)")

    def partials_shape(scale_shape, *grad_shapes):
        total = sum(int(np.prod(s)) for s in grad_shapes)
        return (-(-total // 16384), 8)

    class AscendGradNorm(nn.Cell):
        def __init__(self):
            super().__init__()
            self.num_tensors = num_tensors
            self.op = ops.Custom(NORM_ACLNN_NAME, out_shape=partials_shape, out_dtype=lambda *dtypes: ms.float32,
                                 func_type="aot", reg_info=norm_reg_info())

        def construct(self, grad_scale, *grads):
            return combine_partials(self.op(grad_scale, grads))

    return AscendGradNorm()
