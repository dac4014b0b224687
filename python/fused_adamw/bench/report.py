"""Output of the benchmark: the tables, the issue's targets checked against one run,
the JSON file and the PNG plot.

Every ratio here compares two measurements taken in the same process, minutes
apart at most: on a shared 2-core VM bandwidth drifts 1.5x between runs, so
absolute milliseconds from different runs must not be compared. Each table has
one floor (runner.py) and every "x floor" divides it.
"""
import json

# Which result a target reads, and the bound. "x floor" = floor ms / impl ms (same
# window); "speed-up" = peer ms / FusedAdamW GRAPH ms in the same set.
OURS = "fused_graph"
TARGETS = [
    # (id, description, dtype, set kind, what, key, bound)
    ("kernel_floor", "direct kernel >= 0.95x floor (fp32 GPT-like)", "float32", "gpt", "x_floor", "direct", 0.95),
    ("graph_floor", "FusedAdamW GRAPH >= 0.90x floor (fp32 GPT-like)", "float32", "gpt", "x_floor", OURS, 0.90),
    ("vs_torch", "FusedAdamW GRAPH >= 1.0x torch fused AdamW", "float32", "gpt", "speedup", "torch_fused", 1.0),
    ("vs_deepspeed", "FusedAdamW GRAPH >= 1.05x DeepSpeedCPUAdam", "float32", "gpt", "speedup", "deepspeed", 1.05),
    ("vs_adamweightdecay", "FusedAdamW GRAPH >= 4x nn.AdamWeightDecay GRAPH", "float32", "gpt", "speedup",
     "ms_adamweightdecay_graph", 4.0),
    ("vs_mindformers", "FusedAdamW GRAPH >= 20x MindFormers AdamW GRAPH", "float32", "gpt", "speedup",
     "mindformers_adamw_graph", 20.0),
    ("small_overhead", "1,000 tensors/1M: FusedAdamW GRAPH - kernel <= 1 ms", "float32", "small", "overhead_ms",
     "direct", 1.0),
    ("bf16_floor", "bf16: FusedAdamW GRAPH >= 0.9x its floor (22 B/param)", "bfloat16", "gpt", "x_floor", OURS, 0.9),
    ("bf16_kernel_floor", "bf16: direct kernel >= 0.9x its floor (22 B/param)", "bfloat16", "gpt", "x_floor",
     "direct", 0.9),
    # Issue 11 (--impls options): each mode against the floor's bandwidth on its own bytes.
    ("master_floor", "bf16 + masters: FusedAdamW GRAPH >= 0.9x its floor (28 B/param)", "bfloat16", "gpt",
     "x_floor", "fused_graph_master", 0.9),
    ("sr_floor", "bf16 + stochastic rounding: >= 0.9x its floor (22 B/param)", "bfloat16", "gpt", "x_floor",
     "fused_graph_sr", 0.9),
    ("bf16_states_floor", "bf16 states: >= 0.9x its floor (20 B/param)", "float32", "gpt", "x_floor",
     "fused_graph_bf16_states", 0.9),
    ("amsgrad_floor", "amsgrad: >= 0.9x its floor (36 B/param)", "float32", "gpt", "x_floor",
     "fused_graph_amsgrad", 0.9),
    ("bf16_vs_deepspeed", "bf16 params, fp32 states: FusedAdamW GRAPH >= 1.0x DeepSpeedCPUAdam", "bfloat16",
     "gpt", "speedup", "deepspeed", 1.0),
    ("bf16_vs_torch", "bf16 params: FusedAdamW GRAPH >= 1.0x torch fused AdamW", "bfloat16", "gpt", "speedup",
     "torch_fused", 1.0),
    ("amsgrad_vs_torch", "amsgrad: FusedAdamW GRAPH >= 1.0x torch fused AdamW amsgrad", "float32", "gpt",
     "speedup", "torch_fused_amsgrad", 1.0, "fused_graph_amsgrad"),
    # Issue 14 (--impls whole_step): unscale + norm + clip + AdamW.
    ("whole_floor", "whole step: FusedAdamW >= 0.85x its floor (32 B/param)", "float32", "gpt", "x_floor",
     "fused_whole_graph", 0.85),
    ("whole_vs_torch", "whole step: FusedAdamW >= 1.3x torch's", "float32", "gpt", "speedup", "torch_whole", 1.3,
     "fused_whole_graph"),
    ("whole_vs_mindformers", "whole step: FusedAdamW >= 20x the MindFormers composition", "float32", "gpt",
     "speedup", "mindformers_whole_graph", 20.0, "fused_whole_graph"),
]


