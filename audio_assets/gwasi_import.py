"""Streaming GWASI import: a dump of millions of entries decoded by DuckDB, day by day.

The base snapshot (sharded ``base_<v>/N.json`` or one ``base_<v>.json``) is decoded once per
base version with DuckDB's JSON reader — the same rules as ``platforms.gwasi.parse_entry``,
written in SQL so 5 million entries stream through in seconds under a memory limit — and
staged as Parquet by post date under ``enrichment/reddit/gwasi/snapshot_<v>/``. A daily
partition then reads only its day and overlays ``delta.json``."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from audio_assets.platforms.gwasi import FUTURE_TOLERANCE_S

#: SQL over a relation with columns (e JSON, source VARCHAR, shard INT, ord INT), the rules of
#: platforms.gwasi.parse_entry. Entries are read as text lists (JSON -> VARCHAR[]), which DuckDB's
#: JSON reader does at scan speed; numbers are then read from their text.
DECODE_SQL = f"""
WITH x AS (
  SELECT e, source, shard, ord, TRY_CAST(e AS VARCHAR[]) AS v FROM {{relation}}
), y AS (
  SELECT *, len(v) AS n, v[1] AS pid,
    TRY_CAST(v[6] AS DOUBLE) AS created, TRY_CAST(v[7] AS DOUBLE) AS score_d, TRY_CAST(v[8] AS DOUBLE) AS len
  FROM x
), z AS (
  SELECT *,
    CASE
      WHEN v IS NULL THEN 'entry is a ' || lower(coalesce(json_type(e), 'null')) || ', expected a list'
      WHEN n < 7 OR n > 9 THEN 'entry has ' || n || ' fields, expected 7 to 9'
      WHEN pid IS NULL OR NOT regexp_full_match(pid, '[A-Za-z0-9]{{1,12}}')
        THEN 'post id ' || coalesce(pid, 'null') || ' is not a base36 Reddit id'
      WHEN created IS NULL OR NOT isfinite(created) THEN 'created_utc ' || coalesce(v[6], 'null') || ' is not a number'
      WHEN created <= 0 OR created > $now + {FUTURE_TOLERANCE_S} THEN 'created_utc ' || v[6] || ' is outside 1970..now'
      WHEN v[7] IS NOT NULL AND score_d IS NULL THEN 'score ' || v[7] || ' is not a number'
      WHEN v[8] IS NOT NULL AND (len IS NULL OR NOT isfinite(len)) THEN 'length ' || v[8] || ' is not a number'
    END AS error
  FROM y
)
SELECT
  CASE WHEN pid IS NOT NULL AND regexp_full_match(pid, '[A-Za-z0-9]{{1,12}}') THEN lower(pid) END AS post_id,
  CASE WHEN error IS NULL THEN v[2] END AS subreddit,
  CASE WHEN error IS NULL THEN v[3] END AS author,
  CASE WHEN error IS NULL THEN nullif(v[4], '') END AS flair,
  CASE WHEN error IS NULL THEN v[5] END AS title,
  CASE WHEN error IS NULL THEN CAST(trunc(created) AS BIGINT) END AS created_utc,
  CASE WHEN error IS NULL THEN strftime(to_timestamp(trunc(created)) AT TIME ZONE 'UTC', '%Y-%m-%d') END AS post_date,
  CASE WHEN error IS NULL THEN CAST(trunc(score_d) AS BIGINT) END AS score,
  CASE WHEN error IS NULL THEN len END AS length,
  CASE WHEN error IS NULL AND len > 0 THEN round(len * 6.0, 1) END AS duration_s,
  CASE WHEN error IS NULL AND len < 0 THEN CAST(round(-len * 100) AS BIGINT) END AS script_words,
  CASE WHEN error IS NULL AND n = 9 THEN nullif(v[9], '') END AS extra,
  left(e::VARCHAR, 10000) AS raw,
  source, shard, ord,
  CASE WHEN error IS NULL THEN 'ok' ELSE 'invalid' END AS status,
  error
