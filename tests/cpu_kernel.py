"""Helpers for the tests that call the CPU kernel directly through fused_adamw._C
(test_cpu_isa.py, test_kernel_options.py): the ISA and thread fixtures, poisoned
guard buffers, and Group, one kernel group in the padded flat-state layout
(docs/kernel-interface.md) with the float64 model (reference.py) run alongside.

bfloat16 arrays are uint16 bit patterns, as _C takes them.
"""
import numpy as np
import pytest

from fused_adamw import _C
from fused_adamw._groups import state_offsets
from reference import (adamw_step64, from_f64, random_param, rel_err, rounding_excess, scaled_grad,
                       to_f64)

ISAS = ("scalar", "avx2", "avx512")
HYPER = dict(lr=1e-3, weight_decay=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
# A poison pattern around every tensor and in every state pad: a quiet NaN with a
# payload no kernel writes.
POISON_BITS32, POISON_BITS16 = 0x7FC0DEAD, 0x7E5A


@pytest.fixture(params=ISAS)
def isa(request):
    """Forces one ISA path for the test; every path this CPU can run is tested, the
    others are skipped with the reason."""
    if not _C.isa_supported(request.param):
        pytest.skip(f"this CPU cannot run the {request.param} path")
    before = _C.get_isa()
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(before)


@pytest.fixture
def threads():
    """Restores the kernel's thread count after a test changes it."""
    before = _C.num_threads()
    yield
    _C.set_num_threads(before)


def bits_of(a):
    """The raw bits of a float32 / 16-bit array (a view)."""
    return a.view(np.uint32 if a.itemsize == 4 else np.uint16)


def poison(a):
    return POISON_BITS32 if a.itemsize == 4 else POISON_BITS16


def guarded(values, offset, guard=4):
    """`values` copied into a larger poisoned buffer at `offset` elements (so the view
    starts misaligned for offset 1-3); returns (buffer, view)."""
    values = np.asarray(values)
    buf = np.empty(offset + values.size + guard, dtype=values.dtype)
    bits_of(buf)[:] = poison(buf)
    view = buf[offset:offset + values.size]
    view[:] = values
    return buf, view


def assert_guards_intact(buf, offset, size):
    bits = bits_of(buf)
    assert (bits[:offset] == poison(buf)).all(), "kernel wrote before the tensor"
    assert (bits[offset + size:] == poison(buf)).all(), "kernel wrote past the tensor"


def assert_close32(actual, exact, operands):
    """Norm-wise relative error <= 1e-6 against the float64 result, measured relative to
    the operands' size (for arrays of any real size this is rel_err(actual, exact))."""
    err = np.linalg.norm(np.asarray(actual, np.float64) - exact)
    scale = max(np.linalg.norm(exact), np.linalg.norm(operands))
    assert err <= 1e-6 * scale, (err, scale, rel_err(actual, exact))


def split(flat, sizes):
    return np.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) else []


