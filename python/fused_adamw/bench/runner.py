"""Timing: one parameter set and dtype at a time, every implementation against one floor.

The floor (`_C.floor_pass`: AdamW's loads and stores, no math) is timed in blocks just
before and just after each implementation, so it samples the machine across the whole
table; the table's floor is the best (fastest) block median. Every ratio in the table
divides that one number, so a reader can check it at a glance, and an implementation
faster than it is flagged (a step cannot beat its own memory traffic: that is noise).
"""
import gc
import sys
import time
import traceback

import numpy as np

from .impls import Unavailable, build_floor

BYTES_PER_PARAM = {"float32": 28, "bfloat16": 22}   # AdamW's traffic: params, grads, m, v
FLOOR_MEM = {"float32": 16, "bfloat16": 12}         # what the floor's arrays hold per param
FLOOR_LABEL = "memory floor (AdamW's bytes, no math)"


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


class Progress:
    """One status line on stderr, rewritten in place on a terminal, else one line per entry.
    `total` counts every table entry measured, the floor of each table included."""

    def __init__(self, total):
        self.total, self.done, self.tty = total, 0, sys.stderr.isatty()
        self.start = time.perf_counter()

    def show(self, text, final=False):
        elapsed = time.perf_counter() - self.start
        line = f"[{self.done}/{self.total} {elapsed:5.0f}s] {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
        elif final:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self, text):
        self.done += 1
        self.show(text, final=True)


def _timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def floor_block(floor_step, reps):
    """A block of floor passes. The pause and the untimed first pass let another
    runtime's spinning worker threads (MindSpore's pool, torch's OpenMP) go to sleep
    first: timed right after a MindSpore step, the floor was seen 40% slower."""
    time.sleep(0.05)
    floor_step()
    return _timed(floor_step, reps)


def measure(step, cfg, progress, what):
    """Warm-up, then steps timed one by one until min_reps and the time budget (or max_reps)."""
    for i in range(cfg.warmup):
        progress.show(f"{what}: warm-up {i + 1}/{cfg.warmup}")
        step()
    times = []
    start = time.perf_counter()
    while len(times) < cfg.max_reps and (len(times) < cfg.min_reps or time.perf_counter() - start < cfg.budget):
        progress.show(f"{what}: step {len(times) + 1}")
        times += _timed(step, 1)
    return times


def planned(pset, dtype, impls, cfg):
    """(to run, not run) on (pset, dtype). Quick mode: bf16 on the GPT-like set only, and the
    quick_gpt_only implementations on the GPT-like fp32 set only (MindSpore's CPU kernels have
    no bf16 AdamWeightDecay/TensorMove/Assign: they would only report an error)."""
    if not cfg.quick:
        return list(impls), []
    if dtype != "float32" and pset.kind != "gpt":
        return [], []
    keep = [i for i in impls if not i.quick_gpt_only or (pset.kind == "gpt" and dtype == "float32")]
    return keep, [i for i in impls if i not in keep]


def first_line(error):
    """The informative line of an exception (MindSpore's start with a blank line, and
    name the unsupported dtype in a 'but get' line)."""
    lines = [l.strip() for l in str(error).splitlines() if l.strip()]
    hint = [l for l in lines if "but get" in l or "not support" in l.lower()]
    return ((hint or lines or [""])[0])[:300]


def floor_row(base, blocks, mode):
    """The table's floor: the fastest block median (each block a few consecutive passes)."""
    medians = [1e3 * float(np.median(b)) for b in blocks]
    ms = min(medians)
    return dict(base, impl="floor", label=FLOOR_LABEL, group="floor", status="ok", ms=ms,
                ms_min=1e3 * min(min(b) for b in blocks), reps=sum(len(b) for b in blocks),
                floor_blocks=len(blocks), floor_block_ms=[round(m, 4) for m in medians],
                floor_mode=mode, floor_ms=ms, x_floor=1.0,
                gbps=base["bytes_per_param"] * base["numel"] / (ms * 1e-3) / 1e9)


def apply_floor(rows, floor):
    """Every ok row's ratio against the table's one floor; below_floor marks a row faster
    than the floor, which only noise can produce."""
    for r in rows:
        if r.get("status") == "ok" and r["impl"] != "floor":
            # A row that streams other bytes than AdamW (amsgrad, masters, bf16 states, the
            # whole step) is judged against the floor's bandwidth applied to its own bytes.
            own = floor["ms"] * (r["bytes_per_param"] / floor["bytes_per_param"])
            r["floor_ms"] = own
            r["x_floor"] = own / r["ms"]
            r["below_floor"] = r["ms"] < own


