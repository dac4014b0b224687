"""The fused_adamw CPU benchmark: one AdamW step, every implementation side by side
in one process, against a memory-floor pass with AdamW's access pattern.

    python -m fused_adamw.bench --quick        # a few minutes: 10M sets, few repetitions
    python -m fused_adamw.bench                # 10M, 100M and (memory allowing) 1B
    python -m fused_adamw.bench --sizes 100M --sets gpt --dtypes float32

Each implementation: warm-up steps (graph compilation included), then repeated steps
each timed alone after synchronising; the median is reported. The floor is timed in
blocks around every implementation; each table's floor is the fastest block, and
every "x floor" in the table is that one floor divided by the row's time. Prints the
tables and the issue's targets, writes a JSON file and a PNG plot into --out-dir.
"""
import argparse
import os
import platform
import sys
import time

from .. import _C
from .impls import all_impls, select
from .report import add_speedups, check_targets, format_table, format_targets, write_json, write_plot
from .runner import Progress, planned, run_set
from .sets import KINDS, make_sets

DEFAULT_SETS = "gpt,single,small"
DEFAULT_DTYPES = "float32,bfloat16"
DEFAULT_OUT_DIR = os.path.join("bench", "results")


def parse_size(text):
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}.get(text[-1])
    return int(float(text[:-1]) * scale) if scale else int(text)


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
    impls = all_impls()
    ap = argparse.ArgumentParser(prog="python -m fused_adamw.bench", description=__doc__.split("\n\n")[0],
                                 epilog="Results: a table per parameter set and dtype on stdout, "
                                        "progress on stderr, bench-<date>[-quick].json/.png in --out-dir.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke-test run: 10M sets, few repetitions; bf16 and the slow MindSpore/MindFormers "
                         "peers on the GPT-like set only (default: off, the full run)")
    ap.add_argument("--sizes", help="total parameters of the GPT-like and single-tensor sets, comma-separated, "
                                    "K/M/B suffixes (default: 10M,100M,1B; with --quick: 10M)")
    ap.add_argument("--sets", default=DEFAULT_SETS,
                    help=f"parameter sets, comma-separated, any of {','.join(KINDS)}: gpt = GPT-like decoder "
                         "(196 tensors), single = one tensor, small = 1,000 small tensors of 1M in all "
                         f"(default: {DEFAULT_SETS})")
    ap.add_argument("--dtypes", default=DEFAULT_DTYPES,
                    help="parameter and gradient dtypes, comma-separated, any of float32,bfloat16 (states are "
                         f"float32 for every dtype) (default: {DEFAULT_DTYPES})")
    ap.add_argument("--impls", default="default",
                    help="implementations to time, comma-separated keys and/or suites ('default'; 'all' adds "
                         "the PyNative peers); the memory floor is always timed. Keys: " +
                         ", ".join(i.key for i in impls) + " (default: 'default' = " +
                         ", ".join(i.key for i in select("default", impls)) + ")")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for every implementation (default: 0 = the kernel's own setting, i.e. "
                         "OpenMP's: OMP_NUM_THREADS or the CPUs of the process)")
    ap.add_argument("--budget", type=float,
                    help="seconds of timed steps per implementation and set, after at least 3 (quick) or "
                         "5 steps (default: 5; with --quick: 0.8)")
    ap.add_argument("--out-dir", default=DEFAULT_OUT_DIR,
                    help=f"where the JSON and PNG go, created if needed (default: {DEFAULT_OUT_DIR}, "
                         "relative to the current directory; scripts/bench.sh runs from the checkout, "
                         "where git ignores it)")
    ap.add_argument("--no-plot", action="store_true", help="write no PNG (default: write one; needs matplotlib)")
    cfg = ap.parse_args(argv)
    try:
        cfg.sizes = [parse_size(s) for s in (cfg.sizes or ("10M" if cfg.quick else "10M,100M,1B")).split(",")]
        cfg.sets = make_sets([s.strip() for s in cfg.sets.split(",")], cfg.sizes)
        cfg.impls = select(cfg.impls, impls)
    except ValueError as e:
        ap.error(str(e))
    cfg.dtypes = [d.strip() for d in cfg.dtypes.split(",")]
    bad = [d for d in cfg.dtypes if d not in ("float32", "bfloat16")]
    if bad:
        ap.error(f"--dtypes: unknown {bad}; known: float32, bfloat16")
    if cfg.threads:
        _C.set_num_threads(cfg.threads)
    cfg.threads = _C.num_threads()
    cfg.warmup, cfg.min_reps, cfg.max_reps = (2, 3, 12) if cfg.quick else (3, 5, 40)
    cfg.floor_reps = 3 if cfg.quick else 5
    cfg.budget = cfg.budget if cfg.budget is not None else (0.8 if cfg.quick else 5.0)
    return cfg


def main(argv=None):
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    meta = environment(cfg)
    print(f"fused_adamw benchmark ({'quick' if cfg.quick else 'full'} run): {meta.get('cpu', '')}, "
          f"{cfg.threads} threads, ISA {meta['build_info']['cpu']['isa']}, MindSpore {meta['mindspore']}, "
          f"torch {meta['torch']}, deepspeed {meta['deepspeed']}, load average {meta['loadavg_start'][0]:.2f}",
          flush=True)
    plan = [(pset, dtype) + planned(pset, dtype, cfg.impls, cfg) for pset in cfg.sets for dtype in cfg.dtypes]
    plan = [p for p in plan if p[2] or (not cfg.impls and not p[3])]  # `--impls floor`: the floor alone
    progress = Progress(sum(len(run) + 1 for _, _, run, _ in plan))  # + 1: each table's floor
    results = []
    for pset, dtype, run, skipped in plan:
        results += run_set(pset, dtype, run, skipped, cfg, progress)
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
        problem = write_plot(stem + ".png", results, meta)
        print(problem or f"wrote {stem}.png")
    print(f"took {meta['seconds']:.0f} s")
    return 0
