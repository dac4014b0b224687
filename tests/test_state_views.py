"""Per-parameter state views write through to the flat buffers, the way MindFormers AdamW users
write its per-parameter states (`opt.exp_avg[i].set_data(...)`)."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor

from fused_adamw import FusedAdamW

SHAPES = [(3, 5), (0, 2), (7,), (2, 2, 2)]


def _optimizer(rng, values=None):
    values = values or [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    params = [Parameter(Tensor(v.copy()), name=f"p{i}") for i, v in enumerate(values)]
    groups = [{"params": params[0::2], "weight_decay": 0.1}, {"params": params[1::2], "lr": 0.02},
              {"order_params": params}]  # interleaved kernel groups
    return FusedAdamW(groups, learning_rate=0.01), values


def _grads(rng):
    return tuple(Tensor(rng.standard_normal(s).astype(np.float32)) for s in SHAPES)


def _states(opt):
    return [v.asnumpy() for v in opt.exp_avg] + [v.asnumpy() for v in opt.exp_avg_sq]


@pytest.mark.parametrize("how", ["set_data", "assign_value", "copy_", "setitem"])
def test_writes_reach_the_flat_state_and_the_next_step(mode, rng, how):
    opt, values = _optimizer(rng)
    twin, _ = _optimizer(rng, values)
    grads = _grads(rng)
    opt(grads)
    twin(grads)
    new_m = rng.standard_normal(SHAPES[2]).astype(np.float32)
    new_v = rng.random(SHAPES[3]).astype(np.float32)
    before = _states(opt)
    if how == "setitem":
        opt.exp_avg[2] = Tensor(new_m)
        opt.exp_avg_sq[3] = new_v
    else:
        getattr(opt.exp_avg[2], how)(Tensor(new_m))
        getattr(opt.exp_avg_sq[3], how)(Tensor(new_v))
    # The twin gets the same states by editing its flat buffers directly.
    for view, i, value in ((twin.exp_avg, 2, new_m), (twin.exp_avg_sq, 3, new_v)):
        k, offset = view.location(i)
        flat = view.flats[k].asnumpy().copy()
        flat[offset:offset + value.size] = value.reshape(-1)
        view.flats[k].set_data(Tensor(flat))
    np.testing.assert_array_equal(opt.exp_avg[2].asnumpy(), new_m)
    np.testing.assert_array_equal(opt.exp_avg_sq[3].asnumpy(), new_v)
    after = _states(opt)
    for j, (a, b) in enumerate(zip(before, after)):
        if j not in (2, len(SHAPES) + 3):
            np.testing.assert_array_equal(a, b)  # no other state touched
    grads = _grads(rng)
    opt(grads)
    twin(grads)
    for a, b in zip(list(opt.get_parameters()), list(twin.get_parameters())):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=a.name)


def test_view_writes_convert_and_refuse_like_states(rng):
    opt, _ = _optimizer(rng)
    view = opt.exp_avg[0]
    half = rng.standard_normal(SHAPES[0]).astype(np.float16)
    view.set_data(Tensor(half))  # cast to float32, as the state is
    np.testing.assert_array_equal(opt.exp_avg[0].asnumpy(), half.astype(np.float32))
    bf16 = Tensor(rng.standard_normal(SHAPES[0]).astype(np.float32)).astype(ms.bfloat16)
    view.copy_(bf16)
    np.testing.assert_array_equal(opt.exp_avg[0].asnumpy(), bf16.astype(ms.float32).asnumpy())
    view.copy_(Tensor(np.float32(0.25)))  # copy_ broadcasts
    np.testing.assert_array_equal(opt.exp_avg[0].asnumpy(), np.full(SHAPES[0], 0.25, np.float32))
    before = _states(opt)
    with pytest.raises(ValueError, match="'adam_m.p0' must have shape \\(3, 5\\), got \\(15,\\)"):
        view.set_data(Tensor(np.zeros(15, np.float32)))
    with pytest.raises(ValueError, match="adam_v.p2"):
        opt.exp_avg_sq[2] = np.zeros((8,), np.float32)
    for a, b in zip(before, _states(opt)):
        np.testing.assert_array_equal(a, b)
    opt.exp_avg[1].set_data(Tensor(np.zeros((0, 2), np.float32)))  # empty: nothing to write
    assert opt.exp_avg[1].shape == (0, 2)
