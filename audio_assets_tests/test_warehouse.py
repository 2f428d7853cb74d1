"""The warehouse: partition replacement, Parquet mirror, and overlapping writers."""

import multiprocessing as mp

import duckdb
import polars as pl

from audio_assets.warehouse import Warehouse

SCHEMA = {"post_id": pl.Utf8, "post_date": pl.Utf8, "n": pl.Int64}


def _rows(day: str, n: int) -> pl.DataFrame:
    return pl.DataFrame([{"post_id": f"{day}-{i}", "post_date": day, "n": i} for i in range(n)], schema=SCHEMA)


def test_replace_partitions_is_idempotent(tmp_path):
    wh = Warehouse(tmp_path)
    wh.replace_partitions("t", pl.concat([_rows("2025-08-01", 3), _rows("2025-08-02", 2)]), partition_column="post_date",
                          partitions=["2025-08-01", "2025-08-02"])
    wh.replace_partitions("t", _rows("2025-08-01", 1), partition_column="post_date", partitions=["2025-08-01"])
    wh.replace_partitions("t", _rows("2025-08-01", 1), partition_column="post_date", partitions=["2025-08-01"])
    assert wh.query("SELECT post_date, count(*) FROM t GROUP BY 1 ORDER BY 1") == [("2025-08-01", 1), ("2025-08-02", 2)]
    assert wh.read("t").height == 3 and wh.read("t", ["2025-08-02"]).height == 2
    assert wh.days("t") == ["2025-08-01", "2025-08-02"]
    # an emptied day is empty in both places
    wh.replace_partitions("t", pl.DataFrame(schema=SCHEMA), partition_column="post_date", partitions=["2025-08-02"])
    assert wh.query("SELECT count(*) FROM t WHERE post_date = '2025-08-02'") == [(0,)]
    assert wh.read("t", ["2025-08-02"]).height == 0


def _writer(root: str, day: str, rounds: int) -> None:
    wh = Warehouse(root)
    for i in range(rounds):
        wh.replace_partitions("t", _rows(day, 50 + i), partition_column="post_date", partitions=[day])


def test_overlapping_writers_never_fail_on_duckdbs_lock(tmp_path):
    """A backfill and a sensor's run write at the same time: both finish, nothing is lost."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), f"2025-08-0{d}", 15)) for d in (1, 2, 3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT post_date, count(*) FROM t GROUP BY 1 ORDER BY 1").fetchall() == [
        ("2025-08-01", 64), ("2025-08-02", 64), ("2025-08-03", 64)]


def test_duckdb_alone_would_fail_on_the_lock(tmp_path):
    """The reason for the file lock: a second writing process cannot open the file."""
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE x (a INT)")
    out = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"], capture_output=True, text=True)
    con.close()
    assert out.returncode != 0 and "lock" in out.stderr.lower()
