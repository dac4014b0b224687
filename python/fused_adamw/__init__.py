"""fused_adamw: a fused AdamW optimizer for MindSpore.

    from fused_adamw import FusedAdamW
    optimizer = FusedAdamW(net.trainable_params(), learning_rate=1e-3, weight_decay=0.1)
"""
from ._C import build_info as _native_build_info
from .optimizer import FusedAdamW
from .train_step import FusedTrainOneStepCell

try:  # registers FusedAdamW with MindFormers, now or once MindFormers is imported
    from . import mindformers
except ImportError:
    pass

__version__ = "0.1.0"
__all__ = ["FusedAdamW", "FusedTrainOneStepCell", "build_info"]


def build_info():
    """What the native library was built with (backends, CPU ISA in use, threads)."""
    return _native_build_info()
