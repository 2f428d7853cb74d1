"""Streaming GWASI import: a dump of millions of entries decoded by DuckDB, day by day.

The base snapshot (sharded ``base_<v>/N.json`` or one ``base_<v>.json``) is decoded once per
base version with DuckDB's JSON reader — the same rules as ``platforms.gwasi.parse_entry``,
written in SQL so 5 million entries stream through in seconds under a memory limit — and
staged as one Parquet file per post date, ``enrichment/reddit/gwasi/snapshot_<v>/day=D/part.parquet``,
in exactly the shape of a ``gwasi_index`` day. A daily partition reads only its day's file and
overlays ``delta.json``; an import links the days the delta does not touch straight into the
warehouse's Parquet mirror instead of writing them again."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audio_assets.platforms.gwasi import FUTURE_TOLERANCE_S
from audio_assets.warehouse import DayFileWriter, sorted_slices

#: The gwasi_index columns in order with their DuckDB types (layers.sources.GWASI_SCHEMA agrees).
INDEX_COLUMNS = {
    "post_id": "VARCHAR", "subreddit": "VARCHAR", "author": "VARCHAR", "flair": "VARCHAR", "title": "VARCHAR",
    "created_utc": "BIGINT", "post_date": "VARCHAR", "score": "BIGINT", "length": "DOUBLE", "duration_s": "DOUBLE",
    "script_words": "BIGINT", "extra": "VARCHAR", "raw": "VARCHAR", "source": "VARCHAR", "fill_of": "VARCHAR",
    "base_version": "VARCHAR", "status": "VARCHAR", "error": "VARCHAR",
}
#: what decoding gives (everything but the fills and the version, which come from the dump as a whole)
DECODED_COLUMNS = [c for c in INDEX_COLUMNS if c not in ("fill_of", "base_version")]
#: bumped when the staged snapshot's layout changes: an older snapshot is staged again
SNAPSHOT_LAYOUT = 3
#: days since 1970-01-01 of the post date (decode_sql's day_number): what the staging sorts by
_DAY_KEY = "day_number"
#: shards decoded and sorted together (measured on 2 cores under 1 GB: 32 is slower, 128 spills)
BATCH_FILES = 64
#: an entry's place in the base, shard * _SHARD_STEP + its index: where an id is given twice, the highest wins
_SHARD_STEP = 1 << 32
#: gwasi_index columns left out of the staging runs: the same in every base row, or following from
#: another column (the day number, the error). DuckDB sorts and converts about a tenth less, and
#: pass two puts them back a batch at a time (_with_left_out_columns).
_LEFT_OUT_OF_RUNS = ("post_date", "source", "base_version", "status")

#: SQL over a relation with columns (e JSON, source VARCHAR, shard INT, ord INT) — or, read fast,
#: (v VARCHAR[], source, shard, ord) — the rules of platforms.gwasi.parse_entry. Entries are read as
#: text lists, which DuckDB's JSON reader does at scan speed; numbers are then read from their text.
DECODE_SQL = f"""
WITH x AS (
  SELECT {{entry_columns}}, source, shard, ord FROM {{relation}}
), y AS (
  SELECT *, len(v) AS n, v[1] AS pid, regexp_full_match(v[1], '[A-Za-z0-9]{{1,12}}') AS pid_ok,
    TRY_CAST(v[6] AS DOUBLE) AS created, TRY_CAST(v[7] AS DOUBLE) AS score_d, TRY_CAST(v[8] AS DOUBLE) AS len
  FROM x
), z AS (
  SELECT *,
    CASE
      WHEN v IS NULL THEN 'entry is ' || CASE coalesce(json_type(e), 'NULL') WHEN 'OBJECT' THEN 'an object'
        WHEN 'VARCHAR' THEN 'a string' WHEN 'BOOLEAN' THEN 'a boolean' WHEN 'NULL' THEN 'null'
        ELSE 'a number' END || ', expected a list'
      WHEN n < 7 OR n > 9 THEN 'entry has ' || n || ' fields, expected 7 to 9'
      WHEN pid IS NULL OR NOT pid_ok THEN 'post id ' || coalesce(pid, 'null') || ' is not a base36 Reddit id'
      WHEN created IS NULL OR NOT isfinite(created) THEN 'created_utc ' || coalesce(v[6], 'null') || ' is not a number'
      WHEN created <= 0 THEN 'created_utc ' || v[6] || ' is not after 1970-01-01'
      WHEN created > $now + {FUTURE_TOLERANCE_S} THEN 'created_utc ' || v[6] || ' is in the future'
      WHEN v[7] IS NOT NULL AND score_d IS NULL THEN 'score ' || v[7] || ' is not a number'
      WHEN v[8] IS NOT NULL AND (len IS NULL OR NOT isfinite(len)) THEN 'length ' || v[8] || ' is not a number'
    END AS error,
    -- the UTC day: whole days since 1970-01-01 (no time zone lookup per row)
    CASE WHEN isfinite(created) AND created > 0 AND created <= $now + {FUTURE_TOLERANCE_S}
      THEN CAST(floor(created / 86400) AS INTEGER) END AS day_number
  FROM y
)
SELECT
  CASE WHEN pid_ok THEN lower(pid) END AS post_id,
  CASE WHEN error IS NULL THEN v[2] END AS subreddit,
  CASE WHEN error IS NULL THEN v[3] END AS author,
  CASE WHEN error IS NULL THEN nullif(v[4], '') END AS flair,
  CASE WHEN error IS NULL THEN v[5] END AS title,
  CASE WHEN error IS NULL THEN CAST(trunc(created) AS BIGINT) END AS created_utc,
  CAST(DATE '1970-01-01' + day_number AS VARCHAR) AS post_date,
  CASE WHEN error IS NULL THEN CAST(trunc(score_d) AS BIGINT) END AS score,
  CASE WHEN error IS NULL THEN len END AS length,
  CASE WHEN error IS NULL AND len > 0 THEN round(len * 6.0, 1) END AS duration_s,
  CASE WHEN error IS NULL AND len < 0 THEN CAST(round(-len * 100) AS BIGINT) END AS script_words,
  CASE WHEN error IS NULL AND n = 9 THEN nullif(v[9], '') END AS extra,
  CASE WHEN error IS NOT NULL THEN left(e::VARCHAR, 10000) END AS raw,
  source,
  CASE WHEN error IS NULL THEN 'ok' ELSE 'invalid' END AS status,
  error, shard, ord, day_number
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


