"""The warehouse: one DuckDB table per asset, mirrored as Parquet.

DuckDB allows one writing process per file. Runs that overlap (a backfill and a
sensor's run) serialise their short write transactions through an inter-process file
lock, so none fails on DuckDB's lock. Parquet files are written atomically (temp name,
then rename) and are what downstream steps read, so readers never take the lock.

Layout: ``<data>/warehouse.duckdb`` tables named after the asset;
``<data>/parquet/<asset>/day=YYYY-MM-DD/part.parquet`` for daily tables and
``<data>/parquet/<asset>/part.parquet`` for the others.

A table in ``PARQUET_BACKED`` (gwasi_index: millions of rows over thousands of days) is kept
once: its day files are its storage and ``warehouse.duckdb`` holds a view over them, so a
bulk import writes each row once and DuckDB queries read the files in place."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from filelock import FileLock

LOCK_TIMEOUT_S = 1800
#: tables stored only as their Parquet day files (a view in warehouse.duckdb)
PARQUET_BACKED = frozenset({"gwasi_index"})


class Warehouse:
    def __init__(self, data_root: Path):
        self.data_root = Path(data_root)
        self.db_path = self.data_root / "warehouse.duckdb"
        self.parquet_root = self.data_root / "parquet"
        self.lock = FileLock(str(self.db_path) + ".lock", timeout=LOCK_TIMEOUT_S)
        self._views_ready: set[str] = set()  # Parquet-backed tables whose view this instance has checked

    # -- DuckDB ---------------------------------------------------------------------------
    @contextmanager
    def connect(self):
        """A DuckDB connection held under the inter-process lock (readers too: DuckDB
        refuses a read-only open while another process holds the file for writing)."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self.lock:
            con = duckdb.connect(str(self.db_path))
            try:
                for table in PARQUET_BACKED - self._views_ready:
                    if self._ensure_view(con, table):
                        self._views_ready.add(table)
                yield con
            finally:
                con.close()

    def _refresh_views(self) -> None:
        """Make the views of Parquet-backed tables whose first day files were just written."""
        with self.connect():
            pass

    def _view_sql(self, table: str) -> str:
        glob = (self.parquet_root / table).resolve() / "day=*" / "part.parquet"
        return f"SELECT * FROM read_parquet('{glob}', hive_partitioning = false)"

    def _ensure_view(self, con, table: str, *, schema: str = "main") -> bool:
        """The view over a Parquet-backed table's day files (made when the first file exists;
        a table of that name from an older layout is replaced; a moved data root is followed).
        Returns whether the view is in place."""
        found = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND "
                            "table_name = ? AND table_catalog = current_database()", [schema, table]).fetchone()
        want = self._view_sql(table)
        if found and found[0] == "VIEW":
            sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ? AND schema_name = ? AND "
                              "database_name = current_database()", [table, schema]).fetchone()
            if sql and want in sql[0]:
                return True
        if not any((self.parquet_root / table).glob("day=*/part.parquet")):
            return False
        if found and found[0] != "VIEW":
            con.execute(f'DROP TABLE "{schema}"."{table}"')
        con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{table}" AS {want}')
        return True

    def _ensure_table(self, con, table: str, df: pl.DataFrame) -> None:
        con.register("_incoming", df.to_arrow())
        con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" AS SELECT * FROM _incoming LIMIT 0')
        existing = {r[0]: r[1] for r in con.execute(f"DESCRIBE \"{table}\"").fetchall()}
        incoming = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM _incoming").fetchall()}
        if any(existing.get(c) not in (None, t) for c, t in incoming.items()) or set(existing) - set(incoming):
            # The table's shape changed with a new version of the code: rebuild it.
            con.execute(f'DROP TABLE "{table}"')
            con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _incoming LIMIT 0')
            return
        for col, typ in incoming.items():
            if col not in existing:
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{col}" {typ}')

    def replace_partitions(self, table: str, df: pl.DataFrame, *, partition_column: str, partitions: Iterable[str]) -> int:
        """Replace exactly the given partitions of a table with ``df`` (idempotent)."""
        parts = sorted(set(partitions))
        if df.height:
            stray = set(df.get_column(partition_column).drop_nulls().unique().to_list()) - set(parts)
            if stray:
                raise ValueError(f"{table}: rows for partitions outside this run: {sorted(stray)[:5]}")
        if table in PARQUET_BACKED:
            with self.lock:
                self._write_days(table, df, partition_column, parts)
            self._refresh_views()
            return df.height
        with self.connect() as con:
            self._ensure_table(con, table, df)
            con.execute("BEGIN")
            con.execute(f'DELETE FROM "{table}" WHERE "{partition_column}" IN (SELECT unnest(?))', [parts])
            if df.height:
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _incoming')
            con.execute("COMMIT")
        self._write_days(table, df, partition_column, parts)
        return df.height

    def _write_days(self, table: str, df: pl.DataFrame, partition_column: str, days: list[str]) -> None:
        for day in days:
            part = df.filter(pl.col(partition_column) == day)
            self._write_parquet(self.parquet_root / table / f"day={day}" / "part.parquet", part)

    def replace_table(self, table: str, df: pl.DataFrame) -> int:
        with self.connect() as con:
            con.register("_incoming", df.to_arrow())
            con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _incoming')
        self._write_parquet(self.parquet_root / table / "part.parquet", df)
        return df.height

    def replace_days_from_view(self, source_con: duckdb.DuckDBPyConnection, table: str, view: str, *,
                               partition_column: str, days: list[str],
                               day_files: dict[str, tuple[Path, int]] | None = None) -> int:
        """Bulk version of replace_partitions for millions of rows, streamed by DuckDB from
        ``view`` in ``source_con``. Day files are written a range of months at a time (memory
        stays flat), except the days in ``day_files``: (file, row count) already holding exactly
        that day's rows, hard-linked into place (copied where a link can't be made). A table that is not
        Parquet-backed is also filled in warehouse.duckdb (attached under the lock)."""
        days = sorted(set(days))
        day_files = day_files or {}
        self.data_root.mkdir(parents=True, exist_ok=True)
        root = self.parquet_root / table
        with self.lock:
            if table not in PARQUET_BACKED:
                source_con.execute(f"ATTACH '{self.db_path}' AS wh")
                try:
                    source_con.execute(f'CREATE TABLE IF NOT EXISTS wh."{table}" AS SELECT * FROM {view} LIMIT 0')
                    source_con.execute("BEGIN")
                    source_con.execute("CREATE OR REPLACE TEMP TABLE _days AS SELECT unnest(?::VARCHAR[]) AS d", [days])
                    source_con.execute(f'DELETE FROM wh."{table}" WHERE "{partition_column}" IN (SELECT d FROM _days)')
                    source_con.execute(f'INSERT INTO wh."{table}" BY NAME SELECT * FROM {view} '
                                       f'WHERE "{partition_column}" IN (SELECT d FROM _days)')
                    source_con.execute("COMMIT")
                finally:
                    source_con.execute("DETACH wh")
            to_write = [d for d in days if d not in day_files]
            staging = root / f".staging.{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            written: dict[str, int] = {}
            if to_write:
                source_con.execute("CREATE OR REPLACE TEMP TABLE _write_days AS SELECT unnest(?::VARCHAR[]) AS d",
                                   [to_write])
                written = write_day_files(source_con, f'SELECT * FROM {view} WHERE "{partition_column}" IN '
                                          "(SELECT d FROM _write_days)", partition_column, staging)
            rows = 0
            try:
                for day in days:
                    target = root / f"day={day}" / "part.parquet"
                    if day in day_files:
                        source, count = day_files[day]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        tmp = target.with_name(f".part.{os.getpid()}.tmp")
                        tmp.unlink(missing_ok=True)
                        try:
                            os.link(source, tmp)
                        except OSError:  # another file system, or links not allowed
                            shutil.copyfile(source, tmp)
                        os.replace(tmp, target)
                        rows += count
                    elif day in written:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(staging / f"day={day}" / "part.parquet", target)
                        rows += written[day]
                    else:  # the day has no rows any more
                        target.unlink(missing_ok=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        self._refresh_views()
        return rows

    @staticmethod
    def _write_parquet(path: Path, df: pl.DataFrame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        df.write_parquet(tmp)
        os.replace(tmp, path)

    # -- reading (Parquet, no lock) -------------------------------------------------------
    def read(self, table: str, days: Iterable[str] | None = None) -> pl.DataFrame | None:
        """Rows of a table (optionally only some days); None when it was never written."""
        root = self.parquet_root / table
        if not root.exists():
            return None
        if (root / "part.parquet").exists():
            return pl.read_parquet(root / "part.parquet")
        if days is None:
            files = sorted(root.glob("day=*/part.parquet"))
        else:
            files = [root / f"day={d}" / "part.parquet" for d in sorted(set(days))]
            files = [f for f in files if f.exists()]
        if not files:
            return None
        frames = [pl.read_parquet(f, hive_partitioning=False) for f in files]
        frames = [f for f in frames if f.width]
        return pl.concat(frames, how="diagonal_relaxed") if frames else None

    def days(self, table: str) -> list[str]:
        root = self.parquet_root / table
        return sorted(p.parent.name.removeprefix("day=") for p in root.glob("day=*/part.parquet"))

    def query_frame(self, sql: str, params: list | None = None) -> pl.DataFrame | None:
        """A query's rows as a DataFrame; None when a table it reads was never written."""
        with self.connect() as con:
            try:
                return con.execute(sql, params or []).pl()
            except duckdb.CatalogException:
                return None

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def drop_all(self) -> None:
        with self.lock:
            self._views_ready.clear()
            if self.db_path.exists():
                self.db_path.unlink()
        shutil.rmtree(self.parquet_root, ignore_errors=True)



#: columns few enough in values to dictionary-encode, and the ones worth statistics (lookups)
DICTIONARY_COLUMNS = ("subreddit", "author", "flair", "source", "status", "base_version", "post_date")
STATISTICS_COLUMNS = ("post_id", "post_date", "created_utc")


def sorted_runs(column, key: Callable = lambda v: v) -> list[tuple]:
    """(key(value), length) of each run of rows whose values map to one key, in order, in a column
    (Arrow array or chunked array) sorted so that equal keys are adjacent (a date, or its month)."""
    import pyarrow.compute as pc

    out: list[list] = []
    for chunk in column.chunks if hasattr(column, "chunks") else [column]:
        if len(chunk) == 0:
            continue
        encoded = pc.run_end_encode(chunk)
        ends = encoded.run_ends.to_pylist()
        values = encoded.values.to_pylist()
        prev = 0
        for v, e in zip(values, ends, strict=True):
            k = key(v)
            if out and out[-1][0] == k:
                out[-1][1] += e - prev
            else:
                out.append([k, e - prev])
            prev = e
    return [(k, n) for k, n in out]


def sorted_slices(rows, column: str, key: Callable = lambda v: v) -> list[tuple]:
    """(key, slice of ``rows``) for each run of sorted_runs over ``rows``' ``column``: a table or
    batch sorted so that equal keys are adjacent, cut into one slice per key (no copy)."""
    out, start = [], 0
    for k, n in sorted_runs(rows.column(column), key):
        out.append((k, rows.slice(start, n)))
        start += n
    return out


class DayFileWriter:
    """Writes day files ``out_dir/day=D/part.parquet`` from Arrow tables on two threads. Thousands
    of small files: per-file work is most of the cost, so dictionaries and statistics are kept
    where they pay, and each file is made in memory and written at once (Arrow's file writer
    makes a system call per page, which costs more than encoding the rows)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.pending: list = []

    def __enter__(self) -> DayFileWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.drain()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _write(self, day: str, rows) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = self.out_dir / f"day={day}" / "part.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        names = set(rows.schema.names)
        sink = pa.BufferOutputStream()
        pq.write_table(rows, sink, use_dictionary=[c for c in DICTIONARY_COLUMNS if c in names],
                       write_statistics=[c for c in STATISTICS_COLUMNS if c in names])
        with open(target, "wb") as f:
            f.write(sink.getvalue())

    def submit(self, day: str, rows) -> None:
        self.pending.append(self.pool.submit(self._write, day, rows))

    def drain(self, leave: int = 0) -> None:
        """Wait for the files submitted so far but the last ``leave`` (and raise the first error)."""
        cut = max(0, len(self.pending) - leave)
        done, self.pending = self.pending[:cut], self.pending[cut:]
        for f in done:
            f.result()


def write_day_files(con: duckdb.DuckDBPyConnection, select_sql: str, column: str, out_dir: Path, *,
                    chunk_rows: int = 400_000) -> dict[str, int]:
    """Write the rows of ``select_sql`` as one Parquet file per value of ``column`` (a date),
    ``out_dir/day=D/part.parquet``. Returns day -> rows.

    The rows are read a range of months at a time (ranges of about ``chunk_rows`` rows, from a
    count per month), sorted by day and cut into files written on two threads while the next
    range is read; memory stays flat however many days there are."""
    per_month = con.execute(f'SELECT left("{column}", 7) AS m, count(*) FROM ({select_sql}) '
                            f'WHERE "{column}" IS NOT NULL GROUP BY m ORDER BY m').fetchall()
    ranges: list[tuple[str, str]] = []
    size = 0
    for month, n in per_month:
        if ranges and size + n <= chunk_rows:
            ranges[-1] = (ranges[-1][0], month)
            size += n
        else:
            ranges.append((month, month))
            size = n
    counts: dict[str, int] = {}
    with DayFileWriter(out_dir) as writer:
        for first, last in ranges:
            batch = con.execute(f'SELECT * FROM ({select_sql}) WHERE "{column}" >= ? AND "{column}" < ? '
                                f'ORDER BY "{column}"', [first, last + "~"]).arrow()
            if hasattr(batch, "read_all"):
                batch = batch.read_all()
            days = sorted_slices(batch, column)  # sorted by day: each day's rows are one slice
            for day, rows in days:
                writer.submit(day, rows)
                counts[day] = rows.num_rows
            writer.drain(leave=len(days))  # this range in flight while the next is read
    return counts
