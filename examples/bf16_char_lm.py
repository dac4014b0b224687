"""bf16 pretraining precision on the CPU: a character-level transformer LM trained with FusedAdamW
in four configurations, same seed, same initial weights, same data order.

    fp32         float32 parameters (the baseline)
    bf16         bfloat16 parameters, updates rounded to nearest even (FusedAdamW's default)
    bf16-sr      bfloat16 parameters, stochastic_rounding=True
    bf16-master  bfloat16 parameters, master_weights=True (float32 master copies)

The text is Python's own standard library source (STDLIB_FILES, read from
os.path.dirname(os.__file__)); the last 10% of each file is the validation text. Characters are
their code points, non-ASCII ones mapped to one placeholder (a fixed vocabulary of 128).

What is bfloat16 in the bf16 configurations: every parameter (embedding, attention and MLP
weights and biases, LayerNorm gains and biases, output head) and so every gradient
(backpropagation through the float32 cast rounds it to the parameter's dtype); FusedAdamW
updates them in float32 and writes them back. MindSpore 2.10's CPU MatMul, BatchMatMul,
Softmax, LogSoftmax and Sqrt (in GELU) kernels take no bfloat16, so each layer casts its parameters to float32 and the
activations are float32. The optimizer states are float32 in every configuration.

    python examples/bf16_char_lm.py                    # the documented run (docs/precision.md)
    python examples/bf16_char_lm.py --steps 50 --configs fp32 bf16 --out DIR

Besides the losses it records how many parameters a step actually changed (sampled every
--eval-every steps: the model's own parameters, i.e. the bf16 copies with masters), which is
where round-to-nearest loses updates smaller than half a bf16 ulp.

Writes loss_curves.png (needs matplotlib: pip install 'fused-adamw[bench]'), results.md and
history.json into --out (default: a new temporary directory), nothing into the checkout.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common import dtype as mstype

from fused_adamw import FusedAdamW

# A fixed list, so every run on one Python version reads the same text (716,878 characters on 3.11.7).
STDLIB_FILES = (
    "argparse.py", "collections/__init__.py", "dataclasses.py", "functools.py", "inspect.py",
    "json/decoder.py", "json/encoder.py", "random.py", "shutil.py", "subprocess.py", "textwrap.py",
    "typing.py",
)
VOCAB = 128          # ASCII code points; anything else becomes PLACEHOLDER
PLACEHOLDER = 0
VAL_FRACTION = 0.1

# name -> (parameter dtype, FusedAdamW keyword options)
CONFIGS = {
    "fp32": (mstype.float32, {}),
    "bf16": (mstype.bfloat16, {}),
    "bf16-sr": (mstype.bfloat16, {"stochastic_rounding": True}),
    "bf16-master": (mstype.bfloat16, {"master_weights": True}),
}


# ---------------------------------------------------------------- data

def encode(text):
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    return np.where(codes < VOCAB, codes, PLACEHOLDER).astype(np.int32)


def load_text(files=STDLIB_FILES, val_fraction=VAL_FRACTION):
    """(train ids, validation ids): each file split at 1 - val_fraction of its characters."""
    root = os.path.dirname(os.__file__)
    train, val = [], []
    for name in files:
        with open(os.path.join(root, name), encoding="utf-8") as f:
            ids = encode(f.read())
        cut = int(len(ids) * (1.0 - val_fraction))
        train.append(ids[:cut])
        val.append(ids[cut:])
    return np.concatenate(train), np.concatenate(val)


def sample_windows(ids, count, seq_len, rng):
    """`count` windows of seq_len + 1 consecutive ids at random offsets (inputs and next-char labels)."""
    starts = rng.integers(0, len(ids) - seq_len - 1, count)
    return np.stack([ids[s:s + seq_len + 1] for s in starts])


def make_data(steps, batch, seq_len, val_windows, seed, files=STDLIB_FILES):
    """The training batches, [steps, batch, seq_len + 1], and one fixed validation batch: drawn
    once from `seed`, so every configuration sees the same data in the same order. Two streams
    spawned from the seed, so the validation batch does not depend on the number of steps."""
    train_ids, val_ids = load_text(files)
    train_rng, val_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    train = sample_windows(train_ids, steps * batch, seq_len, train_rng).reshape(steps, batch, seq_len + 1)
    val = sample_windows(val_ids, val_windows, seq_len, val_rng)
    return train, val


# ---------------------------------------------------------------- model
# Own small layers instead of nn.Dense / nn.LayerNorm / nn.Embedding: they hold their parameters
# in any dtype and compute in float32 (the CPU kernels have no bfloat16 matmul).

def _f32(p):
    return ops.cast(p, mstype.float32)


def make_param(array, name, dtype):
    """A Parameter of `dtype` holding `array` rounded to bfloat16 (so that every configuration,
    float32 included, starts from the same weights)."""
    rounded = Tensor(array.astype(np.float32), mstype.bfloat16)
    return Parameter(ops.cast(rounded, dtype), name=name)


class Linear(nn.Cell):
    def __init__(self, weight, dtype):
        super().__init__()
        self.weight = make_param(weight, "weight", dtype)                  # [out, in]
        self.bias = make_param(np.zeros(weight.shape[0]), "bias", dtype)

    def construct(self, x):
        return ops.matmul(x, _f32(self.weight).T) + _f32(self.bias)


class LayerNorm(nn.Cell):
    def __init__(self, width, dtype):
        super().__init__()
        self.gamma = make_param(np.ones(width), "gamma", dtype)
        self.beta = make_param(np.zeros(width), "beta", dtype)

    def construct(self, x):
        mean = x.mean(-1, keep_dims=True)
        var = ops.square(x - mean).mean(-1, keep_dims=True)
        return (x - mean) * ops.rsqrt(var + 1e-5) * _f32(self.gamma) + _f32(self.beta)


class Block(nn.Cell):
    """Pre-norm transformer block: causal multi-head self-attention, then a GELU MLP."""

    def __init__(self, width, heads, init, dtype):
        super().__init__()
        self.heads = heads
        self.norm1 = LayerNorm(width, dtype)
        self.qkv = Linear(init(3 * width, width), dtype)
        self.proj = Linear(init(width, width, residual=True), dtype)
        self.norm2 = LayerNorm(width, dtype)
        self.up = Linear(init(4 * width, width), dtype)
        self.down = Linear(init(width, 4 * width, residual=True), dtype)

    def attention(self, x, mask):
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                   # [b, heads, t, head]
        scores = ops.bmm(q, k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(c // self.heads)) + mask
        out = ops.bmm(ops.softmax(scores, -1), v)
        return self.proj(out.transpose(0, 2, 1, 3).reshape(b, t, c))

    def construct(self, x, mask):
        x = x + self.attention(self.norm1(x), mask)
        return x + self.down(ops.gelu(self.up(self.norm2(x))))


class CharLM(nn.Cell):
    """Token embedding + learned positions, `layers` blocks, final LayerNorm, untied head; every
    parameter in `dtype`. construct(tokens [b, t+1] int32) -> mean next-character cross entropy
    (float32)."""

    def __init__(self, width, layers, heads, seq_len, seed, dtype):
        super().__init__()
        rng = np.random.default_rng(seed)

        def init(rows, cols, residual=False):  # GPT-2's scheme: std 0.02, residual outputs / sqrt(2L)
            std = 0.02 / math.sqrt(2 * layers) if residual else 0.02
            return std * rng.standard_normal((rows, cols))

        self.embed = make_param(init(VOCAB, width), "embed", dtype)
        self.pos = make_param(init(seq_len, width), "pos", dtype)
        self.blocks = nn.CellList([Block(width, heads, init, dtype) for _ in range(layers)])
        self.norm = LayerNorm(width, dtype)
        self.head = Linear(init(VOCAB, width), dtype)
        self.mask = Tensor(np.triu(np.full((seq_len, seq_len), -1e9, np.float32), 1))

    def construct(self, tokens):
        inputs, labels = tokens[:, :-1], tokens[:, 1:]
        x = ops.gather(_f32(self.embed), inputs, 0) + _f32(self.pos)
        for block in self.blocks:
            x = block(x, self.mask)
        logits = self.head(self.norm(x))
        return ops.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1))


def param_groups(model):
    """Weight decay on matrices only (the usual LM recipe)."""
    params = model.trainable_params()
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": 0.1},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


# ---------------------------------------------------------------- training

def build(config, width, layers, heads, seq_len, lr, seed):
    """(model, optimizer, train step) of one configuration, in GRAPH_MODE."""
    dtype, options = CONFIGS[config]
    ms.set_context(mode=ms.GRAPH_MODE)
    model = CharLM(width, layers, heads, seq_len, seed, dtype)
    optimizer = FusedAdamW(param_groups(model), learning_rate=lr, betas=(0.9, 0.95), eps=1e-8,
                           seed=seed, **options)
    step = nn.TrainOneStepCell(model, optimizer)
    step.set_train()
    return model, optimizer, step


def train(config, data, width, layers, heads, lr, seed, eval_every, log=None):
    """Trains one configuration on `data` = (train batches, validation batch). Returns a dict:
    train_loss (per step), val_steps / val_loss (validation loss before step 1 and every
    eval_every steps), step_seconds (per step, the first, which compiles the graph, included),
    changed_steps / changed_by_step (at the probed steps: the fraction of parameter elements the
    step changed), changed_since_start and gains_changed_since_start (fractions that differ from
    their initial values at the end: all parameters; the LayerNorm gains), parameters (count)."""
    train_batches, val_batch = data
    model, _, step = build(config, width, layers, heads, train_batches.shape[-1] - 1, lr, seed)
    val = Tensor(val_batch)
    history = {"config": config, "train_loss": [], "val_steps": [], "val_loss": [], "step_seconds": [],
               "changed_steps": [], "changed_by_step": [],
               "parameters": int(sum(p.size for p in model.trainable_params()))}
    initial = snapshot(model)

    def evaluate(at):
        history["val_steps"].append(at)
        history["val_loss"].append(float(model(val).asnumpy()))

    evaluate(0)
    for i, batch in enumerate(train_batches, start=1):
        probe = i % eval_every == 0 or i == len(train_batches)
        before = snapshot(model) if probe else None
        start = time.perf_counter()
        loss = float(step(Tensor(batch)).asnumpy())          # asnumpy waits for the step
        history["step_seconds"].append(time.perf_counter() - start)
        history["train_loss"].append(loss)
        if probe:
            history["changed_steps"].append(i)
            history["changed_by_step"].append(float(np.mean(snapshot(model) != before)))
            evaluate(i)
            if log:
                log(f"{config:12s} step {i:4d}  train {loss:.4f}  val {history['val_loss'][-1]:.4f}  "
                    f"changed {100 * history['changed_by_step'][-1]:5.1f}%  "
                    f"{1e3 * np.median(history['step_seconds'][1:] or [0]):.0f} ms/step")
    final = snapshot(model)
    history["changed_since_start"] = float(np.mean(final != initial))
    history["gains_changed_since_start"] = float(np.mean(_gains(model, final) != _gains(model, initial)))
    return history


def snapshot(model):
    """Every parameter's current value, float32 (exact for bfloat16), concatenated."""
    return np.concatenate([ops.cast(p, mstype.float32).asnumpy().ravel() for p in model.trainable_params()])


