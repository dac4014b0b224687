"""The unfused whole optimizer step, composed from MindSpore's and MindFormers' own pieces in
MFTrainOneStepCell's order (mindformers/wrapper/wrapper.py, shared/reference/train-step.md):
unscale (float32 cast times the reciprocal of the scale), overflow test (any non-finite
unscaled gradient), global-norm clipping, then the optimizer unless there was an overflow.
Used by the benchmark's whole-step rows; imports MindSpore, so load it lazily."""
import mindspore as ms
from mindspore import Tensor, nn, ops
from mindspore.ops import composite as C
from mindspore.ops import functional as F

_unscale = C.MultitypeFuncGraph("fused_adamw_bench_unscale")
_all_finite = C.MultitypeFuncGraph("fused_adamw_bench_all_finite")
_square_sum = C.MultitypeFuncGraph("fused_adamw_bench_square_sum")


@_unscale.register("Tensor", "Tensor")
def _unscale_tensor(inv_scale, grad):
    return F.cast(grad, ms.float32) * inv_scale


@_all_finite.register("Tensor")
def _all_finite_tensor(grad):
    return ops.isfinite(grad).all()


@_square_sum.register("Tensor")
def _square_sum_tensor(grad):
    return F.reduce_sum(grad * grad)


class ComposedWholeStep(nn.Cell):
    """grads -> global norm; runs `optimizer` on the unscaled, clipped gradients unless one of
    them is not finite. `clip` is a Cell grads -> (clipped grads, global norm)."""

    def __init__(self, optimizer, clip, loss_scale=1.0):
        super().__init__()
        self.optimizer, self.clip = optimizer, clip
        self.hyper_map = C.HyperMap()
        self.inv_scale = Tensor(1.0 / loss_scale, ms.float32)

    def construct(self, grads):
        grads = self.hyper_map(F.partial(_unscale, self.inv_scale), grads)
        overflow = F.logical_not(F.stack(self.hyper_map(_all_finite, grads)).all())
        grads, norm = self.clip(grads)
        if not overflow:
            norm = F.depend(norm, self.optimizer(grads))
        return norm


class MindSporeClip(nn.Cell):
    """MindSpore's own global-norm clipping (ops.clip_by_global_norm) and the global norm."""

    def __init__(self, max_norm):
        super().__init__()
        self.max_norm = max_norm
        self.hyper_map = C.HyperMap()

    def construct(self, grads):
        norm = F.sqrt(F.addn(self.hyper_map(_square_sum, grads)))
        return ops.clip_by_global_norm(grads, self.max_norm), norm
