"""Moving values between NumPy (float64 / bf16-as-bits) and MindSpore tensors exactly."""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, ops

from reference import bf16_bits_to_f32, from_f64

MS_DTYPE = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}


def representable(values64, dtype):
    """float64 values rounded to `dtype`, returned as the exact float32 values."""
    stored = from_f64(values64, dtype)
    return bf16_bits_to_f32(stored) if dtype == "bfloat16" else stored.astype(np.float32)


def to_tensor(values64, dtype):
    """A Tensor of `dtype` holding `values64` rounded to it (the cast from float32 is exact)."""
    return Tensor(representable(values64, dtype)).astype(MS_DTYPE[dtype])


def make_param(values64, dtype, name):
    return Parameter(to_tensor(values64, dtype), name=name)


def read64(tensor):
    """Exact float64 copy of a float32/float16/bfloat16 tensor."""
    if tensor.dtype == ms.bfloat16:
        tensor = ops.cast(tensor, ms.float32)
    return tensor.asnumpy().astype(np.float64)


def read_stored(tensor, dtype):
    """The stored representation (bf16 as uint16 bits) for ulp comparisons."""
    if dtype == "bfloat16":
        return ops.cast(tensor, ms.float32).asnumpy().view(np.uint32).__rshift__(16).astype(np.uint16)
    return tensor.asnumpy()
