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
    """(grads, loss scale) -> (global norm, overflow); runs `optimizer` on the unscaled
    (and, with use_clip, clipped) gradients unless one of them is not finite or, with
    skip_threshold, the norm is not below it. `clip` is a Cell grads -> (clipped grads, norm).
    The benchmark's whole-step peers and tests/test_train_step.py's reference use it."""

    def __init__(self, optimizer, clip, use_clip=True, skip_threshold=None):
        super().__init__()
        self.optimizer, self.clip = optimizer, clip
        self.use_clip, self.skip_threshold = use_clip, skip_threshold
        self.hyper_map = C.HyperMap()

    def construct(self, grads, scale):
        inv_scale = ops.reciprocal(F.cast(scale, ms.float32))
        grads = self.hyper_map(F.partial(_unscale, inv_scale), grads)
        overflow = F.logical_not(F.stack(self.hyper_map(_all_finite, grads)).all())
        clipped, norm = self.clip(grads)
        if self.use_clip:
            grads = clipped
        if not overflow:
            if self.skip_threshold is None:
                norm = F.depend(norm, self.optimizer(grads))
            elif norm < self.skip_threshold:
                norm = F.depend(norm, self.optimizer(grads))
        return norm, overflow


class AtFixedScale(nn.Cell):
    """A ComposedWholeStep called with the gradients only (the benchmark's cells), at one scale."""

    def __init__(self, step, loss_scale=1.0):
        super().__init__()
        self.step = step
        self.scale = Tensor(loss_scale, ms.float32)

    def construct(self, grads):
        return self.step(grads, self.scale)[0]


class MindSporeClip(nn.Cell):
    """MindSpore's own global-norm clipping (ops.clip_by_global_norm) and the global norm."""

    def __init__(self, max_norm):
        super().__init__()
        self.max_norm = max_norm
        self.hyper_map = C.HyperMap()

    def construct(self, grads):
        norm = F.sqrt(F.addn(self.hyper_map(_square_sum, grads)))
        return ops.clip_by_global_norm(grads, self.max_norm), norm