def _gains(model, flat):
    """The LayerNorm gains (initialised to 1.0) out of a snapshot."""
    parts, offset = [], 0
    for p in model.trainable_params():
        if p.name.endswith("gamma"):
            parts.append(flat[offset:offset + p.size])
        offset += p.size
    return np.concatenate(parts)


# ---------------------------------------------------------------- report

# Optimizer-held bytes per parameter (parameter + states + master; the gradient not counted).
BYTES = {"fp32": "12 (4 + 4 + 4)", "bf16": "10 (2 + 4 + 4)", "bf16-sr": "10 (2 + 4 + 4)",
         "bf16-master": "14 (2 + 4 + 4 + 4)"}


def summarize(history, last=20):
    train_loss = np.asarray(history["train_loss"])
    seconds = np.asarray(history["step_seconds"][1:])  # without the compiling first step
    return {"config": history["config"], "final_train": float(train_loss[-last:].mean()),
            "mean_train": float(train_loss.mean()), "final_val": history["val_loss"][-1],
            "best_val": min(history["val_loss"]), "ms_per_step": 1e3 * float(np.median(seconds)),
            "changed_per_step": float(np.mean(history["changed_by_step"])),
            "changed_since_start": history["changed_since_start"],
            "gains_changed": history["gains_changed_since_start"]}


