"""Parameter sets for the benchmark: shapes only; the arrays are made by each
implementation's builder, one set at a time, so memory holds one copy.

- gpt: a GPT-2-style decoder (token and position embeddings, 16 blocks of
  ln_1, attention qkv/proj, ln_2, MLP fc/proj with their biases, a final norm):
  196 tensors whatever the total, the width chosen to hit the requested size.
- single: one tensor of the requested size.
- small: 1,000 tensors of uneven small sizes, 1M elements in all.
"""
import math
from dataclasses import dataclass

import numpy as np

GPT_LAYERS = 16
GPT_VOCAB = 32000
GPT_CONTEXT = 1024
SMALL_COUNT = 1000
SMALL_TOTAL = 1_000_000


@dataclass(frozen=True)
class ParamSet:
    kind: str            # "gpt", "single" or "small"
    label: str           # e.g. "GPT-like 100M"
    shapes: tuple        # ((name, shape), ...) in model order

    @property
    def numel(self):
        return sum(int(np.prod(s)) for _, s in self.shapes)

    @property
    def count(self):
        return len(self.shapes)


def size_label(n):
    if n >= 10**9:
        return f"{n / 10**9:g}B"
    if n >= 10**6:
        return f"{n / 10**6:g}M"
    return f"{n / 10**3:g}K"


def _gpt_block(i, d):
    p = f"h.{i}."
    return [
        (p + "ln_1.weight", (d,)), (p + "ln_1.bias", (d,)),
        (p + "attn.c_attn.weight", (d, 3 * d)), (p + "attn.c_attn.bias", (3 * d,)),
        (p + "attn.c_proj.weight", (d, d)), (p + "attn.c_proj.bias", (d,)),
        (p + "ln_2.weight", (d,)), (p + "ln_2.bias", (d,)),
        (p + "mlp.c_fc.weight", (d, 4 * d)), (p + "mlp.c_fc.bias", (4 * d,)),
        (p + "mlp.c_proj.weight", (4 * d, d)), (p + "mlp.c_proj.bias", (d,)),
    ]


def _gpt_shapes(d):
    shapes = [("wte.weight", (GPT_VOCAB, d)), ("wpe.weight", (GPT_CONTEXT, d))]
    for i in range(GPT_LAYERS):
        shapes += _gpt_block(i, d)
    shapes += [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]
    return tuple(shapes)


def gpt_like(target):
    """The GPT-like layout whose total is closest to `target` (width a multiple of 16)."""
    # total = 12 L d^2 + (vocab + context + 13 L + 2) d
    a, b = 12 * GPT_LAYERS, GPT_VOCAB + GPT_CONTEXT + 13 * GPT_LAYERS + 2
    d = (-b + math.sqrt(b * b + 4 * a * target)) / (2 * a)
    d = max(16, int(round(d / 16)) * 16)
    return ParamSet("gpt", f"GPT-like {size_label(target)}", _gpt_shapes(d))


def single(target):
    return ParamSet("single", f"1 tensor {size_label(target)}", (("weight", (int(target),)),))


def small_tensors(count=SMALL_COUNT, total=SMALL_TOTAL, seed=0):
    """`count` tensors of uneven sizes (1 to ~2x the mean) adding up to exactly `total`."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.05, 1.95, size=count)
    sizes = np.maximum(1, np.floor(raw / raw.sum() * total)).astype(np.int64)
    sizes[-1] += total - sizes.sum()
    shapes = tuple((f"t{i}", (int(n),)) for i, n in enumerate(sizes))
    return ParamSet("small", f"{count} tensors {size_label(total)}", shapes)


# The kinds of set `--sets` accepts: name -> (builder, sized). A sized kind is built once per
# `--sizes` entry (builder(n)); an unsized one once per run (builder()). A new kind is one
# builder returning a ParamSet and one line here.
KINDS = {
    "gpt": (gpt_like, True),
    "single": (single, True),
    "small": (small_tensors, False),
}


def make_sets(kinds, sizes):
    """The parameter sets for `kinds` (keys of KINDS) at each of `sizes`."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown set kind(s) {unknown}; known: {sorted(KINDS)}")
    out = []
    for kind in kinds:
        builder, sized = KINDS[kind]
        out += [builder(n) for n in sizes] if sized else [builder()]
    return out
