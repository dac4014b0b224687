"""MindSpore registration of the Ascend backend: the FusedAdamwGroup custom
operator (kernels/ascend) called through ops.Custom(func_type="aot") and its
generated aclnn API.

NOT RUN IN THIS PROJECT'S CI: it needs an Ascend device, CANN and the installed
operator package (docs/ascend.md). What CI checks is the registration data
(reg info, argument packing, the header MindSpore will parse) on CPU.

Why one op per group with tensor-list inputs, and this reg info:
- MindSpore 2.10's PyNative path for custom aclnn ops supports 1 to 12 arguments
  ("Aclnn custom only support arg nums between 1 and 12", libmindspore_ops_ascend.so),
  so the CPU/GPU layout of 2n + 7 positional tensors cannot reach Ascend. The
  operator takes params and grads as DYNAMIC inputs (aclTensorList*), which
  MindSpore's custom aclnn kernels pass as tensor lists (CustomV2AclnnKernelMod,
  kTypeTensorList; dyn_input_sizes in graph mode): 8 inputs + 1 output.
- var, exp_avg and exp_avg_sq are in-place references in the OpDef (outputs named
  like inputs, as CANN's own FusedAdamw declares them). CANN's generated aclnn
  header lists such a reference once, as an input (`aclTensor *expAvgRef`), and
  drops it from the outputs. MindSpore checks that reg-info inputs + outputs + 2
  equals the header's parameter count (CustomCodeGenerator.generate_callback_by_types),
  so the reg info given here mirrors the header: 8 inputs and the one ordinary
  output `done`. The reg info MindSpore would derive from the ops-info JSON lists
  the reference outputs too and fails that check, which is why it is passed explicitly.
"""
import os

OP_TYPE = "FusedAdamwGroup"
ACLNN_NAME = "aclnn" + OP_TYPE
ACLNN_HEADER = "aclnn_fused_adamw_group.h"
VENDOR_NAME = "fused_adamw"
INPUT_NAMES = ("lr", "weight_decay", "step", "hyper", "var", "grad", "exp_avg", "exp_avg_sq")
DYNAMIC_INPUTS = ("var", "grad")
OUTPUT_NAMES = ("done",)

# The prototype CANN's opbuild generates for the OpDef in
# kernels/ascend/op_host/fused_adamw_group.cpp, following its rules for DYNAMIC
# inputs (aclTensorList) and same-named outputs (one `...Ref` parameter). Written
# by hand here (CANN is not available): the tests check MindSpore's parser on it,
# and docs/ascend.md asks whoever builds the package to diff the real header.
EXPECTED_ACLNN_PROTOTYPE = (
    "aclnnStatus aclnnFusedAdamwGroupGetWorkspaceSize(\n"
    "    const aclTensor *lr,\n"
    "    const aclTensor *weightDecay,\n"
    "    const aclTensor *step,\n"
    "    const aclTensor *hyper,\n"
    "    aclTensorList *varRef,\n"
    "    const aclTensorList *grad,\n"
    "    aclTensor *expAvgRef,\n"
    "    aclTensor *expAvgSqRef,\n"
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
    from mindspore.ops import CustomRegOp, DataType

    reg = CustomRegOp(OP_TYPE)
    for i, name in enumerate(INPUT_NAMES):
        reg = reg.input(i, name, "dynamic" if name in DYNAMIC_INPUTS else "required")
    reg = reg.output(0, OUTPUT_NAMES[0], "required")
    f32, i32 = DataType.F32_Default, DataType.I32_Default
    for param in (DataType.F32_Default, DataType.F16_Default, DataType.BF16_Default):
        #               lr   wd   step hyper var    grad   m    v    done
        reg = reg.dtype_format(f32, f32, i32, f32, param, param, f32, f32, f32)
    return reg.target("Ascend").get_op_info()


def pack_group_inputs(num_tensors, args):
    """The project's group-op arguments (lr, weight_decay, global_step, hyper,
    param_0..param_{n-1}, grad_0..grad_{n-1}, exp_avg, exp_avg_sq) as the
    operator's 8 inputs, params and grads as tuples (tensor lists)."""
    n = num_tensors
    if len(args) != 2 * n + 6:
        raise TypeError(f"expected {2 * n + 6} arguments for {n} tensors, got {len(args)}")
    lr, weight_decay, step, hyper = args[:4]
    params = tuple(args[4:4 + n])
    grads = tuple(args[4 + n:4 + 2 * n])
    return lr, weight_decay, step, hyper, params, grads, args[4 + 2 * n], args[5 + 2 * n]


def make_ascend_group_op(num_tensors):
    """A Cell updating one group in place on Ascend; called with the CPU/GPU
    group op's arguments, returns the float32 [1] placeholder output.

    All params of a group must share one dtype (the tensor lists have one dtype
    per call). Raises RuntimeError off Ascend or without the operator package."""
    import mindspore as ms
    from mindspore import nn, ops

    if num_tensors < 1:
        raise ValueError("a group needs at least one tensor")
    if ms.get_context("device_target") != "Ascend":
        raise RuntimeError("make_ascend_group_op needs device_target 'Ascend'")
    if not is_operator_package_installed():
        raise RuntimeError(
            f"the {OP_TYPE} operator package is not installed: build it (docs/ascend.md) and put its "
            f"vendors/{VENDOR_NAME} directory on ASCEND_CUSTOM_OPP_PATH")

    class AscendGroupUpdate(nn.Cell):
        def __init__(self):
            super().__init__()
            self.num_tensors = num_tensors
            self.op = ops.Custom(ACLNN_NAME, out_shape=lambda *shapes: (1,),
                                 out_dtype=lambda *dtypes: ms.float32, func_type="aot",
                                 reg_info=group_reg_info())
            # Writes through its inputs; keep it in graphs although `done` is unused.
            self.op.add_prim_attr("side_effect_mem", True)

        def construct(self, *args):
            return self.op(*pack_group_inputs(self.num_tensors, args))

    return AscendGroupUpdate()