def _gap(history, histories, key):
    """history's final `key` minus the fp32 run's, as '(+x.xxxx)', or '' without an fp32 run."""
    base = [h for h in histories if h["config"] == "fp32"]
    return f" ({history[key][-1] - base[0][key][-1]:+.4f})" if base else ""


def table(histories, last=20):
    """Two Markdown tables: the losses and step time; what the updates did to the parameters."""
    losses = ["| configuration | train loss, mean of last %d steps | train loss, mean of all steps | "
              "validation loss, final (minus fp32's) | validation loss, best | ms/step (median) | "
              "bytes/param held |" % last,
              "|---|---:|---:|---:|---:|---:|---|"]
    updates = ["| configuration | parameters changed by one step (mean over the probed steps) | "
               "parameters changed since step 0 | LayerNorm gains changed since step 0 |",
               "|---|---:|---:|---:|"]
    for h in histories:
        s = summarize(h, last)
        losses.append(f"| {s['config']} | {s['final_train']:.4f} | {s['mean_train']:.4f} | "
                      f"{s['final_val']:.4f}{_gap(h, histories, 'val_loss')} | {s['best_val']:.4f} | "
                      f"{s['ms_per_step']:.0f} | {BYTES[s['config']]} |")
        updates.append(f"| {s['config']} | {100 * s['changed_per_step']:.1f}% | "
                       f"{100 * s['changed_since_start']:.1f}% | {100 * s['gains_changed']:.1f}% |")
    return "\n".join(losses) + "\n\n" + "\n".join(updates) + "\n"


