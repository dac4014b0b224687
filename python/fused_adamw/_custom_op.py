"""Builds the per-group in-place ops.Custom(func_type="aot") call into our library.

The op's inputs (csrc/aot_args.h, docs/kernel-interface.md): lr, weight_decay,
global_step, hyper(beta1, beta2, eps), grad_ctl(grad_scale, grad_clip, skip),
rng(seed, index_base), params..., grads..., exp_avg, exp_avg_sq, then
max_exp_avg_sq (amsgrad) and master (master weights); its output is one dummy
float32 element. The variant flags select the entry point (FusedAdamW_v<flags>). The kernel writes params and states through their own storage,
so the op is marked as having a memory side effect (or graph mode would drop it
as dead code) and its written inputs are declared read-write (RW_WRITE), as
MindSpore's own in-place ops do.
"""
import os

import mindspore as ms
from mindspore import ops
from mindspore.ops import signature as sig

from . import _C

# Entry points exported by the library, by MindSpore device target; a variant's
# entry adds "_v<flags>" (flags: kernels/common/adamw_math.h VariantFlag).
_AOT_ENTRY = {"CPU": "FusedAdamW", "GPU": "FusedAdamWGPU"}
_NORM_ENTRY = {"CPU": "FusedGradNorm", "GPU": "FusedGradNormGPU"}

AMSGRAD, MASTER, STOCHASTIC, BF16_STATE = 1, 2, 4, 8


def library_path():
    """Absolute path of the shared library holding the kernels and AOT entries."""
    return os.path.abspath(_C.__file__)


def _out_shape(*_):
    return (1,)


def _out_dtype(*_):
    return ms.float32


def state_names(flags):
    """The flat state inputs of a variant, in argument order."""
    return (("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if flags & AMSGRAD else ())
            + (("master",) if flags & MASTER else ()))


def _signature(num_tensors, flags):
    read = [sig.make_sig(name) for name in ("lr", "weight_decay", "global_step", "hyper", "grad_ctl", "rng")]
    params = [sig.make_sig(f"param{i}", sig.sig_rw.RW_WRITE) for i in range(num_tensors)]
    grads = [sig.make_sig(f"grad{i}") for i in range(num_tensors)]
    states = [sig.make_sig(name, sig.sig_rw.RW_WRITE) for name in state_names(flags)]
    return tuple(read + params + grads + states)


def _check_backend(device_target):
    if device_target not in _AOT_ENTRY:
        raise ValueError(f"FusedAdamW has no kernel for device target {device_target!r}")
    if device_target == "GPU" and not _C.build_info()["cuda"]:
        raise RuntimeError("FusedAdamW: this build of fused_adamw has no CUDA kernel "
                           "(reinstall with nvcc available or FUSED_ADAMW_CUDA=ON)")


def _norm_out_shape(*_):
    return (2,)


def _norm_out_dtype(*_):
    return ms.float64


def make_norm_op(num_tensors, device_target=None):
    """Pass 1 of the whole step for a group of `num_tensors` gradients: (grad_scale, grads...)
    -> float64 [sum of squares of the unscaled gradients, 1.0 if any is NaN/Inf]. Reads only:
    no side effect."""
    device_target = device_target or ms.get_context("device_target")
    if device_target == "Ascend":
        from ._ascend import make_ascend_norm_op

        return make_ascend_norm_op(num_tensors)
    _check_backend(device_target)
    return ops.Custom(f"{library_path()}:{_NORM_ENTRY[device_target]}", out_shape=_norm_out_shape,
                      out_dtype=_norm_out_dtype, func_type="aot")


def make_group_op(num_tensors, device_target=None, flags=0):
    """One fused AdamW op for a group of `num_tensors` parameters on `device_target`,
    for the variant `flags`."""
    device_target = device_target or ms.get_context("device_target")
    if device_target == "Ascend":
        from ._ascend import make_ascend_group_op

        return make_ascend_group_op(num_tensors, flags)
    _check_backend(device_target)
    entry = _AOT_ENTRY[device_target] + (f"_v{flags}" if flags else "")
    op = ops.Custom(f"{library_path()}:{entry}", out_shape=_out_shape, out_dtype=_out_dtype, func_type="aot")
    op.add_prim_attr("side_effect_mem", True)
    op.__mindspore_signature__ = _signature(num_tensors, flags)
    return op
