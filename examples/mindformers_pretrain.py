"""A small MindFormers-style pretraining run on FusedAdamW (CPU, well under a minute).

The pieces a MindFormers trainer uses, driven by examples/mindformers_fused_adamw.yaml:
MindFormerConfig reads the YAML, `build_lr` makes the warm-up cosine schedule,
`get_optimizer_grouped_parameters` splits the parameters into decay / no-decay groups, and
`build_optim` builds `type: FusedAdamW`, registered in MindFormers by `import fused_adamw`.
The model is a tiny causal LM trained on a synthetic Markov-chain language, so the loss falls
visibly. The final checkpoint is written in MindFormers' AdamW layout (adam_m.*, adam_v.*,
global_step), which MindFormers' AdamW or FusedAdamW can resume from (`--resume`).

    python examples/mindformers_pretrain.py                 # train, save <new temp dir>/last.ckpt
    python examples/mindformers_pretrain.py --resume <that dir>/last.ckpt --steps 20
    python examples/mindformers_pretrain.py --output_dir DIR   # keep the checkpoint in DIR

Needs MindFormers 2.0.0, and so `hyper_parallel`, which MindFormers imports at top level and
PyPI does not carry (docs/mindformers.md); without them it stops with one line saying so.
Writes nothing into the current directory unless told to (--output_dir): the checkpoint and
MindFormers' logs go to a new temporary directory.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
import time

# What MindFormers needs and where it comes from, checked before anything is imported.
_REQUIRED = [
    ("mindformers", "MindFormers 2.0.0 is not installed: pip install -r requirements-mindformers.txt && "
                    "pip install --no-deps mindformers==2.0.0 (docs/mindformers.md)"),
    ("hyper_parallel", "hyper_parallel is not installed: MindFormers 2.0.0 imports it at top level, and PyPI "
                       "does not carry it; install HyperParallel 1.0.0 from source, "
                       "https://atomgit.com/mindspore/hyper-parallel (docs/mindformers.md)"),
]
for _module, _message in _REQUIRED:
    if importlib.util.find_spec(_module) is None:
        sys.exit(f"examples/mindformers_pretrain.py: {_message}")

_SCRATCH = tempfile.mkdtemp(prefix="fused_adamw_example_")
# MindFormers writes its logs under ./output unless told otherwise.
os.environ.setdefault("LOCAL_DEFAULT_PATH", os.path.join(_SCRATCH, "mindformers"))

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
from mindspore import Tensor, nn, ops  # noqa: E402

import fused_adamw  # noqa: F401,E402  (registers FusedAdamW with MindFormers)
from fused_adamw.checkpoint import from_mindformers, to_mindformers  # noqa: E402
from mindformers.core.lr import build_lr  # noqa: E402
from mindformers.core.optim import build_optim  # noqa: E402
from mindformers.tools.register import MindFormerConfig  # noqa: E402
from mindformers.trainer.optimizer_grouped_parameters import get_optimizer_grouped_parameters  # noqa: E402

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
    parser.add_argument("--output_dir", help="where last.ckpt goes (default: a new temporary directory)")
    parser.add_argument("--pynative", action="store_true", help="PYNATIVE_MODE instead of GRAPH_MODE")
    args = parser.parse_args(argv)

    config = MindFormerConfig(args.config)
    steps = args.steps or config.train_steps
    # Not the config's output_dir: MindFormerConfig defaults it to ./output, in the checkout.
    output_dir = args.output_dir or _SCRATCH
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
