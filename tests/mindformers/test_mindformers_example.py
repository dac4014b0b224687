"""examples/mindformers_pretrain.py trains, and its checkpoint is one MindFormers' AdamW takes."""
import importlib.util
import os
import sys

import mindspore as ms
import numpy as np
from mindspore import nn

from mindformers.core.lr import build_lr
from mindformers.core.optim import BasicAdamW
from mindformers.tools.register import MindFormerConfig

_EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "mindformers_pretrain.py")


def test_example_pretrains_and_writes_a_mindformers_checkpoint(tmp_path):
    spec = importlib.util.spec_from_file_location("mindformers_pretrain_example", _EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # GRAPH_MODE looks the model's source up by module
    spec.loader.exec_module(example)
    try:
        losses, path = example.main(["--steps", "40", "--output_dir", str(tmp_path)])
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3

    # MindFormers' AdamW on the same model finds every one of its states in the file.
    model = example.TinyCausalLM(64, 32, np.random.default_rng(1))
    schedule = build_lr(MindFormerConfig(example.DEFAULT_CONFIG).lr_schedule)
    optimizer = BasicAdamW(model.trainable_params(), learning_rate=schedule, weight_decay=0.1)
    param_dict = ms.load_checkpoint(path)
    param_not_load, ckpt_not_load = ms.load_param_into_net(nn.TrainOneStepCell(model, optimizer), param_dict)
    assert param_not_load == [] and ckpt_not_load == []
    assert int(optimizer.global_step.asnumpy()[0]) == 40
    assert np.abs(optimizer.exp_avg_sq[0].asnumpy()).max() > 0
