"""Small networks and training loops shared by the MindFormers tests."""
import numpy as np
from mindspore import Tensor, nn, ops

# How far FusedAdamW may drift from MindFormers' AdamW, relative to each tensor's largest
# value: the issue's 1e-6. (On the CPU the kernel follows MindFormers' float32 operation order
# and is in fact bit-identical: tests/test_vs_mindformers.py checks that separately.)
MINDFORMERS_RTOL = 1e-6


class TwoLayerNet(nn.Cell):
    """Dense(8, 4) -> ReLU -> Dense(4, 1), L1 loss: the network of MindFormers' optimizer test."""

    def __init__(self, rng):
        super().__init__()
        self.fc1 = nn.Dense(8, 4, weight_init=Tensor(rng.random((4, 8), np.float32)),
                            bias_init=Tensor(rng.random(4, dtype=np.float32)))
        self.fc2 = nn.Dense(4, 1, weight_init=Tensor(rng.random((1, 4), np.float32)),
                            bias_init=Tensor(rng.random(1, dtype=np.float32)))
        self.relu = nn.ReLU()
        self.loss = nn.L1Loss(reduction="mean")

    def construct(self, x, label):
        return self.loss(self.fc2(self.relu(self.fc1(x))), label)


class TinyLM(nn.Cell):
    """A MindFormers-style causal LM in miniature: embedding, a norm, an MLP block, tied head.

    Its parameters mix 2-D weights (decayed) and 1-D norms/biases (not decayed), interleaved,
    so MindFormers' grouping gives FusedAdamW non-contiguous kernel groups.
    """

    def __init__(self, rng, vocab=32, hidden=16):
        super().__init__()
        init = lambda *shape: Tensor((0.1 * rng.standard_normal(shape)).astype(np.float32))
        self.embedding = nn.Embedding(vocab, hidden, embedding_table=init(vocab, hidden))
        self.norm = nn.LayerNorm((hidden,))
        self.up = nn.Dense(hidden, 4 * hidden, weight_init=init(4 * hidden, hidden), bias_init=init(4 * hidden))
        self.down = nn.Dense(4 * hidden, hidden, weight_init=init(hidden, 4 * hidden), bias_init=init(hidden))
        self.final_norm = nn.LayerNorm((hidden,))
        self.gelu = nn.GELU()
        self.loss = nn.CrossEntropyLoss()
        self.vocab = vocab

    def construct(self, tokens):
        h = self.embedding(tokens[:, :-1])
        h = h + self.down(self.gelu(self.up(self.norm(h))))
        logits = ops.matmul(self.final_norm(h), self.embedding.embedding_table.T)
        return self.loss(logits.reshape(-1, self.vocab), tokens[:, 1:].reshape(-1))


def token_batches(rng, steps, batch=4, seq=9, vocab=32):
    return [Tensor(rng.integers(0, vocab, (batch, seq)).astype(np.int32)) for _ in range(steps)]


def snapshot(optimizer):
    """Copies of the parameters and per-parameter states of an AdamW-like optimizer."""
    n = len(optimizer.parameters)
    return {"params": [optimizer.parameters[i].asnumpy().copy() for i in range(n)],
            "exp_avg": [optimizer.exp_avg[i].asnumpy().copy() for i in range(n)],
            "exp_avg_sq": [optimizer.exp_avg_sq[i].asnumpy().copy() for i in range(n)],
            "global_step": int(optimizer.global_step.asnumpy()[0])}


def assert_same_training(actual, expected, rtol, what=""):
    """Parameters and states agree to `rtol` relative to each tensor's largest magnitude."""
    assert actual["global_step"] == expected["global_step"], what
    for key in ("params", "exp_avg", "exp_avg_sq"):
        for i, (a, e) in enumerate(zip(actual[key], expected[key])):
            assert a.shape == e.shape, f"{what} {key}[{i}]: shape {a.shape} != {e.shape}"
            if e.size == 0:
                continue
            scale = max(float(np.abs(e).max()), np.finfo(np.float32).tiny)
            err = float(np.abs(a.astype(np.float64) - e).max()) / scale
            assert err <= rtol, f"{what} {key}[{i}]: relative error {err:.3g} > {rtol:g}"
