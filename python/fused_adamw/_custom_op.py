"""Builds the per-group in-place ops.Custom(func_type="aot") call into our library.

The op's inputs (csrc/aot_args.h): lr, weight_decay, global_step, hyper(beta1,
beta2, eps), params..., grads..., exp_avg, exp_avg_sq; its output is one dummy
float32 element. The kernel writes params and states through their own storage,
so the op is marked as having a memory side effect (or graph mode would drop it
as dead code) and its written inputs are declared read-write (RW_WRITE), as
MindSpore's own in-place ops do.
"""
import os

import mindspore as ms
from mindspore import ops
from mindspore.ops import signature as sig

from . import _C

# Entry points exported by the library, by MindSpore device target.
_AOT_ENTRY = {"CPU": "FusedAdamW", "GPU": "FusedAdamWGPU"}


def library_path():
    """Absolute path of the shared library holding the kernels and AOT entries."""
    return os.path.abspath(_C.__file__)


def _out_shape(*_):
    return (1,)


def _out_dtype(*_):
    return ms.float32


def _signature(num_tensors):
    read = [sig.make_sig(name) for name in ("lr", "weight_decay", "global_step", "hyper")]
    params = [sig.make_sig(f"param{i}", sig.sig_rw.RW_WRITE) for i in range(num_tensors)]
    grads = [sig.make_sig(f"grad{i}") for i in range(num_tensors)]
    states = [sig.make_sig(name, sig.sig_rw.RW_WRITE) for name in ("exp_avg", "exp_avg_sq")]
    return tuple(read + params + grads + states)


def make_group_op(num_tensors, device_target=None):
    """One fused AdamW op for a group of `num_tensors` parameters on `device_target`."""
    device_target = device_target or ms.get_context("device_target")
    if device_target == "Ascend":
        from ._ascend import make_ascend_group_op

        return make_ascend_group_op(num_tensors)
    if device_target not in _AOT_ENTRY:
        raise ValueError(f"FusedAdamW has no kernel for device target {device_target!r}")
    if device_target == "GPU" and not _C.build_info()["cuda"]:
        raise RuntimeError("FusedAdamW: this build of fused_adamw has no CUDA kernel "
                           "(reinstall with nvcc available or FUSED_ADAMW_CUDA=ON)")
    op = ops.Custom(f"{library_path()}:{_AOT_ENTRY[device_target]}", out_shape=_out_shape,
                    out_dtype=_out_dtype, func_type="aot")
    op.add_prim_attr("side_effect_mem", True)
    op.__mindspore_signature__ = _signature(num_tensors)
    return op
