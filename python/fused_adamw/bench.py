"""The fused_adamw CPU benchmark: one AdamW step, every implementation side by side
in one process, against a memory-floor pass with AdamW's access pattern.

    python -m fused_adamw.bench --quick        # under 2 minutes
    python -m fused_adamw.bench                # 10M, 100M and (memory allowing) 1B
    python -m fused_adamw.bench --sizes 100M --sets gpt --dtypes float32

Each implementation: warm-up steps (graph compilation included), then repeated
steps each timed alone after synchronising; the median is reported. The floor is
timed between the implementation's steps, so "x floor" compares two numbers
from the same minute. Prints a table and the issue's targets, writes a JSON file
and a PNG plot (GB/s by implementation and set) into --out-dir.
"""
import argparse
import gc
import os
import platform
import sys
import time
import traceback

import numpy as np

from . import _C
from ._bench_impls import Unavailable, all_impls
from ._bench_report import add_speedups, check_targets, format_table, format_targets, write_json, write_plot
from ._bench_sets import make_sets

DEFAULT_IMPLS = ["floor", "direct", "fused_graph", "fused_pynative", "torch_fused", "deepspeed",
                 "ms_adamweightdecay_graph", "ms_experimental_adamw_graph", "mindformers_adamw_graph"]
BYTES_PER_PARAM = {"float32": 28, "bfloat16": 22}
FLOOR_MEM = {"float32": 16, "bfloat16": 12}


def parse_size(text):
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}.get(text[-1])
    return int(float(text[:-1]) * scale) if scale else int(text)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


class Progress:
    """One status line on stderr, rewritten in place on a terminal, else one line per event."""

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


def measure(step, floor_step, cfg, progress, what):
    """Floor block, warm-up, steps timed one by one until min_reps and the time budget
    (or max_reps), floor block: the floor brackets the implementation within seconds."""
    floors = floor_block(floor_step, cfg.floor_reps) if floor_step is not None else []
    for i in range(cfg.warmup):
        progress.show(f"{what}: warm-up {i + 1}/{cfg.warmup}")
        step()
    times = []
    start = time.perf_counter()
    while len(times) < cfg.max_reps and (len(times) < cfg.min_reps or time.perf_counter() - start < cfg.budget):
        progress.show(f"{what}: step {len(times) + 1}")
        times += _timed(step, 1)
    if floor_step is not None:
        floors += floor_block(floor_step, cfg.floor_reps)
    return times, floors


# In quick mode these run on the GPT-like set only: in graph mode their compile time
# grows with the tensor count (1,000 tensors: tens of seconds each) and their steps
# are slow; a full run measures them everywhere.
QUICK_GPT_ONLY = {"ms_adamweightdecay_graph", "ms_experimental_adamw_graph", "mindformers_adamw_graph",
                  "ms_adamweightdecay_pynative", "mindformers_adamw_pynative"}


def planned(pset, dtype, impls, cfg):
    """The implementations to run on (pset, dtype). Quick mode: bf16 on the GPT-like set only."""
    if not cfg.quick:
        return impls
    if dtype != "float32" and pset.kind != "gpt":
        return []
    if dtype != "float32":  # MindSpore's CPU kernels have no bf16 AdamWeightDecay/TensorMove/Assign
        return [i for i in impls if i.key not in QUICK_GPT_ONLY]
    return [i for i in impls if pset.kind == "gpt" or i.key not in QUICK_GPT_ONLY]


def first_line(error):
    """The informative line of an exception (MindSpore's start with a blank line, and
    name the unsupported dtype in a 'but get' line)."""
    lines = [l.strip() for l in str(error).splitlines() if l.strip()]
    hint = [l for l in lines if "but get" in l or "not support" in l.lower()]
    return ((hint or lines or [""])[0])[:300]


def run_set(pset, dtype, impls, cfg, progress):
    """All implementations on one parameter set and dtype; returns their result rows."""
    from ._bench_impls import build_floor
    base = dict(set=pset.label, kind=pset.kind, dtype=dtype, numel=pset.numel, count=pset.count,
                bytes_per_param=BYTES_PER_PARAM[dtype])
    nbytes = BYTES_PER_PARAM[dtype] * pset.numel
    biggest = max(i.bytes_per_param[dtype] for i in impls if i.key != "floor")
    interleave = mem_available() > (FLOOR_MEM[dtype] + biggest) * pset.numel * 1.2
    floor_step, floor_samples = None, []
    if interleave:
        floor_step, _ = build_floor(pset, dtype, cfg.threads)
        for _ in range(3):
            floor_step()  # first touch of the pages, caches
    else:
        floor_samples = bracket_floor(pset, dtype, cfg, progress)

    rows = []
    for impl in impls:
        if impl.key == "floor":
            continue
        what = f"{pset.label} {dtype}: {impl.label}"
        row = dict(base, impl=impl.key, label=impl.label, group=impl.group)
        need = impl.bytes_per_param[dtype] * pset.numel + (FLOOR_MEM[dtype] * pset.numel if interleave else 0)
        if need > 0.85 * mem_available():
            row.update(status="skipped", reason=f"needs ~{need / 2**30:.1f} GiB, "
                                                f"{mem_available() / 2**30:.1f} GiB available")
        else:
            close = None
            try:
                progress.show(f"{what}: building")
                began = time.perf_counter()
                step, close = impl.build(pset, dtype, cfg.threads)
                times, floors = measure(step, floor_step, cfg, progress, what)
                ms = 1e3 * float(np.median(times))
                row.update(status="ok", ms=ms, ms_min=1e3 * min(times), reps=len(times),
                           gbps=nbytes / (ms * 1e-3) / 1e9, seconds=round(time.perf_counter() - began, 1))
                if floors:
                    row["floor_ms"] = 1e3 * float(np.median(floors))
                    row["x_floor"] = row["floor_ms"] / ms
                    floor_samples += floors
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
        progress.done += 1
        status = f"{row['ms']:.2f} ms/step" + (f", {row['x_floor']:.3f}x floor" if "x_floor" in row else "") \
            if row["status"] == "ok" else row["status"]
        progress.show(f"{what}: {status}", final=True)
        rows.append(row)

    if not interleave:
        floor_samples += bracket_floor(pset, dtype, cfg, progress)
        fms = 1e3 * float(np.median(floor_samples))
        for r in rows:
            if r["status"] == "ok":
                r["floor_ms"], r["x_floor"] = fms, fms / r["ms"]
    floor_step = None
    gc.collect()
    progress.done += 1
    fms = 1e3 * float(np.median(floor_samples))
    floor_row = dict(base, impl="floor", label="memory floor (AdamW's bytes, no math)", group="floor",
                     status="ok", ms=fms, ms_min=1e3 * min(floor_samples), reps=len(floor_samples),
                     gbps=nbytes / (fms * 1e-3) / 1e9, x_floor=1.0, floor_ms=fms,
                     floor_mode="around each implementation" if interleave else "around the whole set (memory)")
    return [floor_row] + rows