# Line styles that keep overlapping curves apart (fp32, stochastic rounding and masters nearly coincide).
_STYLE = {"fp32": dict(color="black", lw=2.4, ls="-"), "bf16": dict(color="tab:orange", lw=1.4, ls="-"),
          "bf16-sr": dict(color="tab:blue", lw=1.4, ls="--"), "bf16-master": dict(color="tab:red", lw=1.4, ls=":")}


def plot(path, histories, title):
    """Train (smoothed) and validation loss, validation loss minus fp32's, and the fraction of
    parameters a step changed, against step. Returns None, or why no plot was written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no plot (pip install 'fused-adamw[bench]')"
    fig, ((ax_train, ax_val), (ax_gap, ax_changed)) = plt.subplots(2, 2, figsize=(10, 7.5))
    base = [h for h in histories if h["config"] == "fp32"]
    for h in histories:
        style = dict(_STYLE[h["config"]], label=h["config"])
        loss = np.asarray(h["train_loss"])
        window = min(10, len(loss))
        ax_train.plot(np.arange(window, len(loss) + 1), np.convolve(loss, np.ones(window) / window, "valid"), **style)
        ax_val.plot(h["val_steps"], h["val_loss"], marker="o", ms=3, **style)
        if base:
            ax_gap.plot(h["val_steps"], np.asarray(h["val_loss"]) - base[0]["val_loss"], marker="o", ms=3, **style)
        ax_changed.plot(h["changed_steps"], 100 * np.asarray(h["changed_by_step"]), marker="o", ms=3, **style)
    ax_train.set_title(f"train loss (mean of {window} steps)")
    ax_val.set_title("validation loss")
    ax_gap.set_title("validation loss minus fp32's" if base else "(no fp32 run)")
    ax_gap.set_yscale("symlog", linthresh=1e-3)
    ax_changed.set_title("parameters changed by the step (%)")
    ax_val.sharey(ax_train)
    ax_changed.set_ylim(0, 105)
    for ax in (ax_train, ax_val, ax_gap, ax_changed):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax_train.set_ylabel("cross entropy (nats/char)")
    ax_val.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return None


def describe(args, parameters):
    return (f"{parameters / 1e6:.2f}M parameters (width {args.width}, {args.layers} layers, {args.heads} heads), "
            f"{args.steps} steps of {args.batch}x{args.seq_len} chars, lr {args.lr:g}, seed {args.seed}; "
            f"MindSpore {ms.__version__}, Python {sys.version.split()[0]}, CPU")


def report(out, args, histories, run):
    """Writes history.json, results.md and loss_curves.png into `out`."""
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump({"args": vars(args), "run": run, "histories": histories}, f)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(f"{run}\n\n{table(histories)}")
    problem = plot(os.path.join(out, "loss_curves.png"), histories, run)
    print(f"\n{run}\n\n{table(histories)}")
    print(problem or f"wrote {os.path.join(out, 'loss_curves.png')}")
    print(f"results in {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-5, help="constant learning rate")
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--val-windows", type=int, default=64, help="validation sequences (one fixed batch)")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory (default: a new temporary directory)")
    parser.add_argument("--replot", metavar="HISTORY_JSON",
                        help="train nothing: rewrite the table and plot of a saved history.json into --out")
    args = parser.parse_args(argv)

    out = args.out or tempfile.mkdtemp(prefix="fused_adamw_bf16_lm_")
    os.makedirs(out, exist_ok=True)
    if args.replot:
        with open(args.replot) as f:
            saved = json.load(f)
        saved_args = argparse.Namespace(**saved["args"])
        histories = saved["histories"]
        report(out, saved_args, histories, saved.get("run") or describe(saved_args, histories[0]["parameters"]))
        return histories, out
    data = make_data(args.steps, args.batch, args.seq_len, args.val_windows, args.seed)
    histories = []
    for config in args.configs:
        histories.append(train(config, data, args.width, args.layers, args.heads, args.lr, args.seed,
                               args.eval_every, log=lambda line: print(line, flush=True)))
        ms.ms_memory_recycle()  # MindSpore keeps each trained graph's runtime memory otherwise
    report(out, args, histories, describe(args, histories[0]["parameters"]))
    return histories, out


if __name__ == "__main__":
    main()
