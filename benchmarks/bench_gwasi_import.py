"""gwasi_import: the user's GWASI dump (5.4M entries, ~700 shards) through `audio-assets import-gwasi`
vs DuckDB decoding the same JSON with read_json, each in its own process (wall time, peak RSS)."""

from __future__ import annotations

import json
import os
import sys

from benchmarks.common import VENV_BIN, BenchResult, free_disk_gib, run_child, say, temp_dir, timed
from benchmarks.gwasi_dump import generate

FULL_ENTRIES = 5_400_000
SHARDS = 700
NEED_GIB_FULL = 8.0
MEMORY_TARGET_MIB = 2048

BASELINE = r"""
import json, sys, time
import duckdb
db, tmp, mode, files = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
con = duckdb.connect(db)
con.execute("SET memory_limit = '1GB'")
con.execute("SET threads = 2")
con.execute(f"SET temp_directory = '{tmp}'")
if mode == "decode":
    con.execute(f'''CREATE TABLE t AS SELECT e[1] AS post_id, e[2] AS subreddit, e[3] AS author, e[4] AS flair,
        e[5] AS title, TRY_CAST(e[6] AS BIGINT) AS created_utc, TRY_CAST(e[7] AS BIGINT) AS score,
        TRY_CAST(e[8] AS DOUBLE) AS length, e[9] AS extra
        FROM (SELECT unnest(entries) AS e FROM read_json({files!r}, columns={{'entries': 'VARCHAR[][]'}},
              maximum_object_size=67108864))''')
    print(con.execute("SELECT count(*) FROM t").fetchone()[0])
else:
    print(con.execute(f'''SELECT count(*) FROM read_json({files!r}, columns={{'entries': 'JSON[]'}},
        maximum_object_size=67108864)''').fetchone()[0])
"""


def run(scale: float, **_) -> BenchResult:
    res = BenchResult("gwasi_import")
    entries = max(1000, round(FULL_ENTRIES * scale))
    need = NEED_GIB_FULL * entries / FULL_ENTRIES + 0.5
    free = free_disk_gib()
    if free < need:
        scaled = max(1000, int(FULL_ENTRIES * (free - 0.5) / NEED_GIB_FULL))
        res.note(
            f"only {free:.1f} GiB free on the temp disk (need ~{need:.1f}): scaled down to {scaled:,} entries"
        )
        entries = scaled
    with temp_dir("gwasi") as tmp:
        dump = tmp / "dump"
        say(f"  generating a GWASI dump of {entries:,} entries in {SHARDS} shards ...")
        gen_s, info = timed(generate, dump, entries, SHARDS)
        size_mib = info["bytes"] / 1024**2
        say(f"  {size_mib:,.0f} MiB in {gen_s:.1f}s")
        res.details.update(
            entries=entries, shards=SHARDS, dump_mib=round(size_mib, 1), generate_seconds=round(gen_s, 1)
        )
        files = sorted((p for p in dump.glob("base_*/*.json")), key=lambda p: int(p.stem))
        assert files, "the generator wrote no shards"
        # Prime the page cache equally for both sides, and have the generator's dirty pages
        # written out first: otherwise the kernel writes gigabytes back during the first side's run.
        for p in files:
            p.read_bytes()
        os.sync()

        # The project: the CLI, as the user runs it (no DAGSTER_HOME: Dagster is not told).
        data = tmp / "data"
        child_env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        child_env["AUDIO_ASSETS_DATA"] = str(data)
        say("  audio-assets import-gwasi ...")
        proj = run_child(
            [str(VENV_BIN / "audio-assets"), "import-gwasi", str(dump), "--quiet"], env_vars=child_env
        )
        if proj.returncode != 0:
            raise RuntimeError(f"import-gwasi exited {proj.returncode}: {proj.stderr[-2000:]}")
        summary = proj.stdout.strip().splitlines()[0] if proj.stdout.strip() else ""
        say(f"  project: {proj.seconds:.1f}s, peak RSS {proj.peak_rss_mib:,.0f} MiB :: {summary}")
        res.details.update(
            project_seconds=round(proj.seconds, 2),
            project_peak_rss_mib=round(proj.peak_rss_mib),
            project_output=summary,
        )

        # Baseline 1: DuckDB decoding the entries into a table (1 GB, 2 threads), its own process,
        # after the project's files are written out (as the generator's were before the project).
        os.sync()
        paths = json.dumps([str(p) for p in files])
        base_db = tmp / "baseline.duckdb"
        say("  baseline: DuckDB read_json(VARCHAR[][]) -> CREATE TABLE ...")
        b1 = run_child([sys.executable, "-c", BASELINE, str(base_db), str(tmp / "duck_tmp"), "decode", paths])
        if b1.returncode != 0:
            raise RuntimeError(f"DuckDB baseline failed: {b1.stderr[-2000:]}")
        rows = int(b1.stdout.strip().splitlines()[-1])
        say(f"  baseline decode: {b1.seconds:.1f}s, peak RSS {b1.peak_rss_mib:,.0f} MiB, {rows:,} rows")
        base_db.unlink(missing_ok=True)

        # Baseline 2: a plain scan (count) of the same files.
        say("  baseline: DuckDB read_json(JSON[]) count(*) scan ...")
        b2 = run_child(
            [sys.executable, "-c", BASELINE, str(tmp / "scan.duckdb"), str(tmp / "duck_tmp"), "scan", paths]
        )
        if b2.returncode != 0:
            raise RuntimeError(f"DuckDB scan baseline failed: {b2.stderr[-2000:]}")
        say(f"  baseline scan: {b2.seconds:.1f}s, peak RSS {b2.peak_rss_mib:,.0f} MiB")
        res.details.update(
            baseline_decode_seconds=round(b1.seconds, 2),
            baseline_decode_peak_rss_mib=round(b1.peak_rss_mib),
            baseline_rows=rows,
            baseline_scan_seconds=round(b2.seconds, 2),
            baseline_scan_peak_rss_mib=round(b2.peak_rss_mib),
            project_entries_per_s=round(entries / proj.seconds),
            baseline_entries_per_s=round(entries / b1.seconds),
        )
        label = f"{entries / 1e6:.2f}M entries, {size_mib:,.0f} MiB"
        res.row(
            f"wall time vs DuckDB decode ({label})",
            proj.seconds,
            b1.seconds,
            "s",
            proj.seconds / b1.seconds,
            "x baseline",
            "<= 2x baseline",
            proj.seconds / b1.seconds <= 2,
        )
        res.row(
            "peak RSS (baseline: DuckDB decode)",
            proj.peak_rss_mib,
            b1.peak_rss_mib,
            "MiB",
            proj.peak_rss_mib / b1.peak_rss_mib,
            "x baseline",
            "< 2048 MiB",
            proj.peak_rss_mib < MEMORY_TARGET_MIB,
        )
        res.row(
            "wall time vs DuckDB count(*) scan",
            proj.seconds,
            b2.seconds,
            "s",
            proj.seconds / b2.seconds,
            "x baseline",
            "(info)",
            None,
        )
    return res