def connect(memory_limit: str = "1GB", threads: int = 2, temp_dir: Path | None = None,
            database: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection under a memory limit; with ``database`` a scratch file (whose tables
    DuckDB can evict from memory without writing them out again)."""
    con = duckdb.connect(str(database) if database else ":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{temp_dir}'")
    return con


def decode_sql(relation: str, *, text_lists: bool = False) -> str:
    """The decode over ``relation``: JSON entries ``e`` or, with ``text_lists``, entries already
    read as text lists ``v`` (the fast read; it can't hold an entry that is not a list)."""
    entry_columns = "NULL::JSON AS e, v" if text_lists else "e, TRY_CAST(e AS VARCHAR[]) AS v"
    return DECODE_SQL.replace("{relation}", relation).replace("{entry_columns}", entry_columns)


def _load_entries(con: duckdb.DuckDBPyConnection, entries: list, source: str) -> None:
    # one statement over lists (executemany binds a row at a time: 0.3 s for 500 entries)
    con.execute("CREATE OR REPLACE TEMP TABLE _small AS SELECT CAST(unnest(?::VARCHAR[]) AS JSON) AS e, "
                "CAST(? AS VARCHAR) AS source, 0 AS shard, CAST(unnest(range(?)) AS INT) AS ord",
                [[json.dumps(e) for e in entries], source, len(entries)])


def decode_entries(con: duckdb.DuckDBPyConnection, entries: list, *, source: str = "delta", now: float | None = None) -> list[dict]:
    """Decode a (small) list of entries with the SQL rules (delta overlays, tests)."""
    _load_entries(con, entries, source)
    cur = con.execute(decode_sql("_small") + " ORDER BY ord", {"now": time.time() if now is None else now})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def _read_shards(paths: list[str], *, text_lists: bool) -> str:
    entry = "v" if text_lists else "e"
    kind = "VARCHAR[][]" if text_lists else "JSON[]"
    return (
        f"(SELECT unnest(entries) AS {entry}, 'base' AS source, "
        "CAST(coalesce(nullif(regexp_extract(filename, '(\\d+)\\.json$', 1), ''), '0') AS INT) AS shard, "
        "CAST(generate_subscripts(entries, 1) AS INT) AS ord "
        f"FROM read_json({paths!r}, columns={{'entries': '{kind}'}}, filename=true, "
        "maximum_object_size=67108864))"
    )


def _decode_sorted(con: duckdb.DuckDBPyConnection, paths: list[str], now: float, shape: Callable[[str], str],
                   sink: Callable[[pa.Table], None]) -> None:
    """Decode shard files into Arrow tables in the gwasi_index shape (``shape`` of the decoded
    relation) sorted by (post date, shard, entry), each handed to ``sink``. Clean files are read
    as text lists (scan speed); a batch with any bad entry is split, and a file with one is
    decoded again as JSON entries, so an invalid entry keeps its exact text and error."""
    # (fetch_record_batch was 4-10% quicker, but an error after its first batch comes out as a bare
    # OSError, not a duckdb.Error, and would get past this fallback)
    try:
        table = con.execute(shape(decode_sql(_read_shards(paths, text_lists=True), text_lists=True)),
                            {"now": now}).fetch_arrow_table()
    except duckdb.Error:  # an entry that is not a list of scalars: the fast reader can't type it
        table = None
    if table is not None and table.column("error").null_count == table.num_rows:
        sink(table)
        return
    table = None
    if len(paths) > 1:
        for path in paths:
            _decode_sorted(con, [path], now, shape, sink)
        return
    sink(con.execute(shape(decode_sql(_read_shards(paths, text_lists=False))), {"now": now}).fetch_arrow_table())


class _MonthRuns:
    """Pass one's output: each decoded batch, sorted by date, cut into its months and appended to
    an Arrow stream file per month (``undated`` for entries with no usable date), so pass two
    reads a month at a time and finds each day as one slice per batch, with nothing to sort.
    A batch is written out on a thread while DuckDB decodes the next (one batch in flight); the
    last batch is kept in memory instead (pass two reads it from there: nothing to wait for)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.writers: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
        self.ids: list = []  # (post_id, its hash, shard, ord) of valid entries, to find ids given twice
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._writing = None
        self._newest: pa.Table | None = None  # the batch held back: written when another comes
        self._held: dict[str, pa.Table] = {}  # after close: the last batch's months

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        # filtered, so copied: a column of DuckDB's result keeps the whole batch's memory alive
        self.ids.append(table.select(["post_id", "id_hash", "shard", "ord"]).filter(pc.is_null(table.column("error"))))
        table = table.drop_columns(["id_hash"])
        self._wait()
        if self._newest is not None:
            self._writing = self._pool.submit(self._write, self._newest)
        self._newest = table

    def _wait(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    @staticmethod
    def _months(table: pa.Table) -> list[tuple[str, pa.Table]]:
        return sorted_slices(table, _DAY_KEY, lambda d: "undated" if d is None else _day_text(d)[:7])

    def _write(self, table: pa.Table) -> None:
        for month, rows in self._months(table):
            writer = self.writers.get(month)
            if writer is None:
                writer = self.writers[month] = pa.ipc.new_stream(self.folder / f"{month}.arrows", table.schema)
            writer.write_table(rows)

    def close(self) -> list[str]:
        """Finish the batch in flight (raising its error), close the files; the months written or held."""
        try:
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
            for writer in self.writers.values():
                writer.close()
        if self._newest is not None:
            self._held = dict(self._months(self._newest))
            self._newest = None
        return sorted(set(self.writers) | set(self._held))

    def read(self, month: str) -> pa.Table:
        """A month's runs in batch order: the file's memory-mapped (its buffers are the file's
        pages, not a copy), then the held last batch's. Read once: the file is removed as soon as
        it is mapped, so its page cache is freed when the month's days are written, not at the
        end (and a run not yet written back to disk never is)."""
        parts = []
        if month in self.writers:
            path = self.folder / f"{month}.arrows"
            mapped = pa.memory_map(str(path))
            path.unlink()
            parts.append(pa.ipc.open_stream(mapped).read_all())
        if month in self._held:
            parts.append(self._held[month])
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


_EPOCH = date(1970, 1, 1)


@lru_cache(maxsize=65536)
def _day_text(day_number: int) -> str:
    return (_EPOCH + timedelta(days=day_number)).isoformat()


def _winners(ids: list[pa.Table]) -> tuple[dict[str, int], int, int]:
    """Of the valid entries' (post_id, id_hash, shard, ord): {post id given more than once: the
    place (see _SHARD_STEP) of the one that wins, the last}, how many entries, how many lose.
    Candidates are found by hash (integers are quick to compare), then checked by id: the hashes
    are sorted and a hash equal to its neighbour is a candidate (5.4M sorted in about 0.15 s,
    where a hash table of them, is_duplicated, took 1 s)."""
    if not ids:
        return {}, 0, 0
    table = pa.concat_tables(ids)
    hashes = pl.from_arrow(table.select(["id_hash"])).get_column("id_hash")
    ordered = hashes.sort()
    repeated = ordered.slice(1).filter(ordered.slice(1) == ordered.head(-1))  # (diff() is signed: u64 overflows)
    if repeated.is_empty():
        return {}, table.num_rows, 0
    candidates = hashes.is_in(repeated.unique().implode()).arg_true()
    rows = pl.from_arrow(table.take(pa.array(candidates.to_list(), pa.uint64())).select(["post_id", "shard", "ord"]))
    winners = (rows.group_by("post_id")
               .agg((pl.col("shard").cast(pl.Int64) * _SHARD_STEP + pl.col("ord")).max().alias("k"), pl.len().alias("n"))
               .filter(pl.col("n") > 1))
    duplicates = int(winners.get_column("n").sum()) - winners.height
    return (dict(zip(winners.get_column("post_id").to_list(), winners.get_column("k").to_list(), strict=True)),
            table.num_rows, duplicates)


def _index_select(source: str, *, fills_table: str, version: str, where: str = "true", extra: str = "",
                  leave_out: tuple[str, ...] = ()) -> str:
    """``source``'s decoded rows in the gwasi_index shape (fills joined, version set) but the
    ``leave_out`` columns, then ``extra`` columns."""
    cols = ", ".join(
        "f.fill_of" if c == "fill_of" else f"'{version}' AS base_version" if c == "base_version"
        else f"CAST(r.{c} AS {t}) AS {c}" for c, t in INDEX_COLUMNS.items() if c not in leave_out)
    if extra:
        cols += ", " + extra
    return f"SELECT {cols} FROM {source} r LEFT JOIN {fills_table} f USING (post_id) WHERE {where}"


def _load_fills(con: duckdb.DuckDBPyConnection, name: str, fills: dict) -> None:
    pairs = fill_of_map(fills)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT unnest(?::VARCHAR[]) AS post_id, "
                "unnest(?::VARCHAR[]) AS fill_of", [list(pairs), list(pairs.values())])


def _with_left_out_columns(rows: pa.RecordBatch, version: str) -> pa.RecordBatch:
    """A batch of a run with the columns left out of the runs put back: the post date from the day
    number, the source and the base version, and the status from the error."""
    n = rows.num_rows
    put_back = {
        "post_date": pc.cast(pc.cast(rows.column(_DAY_KEY), pa.date32()), pa.string()),
        "source": pa.repeat(pa.scalar("base", pa.string()), n),
        "base_version": pa.repeat(pa.scalar(version, pa.string()), n),
        "status": pc.if_else(pc.is_null(rows.column("error")), "ok", "invalid"),
    }
    return pa.RecordBatch.from_arrays([*rows.columns, *put_back.values()], names=[*rows.schema.names, *put_back])


def _write_days(runs: _MonthRuns, months: list[str], out_dir: Path, winner_of: dict[str, int],
                lookup_ids: list[str], version: str) -> tuple[int, dict[str, int], list[str]]:
    """Pass two: each month's runs read back, each day (one sorted slice per batch) written as
    ``out_dir/day=D/part.parquet`` with only the winning entry of an id given twice, and the
    undated entries as ``undated.parquet``. Returns (entries read, rows by day, the days that
    hold any of ``lookup_ids``)."""
    dup_ids = pa.array(list(winner_of), pa.string())
    lookup = pa.array(sorted(set(lookup_ids)), pa.string())
    total = 0
    rows_by_day: dict[str, int] = {}
    days_of_ids: set[str] = set()
    columns = list(INDEX_COLUMNS)

    def keep_winners(rows: pa.Table) -> pa.Table:
        dup = pc.is_in(rows.column("post_id"), value_set=dup_ids)
        if not pc.any(dup).as_py():
            return rows
        ids_, shards, ords, statuses = (rows.column(c).to_pylist() for c in ("post_id", "shard", "ord", "status"))
        mask = [not d or s != "ok" or winner_of[i] == sh * _SHARD_STEP + o
                for d, i, sh, o, s in zip(dup.to_pylist(), ids_, shards, ords, statuses, strict=True)]
        return rows.filter(pa.array(mask))

    with DayFileWriter(out_dir) as writer:
        for month in months:
            batches = [_with_left_out_columns(b, version) for b in runs.read(month).to_batches()]
            total += sum(b.num_rows for b in batches)
            if month == "undated":
                pq.write_table(pa.Table.from_batches(batches).select(columns), out_dir / "undated.parquet")
                continue
            # each batch's slice of the month is sorted by day: a day is one slice of each
            slices: dict[str, list] = {}
            for batch in batches:
                for day, rows in sorted_slices(batch, _DAY_KEY, _day_text):
                    slices.setdefault(day, []).append(rows)
            for day, parts in slices.items():
                rows = pa.Table.from_batches(parts)
                if len(dup_ids):
                    rows = keep_winners(rows)
                if len(lookup) and pc.any(pc.is_in(rows.column("post_id"), value_set=lookup)).as_py():
                    days_of_ids.add(day)
                rows_by_day[day] = rows.num_rows
                writer.submit(day, rows.select(columns))
            writer.drain(leave=len(slices))  # this month's files are written while the next is read
    return total, rows_by_day, sorted(days_of_ids)


def _stage(con: duckdb.DuckDBPyConnection, layout: DumpLayout, out_dir: Path, *, now: float, base_fills: dict,
           progress: Callable[[int, int], None] | None, batch_files: int, lookup_ids: list[str] = ()) -> dict:
    """Decode the base and write the snapshot: a ``gwasi_index``-shaped file per day (one row
    per post; a later shard wins), plus ``undated.parquet`` for entries too broken to have a date.

    Two streaming passes, one sort: shards are decoded ``batch_files`` at a time, sorted by date
    and appended a month at a time to Arrow stream files; then each month is read back and each
    of its days, one already-sorted slice per batch, is written as a file.
    Returns counts, ``rows_by_day`` and ``days_of_ids``: the days of ``lookup_ids`` in the base."""
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / ".runs").mkdir(parents=True)
    files = [str(p) for p in (layout.shard_files or ([layout.single_file] if layout.single_file else []))]
    if not files:
        raise FileNotFoundError(f"GWASI base {layout.version} in {layout.root} has no shard files to read")
    _load_fills(con, "_base_fills", base_fills)
    runs = _MonthRuns(tmp / ".runs")

    def shape(decoded: str) -> str:
        return (_index_select(f"({decoded})", fills_table="_base_fills", version=layout.version,
                              extra=f"r.shard, r.ord, r.{_DAY_KEY}, hash(r.post_id) AS id_hash",
                              leave_out=_LEFT_OUT_OF_RUNS)
                + f" ORDER BY {_DAY_KEY}, shard, ord")

    try:
        for start in range(0, len(files), batch_files):
            _decode_sorted(con, files[start:start + batch_files], now, shape, runs.add)
            if progress:
                progress(min(start + batch_files, len(files)), len(files))
        # while the batch before the last is written out (the last is held in memory)
        winner_of, ok, duplicates = _winners(runs.ids)
        runs.ids.clear()
    finally:
        months = runs.close()
    total, rows_by_day, days_of_ids = _write_days(runs, months, tmp, winner_of, lookup_ids, layout.version)
    shutil.rmtree(tmp / ".runs", ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    (out_dir / "_SUCCESS").write_text(json.dumps({"version": layout.version, "entries": total,
                                                  "layout": SNAPSHOT_LAYOUT}))
    return {"entries": total, "ok": ok, "invalid": total - ok, "posts": ok - duplicates, "duplicates": duplicates,
            "days": len(rows_by_day), "rows_by_day": rows_by_day, "days_of_ids": days_of_ids}


def stage_base(layout: DumpLayout, out_dir: Path, *, now: float | None = None, memory_limit: str = "1GB",
               threads: int = 2, progress: Callable[[int, int], None] | None = None, batch_files: int = BATCH_FILES,
               base_fills: dict | None = None) -> dict:
    """Decode a base snapshot into a Parquet file per post date under ``out_dir`` (``day=D/``).

    Streams under a memory limit: shards are read ``batch_files`` at a time, sorted by date
    into month files, then cut into day files; one row per post (a later shard wins). Returns counts."""
    con = connect(memory_limit, threads, out_dir.parent / ".duckdb_tmp")
    try:
        return _stage(con, layout, out_dir, now=time.time() if now is None else now, base_fills=base_fills or {},
                      progress=progress, batch_files=batch_files)
    finally:
        con.close()


def snapshot_dir(gwasi_dir: Path, version: str) -> Path:
    return gwasi_dir / f"snapshot_{version}"


def snapshot_ready(path: Path) -> bool:
    """Staged completely, in the current layout (an older layout is staged again)."""
    try:
        return json.loads((path / "_SUCCESS").read_text()).get("layout") == SNAPSHOT_LAYOUT
    except (OSError, ValueError):
        return False


def day_file(snapshot: Path, day: str) -> Path:
    return snapshot / f"day={day}" / "part.parquet"


def staged_days(path: Path) -> list[str]:
    return sorted(p.parent.name.removeprefix("day=") for p in path.glob("day=*/part.parquet"))


def fill_of_map(fills: dict) -> dict[str, str]:
    return {str(fill).lower(): str(offer).lower() for offer, fs in (fills or {}).items()
            for fill in (fs if isinstance(fs, list) else [])}


def overlay(con: duckdb.DuckDBPyConnection, snapshot: Path, delta: dict, days: list[str] | None, *,
            now: float | None = None, base_fills: dict | None = None) -> str:
    """Create the temp view ``gwasi_rows``: the staged base for ``days`` (all when None),
    overlaid with the delta (its entries win, its ``removed`` ids go), with ``fill_of``
    from the merged fills and the base version, in the gwasi_index shape. The base is read
    from the snapshot's day files. Returns the view's name."""
    now = time.time() if now is None else now
    version = str(delta.get("base") or "")
    cols = ", ".join(DECODED_COLUMNS)
    _load_entries(con, delta.get("entries") or [], "delta")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _delta_rows AS SELECT {cols} FROM ({decode_sql('_small')})",
                {"now": now})
    removed = [str(r).lower() for r in delta.get("removed") or []]
    con.execute("CREATE OR REPLACE TEMP TABLE _removed AS SELECT unnest(?::VARCHAR[]) AS post_id", [removed])
    _load_fills(con, "_fills", {**(base_fills or {}), **(delta.get("fills") or {})})
    day_list = None if days is None else sorted({str(d) for d in days})
    day_filter = "" if day_list is None else f"AND post_date IN ({', '.join(repr(d) for d in day_list) or 'NULL'})"
    base_sql = f"SELECT {cols} FROM {snapshot_relation(snapshot, day_list)}"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW gwasi_rows AS
        WITH base AS ({base_sql}),
        d AS (SELECT {cols} FROM _delta_rows WHERE post_date IS NOT NULL {day_filter}),
        merged AS (
          SELECT * FROM base WHERE status <> 'ok'
             OR (post_id NOT IN (SELECT post_id FROM d WHERE status = 'ok')
                 AND post_id NOT IN (SELECT post_id FROM _removed))
          UNION ALL
          SELECT * FROM d WHERE status <> 'ok' OR post_id NOT IN (SELECT post_id FROM _removed)
        )
        {_index_select("merged", fills_table="_fills", version=version)}
    """)
    return "gwasi_rows"


