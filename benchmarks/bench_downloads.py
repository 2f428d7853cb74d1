"""downloads: the corpus's soundgasm media from the replica on loopback through `downloads.download`
(4 threads) vs plain httpx streamed GETs (4 threads): throughput and this process's peak RSS delta."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import REPLICA_MEDIA, BenchResult, RssSampler, say, temp_dir

FULL_FILES = 200
THREADS = 4
ROUNDS = 9
MEMORY_FLAT_MIB = 64
#: the per-host rate limit for the project's side: on, so its code runs, but far above what loopback
#: serves (a few thousand files a second), so it never holds a request back and the ratio measures
#: the client's own work per file, not the limit
RATE_PER_HOST = 100_000


def run(scale: float, **_) -> BenchResult:
    import httpx

    from audio_assets.downloads import download
    from audio_assets.http_client import PoliteClient
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.replica.server import ReplicaServer
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
    server = ReplicaServer(corpus, REPLICA_MEDIA).start()
    try:
        with temp_dir("downloads") as tmp:
            settings = load_settings(
                {
                    "AUDIO_ASSETS_HOST_MAP": server.host_map_env(),
                    "AUDIO_ASSETS_RATE_PER_HOST": str(RATE_PER_HOST),
                    "AUDIO_ASSETS_DATA": str(tmp),
                }
            )
            # Warm the replica's in-memory file cache so neither side pays for it in RSS or time.
            with httpx.Client(timeout=30) as http:
                sizes = {u: len(http.get(server.url_for(u)).content) for u in set(urls)}
            total = sum(sizes[u] for u in urls)
            say(
                f"  {count} files ({len(set(urls))} distinct), {total / 1e6:.1f} MB a round, {THREADS} threads"
            )

            def project(dest: Path) -> None:
                with PoliteClient(settings) as client, ThreadPoolExecutor(THREADS) as pool:
                    done = list(
                        pool.map(
                            lambda iu: download(client, iu[1], dest / f"{iu[0]:05d}.m4a"), enumerate(urls)
                        )
                    )
                assert all(d.fetched for d in done) and sum(d.bytes for d in done) == total

            def baseline(dest: Path) -> None:
                dest.mkdir(parents=True, exist_ok=True)

                def one(iu: tuple[int, str]) -> int:
                    n = 0
                    with (
                        http.stream("GET", server.url_for(iu[1])) as r,
                        open(dest / f"{iu[0]:05d}.m4a", "wb") as f,
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
                for name, fn in (("baseline", baseline), ("project", project)):
                    with RssSampler() as rss:
                        t0 = time.perf_counter()
                        fn(tmp / f"{name}_{rnd}")
                        seconds = time.perf_counter() - t0
                    timings[name].append((seconds, rss.peak_delta))
            proj_s = min(t for t, _ in timings["project"])
            base_s = min(t for t, _ in timings["baseline"])
            proj_mem = max(m for _, m in timings["project"])
            base_mem = max(m for _, m in timings["baseline"])
            proj_mbs, base_mbs = total / 1e6 / proj_s, total / 1e6 / base_s
            say(
                f"  project {proj_mbs:.2f} MB/s (+{proj_mem:.1f} MiB RSS), baseline {base_mbs:.2f} MB/s (+{base_mem:.1f} MiB RSS)"
            )
            res.details.update(
                files=count,
                bytes=total,
                mean_file_kb=round(total / count / 1024, 1),
                project_seconds=round(proj_s, 3),
                baseline_seconds=round(base_s, 3),
                rounds={k: [(round(t, 3), round(m, 1)) for t, m in v] for k, v in timings.items()},
            )
            res.note(
                f"the corpus's files are small ({total / count / 1024:.0f} KiB on average), so throughput is "
                "per-request latency more than bandwidth, and the memory figure cannot show growth with file size"
            )
            res.row(
                f"throughput ({count} files, {total / 1e6:.1f} MB, {THREADS} threads)",
                proj_mbs,
                base_mbs,
                "MB/s",
                proj_mbs / base_mbs,
                "x baseline",
                ">= 0.8x baseline",
                proj_mbs / base_mbs >= 0.8,
            )
            res.row(
                "peak RSS delta",
                proj_mem,
                base_mem,
                "MiB",
                None,
                "",
                f"flat (< {MEMORY_FLAT_MIB} MiB)",
                proj_mem < MEMORY_FLAT_MIB,
            )
    finally:
        server.stop()
    return res
