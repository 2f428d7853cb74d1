"""The benchmarks (`make bench`) are not run by the suite, but they must keep working: every one
imports, and the analysis one (quick at a small scale) gives its rows."""

from __future__ import annotations

import importlib

import pytest

from benchmarks.__main__ import BENCHMARKS


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_imports(name):
    assert callable(importlib.import_module(BENCHMARKS[name]).run)


def test_the_analysis_benchmark_measures_both_sides():
    from benchmarks import bench_analysis

    res = bench_analysis.run(scale=0.002)
    rows = {r.metric.split(" (")[0]: r for r in res.rows}
    assert rows["posts/s"].project > 0 and rows["posts/s"].baseline > 0
    assert res.details["sample_with_audio_links"] > 0 and res.details["sample_with_scribe"] > 0



def test_the_downloads_benchmark_measures_both_sides():
    """Its replica runs in a child process; the peak memory comes from the kernel's high-water mark."""
    from benchmarks import bench_downloads

    res = bench_downloads.run(scale=0.1)
    rows = {r.metric.split(" (")[0]: r for r in res.rows}
    assert rows["throughput"].project > 0 and rows["throughput"].baseline > 0
    assert 0 <= rows["peak RSS delta"].project < 64 and res.details["files"] == 20
    assert len(res.details["rounds"]["project"]) == len(res.details["rounds"]["baseline"]) == bench_downloads.ROUNDS


def test_the_gwasi_import_benchmark_takes_turns_and_judges_the_median_round(monkeypatch):
    """At a tiny scale: every round runs both sides, taking turns going first, the project into a
    fresh data folder each time; the target row is the median round's, with that round's times."""
    from pathlib import Path

    from benchmarks import bench_gwasi_import

    calls = []
    real_run_child = bench_gwasi_import.run_child

    def recording_run_child(cmd, env_vars=None, **kwargs):
        side = "project" if cmd[0].endswith("audio-assets") else cmd[-2]  # the baseline's mode: decode, scan
        data = Path(env_vars["AUDIO_ASSETS_DATA"]) if env_vars else None
        calls.append((side, data is not None and data.exists()))
        return real_run_child(cmd, env_vars=env_vars, **kwargs)

    monkeypatch.setattr(bench_gwasi_import, "run_child", recording_run_child)
    res = bench_gwasi_import.run(scale=0.0005, rounds=3)
    assert [side for side, _ in calls] == ["project", "decode", "decode", "project", "project", "decode", "scan"]
    assert not any(data_left for side, data_left in calls if side == "project")
    rounds = res.details["rounds"]
    assert len(rounds) == 3 and res.details["baseline_rows"] == res.details["entries"] == 2700
    wall = next(r for r in res.rows if r.metric.startswith("wall time vs DuckDB decode"))
    middle = sorted(rounds, key=lambda r: r["ratio"])[1]
    assert wall.ratio == pytest.approx(middle["ratio"], abs=0.001)
    assert (round(wall.project, 2), round(wall.baseline, 2)) == (middle["project_seconds"], middle["baseline_seconds"])
    assert "2,700 entries" in res.details["project_output"]

def test_peak_memory_is_not_measured_where_the_high_water_mark_cannot_be_reset(monkeypatch):
    """A sandbox (or a system with no /proc) that forbids resetting the mark: no figure rather
    than the process's lifetime peak passed off as the block's."""
    import builtins

    from benchmarks.common import PeakRss

    with PeakRss() as rss:
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touched: resident
    assert rss.peak_delta is not None and rss.peak_delta >= 60
    del block
    real_open = builtins.open

    def no_clear_refs(path, *args, **kwargs):
        if str(path) == "/proc/self/clear_refs":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_clear_refs)
    with PeakRss() as rss:
        pass
    assert rss.peak_delta is None


def test_a_replica_that_never_says_it_is_ready_fails_the_downloads_benchmark(monkeypatch, tmp_path):
    """The replica's child process must print its host map; one that hangs is stopped, not waited on."""
    import subprocess
    import sys
    import time

    from benchmarks import bench_downloads

    children = []
    real_popen = subprocess.Popen

    def silent_child(cmd, **kwargs):
        children.append(real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs))
        return children[-1]

    monkeypatch.setattr(bench_downloads.subprocess, "Popen", silent_child)
    monkeypatch.setattr(bench_downloads, "REPLICA_START_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="printed nothing in 0.5 s"):
        with bench_downloads.replica_process(tmp_path):
            pass
    assert time.monotonic() - started < 10 and children[0].poll() is not None