def snapshot_relation(snapshot: Path, days: list[str] | None = None) -> str:
    """SQL for the staged base rows of ``days`` (every day when None)."""
    files = (sorted(snapshot.glob("day=*/part.parquet")) if days is None
             else [f for f in (day_file(snapshot, d) for d in days) if f.exists()])
    if not files:
        return "(SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in INDEX_COLUMNS.items()) + " WHERE false)"
    return f"read_parquet({[str(f) for f in files]!r}, hive_partitioning = false)"


def delta_reach(delta: dict) -> tuple[list[str], list[str]]:
    """(every post id the delta names: its entries, removals and fills; its entries' days)."""
    from audio_assets.platforms.gwasi import parse_entry

    entries = [parse_entry(x, source="delta") for x in delta.get("entries") or []]
    ids = {e.post_id for e in entries if e.post_id} | {str(r).lower() for r in delta.get("removed") or []}
    return sorted(ids | set(fill_of_map(delta.get("fills") or {}))), sorted({e.post_date for e in entries if e.post_date})


def day_digests(con: duckdb.DuckDBPyConnection, view: str = "gwasi_rows") -> dict[str, str]:
    """A digest per day of its valid entries' decoded fields (what the GWASI sensor compares)."""
    fields = ", ".join(f"coalesce(CAST({c} AS VARCHAR), chr(0))" for c in
                       ("post_id", "subreddit", "author", "flair", "title", "created_utc", "score", "length",
                        "extra", "fill_of"))
    rows = con.execute(f"SELECT post_date, md5(string_agg(concat_ws(chr(31), {fields}), chr(10) ORDER BY post_id)) "
                       f"FROM {view} WHERE status = 'ok' GROUP BY post_date").fetchall()
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
        stage_base(find_dump_version(gwasi_dir, version), snap, progress=progress, base_fills=base_fills)
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
    snapshot: Path
    delta: dict


