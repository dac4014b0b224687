"""One kernel call per group per step, writing the Parameters' own storage."""
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn

from fused_adamw import FusedAdamW, _C
from twin import TwoLayerNet, recipe_groups


@pytest.fixture(autouse=True)
def recording():
    """The call record is test instrumentation, off in production steps: on for these tests."""
    _C.set_call_recording(True)
    yield
    _C.set_call_recording(False)


def test_steps_are_not_recorded_when_recording_is_off(rng):
    _C.set_call_recording(False)
    param = Parameter(Tensor(rng.standard_normal(7).astype(np.float32)), name="w")
    opt = FusedAdamW([param])
    opt((Tensor(rng.standard_normal(7).astype(np.float32)),))
    assert _calls(opt)[0] == 0


def _calls(opt):
    """The library's record of AOT calls, once PyNative's asynchronous queue has run the
    optimizer's last kernel (reading the state that kernel writes waits for it)."""
    opt.exp_avg_sq_flat[len(opt.exp_avg_sq_flat) - 1].asnumpy()
    return _C.call_record()


def _addresses(opt, k):
    """The storage the kernel must write for kernel group k: its params, then its flat states."""
    params = [opt.parameters[i] for i in opt._group_indices[k]]
    return [p.data_ptr() for p in params] + [opt.exp_avg_flat[k].data_ptr(), opt.exp_avg_sq_flat[k].data_ptr()]


def test_one_call_per_group_per_step_into_own_storage(mode, rng):
    params = [Parameter(Tensor(rng.standard_normal(s).astype(np.float32)), name=f"w{i}")
              for i, s in enumerate([(5, 3), (4,), (2, 2)])]
    opt = FusedAdamW([{"params": params[:2], "lr": 0.01}, {"params": params[2:], "weight_decay": 0.1}],
                     learning_rate=0.02)
    assert opt._group_indices == ((0, 1), (2,))
    before = [_addresses(opt, k) for k in range(2)]
    calls_before = _calls(opt)[0]
    for step in range(3):
        values = [p.asnumpy().copy() for p in params]
        opt(tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in params))
        assert all(not np.array_equal(v, p.asnumpy()) for v, p in zip(values, params))
        calls, written = _calls(opt)
        assert calls - calls_before == 2 * (step + 1)
        assert list(written) == _addresses(opt, 1)  # the last call updated group 1 where it lives
    assert [_addresses(opt, k) for k in range(2)] == before  # nothing was reallocated


def test_train_one_step_cell_updates_the_network_in_place(mode, rng):
    net = TwoLayerNet(rng)
    opt = FusedAdamW(recipe_groups(net), weight_decay=0.1)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.L1Loss()), opt)
    addresses = [p.data_ptr() for p in net.trainable_params()]
    calls_before = _calls(opt)[0]
    for _ in range(4):
        train(Tensor(rng.standard_normal((4, 8)).astype(np.float32)),
              Tensor(rng.standard_normal((4, 4)).astype(np.float32)))
    assert _calls(opt)[0] - calls_before == 4 * len(opt._group_indices) == 8
    assert [p.data_ptr() for p in net.trainable_params()] == addresses
    assert list(_calls(opt)[1][:-2]) == [net.trainable_params()[i].data_ptr() for i in opt._group_indices[-1]]
