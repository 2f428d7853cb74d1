"""`make soak`: the whole pipeline against a replica that fails a share of its answers.

Every outside host answers ~20% of requests with 429 (Retry-After), 503, a reset connection,
a truncated body or an answer that stalls past the client's timeout, and whyp.it's CDN also
expires signed URLs. The run must still produce
every release of the corpus's ground truth, stay inside the per-host rate limit, and a second
run must change nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

#: the client's timeout during the soak (AUDIO_ASSETS_HTTP_TIMEOUT): a stalled answer waits past it
TIMEOUT_S = 2.0
FAULT_MIX = [  # kind, status, retry_after (for "delay": how long the answer stalls), share of requests
    ("status", 429, 0.05, 0.05),
    ("status", 503, None, 0.05),
    ("reset", 0, None, 0.05),
    ("truncate", 0, None, 0.045),
    ("delay", 0, TIMEOUT_S + 1, 0.01),
]


def inject(replica, rate: float = 0.2, seed: int = 1) -> None:
    scale = rate / 0.2
    for i, (kind, status, retry_after, share) in enumerate(FAULT_MIX):
        replica.add_fault(kind=kind, status=status or 503, retry_after=retry_after, rate=share * scale, seed=seed + i)
    replica.add_fault(host="cdn.whyp.it", kind="expire", rate=rate, seed=seed + 99)


def max_rate(requests, window_s: float = 2.0) -> dict[str, float]:
    """The highest request rate any host saw over a sliding window (requests per second; a
    two-second window, so arrival jitter on loopback does not read as a burst)."""
    by_host: dict[str, list[float]] = {}
    for r in requests:
        if getattr(r, "at", None) is not None:
            by_host.setdefault(r.host, []).append(r.at)
    out = {}
    for host, times in by_host.items():
        times.sort()
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] < t - window_s:
                j += 1
            best = max(best, i - j + 1)
        out[host] = best / window_s
    return out


def soak(data_root: Path, first: str | None = None, last: str | None = None, rate: float = 0.2,
         rate_per_host: float = 20.0) -> dict:
    import dagster as dg

    from audio_assets.definitions import PipelineResource
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.replica.server import ReplicaServer
    from audio_assets.replica.stash_emulator import StashEmulator
    from audio_assets.runner import run_pipeline
    from audio_assets.settings import environment

    corpus = build_corpus()
    first, last = first or corpus.days[0], last or corpus.days[-1]
    (data_root / "videos").mkdir(parents=True, exist_ok=True)
    media = Path(os.environ.get("AUDIO_ASSETS_TEST_MEDIA", "/tmp/audio_assets_test_media"))
    started = time.perf_counter()
    with ReplicaServer(corpus, media) as replica, StashEmulator(data_root / "videos") as stash:
        env = {"AUDIO_ASSETS_DATA": str(data_root), "AUDIO_ASSETS_HOST_MAP": replica.host_map_env(),
               "STASH_URL": stash.url, "AUDIO_ASSETS_RATE_PER_HOST": str(rate_per_host),
               "AUDIO_ASSETS_HTTP_TIMEOUT": str(TIMEOUT_S)}
        with environment(env):
            inject(replica, rate)
            with dg.DagsterInstance.ephemeral() as instance:
                first_run = run_pipeline(first, last, pipeline=PipelineResource(), instance=instance, log_level="ERROR")
                mutations = stash.mutation_count
                second = run_pipeline(first, last, pipeline=PipelineResource(), instance=instance, log_level="ERROR")
            requests = list(replica.requests)
            faults = dict(replica.faults_injected)
            second_mutations = stash.mutation_count - mutations
    from audio_assets.replica.ground_truth import release_mismatches

    days = {d for d in corpus.days if first <= d <= last}
    mismatches = release_mismatches(data_root / "warehouse.duckdb", corpus, days)
    peak = max_rate(requests)
    return {
        "days": len(days), "seconds": round(time.perf_counter() - started, 1), "requests": len(requests),
        "faults_injected": faults, "faults_total": sum(faults.values()),
        "checks_failed": first_run.failed_checks + second.failed_checks,
        "release_mismatches": mismatches, "second_run_stash_mutations": second_mutations,
        "peak_requests_per_second_by_host": peak,
        "rate_limit_respected": all(v <= rate_per_host + 1 for v in peak.values()),
        "ok": not mismatches and not first_run.failed_checks and second_mutations == 0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m audio_assets.soak", description=__doc__)
    p.add_argument("--rate", type=float, default=0.2, help="share of requests that fail (default 0.2)")
    p.add_argument("--first")
    p.add_argument("--last")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="audio_assets_soak_") as tmp:
        report = soak(Path(tmp) / "data", args.first, args.last, args.rate)
    print(json.dumps(report, indent=2, default=str))
    print("soak: " + ("PASS" if report["ok"] else "FAIL"))
    return 0 if report["ok"] else 1



if __name__ == "__main__":
    sys.exit(main())
