"""The warehouse: one DuckDB table per asset, mirrored as Parquet.

DuckDB allows one writing process per file. Runs that overlap (a backfill and a
sensor's run) serialise their short write transactions through an inter-process file
lock, so none fails on DuckDB's lock. Parquet files are written atomically (temp name,
then rename) and are what downstream steps read, so readers never take the lock.

Layout: ``<data>/warehouse.duckdb`` tables named after the asset;
``<data>/parquet/<asset>/day=YYYY-MM-DD/part.parquet`` for daily tables and
``<data>/parquet/<asset>/part.parquet`` for the others."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from filelock import FileLock

LOCK_TIMEOUT_S = 1800


class Warehouse:
    def __init__(self, data_root: Path):
        self.data_root = Path(data_root)
        self.db_path = self.data_root / "warehouse.duckdb"
        self.parquet_root = self.data_root / "parquet"
        self.lock = FileLock(str(self.db_path) + ".lock", timeout=LOCK_TIMEOUT_S)

    # -- DuckDB ---------------------------------------------------------------------------
    @contextmanager
    def connect(self):
        """A DuckDB connection held under the inter-process lock (readers too: DuckDB
        refuses a read-only open while another process holds the file for writing)."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self.lock:
            con = duckdb.connect(str(self.db_path))
            try:
                yield con
            finally:
                con.close()

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
        with self.connect() as con:
            self._ensure_table(con, table, df)
            con.execute("BEGIN")
            con.execute(f'DELETE FROM "{table}" WHERE "{partition_column}" IN (SELECT unnest(?))', [parts])
            if df.height:
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _incoming')
            con.execute("COMMIT")
        for day in parts:
            part = df.filter(pl.col(partition_column) == day)
            self._write_parquet(self.parquet_root / table / f"day={day}" / "part.parquet", part)
        return df.height

    def replace_table(self, table: str, df: pl.DataFrame) -> int:
        with self.connect() as con:
            con.register("_incoming", df.to_arrow())
            con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _incoming')
        self._write_parquet(self.parquet_root / table / "part.parquet", df)
        return df.height

    def replace_days_from_view(self, source_con: duckdb.DuckDBPyConnection, table: str, view: str, *,
                               partition_column: str, days: list[str]) -> int:
        """Bulk version of replace_partitions for millions of rows, streamed by DuckDB: the
        warehouse file is attached to ``source_con`` (under the lock) and filled from ``view``;
        the Parquet mirror is written a month at a time, so memory stays flat."""
        import pyarrow.parquet as pq

        days = sorted(set(days))
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self.lock:
            source_con.execute(f"ATTACH '{self.db_path}' AS wh")
            try:
                source_con.execute(f'CREATE TABLE IF NOT EXISTS wh."{table}" AS SELECT * FROM {view} LIMIT 0')
                source_con.execute("BEGIN")
                source_con.execute("CREATE OR REPLACE TEMP TABLE _days AS SELECT unnest(?::VARCHAR[]) AS d", [days])
                source_con.execute(f'DELETE FROM wh."{table}" WHERE "{partition_column}" IN (SELECT d FROM _days)')
                source_con.execute(f'INSERT INTO wh."{table}" BY NAME SELECT * FROM {view} WHERE "{partition_column}" IN (SELECT d FROM _days)')
                rows = source_con.execute(f'SELECT count(*) FROM wh."{table}" WHERE "{partition_column}" IN (SELECT d FROM _days)').fetchone()[0]
                source_con.execute("COMMIT")
            finally:
                source_con.execute("DETACH wh")
        root = self.parquet_root / table
        # The mirror reads the view a month at a time (memory stays flat) and writes the day files
        # on two threads while the next month is read.
        months = sorted({d[:7] for d in days})
        from concurrent.futures import ThreadPoolExecutor

        def write_day(day: str, table_slice) -> None:
            target = root / f"day={day}" / "part.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".part.{os.getpid()}.{threading.get_ident()}.tmp")
            pq.write_table(table_slice, tmp)
            os.replace(tmp, target)

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = []
            for month in months:
                batch = source_con.execute(
                    f'SELECT * FROM {view} WHERE "{partition_column}" >= ? AND "{partition_column}" < ? '
                    f'ORDER BY "{partition_column}"', [month, month + "~"]).arrow()
                if hasattr(batch, "read_all"):
                    batch = batch.read_all()
                col = batch.column(partition_column).to_pylist()
                present: set[str] = set()
                start = 0
                for i in range(1, len(col) + 1):
                    if i == len(col) or col[i] != col[start]:
                        futures.append(pool.submit(write_day, col[start], batch.slice(start, i - start)))
                        present.add(col[start])
                        start = i
                for day in [d for d in days if d.startswith(month) and d not in present]:
                    (root / f"day={day}" / "part.parquet").unlink(missing_ok=True)
            for f in futures:
                f.result()
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

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def drop_all(self) -> None:
        with self.lock:
            if self.db_path.exists():
                self.db_path.unlink()
        shutil.rmtree(self.parquet_root, ignore_errors=True)