def import_dump(path: Path, warehouse, gwasi_dir: Path, *, progress: Callable[[int, int], None] | None = None,
                memory_limit: str = "1GB") -> ImportResult:
    """Import a GWASI dump on disk (delta.json + a base in either form) into gwasi_index.

    The base is decoded and staged as a file per day; gwasi_index's day files are those same
    files, hard-linked (no copy), except on the days the delta touches, which are written anew."""
    started = time.perf_counter()
    layout = find_dump(Path(path))
    delta = json.loads(layout.delta.read_bytes()) if layout.delta else {"base": layout.version, "entries": []}
    delta.setdefault("base", layout.version)
    gwasi_dir.mkdir(parents=True, exist_ok=True)
    con = connect(memory_limit, temp_dir=gwasi_dir / ".duckdb_tmp")
    try:
        base_fills: dict = {}
        if layout.single_file and not layout.shard_files:
            # fills sit beside entries in the single-file form; read them without holding the entries
            row = con.execute(f"SELECT fills FROM read_json('{layout.single_file}', columns={{'fills': 'JSON'}}, "
                              "maximum_object_size=67108864)").fetchone()
            base_fills = json.loads(row[0]) if row and row[0] else {}
        snap = snapshot_dir(gwasi_dir, layout.version)
        delta_ids, delta_days = delta_reach(delta)
        staged = _stage(con, layout, snap, now=time.time(), base_fills=base_fills, progress=progress, batch_files=BATCH_FILES,
                        lookup_ids=delta_ids)
        (gwasi_dir / f"base_{layout.version}.fills.json").write_text(json.dumps(base_fills))
        # The days the delta touches (its entries' days, and the base days of the posts it names)
        # are overlaid; every other day is the staged file as it is.
        changed = set(delta_days) | set(staged.pop("days_of_ids"))
        overlay(con, snap, delta, sorted(changed), base_fills=base_fills)
        rows_by_day = staged.pop("rows_by_day")
        days = sorted(set(rows_by_day) | changed)
        unchanged = {d: (day_file(snap, d), rows_by_day[d]) for d in days if d not in changed}
        rows = warehouse.replace_days_from_view(con, "gwasi_index", "gwasi_rows", partition_column="post_date",
                                                days=days, day_files=unchanged)
    finally:
        con.close()
    return ImportResult(layout.version, staged, days, rows, time.perf_counter() - started, snap, delta)