def bracket_floor(pset, dtype, cfg, progress):
    """The floor alone (when it cannot share memory with an implementation)."""
    from ._bench_impls import build_floor
    progress.show(f"{pset.label} {dtype}: floor (alone)")
    step, _ = build_floor(pset, dtype, cfg.threads)
    for _ in range(2):
        step()
    times = []
    for _ in range(max(3, cfg.min_reps)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    del step
    gc.collect()
    return times


def environment(cfg):
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), quick=cfg.quick, argv=sys.argv[1:],
                threads=cfg.threads, build_info=_C.build_info(), python=platform.python_version(),
                machine=platform.machine(), cpus=os.cpu_count(), loadavg_start=os.getloadavg())
    try:
        with open("/proc/cpuinfo") as f:
            meta["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    for mod in ("mindspore", "torch", "deepspeed", "numpy"):
        try:
            meta[mod] = __import__(mod).__version__
        except Exception:
            meta[mod] = None
    return meta


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m fused_adamw.bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10M sets, few repetitions: under 2 minutes")
    ap.add_argument("--sizes", help="GPT-like / single-tensor sizes (default 10M,100M,1B; quick: 10M)")
    ap.add_argument("--sets", default="gpt,single,small", help="any of gpt,single,small")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                    help="comma-separated keys, or 'all' (adds the PyNative peers); keys: " +
                         ", ".join(i.key for i in all_impls()))
    ap.add_argument("--threads", type=int, default=0, help="threads for every implementation "
                    "(default: the kernel's, i.e. OpenMP's setting)")
    ap.add_argument("--budget", type=float, help="seconds of timed steps per implementation and set")
    ap.add_argument("--out-dir", default=os.path.join("bench", "results"))
    ap.add_argument("--no-plot", action="store_true")
    cfg = ap.parse_args(argv)
    cfg.sizes = [parse_size(s) for s in (cfg.sizes or ("10M" if cfg.quick else "10M,100M,1B")).split(",")]
    cfg.sets = [s.strip() for s in cfg.sets.split(",")]
    cfg.dtypes = [d.strip() for d in cfg.dtypes.split(",")]
    if cfg.threads:
        _C.set_num_threads(cfg.threads)
    cfg.threads = _C.num_threads()
    cfg.warmup, cfg.min_reps, cfg.max_reps = (2, 3, 12) if cfg.quick else (3, 5, 40)
    cfg.floor_reps = 3 if cfg.quick else 5
    cfg.budget = cfg.budget if cfg.budget is not None else (0.8 if cfg.quick else 5.0)
    return cfg


def main(argv=None):
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    known = {i.key: i for i in all_impls()}
    keys = list(known) if cfg.impls == "all" else [k.strip() for k in cfg.impls.split(",")]
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"unknown implementation(s) {unknown}; known: {sorted(known)}")
    impls = [known[k] for k in keys]
    sets = make_sets(cfg.sets, cfg.sizes)
    meta = environment(cfg)
    print(f"fused_adamw benchmark: {meta.get('cpu', '')}, {cfg.threads} threads, "
          f"ISA {meta['build_info']['cpu']['isa']}, MindSpore {meta['mindspore']}, torch {meta['torch']}, "
          f"deepspeed {meta['deepspeed']}, load average {meta['loadavg_start'][0]:.2f}", flush=True)
    plan = [(pset, dtype, planned(pset, dtype, impls, cfg)) for pset in sets for dtype in cfg.dtypes]
    plan = [(pset, dtype, chosen) for pset, dtype, chosen in plan if chosen]
    progress = Progress(sum(len(chosen) for _, _, chosen in plan))
    results = []
    for pset, dtype, chosen in plan:
        results += run_set(pset, dtype, chosen, cfg, progress)
    meta["loadavg_end"] = os.getloadavg()
    meta["seconds"] = round(time.perf_counter() - progress.start, 1)
    add_speedups(results)
    targets = check_targets(results)
    print(format_table(results))
    print(format_targets(targets))
    os.makedirs(cfg.out_dir, exist_ok=True)
    stem = os.path.join(cfg.out_dir, "bench-" + time.strftime("%Y%m%d-%H%M%S") + ("-quick" if cfg.quick else ""))
    write_json(stem + ".json", meta, results, targets)
    print(f"\nwrote {stem}.json")
    if not cfg.no_plot:
        problem = write_plot(stem + ".png", results)
        print(problem or f"wrote {stem}.png")
    print(f"took {meta['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
