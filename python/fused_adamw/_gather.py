"""Picks a kernel group's members out of a tuple in `parameters` order, in a way GRAPH_MODE
compiles quickly for thousands of members.

A group is non-contiguous when `order_params` interleaves user groups, or a zero-element
parameter (no kernel group) sits among its members. `tuple([items[i] for i in indices])`
compiles as a nested call chain: 300 interleaved members took 44-77 s to compile, and 500+
exceeded MindSpore's call depth limit. Instead, members that form a few arithmetic
progressions (interleaving by a fixed stride, a gap or two) are taken as constant slices
(`items[a:b:s]`), and any other set through one flat `C.Map` over the constant indices,
as _validation.check_gradients does for its per-gradient checks. (Parameters need no
gather: FusedAdamW keeps each group's as a ParameterTuple.)
"""
from mindspore.ops import composite as C
from mindspore.ops import functional as F

# More progressions than this go through the Map (a slice each is cheap, but the
# concatenations grow with their number).
MAX_SLICES = 4

_pick = C.MultitypeFuncGraph("fused_adamw_pick")


@_pick.register("Tuple", "Number")
def _pick_item(items, i):
    return items[i]


_map = C.Map()


def progressions(indices):
    """Ascending `indices` as maximal arithmetic progressions, ((start, stop, step), ...)."""
    runs, i = [], 0
    while i < len(indices):
        if i + 1 == len(indices):
            runs.append((indices[i], indices[i] + 1, 1))
            break
        step, j = indices[i + 1] - indices[i], i + 1
        while j + 1 < len(indices) and indices[j + 1] - indices[j] == step:
            j += 1
        runs.append((indices[i], indices[j] + 1, step))
        i = j + 1
    return tuple(runs)


def gather_plan(indices):
    """(slices, None) for a few progressions, else ((), indices): the argument of `gather`."""
    runs = progressions(tuple(indices))
    if len(runs) <= MAX_SLICES:
        return runs, None
    return (), tuple(indices)


def gather(items, plan):
    """The members `plan` (from gather_plan) selects out of the tuple `items`, as a tuple.
    Usable in GRAPH_MODE: `plan` is a constant."""
    runs, indices = plan
    if indices is not None:
        return _map(F.partial(_pick, items), indices)
    out = ()
    for start, stop, step in runs:
        out = out + items[start:stop:step]
    return out
