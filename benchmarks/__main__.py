"""`python -m benchmarks [NAME ...] [--scale S] [--full]`: run the benchmarks, print a table,
write benchmarks/results/latest.json. Exits 0 on a MISS (a report), non-zero only on a crash."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import BenchResult, fmt, say

BENCHMARKS = {
    "render": "benchmarks.bench_render",
    "gwasi_import": "benchmarks.bench_gwasi_import",
    "analysis": "benchmarks.bench_analysis",
    "reddit_reads": "benchmarks.bench_reddit_reads",
    "stash_resync": "benchmarks.bench_stash_resync",
    "incremental": "benchmarks.bench_incremental",
    "downloads": "benchmarks.bench_downloads",
}
RESULTS = Path(__file__).resolve().parent / "results"


def table(results: list[BenchResult]) -> str:
    header = ("benchmark", "project", "baseline", "ratio", "target", "result")
    lines = []
    for res in results:
        if res.error:
            lines.append((res.name, "-", "-", "-", "-", "CRASH"))
        for r in res.rows:
            ratio = (
                "-"
                if r.ratio is None
                else (
                    f"{r.ratio:,.1f} {r.ratio_label}" if r.ratio >= 10 else f"{r.ratio:.3f} {r.ratio_label}"
                )
            )
            lines.append(
                (
                    f"{r.bench}: {r.metric}",
                    fmt(r.project, r.unit),
                    fmt(r.baseline, r.unit),
                    ratio,
                    r.target,
                    r.status,
                )
            )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    out = [
        "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="scale corpus sizes (e.g. 0.02 for a quick run)"
    )
    parser.add_argument(
        "--full", action="store_true", help="render: time libx264 on the whole audio, not a 3-minute cut"
    )
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "latest.json", help="where to write the results"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    names = args.names or list(BENCHMARKS)
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started = time.perf_counter()
    say(f"audio_assets benchmarks: {', '.join(names)} at scale {args.scale} ({os.cpu_count()} cores)")
    results: list[BenchResult] = []
    for name in names:
        say(f"\n== {name} ==")
        t0 = time.perf_counter()
        try:
            res = importlib.import_module(BENCHMARKS[name]).run(scale=args.scale, full=args.full)
        except Exception as exc:  # a crash of one benchmark is reported; the others still run
            traceback.print_exc()
            res = BenchResult(name, error=f"{type(exc).__name__}: {exc}")
        res.seconds = time.perf_counter() - t0
        for r in res.rows:
            say(
                f"  {r.status}: {r.metric}: project {fmt(r.project, r.unit)}, baseline {fmt(r.baseline, r.unit)}"
                + ("" if r.ratio is None else f", {r.ratio:,.3f} {r.ratio_label}")
                + f" (target {r.target})"
            )
        say(f"  [{name} took {res.seconds:.1f}s]")
        results.append(res)
    total = time.perf_counter() - started
    say("\n" + table(results))
    for res in results:
        for n in res.notes:
            say(f"  * {res.name}: {n}")
    say(f"\n{len(results)} benchmark(s) in {total:.1f}s at scale {args.scale}")
    doc = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": args.scale,
        "full": args.full,
        "seconds": round(total, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "benchmarks": [r.as_dict() for r in results],
    }
    try:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        say(f"results written to {args.json}")
    except OSError as exc:
        say(f"could not write {args.json}: {exc}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
