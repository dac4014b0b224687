"""A small MindFormers-style pretraining run on FusedAdamW (CPU, well under a minute).

The pieces a MindFormers trainer uses, driven by examples/mindformers_fused_adamw.yaml:
MindFormerConfig reads the YAML, `build_lr` makes the warm-up cosine schedule,
`get_optimizer_grouped_parameters` splits the parameters into decay / no-decay groups, and
`build_optim` builds `type: FusedAdamW`, registered in MindFormers by `import fused_adamw`.
The model is a tiny causal LM trained on a synthetic Markov-chain language, so the loss falls
visibly. The final checkpoint is written in MindFormers' AdamW layout (adam_m.*, adam_v.*,
global_step), which MindFormers' AdamW or FusedAdamW can resume from (`--resume`).

    python examples/mindformers_pretrain.py                 # train, save output_fused_adamw/last.ckpt
    python examples/mindformers_pretrain.py --resume output_fused_adamw/last.ckpt --steps 20

Needs MindFormers 2.0.0 (requirements-mindformers.txt and docs/mindformers.md).
"""
import argparse
import os
import time

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

import fused_adamw  # noqa: F401  (registers FusedAdamW with MindFormers)
from fused_adamw.checkpoint import from_mindformers, to_mindformers
from mindformers.core.lr import build_lr
from mindformers.core.optim import build_optim
from mindformers.tools.register import MindFormerConfig
from mindformers.trainer.optimizer_grouped_parameters import get_optimizer_grouped_parameters

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mindformers_fused_adamw.yaml")


class TinyCausalLM(nn.Cell):
    """Embedding, one pre-norm MLP block, final norm, output tied to the embedding."""

    def __init__(self, vocab_size, hidden_size, rng):
        super().__init__()
        std = 0.02
        init = lambda *shape: Tensor((std * rng.standard_normal(shape)).astype(np.float32))
        self.embedding = nn.Embedding(vocab_size, hidden_size, embedding_table=init(vocab_size, hidden_size))
        self.norm = nn.LayerNorm((hidden_size,))
        self.up = nn.Dense(hidden_size, 4 * hidden_size, weight_init=init(4 * hidden_size, hidden_size))
        self.down = nn.Dense(4 * hidden_size, hidden_size, weight_init=init(hidden_size, 4 * hidden_size))
        self.final_norm = nn.LayerNorm((hidden_size,))
        self.act = nn.GELU()
        self.loss = nn.CrossEntropyLoss()
        self.vocab_size = vocab_size

    def construct(self, tokens):
        inputs, labels = tokens[:, :-1], tokens[:, 1:]
        h = self.embedding(inputs)
        h = h + self.down(self.act(self.up(self.norm(h))))
        logits = ops.matmul(self.final_norm(h), self.embedding.embedding_table.T)
        return self.loss(logits.reshape(-1, self.vocab_size), labels.reshape(-1))


def markov_batches(rng, vocab_size, batch_size, seq_length, steps):
    """Token batches from a random sparse bigram chain: learnable structure for a tiny model."""
    successors = rng.integers(0, vocab_size, (vocab_size, 4))  # each token has 4 likely successors
    batches = []
    for _ in range(steps):
        tokens = np.empty((batch_size, seq_length + 1), np.int32)
        tokens[:, 0] = rng.integers(0, vocab_size, batch_size)
        for t in range(1, seq_length + 1):
            tokens[:, t] = successors[tokens[:, t - 1], rng.integers(0, 4, batch_size)]
        batches.append(Tensor(tokens))
    return batches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--steps", type=int, help="override train_steps")
    parser.add_argument("--resume", help="a checkpoint in MindFormers' AdamW layout (or FusedAdamW's)")
    parser.add_argument("--output_dir", help="override output_dir")
    parser.add_argument("--pynative", action="store_true", help="PYNATIVE_MODE instead of GRAPH_MODE")
    args = parser.parse_args(argv)

    config = MindFormerConfig(args.config)
    steps = args.steps or config.train_steps
    output_dir = args.output_dir or config.output_dir
    ms.set_context(mode=ms.PYNATIVE_MODE if args.pynative else ms.GRAPH_MODE)
    rng = np.random.default_rng(config.seed)

    model = TinyCausalLM(config.tiny_model.vocab_size, config.tiny_model.hidden_size, rng)
    model.set_train()
    lr_schedule = build_lr(config.lr_schedule)
    # What MindFormers' trainer does: decay / no-decay groups, then build_optim with the schedule.
    group_params = get_optimizer_grouped_parameters(model=model, weight_decay=config.optimizer.weight_decay,
                                                    dynamic_lr_schedule=lr_schedule)
    optimizer = build_optim(config.optimizer, default_args={"params": group_params, "learning_rate": lr_schedule})
    train_step = nn.TrainOneStepCell(model, optimizer)
    print(f"optimizer: {type(optimizer).__module__}.{type(optimizer).__name__}, "
          f"{len(optimizer.parameters)} parameters")

    if args.resume:
        param_dict = ms.load_checkpoint(args.resume)
        not_loaded, _ = ms.load_param_into_net(train_step, from_mindformers(param_dict, train_step))
        if not_loaded:
            raise RuntimeError(f"{args.resume} lacks {not_loaded}")
        print(f"resumed from {args.resume} at step {int(optimizer.global_step.asnumpy()[0])}")

    batches = markov_batches(rng, config.tiny_model.vocab_size, config.runner_config.batch_size,
                             config.tiny_model.seq_length, steps)
    start = time.time()
    losses = []
    for tokens in batches:
        step = int(optimizer.global_step.asnumpy()[0])
        lr = float(lr_schedule(Tensor(step, ms.int32)).asnumpy())
        losses.append(float(train_step(tokens).asnumpy()))
        if step % 10 == 0 or len(losses) == steps:
            print(f"step {step + 1:4d}  loss {losses[-1]:.4f}  lr {lr:.2e}")
    print(f"{steps} steps in {time.time() - start:.1f}s, loss {losses[0]:.3f} -> {losses[-1]:.3f}")

    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "last.ckpt")
    ms.save_checkpoint(to_mindformers(train_step), path)  # adam_m.*, adam_v.*, global_step
    print(f"saved {path}")
    return losses, path


if __name__ == "__main__":
    main()