class Group:
    """A parameter group as the kernel sees it: tensors (misaligned views inside poisoned
    buffers), their gradients (the parameter's dtype or float32), the flat states in the
    padded layout (pads and guards poisoned), optionally max_exp_avg_sq (amsgrad) and the
    float32 masters; plus the float64 model of all of it.

    params / grads: per-tensor arrays of the storage dtype; states: name -> the unpadded
    concatenation (float32, or bf16 bits with state_dtype="bfloat16"); master: the
    unpadded float32 masters or None."""

    def __init__(self, sizes, dtype, params, grads, states, master=None, grad_dtype=None,
                 state_dtype="float32", offsets=(1, 2, 3, 0)):
        self.sizes = [int(n) for n in sizes]
        self.dtype, self.grad_dtype, self.state_dtype = dtype, grad_dtype or dtype, state_dtype
        self.starts, self.total = state_offsets(self.sizes)
        assert _C.state_size(self.sizes) == self.total
        self.used = np.zeros(self.total, bool)  # False on the pads
        for s, n in zip(self.starts, self.sizes):
            self.used[s:s + n] = True
        self.buffers, self.params, self.grads = [], [], []
        for i, (p, g) in enumerate(zip(params, grads)):
            off = offsets[i % len(offsets)]
            self.params.append(self._guard(p, off))
            self.grads.append(self._guard(g, (off + 1) % 4))
        self.states = {k: self._guard(self._pad(v), 3) for k, v in states.items()}
        self.master = None if master is None else self._guard(self._pad(np.asarray(master, np.float32)), 1)
        self.options = {}
        self.load_model()

    def _guard(self, values, offset):
        buf, view = guarded(values, offset)
        self.buffers.append((buf, offset, view.size))
        return view

    def _pad(self, values):
        out = np.empty(self.total, values.dtype)
        bits_of(out)[:] = poison(out)
        out[self.used] = values
        return out

    def unpad(self, flat):
        return flat[self.used]

    def param_values(self):
        """The parameters as float64 (the masters where there are)."""
        if self.master is not None and self.dtype != "float32":
            return self.unpad(self.master).astype(np.float64)
        return np.concatenate([to_f64(p, self.dtype) for p in self.params] or [np.zeros(0)])

    def load_model(self):
        """The model continues from what the kernel holds now."""
        self.p64 = self.param_values()
        self.g64 = np.concatenate([to_f64(g, self.grad_dtype) for g in self.grads] or [np.zeros(0)])
        self.s64 = {k: to_f64(self.unpad(a), self.state_dtype) for k, a in self.states.items()}

    def step(self, t, hyper=HYPER, **options):
        """One kernel call and one model step. options: _C.adamw_step's grad_scale,
        grad_clip, stochastic, seed, index_base."""
        h = hyper
        self.options, self.t = options, t
        self.p_prev, self.s_prev = self.p64, dict(self.s64)
        _C.adamw_step(self.params, self.grads, self.states["exp_avg"], self.states["exp_avg_sq"],
                      h["lr"], h["weight_decay"], t, h["beta1"], h["beta2"], h["eps"],
                      max_exp_avg_sq=self.states.get("max_exp_avg_sq"), master=self.master, **options)
        factors = dict(grad_scale=options.get("grad_scale", 1.0), grad_clip=options.get("grad_clip", 1.0))
        out = adamw_step64(self.p64, self.g64, self.s64["exp_avg"], self.s64["exp_avg_sq"], h["lr"],
                           h["weight_decay"], t, h["beta1"], h["beta2"], h["eps"],
                           vmax=self.s64.get("max_exp_avg_sq"), **factors)
        self.p64 = out[0]
        self.s64 = dict(zip(self.states, out[1:]))
        self.g_used = scaled_grad(self.g64, **factors)

    def check(self, hyper=HYPER):
        """The last step against the model; then the model continues from what was stored."""
        for buf, off, n in self.buffers:
            assert_guards_intact(buf, off, n)
        for a in list(self.states.values()) + ([] if self.master is None else [self.master]):
            assert (bits_of(a)[~self.used] == poison(a)).all(), "kernel wrote a state pad element"
        b1, b2 = hyper["beta1"], hyper["beta2"]
        g, m0, v0 = self.g_used, self.s_prev["exp_avg"], self.s_prev["exp_avg_sq"]
        # float32 relative error <= 1e-6 relative to the size of the operands (a result
        # that is a cancellation, b1*m ~ -(1-b1)*g, is judged fairly); bf16 states
        # within one rounding of the model (reference.rounding_excess).
        v_ops = b2 * v0 + (1 - b2) * g**2
        operands = {"exp_avg": np.abs(b1 * m0) + np.abs((1 - b1) * g), "exp_avg_sq": v_ops}
        if "max_exp_avg_sq" in self.states:
            operands["max_exp_avg_sq"] = np.maximum(self.s_prev["max_exp_avg_sq"], v_ops)
        for k, a in self.states.items():
            stored = self.unpad(a)
            if self.state_dtype == "float32":
                assert_close32(stored, self.s64[k], operands[k])
            else:
                excess = rounding_excess(stored, self.s64[k], operands[k], self.state_dtype)
                assert excess.max(initial=0) <= 1.0, (k, excess.max())
        stored = self.param_values()
        p_ops = np.abs(self.p_prev) + np.abs(self.p64 - self.p_prev)
        bits16 = np.concatenate(self.params or [np.zeros(0, np.uint16)]) if self.dtype != "float32" else None
        if self.dtype == "float32" or self.master is not None:
            assert_close32(stored, self.p64, p_ops)
            if bits16 is not None:  # each 16-bit parameter is the RNE copy of its master
                np.testing.assert_array_equal(bits_of(bits16), bits_of(from_f64(stored, self.dtype)))
        else:
            # Within one rounding of the exact result, element by element (the shared
            # definition in reference.rounding_excess, which also allows float32's error
            # where p*(1-lr*wd) and the update cancel); stochastic rounding picks either
            # neighbour: within one ulp, twice the allowance.
            excess = rounding_excess(bits16, self.p64, p_ops, self.dtype)
            limit = 2.0 if self.options.get("stochastic") else 1.0
            assert excess.max(initial=0) <= limit, excess.max()
        # The next step starts from what the kernel stored (16-bit params are rounded,
        # and so are bf16 states).
        self.p64 = stored
        if self.state_dtype != "float32":
            self.s64 = {k: to_f64(self.unpad(a), self.state_dtype) for k, a in self.states.items()}

    def twin32(self):
        """A float32 group fed exactly the values this one holds now (16-bit parameters
        or the masters, 16-bit gradients, bf16 states: all exact in float32), with the same
        states (amsgrad), for bitwise comparisons."""
        return Group(self.sizes, "float32", split(self.param_values().astype(np.float32), self.sizes),
                     [to_f64(g, self.grad_dtype).astype(np.float32) for g in self.grads],
                     {k: to_f64(self.unpad(a), self.state_dtype).astype(np.float32)
                      for k, a in self.states.items()})

    def flat_index(self):
        """Each element's position in the group's padded flat state."""
        return np.flatnonzero(self.used)


def random_group(rng, sizes, dtype, grad_dtype=None, amsgrad=False, master=False,
                 state_dtype="float32", **kw):
    """A Group of random values: N(0, 1) parameters and gradients, exp_avg ~ 0.1 N(0, 1),
    exp_avg_sq ~ 0.01 N(0, 1)^2, max_exp_avg_sq above or below exp_avg_sq by up to 2x."""
    sizes = [int(n) for n in sizes]
    grad_dtype = grad_dtype or dtype
    params = [random_param(rng, n, dtype) for n in sizes]
    grads = [random_param(rng, n, grad_dtype) for n in sizes]
    n = sum(sizes)
    states = {"exp_avg": 0.1 * rng.standard_normal(n), "exp_avg_sq": 0.01 * rng.standard_normal(n) ** 2}
    if amsgrad:
        states["max_exp_avg_sq"] = states["exp_avg_sq"] * rng.uniform(0.5, 2.0, n)
    states = {k: from_f64(v, state_dtype) for k, v in states.items()}
    masters = None
    if master:  # initialised from the parameters, as the optimizer does
        masters = np.concatenate([to_f64(p, dtype) for p in params] or [np.zeros(0)]).astype(np.float32)
    return Group(sizes, dtype, params, grads, states, masters, grad_dtype, state_dtype, **kw)
