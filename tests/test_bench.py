"""The benchmark's bookkeeping, on synthetic timings: one floor per table (the fastest floor
block), every ratio against it, a visible flag on any row that beat it, "n/a" in the plot for
what did not run, a progress count that reaches its total, and --help giving every default.
One short real run checks that the pieces fit together (no timing is asserted)."""
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from fused_adamw.bench import cli, report, runner
from fused_adamw.bench.impls import Impl, Unavailable, select
from fused_adamw.bench.sets import single


def _cfg():
    return SimpleNamespace(quick=True, threads=1, warmup=1, min_reps=3, max_reps=3, budget=0.0, floor_reps=3)


def _impl(key, build, **kw):
    return Impl(key, f"impl {key}", "peer", build, **kw)


def _ok_build(pset, dtype, threads):
    return (lambda: None), (lambda: None)


def _unavailable(pset, dtype, threads):
    raise Unavailable("not installed here")


def _broken(pset, dtype, threads):
    raise RuntimeError("\nit broke\nmore")


@pytest.fixture
def synthetic(monkeypatch, rng):
    """run_set with scripted floor blocks and step times (seconds) instead of the clock."""
    floor_blocks = [list(b) for b in rng.uniform(0.010, 0.020, size=(8, 3))]
    step_times = {}

    def fake_floor_block(floor_step, reps):
        return floor_blocks.pop(0)

    def fake_measure(step, cfg, progress, what):
        return step_times[what.rsplit(": ", 1)[1]]

    monkeypatch.setattr(runner, "floor_block", fake_floor_block)
    monkeypatch.setattr(runner, "measure", fake_measure)
    return SimpleNamespace(floor_blocks=list(floor_blocks), step_times=step_times)


