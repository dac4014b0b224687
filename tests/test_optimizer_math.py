"""FusedAdamW against the float64 model, through MindSpore, in both modes."""
import numpy as np
import pytest
from mindspore import nn

from scenario import Const, LinearWeightDecay, Schedule, TensorLR, assert_matches_model, run_scenario

ODD_SIZES = [(1,), (7,), (17,), (2**20 + 3,)]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_odd_sizes_every_dtype(mode, rng, dtype):
    result = run_scenario(rng, [{"shapes": ODD_SIZES}], dtype=dtype, learning_rate=Const(1e-2),
                          weight_decay=Const(0.1))
    assert_matches_model(result, dtype)


def test_two_groups_with_their_own_lr_and_weight_decay(mode, rng):
    groups = [{"shapes": [(30, 50), (7,)], "lr": Const(0.01), "weight_decay": Const(0.1)},
              {"shapes": [(17, 20), (1,)]}]
    result = run_scenario(rng, groups, learning_rate=Const(0.05), weight_decay=Const(0.01))
    assert_matches_model(result, "float32")
    assert len(result["optimizer"].exp_avg_flat) == 2  # one flat state pair per group


def test_learning_rate_schedule(mode, rng):
    schedule = Schedule(nn.CosineDecayLR(min_lr=1e-4, max_lr=5e-2, decay_steps=15))
    result = run_scenario(rng, [{"shapes": [(333,), (40, 40)]}], learning_rate=schedule,
                          weight_decay=Const(0.05))
    assert_matches_model(result, "float32")


def test_tensor_learning_rate_one_value_per_step(mode, rng):
    lr = TensorLR(np.linspace(0.05, 0.001, 20))
    result = run_scenario(rng, [{"shapes": [(900,), (20, 30)]}], learning_rate=lr, weight_decay=Const(0.1))
    assert_matches_model(result, "float32")


def test_dynamic_weight_decay_cell_in_a_group(mode, rng):
    groups = [{"shapes": [(1000,), (30, 30)], "weight_decay": Schedule(LinearWeightDecay(0.05, 0.01))},
              {"shapes": [(5,), (500,)], "weight_decay": Const(0.0)}]
    result = run_scenario(rng, groups, learning_rate=Const(0.02))
    assert_matches_model(result, "float32")


def test_group_of_a_thousand_small_tensors(mode, rng):
    shapes = [(int(n),) for n in rng.integers(1, 2000, size=1000)]
    result = run_scenario(rng, [{"shapes": shapes}], learning_rate=Const(1e-2), weight_decay=Const(0.1))
    assert_matches_model(result, "float32")
    assert len(result["optimizer"].exp_avg_flat) == 1


def test_schedule_per_group_and_interleaved_order(mode, rng):
    """Groups with different schedules, interleaved by order_params."""
    groups = [{"shapes": [(800,), (8,), (30, 30)], "lr": Schedule(nn.PolynomialDecayLR(0.05, 0.001, 10, 1.0))},
              {"shapes": [(600,), (2,)], "lr": Const(0.01)}]
    result = run_scenario(rng, groups, learning_rate=Const(0.03), weight_decay=Const(0.1), shuffle_order=True)
    assert_matches_model(result, "float32")