def _by_set(results):
    sets = {}
    for r in results:
        sets.setdefault((r["set"], r["dtype"]), {})[r["impl"]] = r
    return sets


def _ok(r):
    return r is not None and r.get("status") == "ok"


def add_speedups(results):
    """Adds to each result how many times faster our two fast paths are than it."""
    for rows in _by_set(results).values():
        for r in rows.values():
            if not _ok(r) or r["impl"] == "floor":
                continue
            for ours in ("direct", OURS):
                if _ok(rows.get(ours)):
                    r[f"speedup_{ours}"] = r["ms"] / rows[ours]["ms"]


def check_targets(results):
    """Each target evaluated on the largest matching set of this run (the issue's
    reference is GPT-like 100M; a quick run reports the size it had)."""
    sets = _by_set(results)
    out = []
    for tid, desc, dtype, kind, what, key, bound, *ours_key in TARGETS:
        candidates = [(rows, next(iter(rows.values()))) for (s, d), rows in sets.items()
                      if d == dtype and next(iter(rows.values()))["kind"] == kind]
        candidates.sort(key=lambda c: c[1]["numel"], reverse=True)
        entry = {"id": tid, "target": desc, "bound": bound, "status": "not measured"}
        for rows, any_row in candidates:
            ours, other = rows.get(ours_key[0] if ours_key else OURS), rows.get(key)
            if what == "x_floor" and _ok(other) and other.get("x_floor"):
                value = other["x_floor"]
            elif what == "speedup" and _ok(ours) and _ok(other):
                value = other["ms"] / ours["ms"]
            elif what == "overhead_ms" and _ok(ours) and _ok(other):
                value = ours["ms"] - other["ms"]
            else:
                continue
            met = value <= bound if what == "overhead_ms" else value >= bound
            entry.update(set=any_row["set"], value=round(value, 3), status="met" if met else "MISSED")
            if what == "x_floor" and other.get("below_floor"):
                entry["below_floor"] = True
            break
        out.append(entry)
    return out


def _fmt(x, spec):
    """x in `spec` (e.g. "8.3f"), or a dash as wide."""
    return format(x, spec) if x is not None else "-".rjust(int(spec.split(".")[0]))


BELOW_FLOOR = "<< BELOW FLOOR: noise"


def format_table(results):
    lines = []
    for (set_label, dtype), rows in _by_set(results).items():
        first = next(iter(rows.values()))
        floor = rows.get("floor")
        head = f"{set_label}, {dtype} ({first['count']} tensors, {first['numel']:,} params, " \
               f"{first['bytes_per_param']} B/param)"
        if _ok(floor):
            head += f"  floor {floor['ms']:.2f} ms = {floor['gbps']:.1f} GB/s " \
                    f"(fastest of {floor['floor_blocks']} blocks, {floor['reps']} passes)"
        lines += ["", head,
                  f"  {'implementation':44} {'ms/step':>9} {'GB/s':>7} {'x floor':>8} "
                  f"{'kernel x':>9} {'FusedAdamW-G x':>15}"]
        for r in rows.values():
            if not _ok(r):
                lines.append(f"  {r['label']:44} {r['status']}: {r.get('reason', '')[:110]}")
                continue
            lines.append(f"  {r['label']:44} {r['ms']:9.2f} {r['gbps']:7.1f} {_fmt(r.get('x_floor'), '8.3f')} "
                         f"{_fmt(r.get('speedup_direct'), '9.2f')} {_fmt(r.get('speedup_' + OURS), '15.2f')}"
                         + (f"  {BELOW_FLOOR}" if r.get("below_floor") else ""))
    lines += ["", "x floor: the table's floor ms / the row's ms (1.0 = the step costs what its memory traffic costs). "
                  "The floor is",
              "  timed in blocks around every implementation; the table's floor is the fastest block's median.",
              f"{BELOW_FLOOR}: the row ran faster than the floor, which no AdamW step can really do: the machine's "
              "speed moved",
              "  during the run (read the row as ~1.0x floor, not better).",
              "kernel x / FusedAdamW-G x: how many times faster the direct kernel / FusedAdamW GRAPH is than the row.",
              "GB/s counts the row's own traffic: AdamW's 28 B/param fp32 or 22 B/param bf16 params with fp32 states,",
              "  unless the row's label gives its own B/param; such a row's x floor is the floor's bandwidth applied to",
              "  its bytes (the floor's ms scaled by its B/param over the table's)."]
    return "\n".join(lines)


