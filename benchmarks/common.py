"""Shared helpers: result rows, timing, peak memory, temporary corpora."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
#: the replica renders its media once and caches it here (shared with the test suite)
REPLICA_MEDIA = Path(os.environ.get("AUDIO_ASSETS_TEST_MEDIA", "/tmp/audio_assets_test_media"))


@dataclass
class Row:
    """One measured target: the project's figure beside the baseline's, measured in the same run."""

    bench: str
    metric: str
    project: float
    baseline: float
    unit: str
    ratio: float | None  # as described by ratio_label
    ratio_label: str  # e.g. "x faster", "x remux", "x baseline"
    target: str
    passed: bool | None  # None: informational, no target
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "INFO" if self.passed is None else ("PASS" if self.passed else "MISS")

    def as_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


@dataclass
class BenchResult:
    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def row(
        self,
        metric: str,
        project: float,
        baseline: float,
        unit: str,
        ratio: float | None,
        ratio_label: str,
        target: str,
        passed: bool | None,
        *notes: str,
    ) -> Row:
        r = Row(self.name, metric, project, baseline, unit, ratio, ratio_label, target, passed, list(notes))
        self.rows.append(r)
        return r

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  note: {text}")

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "notes": self.notes,
            "details": self.details,
            "rows": [r.as_dict() for r in self.rows],
        }


def say(msg: str = "") -> None:
    print(msg, flush=True)


def fmt(value: float, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB" if value >= 100 else f"{value:.1f} MiB"
    if unit in ("MB/s", "posts/s", "req/scene", "req/100 posts"):
        return f"{value:,.3f} {unit}" if value < 1 else f"{value:,.1f} {unit}"
    if float(value).is_integer():
        return f"{int(value):,} {unit}".strip()
    return f"{value:,.2f} {unit}".strip()


def ratio(a: float, b: float) -> float | None:
    if not b:
        return None
    return a / b


@contextmanager
def temp_dir(label: str) -> Iterator[Path]:
    """A fresh temporary folder for one benchmark's corpus, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"audio_assets_bench_{label}_"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def env(**values: str | None):
    """Set (or with None, unset) environment variables; restore them afterwards."""
    from audio_assets.settings import environment

    return environment(values)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def best_of(n: int, fn, *args, **kwargs) -> float:
    """The fastest of n timings (the least disturbed by the machine)."""
    return min(timed(fn, *args, **kwargs)[0] for _ in range(max(1, n)))


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_child(
    cmd: list[str], *, env_vars: dict | None = None, cwd: Path | None = None, timeout: float | None = None
) -> ChildRun:
    """Run a command; wall time and the peak RSS of that child alone (os.wait4's rusage)."""
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env_vars, cwd=cwd)
    deadline = None if timeout is None else t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    stdout, stderr = out_f.read().decode("utf-8", "replace"), err_f.read().decode("utf-8", "replace")
    out_f.close()
    err_f.close()
    return ChildRun(seconds, usage.ru_maxrss / 1024.0, proc.returncode, stdout, stderr)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2


def _vm_hwm_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status")


class PeakRss:
    """This process's peak RSS over a block, from the kernel's high-water mark (VmHWM), which is
    reset on entry by writing 5 to /proc/self/clear_refs. No sampling thread runs in the measured
    process, so it takes no turns on the interpreter lock away from the work being timed.
    ``peak_delta`` is the peak above the RSS at entry; None where the mark can't be reset (no
    /proc, or a sandbox that forbids the write): a peak since the process began would not be
    this block's."""

    def __init__(self) -> None:
        self.start_mib = 0.0
        self.peak_mib: float | None = None

    def __enter__(self) -> PeakRss:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.start_mib = rss_mib()
            self.peak_mib = self.start_mib
        except OSError:
            self.peak_mib = None
        return self

    def __exit__(self, *exc) -> None:
        if self.peak_mib is not None:
            self.peak_mib = max(_vm_hwm_mib(), self.start_mib)

    @property
    def peak_delta(self) -> float | None:
        return None if self.peak_mib is None else self.peak_mib - self.start_mib


def free_disk_gib(path: Path | str | None = None) -> float:
    return shutil.disk_usage(path or tempfile.gettempdir()).free / 1024**3
