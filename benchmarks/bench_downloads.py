"""downloads: the corpus's soundgasm media from the replica on loopback through `downloads.download`
(4 threads) vs plain httpx streamed GETs (4 threads): throughput and this process's peak RSS delta.

The replica runs in a process of its own, as the sites do: in this one its request handling would
take turns with both clients' threads on one interpreter lock, and the ratio would measure that.
Before each timed round the page cache's dirty files are written out (`os.sync`), so one round's
writeback does not land on the next round's file creation. The two sides run back to back in each
round, taking turns going first; the figure is the median round's, and the ratio the median of
each round's ratio (the best round of each side is printed too)."""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import REPLICA_MEDIA, BenchResult, PeakRss, say, temp_dir

FULL_FILES = 200
THREADS = 4
ROUNDS = 15
MEMORY_FLAT_MIB = 64
#: the per-host rate limit for the project's side: on, so its code runs, but far above what loopback
#: serves (a few thousand files a second), so it never holds a request back and the ratio measures
#: the client's own work per file, not the limit
RATE_PER_HOST = 100_000
REPLICA_START_TIMEOUT_S = 60.0


@contextmanager
def replica_process(media_dir: Path):
    """The replica served by a child process on a free loopback port; yields its host map text."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_assets.replica.server", "--port", "0", "--media-dir", str(media_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # its first line is the host map; a replica that hangs before printing it fails the benchmark
        ready, _, _ = select.select([proc.stdout], [], [], REPLICA_START_TIMEOUT_S)
        if not ready:
            raise RuntimeError(f"the replica printed nothing in {REPLICA_START_TIMEOUT_S:g} s")
        line = proc.stdout.readline().strip()
        if not line.startswith("AUDIO_ASSETS_HOST_MAP="):
            raise RuntimeError(f"the replica did not start (it printed {line!r})")
        yield line.split("=", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(scale: float, **_) -> BenchResult:
    import httpx

    from audio_assets.downloads import download
    from audio_assets.http_client import PoliteClient
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.settings import load_settings

    res = BenchResult("downloads")
    count = max(20, round(FULL_FILES * scale))
    corpus = build_corpus()
    unique = [
        f"https://media.soundgasm.net/sounds/{r['sha1']}.m4a"
        for r in corpus.soundgasm.values()
        if not r["removed"]
    ]
    urls = [unique[i % len(unique)] for i in range(count)]
    with replica_process(REPLICA_MEDIA) as host_map, temp_dir("downloads") as tmp:
        settings = load_settings(
            {
                "AUDIO_ASSETS_HOST_MAP": host_map,
                "AUDIO_ASSETS_RATE_PER_HOST": str(RATE_PER_HOST),
                "AUDIO_ASSETS_DATA": str(tmp),
            }
        )
        # The plain GETs go straight to where the host map serves each URL.
        with PoliteClient(settings) as client:
            served = {u: client.map_url(u) for u in set(urls)}
        # Warm the replica's in-memory file cache so neither side pays for it in time.
        with httpx.Client(timeout=30) as http:
            sizes = {u: len(http.get(served[u]).content) for u in set(urls)}
        total = sum(sizes[u] for u in urls)
        say(f"  {count} files ({len(set(urls))} distinct), {total / 1e6:.1f} MB a round, {THREADS} threads")

        def project(dest: Path) -> None:
            with PoliteClient(settings) as client, ThreadPoolExecutor(THREADS) as pool:
                done = list(
                    pool.map(
                        lambda iu: download(client, iu[1], dest / f"project-{iu[0]:05d}.m4a"), enumerate(urls)
                    )
                )
            assert all(d.fetched for d in done) and sum(d.bytes for d in done) == total

        def baseline(dest: Path) -> None:

            def one(iu: tuple[int, str]) -> int:
                n = 0
                with (
                    http.stream("GET", served[iu[1]]) as r,
                    open(dest / f"baseline-{iu[0]:05d}.m4a", "wb") as f,
                ):
                    r.raise_for_status()
                    for chunk in r.iter_bytes():
                        n += f.write(chunk)
                return n

            with (
                httpx.Client(timeout=30, limits=httpx.Limits(max_connections=THREADS)) as http,
                ThreadPoolExecutor(THREADS) as pool,
            ):
                assert sum(pool.map(one, enumerate(urls))) == total

        timings: dict[str, list[tuple[float, float]]] = {"project": [], "baseline": []}
        for rnd in range(ROUNDS):
            # Both sides write into one folder a round: ext4 places a folder's files in its block group,
            # and creating a file costs more in a group holding many recently deleted inodes.
            round_dir = tmp / f"round_{rnd}"
            round_dir.mkdir()
            sides = (("baseline", baseline), ("project", project))
            for name, fn in sides if rnd % 2 == 0 else reversed(sides):  # each side goes first in turn
                os.sync()
                with PeakRss() as rss:
                    t0 = time.perf_counter()
                    fn(round_dir)
                    seconds = time.perf_counter() - t0
                timings[name].append((seconds, rss.peak_delta))
        # The median round, and the median of each round's ratio (the two sides ran back to back):
        # one lucky round of either side moves a best-of figure by 20% on this machine.
        proj_s = statistics.median(t for t, _ in timings["project"])
        base_s = statistics.median(t for t, _ in timings["baseline"])
        ratio = statistics.median(
            b / p for (p, _), (b, _) in zip(timings["project"], timings["baseline"], strict=True)
        )
        best_ratio = min(t for t, _ in timings["baseline"]) / min(t for t, _ in timings["project"])
        def peak(side: str) -> float | None:  # None where PeakRss can't measure
            marks = [m for _, m in timings[side]]
            return None if None in marks else max(marks)

        def rss(mib: float | None) -> str:
            return "" if mib is None else f" (+{mib:.1f} MiB RSS)"

        proj_mem, base_mem = peak("project"), peak("baseline")
        if proj_mem is None:
            res.note("peak RSS not measured: this system lets no process reset its high-water mark "
                     "(/proc/self/clear_refs)")
        proj_mbs, base_mbs = total / 1e6 / proj_s, total / 1e6 / base_s
        say(f"  project {proj_mbs:.2f} MB/s{rss(proj_mem)}, baseline {base_mbs:.2f} MB/s{rss(base_mem)}")
        res.details.update(
            files=count,
            bytes=total,
            mean_file_kb=round(total / count / 1024, 1),
            project_seconds=round(proj_s, 3),
            baseline_seconds=round(base_s, 3),
            best_of_rounds_ratio=round(best_ratio, 3),
            rounds={k: [(round(t, 3), None if m is None else round(m, 1)) for t, m in v] for k, v in timings.items()},
        )
        res.note(
            f"the corpus's files are small ({total / count / 1024:.0f} KiB on average), so throughput is "
            "per-request latency more than bandwidth, and the memory figure cannot show growth with file size"
        )
        res.row(
            f"throughput ({count} files, {total / 1e6:.1f} MB, {THREADS} threads; median of {ROUNDS} rounds)",
            proj_mbs,
            base_mbs,
            "MB/s",
            ratio,
            "x baseline",
            ">= 0.8x baseline",
            ratio >= 0.8,
        )
        res.row(
            "throughput ratio, best round of each side",
            None,
            None,
            "",
            best_ratio,
            "x baseline",
            "(info)",
            None,
        )
        res.row(
            "peak RSS delta",
            proj_mem,
            base_mem,
            "MiB",
            None,
            "",
            f"flat (< {MEMORY_FLAT_MIB} MiB)",
            None if proj_mem is None else proj_mem < MEMORY_FLAT_MIB,
        )
    return res
