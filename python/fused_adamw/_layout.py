"""Names and layout record of a FusedAdamW's flat states in checkpoints.

Flat state names carry a tag derived from the optimizer's parameter names,
``fused_adamw.<tag>.exp_avg.<k>``, so two FusedAdamW instances in one cell (two sub-models)
have different names from construction on and a checkpoint of the cell round-trips
(MindSpore only de-duplicates names on the first call, and its loader, given a name it does
not find, strips prefixes and can load one optimizer's states into the other). The tag
depends on the set of names, not their order, so that a reordered optimizer meets its
checkpoint and is refused with a clear error (below) instead of silently not loading.

Next to the states, ``fused_adamw.<tag>.layout`` (int64 [4]) records what the flat buffers
were laid out for: format, number of parameters, number of flat elements, and a 63-bit
digest of every parameter's name, shape, kernel group and offset, in order. Loading a
checkpoint whose record differs raises before any state of that optimizer is written
(the record is the optimizer's first Parameter after lr and global_step; see _guard.py).

Checkpoints written before the tag (``fused_adamw.exp_avg.<k>``, no record) load through
``fused_adamw.checkpoint.from_mindformers``, which renames them for a cell holding one
FusedAdamW.
"""
import hashlib

import numpy as np

LAYOUT_FORMAT = 1
_NAMESPACE = "fused_adamw"


def state_tag(parameters):
    """8 hex digits naming an optimizer by the set of its parameters' names."""
    names = "\n".join(sorted(p.name for p in parameters))
    return hashlib.blake2b(names.encode(), digest_size=4).hexdigest()


def state_name(tag, kind, k):
    """kind: "exp_avg" / "exp_avg_sq" / "layout" (k None)."""
    return f"{_NAMESPACE}.{tag}.{kind}" + ("" if k is None else f".{k}")


def legacy_state_name(name, tag):
    """The name a flat state `name` had before tags ("fused_adamw.exp_avg.0")."""
    return name.replace(f"{_NAMESPACE}.{tag}.", f"{_NAMESPACE}.", 1)


def layout_record(parameters, groups):
    """int64 [4]: format, parameters, flat elements, digest of names/shapes/groups/offsets."""
    digest = hashlib.blake2b(digest_size=8)
    for k, group in enumerate(groups):
        for i, offset in zip(group.indices, group.offsets):
            p = parameters[i]
            digest.update(f"{k}:{i}:{p.name}:{tuple(p.shape)}:{offset}\n".encode())
        digest.update(f"total {group.total}\n".encode())
    digest.update(f"parameters {len(parameters)}\n".encode())
    value = int.from_bytes(digest.digest(), "little") & ((1 << 63) - 1)
    elements = sum(g.total for g in groups)
    return np.array([LAYOUT_FORMAT, len(parameters), elements, value], np.int64)


def layout_mismatch(expected, saved, what):
    """The ValueError for loading flat states recorded as `saved` into an optimizer laid out
    as `expected` (both int64 [4] arrays), or None if they agree."""
    saved = np.asarray(saved).reshape(-1)
    if saved.shape == expected.shape and np.array_equal(saved, expected):
        return None
    if saved.shape != expected.shape or saved[0] != LAYOUT_FORMAT:
        detail = f"an unknown layout (record {saved.tolist()})"
    elif saved[1] != expected[1]:
        detail = f"{saved[1]} parameters (this optimizer has {expected[1]})"
    elif saved[2] != expected[2]:
        detail = f"{saved[2]} flat elements (this optimizer's states have {expected[2]})"
    else:
        detail = ("other parameter names, shapes, order or groups with the same counts (e.g. [A, B] "
                  "saved, [B, A] here)")
    return ValueError(
        f"For 'FusedAdamW', {what} holds flat optimizer states laid out for {detail}: loading them "
        f"would put states at the wrong parameters. Flat states load only into an optimizer with the "
        f"same parameters and groups in the same order; to move states between layouts, save with "
        f"fused_adamw.checkpoint.to_mindformers (states named by parameter) and load with "
        f"from_mindformers.")
