"""FusedTrainOneStepCell: MindFormers' MFTrainOneStepCell step (loss scaling, global-norm
clipping, overflow and spike skipping, AdamW) with everything after the backward pass done
in two fused passes over memory (FusedAdamW.fused_step), decided on the device.

The semantics are MindFormers' and MindSpore's code (shared/reference/train-step.md):
forward/backward with sens = loss scale; the data-parallel gradient reducer; unscale by the
float32 reciprocal of the scale; overflow = any non-finite unscaled gradient; ClipGradNorm's
coefficient applied to every gradient; the loss-scale manager's update; the optimizer skipped
(global_step unchanged) on overflow, or when `use_skip_data_by_global_norm` and the global norm
is not below `global_norm_spike_threshold`.
"""
import math
import numbers

from mindspore import Tensor, nn
from mindspore.common import dtype as mstype
from mindspore.ops import functional as F

from .optimizer import FusedAdamW


def _check_positive(value, name, allow_tensor=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"For 'FusedTrainOneStepCell', '{name}' must be a number"
                        f"{', a Tensor or a loss-scale update Cell' if allow_tensor else ''}, "
                        f"got {type(value).__name__}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"For 'FusedTrainOneStepCell', '{name}' must be finite and > 0, got {value}.")


def _check_scale_sense(scale_sense):
    """A number, a Tensor or a loss-scale update Cell, with a finite positive value."""
    if isinstance(scale_sense, nn.Cell):
        if not hasattr(scale_sense, "get_loss_scale"):
            raise TypeError("For 'FusedTrainOneStepCell', a Cell 'scale_sense' must be a loss-scale update "
                            "cell (nn.DynamicLossScaleUpdateCell or nn.FixedLossScaleUpdateCell), got "
                            f"{type(scale_sense).__name__}.")
        _check_positive(float(scale_sense.get_loss_scale()), "scale_sense", True)
        return scale_sense
    if isinstance(scale_sense, Tensor):
        if scale_sense.size != 1:
            raise ValueError(f"For 'FusedTrainOneStepCell', a Tensor 'scale_sense' must hold one value, got shape "
                             f"{scale_sense.shape}.")
        _check_positive(float(scale_sense.asnumpy().reshape(())), "scale_sense", True)
        return Tensor(scale_sense.asnumpy().reshape(()), mstype.float32)
    _check_positive(scale_sense, "scale_sense", True)
    return Tensor(float(scale_sense), mstype.float32)


class FusedTrainOneStepCell(nn.TrainOneStepWithLossScaleCell):
    """One training step with a FusedAdamW: MFTrainOneStepCell's keys and outputs.

    Args:
        network (Cell): the loss cell (as for nn.TrainOneStepCell).
        optimizer (FusedAdamW): the optimizer; its fused_step does unscale, norm, clip, skip, AdamW.
        use_clip_grad (bool): clip by the global norm (MindFormers' ClipGradNorm). Default False.
        max_grad_norm (float): the clipping norm, finite and > 0. Default 1.0.
        scale_sense: the loss scale: a number, a Tensor, or nn.DynamicLossScaleUpdateCell /
            nn.FixedLossScaleUpdateCell (updated after each step, as MindSpore's loss-scale cells do).
        global_norm_spike_threshold (float): with use_skip_data_by_global_norm, steps whose global
            norm is not below it are skipped. Finite and > 0. Default 1.0.
        use_skip_data_by_global_norm (bool): Default False.
        **kwargs: MFTrainOneStepCell's other YAML keys (local_norm, calculate_per_token_loss, ...) are
            accepted only at their defaults.

    Outputs:
        (loss, overflow, loss_scale, learning_rate, global_norm). global_norm is the norm of the
        unscaled (reduced) gradients before clipping, computed every step (pass 1 needs it anyway).
    """

    def __init__(self, network, optimizer, use_clip_grad=False, max_grad_norm=1.0, scale_sense=1.0,
                 global_norm_spike_threshold=1.0, use_skip_data_by_global_norm=False, **kwargs):
        if not isinstance(optimizer, FusedAdamW):
            raise TypeError(f"For 'FusedTrainOneStepCell', 'optimizer' must be a FusedAdamW, got "
                            f"{type(optimizer).__name__}.")
        for name in ("use_clip_grad", "use_skip_data_by_global_norm"):
            if not isinstance(locals()[name], bool):
                raise TypeError(f"For 'FusedTrainOneStepCell', '{name}' must be a bool, got "
                                f"{type(locals()[name]).__name__}.")
        _check_positive(max_grad_norm, "max_grad_norm")
        _check_positive(global_norm_spike_threshold, "global_norm_spike_threshold")
        for key, value in kwargs.items():
            if key in ("local_norm", "calculate_per_token_loss", "print_separate_loss") and value is False:
                continue
            if key == "parallel_config":
                continue
            raise ValueError(f"For 'FusedTrainOneStepCell', '{key}={value!r}' is not supported (only the "
                             f"MFTrainOneStepCell keys use_clip_grad, max_grad_norm, scale_sense, "
                             f"global_norm_spike_threshold and use_skip_data_by_global_norm are).")
        super().__init__(network, optimizer, _check_scale_sense(scale_sense))
        self.use_clip_grad = use_clip_grad
        self.max_grad_norm = float(max_grad_norm)
        self.use_skip_data_by_global_norm = use_skip_data_by_global_norm
        self.global_norm_spike_threshold = float(global_norm_spike_threshold)

    def _learning_rate(self):
        """The learning rate at the current (not yet incremented) step, for logging."""
        opt = self.optimizer
        if opt.dynamic_lr:
            schedule = opt.learning_rate[-1] if opt.is_group_lr else opt.learning_rate
            return schedule(opt.global_step).reshape(())
        if opt.is_group_lr:
            return opt.learning_rate[-1]
        return opt.learning_rate

    def construct(self, *inputs):
        scaling_sens = self.scale_sense
        loss = self.network(*inputs)
        sens = F.ones_like(loss) * F.cast(scaling_sens, F.dtype(loss))
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.grad_reducer(grads)
        learning_rate = self._learning_rate()
        grads = F.depend(grads, learning_rate)  # read before the step advances global_step
        applied, global_norm, overflow = self.optimizer.fused_step(
            grads, scaling_sens,
            self.max_grad_norm if self.use_clip_grad else None,
            self.global_norm_spike_threshold if self.use_skip_data_by_global_norm else None)
        overflow = F.depend(overflow, applied)
        # The scale update comes after the step, whose unscale read the scale it was built with.
        overflow = self.process_loss_scale(overflow)
        loss = F.depend(loss, applied)
        return loss, overflow, scaling_sens, learning_rate, global_norm