@pytest.fixture
def plot_dir(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    return tmp_path


def test_one_floor_per_table_and_rows_below_it_are_flagged(synthetic, plot_dir):
    best = min(float(np.median(b)) for b in synthetic.floor_blocks[:6])
    synthetic.step_times.update({
        "impl fast": [best * 0.9] * 3,       # faster than the floor: noise, must be flagged
        "impl slow": [best * 4.0] * 3,
        "impl edge": [best * 1.0] * 3,       # exactly at the floor: not below it
    })
    impls = [_impl("fast", _ok_build), _impl("slow", _ok_build), _impl("edge", _ok_build),
             _impl("gone", _unavailable), _impl("bad", _broken)]
    skipped = [_impl("later", _ok_build, quick_gpt_only=True)]
    pset = single(1000)
    progress = runner.Progress(len(impls) + 1)
    rows = runner.run_set(pset, "float32", impls, skipped, _cfg(), progress)

    assert progress.done == progress.total
    floor = rows[0]
    assert floor["impl"] == "floor" and floor["floor_blocks"] == 6  # blocks around the 3 rows that ran
    assert floor["ms"] == pytest.approx(1e3 * best)
    by_key = {r["impl"]: r for r in rows}
    for key, factor in (("fast", 0.9), ("slow", 4.0), ("edge", 1.0)):
        assert by_key[key]["floor_ms"] == floor["ms"]
        assert by_key[key]["x_floor"] == pytest.approx(1 / factor)
    assert by_key["fast"]["below_floor"] and not by_key["slow"]["below_floor"]
    assert not by_key["edge"]["below_floor"]
    assert by_key["gone"]["status"] == "unavailable" and by_key["bad"]["status"] == "error"
    assert "it broke" in by_key["bad"]["reason"]
    assert by_key["later"]["status"] == "not run"

    report.add_speedups(rows)
    table = report.format_table(rows).splitlines()
    flagged = [line for line in table if report.BELOW_FLOOR in line and line.startswith("  ")]
    assert len(flagged) == 1 and "impl fast" in flagged[0]
    assert any(f"floor {floor['ms']:.2f} ms" in line and "fastest of 6 blocks" in line for line in table)

    if plot_dir is not None:  # the PNG itself, where matplotlib is installed (the bench extra)
        meta = dict(quick=True, threads=1, build_info={"cpu": {"isa": "scalar"}}, loadavg_start=(1, 1, 1))
        assert report.write_plot(str(plot_dir / "p.png"), rows, meta) is None
        assert (plot_dir / "p.png").stat().st_size > 0

    bars = report.plot_bars(rows)[(pset.label, "float32")]
    drawn = {key: (gbps, below) for key, _, gbps, below in bars}
    assert drawn["fast"][1] and not drawn["slow"][1]
    assert drawn["gone"][0] is None and drawn["bad"][0] is None and drawn["later"][0] is None  # "n/a"
    assert drawn["floor"][0] == pytest.approx(floor["gbps"])


def test_targets_say_when_a_met_ratio_is_below_floor_noise(synthetic):
    best = min(float(np.median(b)) for b in synthetic.floor_blocks[:2])
    synthetic.step_times["impl direct"] = [best * 0.8] * 3
    impl = Impl("direct", "impl direct", "ours", _ok_build)
    pset = single(1000)
    rows = runner.run_set(pset, "float32", [impl], [], _cfg(), runner.Progress(2))
    for r in rows:
        r["kind"] = "gpt"  # the kernel target reads the GPT-like set
    targets = {t["id"]: t for t in report.check_targets(rows)}
    assert targets["kernel_floor"]["status"] == "met" and targets["kernel_floor"]["below_floor"]
    assert report.BELOW_FLOOR in report.format_targets(list(targets.values()))


def test_plot_title_states_the_run():
    meta = dict(quick=True, threads=2, build_info={"cpu": {"isa": "avx2"}}, loadavg_start=(1.5, 1, 1),
                loadavg_end=(2.25, 1, 1), cpu="some CPU", date="today")
    title = report.plot_title(meta)
    for part in ("quick run", "2 threads", "ISA avx2", "1.5/2.2", "some CPU"):
        assert part in title


def test_impl_selection():
    assert "ms_adamweightdecay_pynative" not in [i.key for i in select("default")]
    assert "ms_adamweightdecay_pynative" in [i.key for i in select("all")]
    assert [i.key for i in select("floor,direct,direct")] == ["direct"]
    with pytest.raises(ValueError, match="nope"):
        select("direct,nope")


def test_help_gives_every_option_its_default(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = ["--quick", "--sizes", "--sets", "--dtypes", "--impls", "--threads", "--budget", "--out-dir", "--no-plot"]
    starts = sorted(text.index(f"{o} ", text.index("options:")) for o in options)
    for start, end in zip(starts, starts[1:] + [len(text)]):
        assert "default" in text[start:end], text[start:end]


def test_a_real_run_writes_one_consistent_table(tmp_path, capsys):
    out = tmp_path / "results"
    assert cli.main(["--quick", "--sizes", "20K", "--sets", "single,small", "--dtypes", "float32",
                     "--impls", "direct", "--no-plot", "--out-dir", str(out)]) == 0
    (path,) = out.glob("bench-*-quick.json")
    data = json.loads(path.read_text())
    assert [(r["kind"], r["impl"]) for r in data["results"]] == [
        ("single", "floor"), ("single", "direct"), ("small", "floor"), ("small", "direct")]
    for floor, direct in (data["results"][:2], data["results"][2:]):
        assert direct["status"] == "ok", direct.get("reason")
        assert direct["x_floor"] == pytest.approx(floor["ms"] / direct["ms"])
        assert direct["below_floor"] == (direct["ms"] < floor["ms"])
    assert data["meta"]["quick"] is True and "loadavg_end" in data["meta"]


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "fused_adamw.bench", "--sets", "nonsense"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown set kind(s) ['nonsense']" in proc.stderr


def test_a_row_with_other_traffic_is_judged_on_its_own_bytes():
    """amsgrad (36 B/param) against a 28 B/param floor: the floor's bandwidth on 36 bytes."""
    from fused_adamw.bench.runner import apply_floor
    floor = {"impl": "floor", "status": "ok", "ms": 28.0, "bytes_per_param": 28}
    rows = [{"impl": "fused_graph_amsgrad", "status": "ok", "ms": 40.0, "bytes_per_param": 36},
            {"impl": "fused_graph", "status": "ok", "ms": 28.0, "bytes_per_param": 28}]
    apply_floor(rows, floor)
    assert rows[0]["floor_ms"] == pytest.approx(36.0) and rows[0]["x_floor"] == pytest.approx(0.9)
    assert rows[1]["x_floor"] == pytest.approx(1.0) and not rows[1]["below_floor"]
