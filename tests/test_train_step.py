"""FusedTrainOneStepCell (issue 14) against the unfused step composed from MindSpore's and
MindFormers' own pieces, in MFTrainOneStepCell's order: backward with sens = loss scale,
float32 unscale by the reciprocal, overflow check, DynamicLossScaleUpdateCell, MindFormers'
ClipGradNorm, and MindFormers' AdamW run only when the step is not skipped."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn
from mindspore.ops import functional as F

from fused_adamw import FusedAdamW, FusedTrainOneStepCell
from fused_adamw.bench.composition import ComposedWholeStep
from fused_adamw.bench.peers import mindformers_adamw_class, mindformers_clip_grad_norm_class
from reference import rel_err
from twin import TwoLayerNet, copy_weights


class ComposedStep(nn.TrainOneStepWithLossScaleCell):
    """The unfused reference step in MFTrainOneStepCell's order, from MindSpore's and MindFormers'
    own pieces (fused_adamw.bench.composition: float32 unscale by the reciprocal, overflow = some
    unscaled gradient not finite, MindFormers' ClipGradNorm, the optimizer unless skipped).
    MFTrainOneStepCell itself cannot run on the CPU (its overflow-status op is Ascend-only); the
    loss-scale cell is updated after the step, which changes nothing the step reads."""

    def __init__(self, network, optimizer, scale_sense, use_clip_grad, max_grad_norm, threshold, use_skip):
        super().__init__(network, optimizer, scale_sense)
        self.whole = ComposedWholeStep(optimizer, mindformers_clip_grad_norm_class()(max_norm=max_grad_norm),
                                       use_clip_grad, threshold if use_skip else None)

    def construct(self, *inputs):
        loss = self.network(*inputs)
        scaling_sens = self.scale_sense
        sens = F.ones_like(loss) * F.cast(scaling_sens, F.dtype(loss))
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.grad_reducer(grads)
        global_norm, overflow = self.whole(grads, scaling_sens)
        overflow = self.process_loss_scale(overflow)
        return F.depend(loss, global_norm), overflow, global_norm


def _batches(rng, steps):
    """Random batches with planted trouble: NaN and Inf inputs (overflow) and 1e3x inputs (norm spikes)."""
    out = []
    for t in range(steps):
        x = rng.standard_normal((16, 8)).astype(np.float32)
        y = rng.standard_normal((16, 4)).astype(np.float32)
        if t in (4, 13):
            x[3, 2] = np.nan
        elif t in (7, 21):
            x[0, 0] = np.inf
        elif t in (10, 25):
            x *= 1e3
        out.append((Tensor(x), Tensor(y)))
    return out


@pytest.mark.parametrize("use_clip_grad,use_skip", [(True, True), (False, False)])
def test_matches_the_unfused_mindformers_composition(mode, rng, use_clip_grad, use_skip):
    net_f, net_m = TwoLayerNet(rng), TwoLayerNet(rng)
    copy_weights(net_f, net_m)
    groups = lambda net: [{"params": net.fc1.trainable_params(), "weight_decay": 0.01},
                          {"params": net.fc2.trainable_params(), "lr": 0.02}]
    schedule = nn.WarmUpLR(0.01, 10)
    fused = FusedAdamW(groups(net_f), learning_rate=schedule, betas=(0.9, 0.95), weight_decay=0.1)
    mf = mindformers_adamw_class()(groups(net_m), learning_rate=schedule, betas=(0.9, 0.95), weight_decay=0.1)
    loss_fn = nn.MSELoss()
    kw = dict(use_clip_grad=use_clip_grad, max_grad_norm=0.5)
    step_f = FusedTrainOneStepCell(nn.WithLossCell(net_f, loss_fn), fused, scale_sense=nn.DynamicLossScaleUpdateCell(
        2.0**12, 2.0, 4), global_norm_spike_threshold=50.0, use_skip_data_by_global_norm=use_skip, **kw)
    step_m = ComposedStep(nn.WithLossCell(net_m, loss_fn), mf, nn.DynamicLossScaleUpdateCell(2.0**12, 2.0, 4),
                          use_clip_grad, 0.5, 50.0, use_skip)
    skipped = 0
    for t, (x, y) in enumerate(_batches(rng, 30)):
        loss_f, overflow_f, scale_f, lr_f, norm_f = step_f(x, y)
        loss_m, overflow_m, norm_m = step_m(x, y)
        assert bool(overflow_f.asnumpy()) == bool(overflow_m.asnumpy()), t
        assert float(step_f.scale_sense.asnumpy()) == float(step_m.scale_sense.asnumpy()), t
        nf, nm = float(norm_f.asnumpy().reshape(-1)[0]), float(norm_m.asnumpy().reshape(-1)[0])
        if np.isfinite(nm):
            assert abs(nf - nm) <= 1e-6 * nm, (t, nf, nm)
        else:
            assert not np.isfinite(nf), t
        assert int(fused.global_step.asnumpy()[0]) == int(mf.global_step.asnumpy()[0]), t
        skipped += int(fused.global_step.asnumpy()[0]) != t + 1 - skipped
    assert skipped >= 4  # the planted NaN/Inf steps (and spikes with use_skip) were skipped
    # Norm-wise over all tensors: the clip factors differ in the last bit (a float64 norm here, a
    # float32 one in ClipGradNorm), and a 4-element bias's exp_avg can cancel far below its
    # operands, where that bit is relative to the operands, not to the result.
    flat = lambda xs: np.concatenate([np.ravel(x) for x in xs]).astype(np.float64)
    n = range(len(fused.parameters))
    assert rel_err(flat(p.asnumpy() for p in fused.parameters), flat(p.asnumpy() for p in mf.parameters)) <= 1e-6
    for f_view, m_view in ((fused.exp_avg, mf.exp_avg), (fused.exp_avg_sq, mf.exp_avg_sq)):
        assert rel_err(flat(f_view[i].asnumpy() for i in n), flat(m_view[i].asnumpy() for i in n)) <= 1e-6


def test_skipped_step_changes_nothing(mode, rng):
    net = TwoLayerNet(rng)
    opt = FusedAdamW(net.trainable_params(), learning_rate=0.01, weight_decay=0.1)
    step = FusedTrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt, use_clip_grad=True)
    x, y = Tensor(rng.standard_normal((4, 8)).astype(np.float32)), Tensor(rng.standard_normal((4, 4)).astype(np.float32))
    step(x, y)  # one real step first, so the states are not all zero
    snapshot = lambda: ([p.asnumpy().copy() for p in opt.parameters] + [f.asnumpy().copy() for f in opt.exp_avg_flat]
                        + [f.asnumpy().copy() for f in opt.exp_avg_sq_flat] + [opt.global_step.asnumpy().copy()])
    before = snapshot()
    bad = x.asnumpy().copy()
    bad[1, 1] = np.nan
    _, overflow, _, _, norm = step(Tensor(bad), y)
    assert bool(overflow.asnumpy()) and not np.isfinite(float(norm.asnumpy()))
    for a, b in zip(before, snapshot()):
        np.testing.assert_array_equal(a, b)


def test_fused_step_bf16_params_against_float64(mode, rng):
    """bf16 parameters with float32 gradients (MindFormers' unscaled pairing): unscale, clip and
    AdamW against the float64 model; MindFormers cannot run bf16 on the CPU backend."""
    from ms_helpers import read64
    from reference import adamw_step64
    shapes = [(33,), (4, 5)]
    params = [ms.Parameter(Tensor(rng.standard_normal(s).astype(np.float32)).astype(ms.bfloat16), name=f"b{i}")
              for i, s in enumerate(shapes)]
    opt = FusedAdamW(params, learning_rate=0.01, weight_decay=0.1)

    class Step(nn.Cell):
        def __init__(self, o):
            super().__init__()
            self.o = o

        def construct(self, grads, scale):
            return self.o.fused_step(grads, scale, 1.0)

    grads = [(rng.standard_normal(s) * 100).astype(np.float32) for s in shapes]
    p64 = [read64(p) for p in params]
    applied, norm, overflow = Step(opt)(tuple(Tensor(g) for g in grads), Tensor(64.0, ms.float32))
    unscaled = [(g * np.float32(1 / 64.0)).astype(np.float64) for g in grads]
    norm64 = np.sqrt(sum((u ** 2).sum() for u in unscaled))
    assert bool(applied.asnumpy()) and not bool(overflow.asnumpy())
    assert abs(float(norm.asnumpy()) - norm64) <= 1e-6 * norm64
    clip = min(1.0, 1.0 / (norm64 + 1e-6))
    for p, p0, u, s in zip(params, p64, unscaled, shapes):
        expect, _, _ = adamw_step64(p0, u * clip, np.zeros(s), np.zeros(s), 0.01, 0.1, 1)
        got = read64(p)
        # within one bf16 rounding (2^-8 relative) of the float64 result
        assert np.all(np.abs(got - expect) <= 2.0**-8 * np.abs(expect) + 1e-30), (got, expect)
    assert rel_err(opt.exp_avg[0].asnumpy(), 0.1 * unscaled[0] * clip) <= 1e-6


@pytest.mark.parametrize("kwargs,error", [
    (dict(max_grad_norm=0.0), ValueError), (dict(max_grad_norm=float("nan")), ValueError),
    (dict(max_grad_norm="1"), TypeError), (dict(global_norm_spike_threshold=-1.0), ValueError),
    (dict(scale_sense=0.0), ValueError), (dict(scale_sense=float("inf")), ValueError),
    (dict(scale_sense=Tensor([-2.0], ms.float32)), ValueError), (dict(use_clip_grad=1), TypeError),
    (dict(local_norm=True), ValueError)])
def test_bad_arguments_name_themselves(rng, kwargs, error):
    net = TwoLayerNet(rng)
    opt = FusedAdamW(net.trainable_params())
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        FusedTrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt, **kwargs)


def test_optimizer_must_be_fused_adamw(rng):
    net = TwoLayerNet(rng)
    with pytest.raises(TypeError, match="optimizer"):
        FusedTrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Adam(net.trainable_params()))


def test_graph_decides_skip_and_clip_without_host_control_flow(rng, tmp_path):
    """GRAPH_MODE: the norm, the overflow flag, the clip factor and the skip decision stay tensors
    that feed the kernels: the compiled graph has no control flow (Switch) on them and no Python
    fallback. Its only Switch is the learning-rate check's raise (FusedAdamW._checked)."""
    import glob
    import re
    ms.set_context(mode=ms.GRAPH_MODE, save_graphs=True, save_graphs_path=str(tmp_path))
    try:
        net = TwoLayerNet(rng)
        opt = FusedAdamW(net.trainable_params(), learning_rate=0.01)
        cell = FusedTrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt, use_clip_grad=True,
                                     scale_sense=nn.DynamicLossScaleUpdateCell(1024.0, 2.0, 10),
                                     use_skip_data_by_global_norm=True, global_norm_spike_threshold=10.0)
        cell(Tensor(rng.standard_normal((4, 8)).astype(np.float32)), Tensor(np.zeros((4, 4), np.float32)))
    finally:
        ms.set_context(save_graphs=False, mode=ms.PYNATIVE_MODE)
    final = sorted(glob.glob(str(tmp_path / "*_execute_*.ir")), key=lambda f: int(re.findall(r"_(\d+)\.ir$", f)[0]))
    assert final, "no execute-stage IR was saved"
    lines = open(final[-1]).read().splitlines()
    assert sum("Custom" in line and "= " in line for line in lines) >= 2  # pass 1 (norm) and pass 2 (AdamW)
    assert not any("PyExecute" in line or "PyInterpret" in line for line in lines)
    switches = [i for i, line in enumerate(lines) if re.search(r"= Switch\(", line)]
    for i in switches:
        trace = []
        for line in lines[i + 1:]:
            if re.match(r"\s*%\d+", line) or not line.strip():  # the next node
                break
            trace.append(line)
        assert any("_checked" in t for t in trace), "\n".join([lines[i]] + trace)