def run_impl(impl, pset, dtype, base, cfg, progress, floor_step, reserve):
    """One implementation's row, bracketed by floor blocks (returned with it) when floor_step."""
    what = f"{pset.label} {dtype}: {impl.label}"
    row = dict(base, impl=impl.key, label=impl.label, group=impl.group)
    if impl.traffic:  # bytes this step streams per parameter, when not plain AdamW's
        row["bytes_per_param"] = impl.traffic[dtype]
    blocks = []
    need = impl.bytes_per_param[dtype] * pset.numel + reserve
    if need > 0.85 * mem_available():
        row.update(status="skipped", reason=f"needs ~{need / 2**30:.1f} GiB, "
                                            f"{mem_available() / 2**30:.1f} GiB available")
    else:
        close = None
        try:
            progress.show(f"{what}: building")
            began = time.perf_counter()
            step, close = impl.build(pset, dtype, cfg.threads)
            if floor_step is not None:
                blocks.append(floor_block(floor_step, cfg.floor_reps))
            times = measure(step, cfg, progress, what)
            if floor_step is not None:
                blocks.append(floor_block(floor_step, cfg.floor_reps))
                # The floor timed around this row alone: kept in the JSON, for diagnosis.
                row["floor_near_ms"] = 1e3 * float(np.median(blocks[-2] + blocks[-1]))
            ms = 1e3 * float(np.median(times))
            row.update(status="ok", ms=ms, ms_min=1e3 * min(times), reps=len(times),
                       gbps=row["bytes_per_param"] * pset.numel / (ms * 1e-3) / 1e9,
                       seconds=round(time.perf_counter() - began, 1))
        except Unavailable as e:
            row.update(status="unavailable", reason=str(e))
        except Exception as e:  # a peer that fails here is reported, not fatal
            row.update(status="error", reason=f"{type(e).__name__}: {first_line(e)}",
                       trace=traceback.format_exc()[-3000:])
        finally:
            if close is not None:
                close()
            step = close = None
            gc.collect()
    progress.finish(f"{what}: " + (f"{row['ms']:.2f} ms/step" if row["status"] == "ok" else row["status"]))
    return row, blocks


def floor_alone(pset, dtype, cfg, progress):
    """A floor block with nothing else in memory (when it cannot share memory with an
    implementation, e.g. 1B parameters)."""
    progress.show(f"{pset.label} {dtype}: floor (alone)")
    step, _ = build_floor(pset, dtype, cfg.threads)
    block = floor_block(step, max(3, cfg.floor_reps))
    del step
    gc.collect()
    return block


def run_set(pset, dtype, impls, skipped, cfg, progress):
    """The floor and `impls` on one parameter set and dtype; `skipped` get a "not run" row.
    Returns the table's rows, the floor first."""
    base = dict(set=pset.label, kind=pset.kind, dtype=dtype, numel=pset.numel, count=pset.count,
                bytes_per_param=BYTES_PER_PARAM[dtype])
    biggest = max((i.bytes_per_param[dtype] for i in impls), default=0)
    interleave = mem_available() > (FLOOR_MEM[dtype] + biggest) * pset.numel * 1.2
    floor_step, blocks = None, []
    if interleave:
        floor_step, _ = build_floor(pset, dtype, cfg.threads)
        for _ in range(3):
            floor_step()  # first touch of the pages, caches
    else:
        blocks.append(floor_alone(pset, dtype, cfg, progress))

    rows = []
    reserve = FLOOR_MEM[dtype] * pset.numel if interleave else 0
    for impl in impls:
        row, around = run_impl(impl, pset, dtype, base, cfg, progress, floor_step, reserve)
        rows.append(row)
        blocks += around
    rows += [dict(base, impl=i.key, label=i.label, group=i.group, status="not run",
                  reason="quick mode: " + ("GPT-like fp32 set only" if i.quick_gpt_only else "skipped"))
             for i in skipped]

    if interleave and not blocks:  # every implementation failed before its steps
        blocks.append(floor_block(floor_step, cfg.floor_reps))
    floor_step = None
    gc.collect()
    if not interleave:
        blocks.append(floor_alone(pset, dtype, cfg, progress))
    floor = floor_row(base, blocks, "best of blocks around each implementation" if interleave
                      else "best of blocks alone, before and after the set (memory)")
    apply_floor(rows, floor)
    progress.finish(f"{pset.label} {dtype}: floor {floor['ms']:.2f} ms (best of {len(blocks)} blocks)")
    return [floor] + rows