FROM z
"""

SHARD_RE = re.compile(r"(\d+)\.json$")


@dataclass
class DumpLayout:
    root: Path
    version: str
    delta: Path | None
    shard_files: list[Path]
    single_file: Path | None


def find_dump(root: Path) -> DumpLayout:
    """Locate delta.json and the base (either form) in a GWASI dump folder."""
    root = Path(root)
    delta = root / "delta.json"
    version = None
    if delta.exists():
        version = str(json.loads(delta.read_bytes()).get("base") or "") or None
    candidates = [version] if version else sorted(
        {p.name.removeprefix("base_").removesuffix(".json") for p in root.glob("base_*")})
    for v in candidates:
        folder = root / f"base_{v}"
        shards = sorted(folder.glob("*.json"), key=lambda p: int(SHARD_RE.search(p.name).group(1))) if folder.is_dir() else []
        shards = [p for p in shards if SHARD_RE.search(p.name)]
        single = root / f"base_{v}.json"
        if shards or single.exists():
            return DumpLayout(root, v, delta if delta.exists() else None, shards, single if single.exists() else None)
    raise FileNotFoundError(
        f"no GWASI base in {root}: expected base_<version>/N.json shards or base_<version>.json "
        "(and delta.json naming the version)")


def connect(memory_limit: str = "1GB", threads: int = 2, temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{temp_dir}'")
    return con


def decode_sql(relation: str) -> str:
    return DECODE_SQL.replace("{relation}", relation)


def _load_entries(con: duckdb.DuckDBPyConnection, entries: list, source: str) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE _small (e JSON, source VARCHAR, shard INT, ord INT)")
    if entries:
        con.executemany("INSERT INTO _small VALUES (?, ?, 0, ?)",
                        [(json.dumps(e), source, i) for i, e in enumerate(entries)])


def decode_entries(con: duckdb.DuckDBPyConnection, entries: list, *, source: str = "delta", now: float | None = None) -> list[dict]:
    """Decode a (small) list of entries with the SQL rules (delta overlays, tests)."""
    _load_entries(con, entries, source)
    cur = con.execute(decode_sql("_small") + " ORDER BY ord", {"now": time.time() if now is None else now})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def stage_base(layout: DumpLayout, out_dir: Path, *, now: float | None = None, memory_limit: str = "1GB",
               threads: int = 2, progress: Callable[[int, int], None] | None = None, batch_files: int = 256) -> dict:
    """Decode a base snapshot into Parquet by post date under ``out_dir`` (``day=YYYY-MM-DD/``).

    Streams: shards are read ``batch_files`` at a time into a spillable DuckDB table under a
    memory limit; one row per post (a later shard wins over an earlier one). Returns counts."""
    now = time.time() if now is None else now
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    con = connect(memory_limit, threads, out_dir.parent / ".duckdb_tmp")
    try:
        con.execute("CREATE TABLE decoded AS " + decode_sql(
            "(SELECT NULL::JSON AS e, NULL::VARCHAR AS source, NULL::INT AS shard, NULL::INT AS ord)") + " LIMIT 0",
            {"now": now})
        files = layout.shard_files or ([layout.single_file] if layout.single_file else [])
        for start in range(0, len(files), batch_files):
            paths = [str(p) for p in files[start:start + batch_files]]
            rel = (
                "(SELECT unnest(entries) AS e, 'base' AS source, "
                "CAST(coalesce(nullif(regexp_extract(filename, '(\\d+)\\.json$', 1), ''), '0') AS INT) AS shard, "
                "CAST(generate_subscripts(entries, 1) AS INT) AS ord "
                f"FROM read_json({paths!r}, columns={{'entries': 'JSON[]'}}, filename=true, "
                "maximum_object_size=67108864))"
            )
            con.execute("INSERT INTO decoded " + decode_sql(rel), {"now": now})
            if progress:
                progress(min(start + batch_files, len(files)), len(files))
        total, ok = con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM decoded").fetchone()
        tmp.mkdir(parents=True, exist_ok=True)
        # One row per post (a later shard wins): only ids that occur twice need the window.
        con.execute("""CREATE TEMP TABLE dup_ids AS SELECT post_id FROM decoded WHERE status = 'ok'
                       GROUP BY post_id HAVING count(*) > 1""")
        # One file sorted by day: a day's rows sit in one or two row groups, found by their statistics.
        con.execute(f"""
            COPY (
              SELECT * FROM decoded WHERE status <> 'ok' OR post_id NOT IN (SELECT post_id FROM dup_ids)
              UNION ALL
              SELECT * FROM decoded WHERE status = 'ok' AND post_id IN (SELECT post_id FROM dup_ids)
              QUALIFY row_number() OVER (PARTITION BY post_id ORDER BY shard DESC, ord DESC) = 1
              ORDER BY post_date NULLS LAST
            ) TO '{tmp / "base.parquet"}' (FORMAT PARQUET, ROW_GROUP_SIZE 20000)""")
        posts, days = con.execute(
            f"SELECT count(*) FILTER (WHERE status = 'ok'), count(DISTINCT post_date) FROM '{tmp / 'base.parquet'}'"
        ).fetchone()
    finally:
        con.close()
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    (out_dir / "_SUCCESS").write_text(json.dumps({"version": layout.version, "entries": total}))
    return {"entries": total, "ok": ok, "invalid": total - ok, "posts": posts, "duplicates": ok - posts, "days": days}


def snapshot_dir(gwasi_dir: Path, version: str) -> Path:
    return gwasi_dir / f"snapshot_{version}"


def snapshot_ready(path: Path) -> bool:
    return (path / "_SUCCESS").exists()


def staged_days(path: Path) -> list[str]:
    con = duckdb.connect()
    try:
        return [r[0] for r in con.execute(
            f"SELECT DISTINCT post_date FROM '{path / 'base.parquet'}' WHERE post_date IS NOT NULL ORDER BY 1").fetchall()]
    finally:
        con.close()


def fill_of_map(fills: dict) -> dict[str, str]:
    return {str(fill).lower(): str(offer).lower() for offer, fs in (fills or {}).items()
            for fill in (fs if isinstance(fs, list) else [])}


def overlay(con: duckdb.DuckDBPyConnection, snapshot: Path, delta: dict, days: list[str] | None, *,
            now: float | None = None, base_fills: dict | None = None) -> str:
    """Create the temp view ``gwasi_rows``: the staged base for ``days`` (all when None),
    overlaid with the delta (its entries win, its ``removed`` ids go), with ``fill_of``
    from the merged fills and the base version. Returns the view's name."""
    now = time.time() if now is None else now
    version = str(delta.get("base") or "")
    base_file = snapshot / "base.parquet"
    cols = ("post_id, subreddit, author, flair, title, created_utc, post_date, score, length, duration_s, "
            "script_words, extra, raw, source, status, error")
    _load_entries(con, delta.get("entries") or [], "delta")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _delta_rows AS {decode_sql('_small')}", {"now": now})
    removed = [str(r).lower() for r in delta.get("removed") or []]
    fills = fill_of_map({**(base_fills or {}), **(delta.get("fills") or {})})
    con.execute("CREATE OR REPLACE TEMP TABLE _removed (post_id VARCHAR)")
    if removed:
        con.executemany("INSERT INTO _removed VALUES (?)", [(r,) for r in removed])
    con.execute("CREATE OR REPLACE TEMP TABLE _fills (post_id VARCHAR, fill_of VARCHAR)")
    if fills:
        con.executemany("INSERT INTO _fills VALUES (?, ?)", list(fills.items()))
    day_filter = "" if days is None else f"AND post_date IN ({', '.join(repr(str(d)) for d in days)})"
    base_sql = (f"SELECT {cols} FROM read_parquet('{base_file}') WHERE true {day_filter}"
                if base_file.exists() else f"SELECT {cols} FROM _delta_rows WHERE false")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW gwasi_rows AS
        WITH base AS ({base_sql}),
        d AS (SELECT {cols} FROM _delta_rows WHERE true {day_filter}),
        merged AS (
          SELECT * FROM base WHERE status <> 'ok'
             OR (post_id NOT IN (SELECT post_id FROM d WHERE status = 'ok')
                 AND post_id NOT IN (SELECT post_id FROM _removed))
          UNION ALL
          SELECT * FROM d WHERE status <> 'ok' OR post_id NOT IN (SELECT post_id FROM _removed)
        )
        SELECT m.*, f.fill_of, '{version}' AS base_version FROM merged m LEFT JOIN _fills f USING (post_id)
    """)
    return "gwasi_rows"


def day_digests(con: duckdb.DuckDBPyConnection, view: str = "gwasi_rows") -> dict[str, str]:
    """A digest per day of its valid entries (what the GWASI sensor compares)."""
    rows = con.execute(f"SELECT post_date, md5(string_agg(raw, chr(10) ORDER BY raw)) FROM {view} "
                       "WHERE status = 'ok' GROUP BY post_date").fetchall()
    return {d: h[:12] for d, h in rows}


# -- bringing a base version in ------------------------------------------------------------------

def prepare_snapshot(client, gwasi_dir: Path, base_url: str, delta: dict | None = None, *,
                     progress: Callable[[int, int], None] | None = None) -> tuple[Path, dict, dict]:
    """Make sure the current base version is staged; returns (snapshot dir, delta, base fills).

    The base is fetched once per version (shards cached under ``base_<v>/``); a new version
    replaces the old cleanly (the old snapshot and cache are removed after the new is ready)."""
    from audio_assets.platforms import gwasi

    delta = gwasi.fetch_delta(client, base_url) if delta is None else delta
    version = str(delta.get("base") or "")
    if not version.isalnum():
        raise ValueError(f"GWASI delta.json has no usable base version: {version!r}")
    gwasi_dir.mkdir(parents=True, exist_ok=True)
    (gwasi_dir / "delta.json").write_text(json.dumps(delta))
    snap = snapshot_dir(gwasi_dir, version)
    fills_file = gwasi_dir / f"base_{version}.fills.json"
    if not snapshot_ready(snap):
        entries_seen = 0
        for _n, _shard in gwasi.iter_base_shards(client, version, base_url, cache_dir=gwasi_dir):
            entries_seen += 1
        base_fills: dict = {}
        if entries_seen == 0:  # the single-file form
            gwasi.fetch_base(client, version, base_url, cache_dir=gwasi_dir)
            doc = json.loads((gwasi_dir / f"base_{version}.json").read_bytes())
            base_fills = doc.get("fills") or {}
        fills_file.write_text(json.dumps(base_fills))
        stage_base(find_dump_version(gwasi_dir, version), snap, progress=progress)
        for old in gwasi_dir.glob("snapshot_*"):
            if old != snap and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        for old in list(gwasi_dir.glob("base_*")):
            if not old.name.startswith(f"base_{version}"):
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    base_fills = json.loads(fills_file.read_text()) if fills_file.exists() else {}
    return snap, delta, base_fills


def find_dump_version(root: Path, version: str) -> DumpLayout:
    folder = root / f"base_{version}"
    shards = [p for p in folder.glob("*.json") if SHARD_RE.search(p.name)] if folder.is_dir() else []
    shards.sort(key=lambda p: int(SHARD_RE.search(p.name).group(1)))
    single = root / f"base_{version}.json"
    delta = root / "delta.json"
    return DumpLayout(root, version, delta if delta.exists() else None, shards, single if single.exists() else None)


@dataclass
class ImportResult:
    version: str
    staged: dict
    days: list[str]
    rows: int
    seconds: float


def import_dump(path: Path, warehouse, gwasi_dir: Path, *, progress: Callable[[int, int], None] | None = None,
                memory_limit: str = "1GB") -> ImportResult:
    """Import a GWASI dump on disk (delta.json + a base in either form) into gwasi_index."""
    started = time.perf_counter()
    layout = find_dump(Path(path))
    delta = json.loads(layout.delta.read_bytes()) if layout.delta else {"base": layout.version, "entries": []}
    delta.setdefault("base", layout.version)
    base_fills: dict = {}
    if layout.single_file and not layout.shard_files:
        # fills sit beside entries in the single-file form; read them without holding the entries
        con = connect(memory_limit)
        try:
            row = con.execute(f"SELECT fills FROM read_json('{layout.single_file}', columns={{'fills': 'JSON'}}, "
                              "maximum_object_size=67108864)").fetchone()
            base_fills = json.loads(row[0]) if row and row[0] else {}
        finally:
            con.close()
    snap = snapshot_dir(gwasi_dir, layout.version)
    staged = stage_base(layout, snap, progress=progress, memory_limit=memory_limit)
    gwasi_dir.mkdir(parents=True, exist_ok=True)
    (gwasi_dir / f"base_{layout.version}.fills.json").write_text(json.dumps(base_fills))
    days = sorted(set(staged_days(snap)) | {d for d in _delta_days(delta)})
    con = connect(memory_limit, temp_dir=gwasi_dir / ".duckdb_tmp")
    try:
        overlay(con, snap, delta, None, base_fills=base_fills)
        rows = warehouse.replace_days_from_view(con, "gwasi_index", "gwasi_rows", partition_column="post_date",
                                                days=days)
    finally:
        con.close()
    return ImportResult(layout.version, staged, days, rows, time.perf_counter() - started)


def _delta_days(delta: dict) -> list[str]:
    from audio_assets.platforms.gwasi import parse_entry

    return [e.post_date for e in (parse_entry(x, source="delta") for x in delta.get("entries") or []) if e.post_date]