def format_targets(targets):
    lines = ["", "Targets (issue 3), this run:"]
    for t in targets:
        value = f"{t['value']:.3f} on {t['set']}" if "value" in t else ""
        if t.get("below_floor"):
            value += f"  {BELOW_FLOOR}"
        lines.append(f"  [{t['status']:>12}] {t['target']}: {value}")
    return "\n".join(lines)


def write_json(path, meta, results, targets):
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": results, "targets": targets}, f, indent=1)


def plot_title(meta):
    """The plot's second title line: what kind of run, on what, under what load."""
    isa = (meta.get("build_info") or {}).get("cpu", {}).get("isa", "?")
    load = meta.get("loadavg_start", [None])[0], (meta.get("loadavg_end") or [None])[0]
    load_text = "/".join("?" if x is None else f"{x:.1f}" for x in load)
    return (f"{'quick' if meta.get('quick') else 'full'} run, {meta.get('threads', '?')} threads, ISA {isa}, "
            f"load average {load_text} (start/end)\n{meta.get('cpu', '')}, {meta.get('date', '')}")


def plot_bars(results):
    """What the plot draws, per set (in order): [(key, label, gbps or None, below_floor)] for
    every implementation of the run; gbps None = not run or failed there ("n/a")."""
    sets = _by_set(results)
    impls = []
    for rows in sets.values():
        for k, r in rows.items():
            if k not in [i for i, _ in impls]:
                impls.append((k, r["label"]))
    bars = {}
    for name, rows in sets.items():
        bars[name] = []
        for key, label in impls:
            r = rows.get(key)
            bars[name].append((key, label, r["gbps"] if _ok(r) else None, bool(r and r.get("below_floor"))))
    return bars


def write_plot(path, results, meta):
    """GB/s of each implementation, grouped by parameter set and dtype (log scale); "n/a"
    where an implementation did not run, "<floor" on a bar that beat its table's floor."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        return "matplotlib not installed: no plot (pip install 'fused-adamw[bench]')"
    bars = plot_bars(results)
    impls = [(key, label) for key, label, _, _ in next(iter(bars.values()))] if bars else []
    width = 0.85 / max(1, len(impls))
    fig, ax = plt.subplots(figsize=(max(9, 1.6 * len(bars) + 4), 6.2))
    cmap = plt.get_cmap("tab20")
    values = [g for group in bars.values() for _, _, g, _ in group if g]
    bottom, top = (min(values) / 3, max(values) * 3) if values else (0.1, 10)
    handles = []
    for j, (key, label) in enumerate(impls):
        color = "0.35" if key == "floor" else cmap(j % 20)
        xs, ys = [], []
        for i, group in enumerate(bars.values()):
            x = i + (j - (len(impls) - 1) / 2) * width
            _, _, gbps, below = group[j]
            if gbps is None:
                ax.text(x, bottom * 1.1, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
                continue
            xs.append(x)
            ys.append(gbps)
            if below:
                ax.text(x, gbps * 1.05, "<floor", rotation=90, ha="center", va="bottom", fontsize=7, color="red")
        ax.bar(xs, ys, width, color=color)
        handles.append(Patch(color=color, label=label + ("" if xs else " (n/a everywhere)")))
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_ylabel("GB/s of the step's own traffic (higher is better)")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([f"{s}\n{d}" for s, d in bars], fontsize=8)
    ax.set_title("AdamW step on CPU: effective bandwidth by implementation and parameter set\n" + plot_title(meta),
                 fontsize=9)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.text(0.01, 0.01, 'n/a: not run in this run (quick mode), unavailable or failed (see the table). '
             '"<floor": faster than its table\'s floor, i.e. noise.', fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
