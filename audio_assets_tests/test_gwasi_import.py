"""The streaming GWASI import: both base forms, bad entries, duplicates, the delta overlay."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import dagster as dg
import pytest

from audio_assets import gwasi_import
from audio_assets.platforms import gwasi
from audio_assets.warehouse import Warehouse

NOW = 1_800_000_000
T = 1754006400 + 3600  # 2025-08-01T01:00Z

TRICKY = [
    ["wsytww", "gonewildaudio", "ASMRdotWav", "Script Fill", "[Script Fill] [F4M] Nine Tails", 1660971997, 57],
    ["abc123", "gonewildaudio", "W", "Script Offer", "t", 1660971997.7, 3, -12.5],
    ["abc124", "gonewildaudio", "W", "", "t", 1660971997, 3, 125.3, "u/X"],
    ["a", "b"], {"id": "x"}, "str", None, 5, [],
    ["abc", "g", "a", "", "t", "soon", 1, 1], ["abc", "g", "a", "", "t", NOW + 10 * 86400, 1, 1],
    ["../x", "g", "a", "", "t", 1660971997, 1, 1], ["abc", "g", "a", "", "t", 1660971997, "many", 1],
    ["abc", "g", "a", "", "t", 1660971997, 1, "long"], ["ABC", "g", None, None, None, 1660971997, None, None, None],
    [123, "g", "a", "", "t", 1660971997, 1, 1], ["abc", "g", "a", "", "t", -5, 1, 1], ["abc", "g", "a", "", "t", True, 1, 1],
    ["abc", "g", "a", "", "t", 1660971997, 1, 1, "x", 1], ["abc", "g", "a", "", "t", "1660971997", "7", "12.5"],
    ["abc", "g", {"x": 1}, "", "t", 1660971997, 1, 1], ["héllo", "g", "a", "", "t", 1660971997, 1, 1],
    ["abc", "g", "a", "", "t\u202eevil", 1660971997, 1, 1, "emoji \U0001F49C"],
]


def test_sql_decoder_agrees_with_the_python_parser():
    con = gwasi_import.connect()
    rows = gwasi_import.decode_entries(con, TRICKY, source="base", now=NOW)
    assert len(rows) == len(TRICKY)
    for raw, row in zip(TRICKY, rows, strict=True):
        py = gwasi.parse_entry(raw, source="base", now=NOW)
        for k in ["post_id", "subreddit", "author", "flair", "title", "created_utc", "post_date", "score", "length",
                  "duration_s", "script_words", "extra", "status"]:
            a, b = getattr(py, k), row[k]
            assert a == b or (isinstance(a, float) and math.isclose(a, b)), (raw, k, a, b)
        assert (py.error is None) == (row["error"] is None), raw


def _write_dump(root, base_entries, delta_entries, *, sharded=True, removed=(), fills=None, version="abcdef1234"):
    root.mkdir(parents=True)
    (root / "delta.json").write_text(json.dumps({"base": version, "entries": delta_entries, "removed": list(removed),
                                                 "fills": fills or {}}))
    if sharded:
        (root / f"base_{version}").mkdir()
        half = len(base_entries) // 2
        for n, part in enumerate([base_entries[:half], base_entries[half:]], start=1):
            (root / f"base_{version}" / f"{n}.json").write_text(json.dumps({"entries": part, "off": []}))
    else:
        (root / f"base_{version}.json").write_text(json.dumps({"entries": base_entries, "fills": {"off1": ["p2"]}}))


def _entry(pid, day_offset=0, score=1, title="[F4M] t"):
    return [pid, "gonewildaudio", "a", "OC", title, T + day_offset * 86400, score, 30]


@pytest.mark.parametrize("sharded", [True, False])
def test_import_dump_both_forms(tmp_path, sharded):
    base = [_entry("p1"), _entry("p2", 1), _entry("p3", 2), _entry("dup", 3, score=1), ["bad"], _entry("gone", 1)]
    base[3:3] = []
    if sharded:
        base.append(_entry("dup", 3, score=99))  # the same id again in the later shard: it wins
    delta = [_entry("p2", 1, score=50, title="[F4M] edited"), _entry("new", 4), ["also", "bad"]]
    _write_dump(tmp_path / "dump", base, delta, sharded=sharded, removed=["gone"])
    wh = Warehouse(tmp_path / "data")
    result = gwasi_import.import_dump(tmp_path / "dump", wh, tmp_path / "data" / "gwasi")
    rows = {r[0]: r for r in wh.query("SELECT post_id, post_date, score, title, status, fill_of FROM gwasi_index "
                                      "WHERE status = 'ok'")}
    assert set(rows) == {"p1", "p2", "p3", "dup", "new"}
    assert rows["p2"][2] == 50 and rows["p2"][3] == "[F4M] edited"  # the delta overrides the base
    if sharded:
        assert rows["dup"][2] == 99 and result.staged["duplicates"] == 1
    else:
        assert rows["p2"][5] == "off1"  # fills from the single-file base
    assert result.days == ["2025-08-01", "2025-08-02", "2025-08-03", "2025-08-04", "2025-08-05"]
    assert result.staged["invalid"] == 1
    # Parquet mirror by day, the same rows
    assert wh.read("gwasi_index", ["2025-08-02"]).filter(gwasi_index_ok()).height == 1
    assert sorted(wh.days("gwasi_index")) == result.days
    # re-import: same result, nothing doubled
    gwasi_import.import_dump(tmp_path / "dump", wh, tmp_path / "data" / "gwasi")
    assert wh.query("SELECT count(*) FROM gwasi_index WHERE status = 'ok'") == [(5,)]


def gwasi_index_ok():
    import polars as pl

    return pl.col("status") == "ok"


def test_ids_given_twice_are_found_by_hash_whatever_its_size():
    """The last place of an id wins; hashes past 2**63 (unsigned) and hash collisions between
    different ids are handled (a collision is not a duplicate)."""
    import pyarrow as pa

    def ids(rows):
        return pa.table({"post_id": [r[0] for r in rows], "id_hash": pa.array([r[1] for r in rows], pa.uint64()),
                         "shard": pa.array([r[2] for r in rows], pa.int32()),
                         "ord": pa.array([r[3] for r in rows], pa.int32())})

    big, small = 2**64 - 3, 5
    first = ids([("a", big, 1, 0), ("b", small, 1, 1), ("c", 11, 1, 2), ("x", 2**63 + 1, 1, 3)])
    second = ids([("a", big, 2, 4), ("d", small, 2, 0), ("b", small, 3, 7), ("a", big, 2, 1)])
    winner_of, entries, losers = gwasi_import._winners([first, second])
    step = gwasi_import._SHARD_STEP
    assert winner_of == {"a": 2 * step + 4, "b": 3 * step + 7}
    assert (entries, losers) == (8, 3)
    assert gwasi_import._winners([first]) == ({}, 4, 0)
    assert gwasi_import._winners([]) == ({}, 0, 0)


def test_missing_base_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no GWASI base"):
        gwasi_import.find_dump(tmp_path / "empty")


def test_cli_import_records_partitions_in_dagster(tmp_path):
    _write_dump(tmp_path / "dump", [_entry("p1"), _entry("p2", 1)], [])
    env = {"AUDIO_ASSETS_DATA": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dh"), "PATH": "/usr/bin:/bin"}
    (tmp_path / "dh").mkdir()
    out = subprocess.run([sys.executable, "-m", "audio_assets.cli", "import-gwasi", str(tmp_path / "dump"), "--quiet"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "2 rows over 2 days" in out.stdout and "0 entries with no usable date" in out.stdout
    with dg.DagsterInstance.from_config(str(tmp_path / "dh")) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("gwasi_index")) == {"2025-08-01", "2025-08-02"}


class _FakeGwasi:
    """Serves a GWASI site from a dict of path -> JSON (a 404 for anything else)."""

    def __init__(self, files: dict):
        self.files = files
        self.requests: list[str] = []

    def get(self, url, **kwargs):
        from audio_assets.http_client import FetchError

        path = url.split("gwasi.com", 1)[1]
        self.requests.append(path)
        if path not in self.files:
            raise FetchError(f"GET {url} answered HTTP 404", url=url, status=404)

        class R:
            content = json.dumps(self.files[path]).encode()

            def json(self_inner):
                return json.loads(self_inner.content)

        return R()


def test_a_new_base_version_replaces_the_old_cleanly(tmp_path):
    gdir = tmp_path / "gwasi"
    v1 = {"/delta.json": {"base": "aaaa111111", "entries": []},
          "/base_aaaa111111/1.json": {"entries": [_entry("p1"), _entry("p2", 1)], "off": []}}
    site = _FakeGwasi(v1)
    snap1, delta, _ = gwasi_import.prepare_snapshot(site, gdir, "https://gwasi.com")
    assert gwasi_import.staged_days(snap1) == ["2025-08-01", "2025-08-02"]
    # a second run with the same version fetches only delta.json: shards are cached, the snapshot is staged
    site.requests.clear()
    gwasi_import.prepare_snapshot(site, gdir, "https://gwasi.com")
    assert site.requests == ["/delta.json"]
    # a new version: entries reshuffled, p2 gone, p3 new; the old snapshot and shard cache are removed
    site.files = {"/delta.json": {"base": "bbbb222222", "entries": []},
                  "/base_bbbb222222/1.json": {"entries": [_entry("p3", 2)], "off": []},
                  "/base_bbbb222222/2.json": {"entries": [_entry("p1")], "off": []}}
    snap2, delta2, _ = gwasi_import.prepare_snapshot(site, gdir, "https://gwasi.com")
    assert sorted(p.name for p in gdir.iterdir() if p.name.startswith(("snapshot_", "base_"))) == [
        "base_bbbb222222", "base_bbbb222222.fills.json", "snapshot_bbbb222222"]
    con = gwasi_import.connect()
    gwasi_import.overlay(con, snap2, delta2, None)
    assert sorted(r[0] for r in con.execute("SELECT post_id FROM gwasi_rows").fetchall()) == ["p1", "p3"]
    # shards are walked until several 404s in a row; a network error is not a 404
    assert site.requests.count("/base_bbbb222222/3.json") == 1 and "/base_bbbb222222/5.json" in site.requests


def test_a_network_error_mid_walk_is_not_taken_for_the_end(tmp_path):
    from audio_assets.http_client import FetchError

    class Flaky(_FakeGwasi):
        def get(self, url, **kwargs):
            if url.endswith("/2.json"):
                raise FetchError(f"GET {url} answered HTTP 503", url=url, status=503)
            return super().get(url, **kwargs)

    site = Flaky({"/delta.json": {"base": "cccc333333", "entries": []},
                  "/base_cccc333333/1.json": {"entries": [_entry("p1")], "off": []},
                  "/base_cccc333333/2.json": {"entries": [_entry("p2")], "off": []}})
    with pytest.raises(FetchError, match="503"):
        gwasi_import.prepare_snapshot(site, tmp_path / "gwasi", "https://gwasi.com")
    assert not list((tmp_path / "gwasi").glob("snapshot_*"))  # nothing half-staged


def _rows_by_day(df) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for r in df.iter_rows(named=True):
        out.setdefault(r["post_date"], []).append(tuple(sorted((k, repr(v)) for k, v in r.items())))
    return {d: sorted(rows) for d, rows in out.items()}


def test_an_import_gives_the_same_days_as_daily_runs(tmp_path):
    """The import links staged day files into gwasi_index and overlays only the days the delta
    touches; every day must equal what a daily run builds for it from the same snapshot."""
    from audio_assets.layers import sources

    base = [_entry(f"p{i}", i % 4, score=i) for i in range(40)]
    base += [["bad", "g", "a", "", "t", T + 86400, "many", 1],  # invalid, dated: lands on its day
             ["nodate", "g"], {"not": "a list"},  # invalid, undated; the object forces the JSON reader
             _entry("p3", 3, score=777)]  # a duplicate in the later shard: it wins
    delta = [_entry("p5", 1, score=50, title="[F4M] edited"), _entry("fresh", 6)]
    _write_dump(tmp_path / "dump", base, delta, removed=["p7"], fills={"p1": ["p9"]})
    wh = Warehouse(tmp_path / "data")
    result = gwasi_import.import_dump(tmp_path / "dump", wh, tmp_path / "data" / "gwasi")
    assert result.staged["invalid"] == 3 and result.staged["duplicates"] == 1
    rejects = sources.build_gwasi_rejects(result.snapshot, result.delta)
    assert sorted(r["error"] for r in rejects.to_dicts()) == [
        "GWASI base entry skipped, no day can hold it: entry has 2 fields, expected 7 to 9",
        "GWASI base entry skipped, no day can hold it: entry is an object, expected a list"]
    snap = gwasi_import.snapshot_dir(tmp_path / "data" / "gwasi", "abcdef1234")
    delta_doc = json.loads((tmp_path / "dump" / "delta.json").read_text())
    imported = _rows_by_day(wh.read("gwasi_index"))
    daily = _rows_by_day(sources.build_gwasi_index(snap, delta_doc, result.days))
    assert imported == daily
    rows = {r[0]: r for r in wh.query("SELECT post_id, status, error, score, fill_of, post_date FROM gwasi_index")}
    assert rows["bad"][1] == "invalid" and "score many is not a number" in rows["bad"][2]
    assert rows["bad"][5] == "2025-08-02"
    assert rows["p3"][3] == 777 and rows["p5"][3] == 50 and rows["p9"][4] == "p1" and "p7" not in rows
    # days the delta leaves alone are the staged files themselves, not copies
    untouched = gwasi_import.day_file(snap, "2025-08-01")
    assert (wh.parquet_root / "gwasi_index" / "day=2025-08-01" / "part.parquet").stat().st_ino == untouched.stat().st_ino
    touched = gwasi_import.day_file(snap, "2025-08-02")  # p5 edited, p7 removed, p9 filled
    assert (wh.parquet_root / "gwasi_index" / "day=2025-08-02" / "part.parquet").stat().st_ino != touched.stat().st_ino


def test_the_fast_reader_and_the_json_reader_agree(tmp_path, monkeypatch):
    """Clean shards are read as text lists; a shard with an entry that is not a list is read as
    JSON. The same entries must decode to the same rows either way."""
    entries = [["abc1", "gonewildaudio", "Héllo", "", "t \u202e \U0001F49C", 1660971997.7, "7", "12.5"],
               ["ABC2", "gonewildaudio", None, None, None, "1660971997", None, None, None],
               ["abc3", "g", "a", "OC", "t", 1660971997, 3, -12.5, "u/x extra"],
               ["abc4", "g", {"x": 1}, "", "t", 1660971997, 1, 1], ["abc5", "g", "a", "", "t", 1e9, 0, 0, ""]]
    readers: list[bool] = []
    real = gwasi_import._read_shards
    monkeypatch.setattr(gwasi_import, "_read_shards",
                        lambda paths, *, text_lists: readers.append(text_lists) or real(paths, text_lists=text_lists))
    snaps, used = {}, {}
    for name, extra in (("fast", []), ("json", [{"not": "a list"}])):
        readers.clear()
        _write_dump(tmp_path / name, entries + extra, [], version=f"{name}0000001"[:10])
        layout = gwasi_import.find_dump(tmp_path / name)
        gwasi_import.stage_base(layout, tmp_path / f"snap_{name}", now=NOW)
        con = gwasi_import.connect()
        snaps[name] = con.execute(
            f"SELECT * EXCLUDE (base_version) FROM {gwasi_import.snapshot_relation(tmp_path / f'snap_{name}')} "
            "WHERE status = 'ok' ORDER BY post_id").fetchall()
        used[name] = list(readers)
    # a batch that fails the fast read is split: the clean shard stays fast, the other is read as JSON
    assert used == {"fast": [True], "json": [True, True, True, False]}
    assert snaps["fast"] == snaps["json"] and len(snaps["fast"]) == len(entries)


def test_gwasi_index_is_a_view_over_its_day_files(tmp_path):
    """gwasi_index is stored once, as its day files; warehouse.duckdb holds a view over them
    (replacing a table of that name left by an older layout)."""
    import polars as pl

    wh = Warehouse(tmp_path / "data")
    with wh.connect() as con:
        con.execute("CREATE TABLE gwasi_index AS SELECT 'old' AS post_id")
    df = pl.DataFrame({"post_id": ["a", "b"], "post_date": ["2025-08-01", "2025-08-02"], "status": ["ok", "ok"]})
    wh.replace_partitions("gwasi_index", df, partition_column="post_date", partitions=["2025-08-01", "2025-08-02"])
    assert wh.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'gwasi_index'") == [("VIEW",)]
    assert sorted(wh.query("SELECT post_id FROM gwasi_index")) == [("a",), ("b",)]
    wh.replace_partitions("gwasi_index", df.clear(), partition_column="post_date", partitions=["2025-08-02"])
    assert sorted(wh.query("SELECT post_id FROM gwasi_index")) == [("a",)]


def test_a_snapshot_staged_by_an_older_layout_is_staged_again(tmp_path):
    snap = tmp_path / "snapshot_x"
    snap.mkdir()
    (snap / "_SUCCESS").write_text(json.dumps({"version": "x", "entries": 1}))
    assert not gwasi_import.snapshot_ready(snap)


def test_the_staged_shape_is_the_gwasi_index_schema():
    from audio_assets.layers.sources import GWASI_SCHEMA

    assert list(gwasi_import.INDEX_COLUMNS) == list(GWASI_SCHEMA)


def test_the_duplicate_check_reads_the_index_in_sql(tmp_path):
    """The gwasi_index check counts duplicate ids and invalid rows with DuckDB over the day files
    (never loading millions of rows); an id on two days fails it."""
    import polars as pl

    from audio_assets.definitions import PipelineResource, gwasi_no_duplicate_post_ids

    wh = Warehouse(tmp_path / "data")
    resource = PipelineResource(data_root=str(tmp_path / "data"))
    frame = pl.DataFrame({"post_id": ["a", "b", None], "post_date": ["2025-08-01"] * 3,
                          "status": ["ok", "ok", "invalid"]})
    wh.replace_partitions("gwasi_index", frame, partition_column="post_date", partitions=["2025-08-01"])
    result = gwasi_no_duplicate_post_ids(resource)
    assert result.passed and result.metadata["invalid_entries"].value == 1
    wh.replace_partitions("gwasi_index", frame.head(1).with_columns(post_date=pl.lit("2025-08-02")),
                          partition_column="post_date", partitions=["2025-08-02"])
    result = gwasi_no_duplicate_post_ids(resource)
    assert not result.passed and result.metadata["duplicate_post_ids"].value == 1


def test_staging_in_many_batches_gives_the_same_snapshot_as_one(tmp_path):
    """The 5.4M path: shards decoded in several batches, each cut into month files on a thread and
    the last one held in memory. Days spread over batches (and over the file and held parts),
    ids given again in a later shard, an undated entry: the same day files as one batch."""
    import pyarrow.parquet as pq

    day = 86400
    shards = [
        [["a1", "g", "x", "", "t", T, 1, 10], ["a2", "g", "x", "", "t", T + 40 * day, 2, 10], ["bad", "g"]],
        [["b1", "g", "x", "", "t", T + 1, 3, 10], ["a1", "g", "x", "", "t2", T + 2, 9, 10]],
        [["c1", "g", "x", "", "t", T + 40 * day + 5, 4, 10], ["b1", "g", "y", "", "t3", T + 70 * day, 5, 10],
         ["c2", "g", "x", "", "t", T, 6, 10]],
    ]
    folder = tmp_path / "dump" / "base_v1"
    folder.mkdir(parents=True)
    for n, entries in enumerate(shards, 1):
        (folder / f"{n}.json").write_text(json.dumps({"entries": entries}))
    layout = gwasi_import.find_dump(tmp_path / "dump")

    def staged(batch_files):
        out = tmp_path / f"snap{batch_files}"
        counts = gwasi_import.stage_base(layout, out, now=NOW, batch_files=batch_files)
        files = {d: pq.read_table(gwasi_import.day_file(out, d)).to_pylist() for d in gwasi_import.staged_days(out)}
        return counts, files, pq.read_table(out / "undated.parquet").to_pylist()

    one, many = staged(64), staged(1)
    assert many == one
    counts, files, undated = many
    assert (counts["entries"], counts["duplicates"], counts["invalid"]) == (8, 2, 1)
    assert [r["post_id"] for r in undated] == ["bad"] and "2 fields" in undated[0]["error"]
    assert {d: [(r["post_id"], r["title"]) for r in rows] for d, rows in files.items()} == {
        "2025-08-01": [("a1", "t2"), ("c2", "t")],
        "2025-09-10": [("a2", "t"), ("c1", "t")],
        "2025-10-10": [("b1", "t3")],
    }


def test_staging_runs_leave_out_what_follows_and_go_once_read(tmp_path, monkeypatch):
    """The month runs carry only what the day files can't get back (no post date, source, base
    version or status, no id hash), and each run file is removed once pass two has mapped it."""
    folder = tmp_path / "dump" / "base_v1"
    folder.mkdir(parents=True)
    for n in (1, 2, 3):
        (folder / f"{n}.json").write_text(json.dumps({"entries": [[f"p{n}", "g", "x", "", "t", T + n * 86400 * 40, 1, 10]]}))
    # shard 1 also holds an invalid entry with a date (a bad score) and one with none
    (folder / "1.json").write_text(json.dumps({"entries": [["p1", "g", "x", "", "t", T + 86400 * 40, 1, 10],
                                                           ["q1", "g", "x", "", "t", T + 86400 * 40, "many", 10],
                                                           ["q2", "g"]]}))
    seen = []
    real_read = gwasi_import._MonthRuns.read

    def read(runs, month):
        path = runs.folder / f"{month}.arrows"
        existed = path.exists()
        table = real_read(runs, month)
        seen.append((month, existed, path.exists(), table.schema.names))
        return table

    monkeypatch.setattr(gwasi_import._MonthRuns, "read", read)
    out = tmp_path / "snap"
    gwasi_import.stage_base(gwasi_import.find_dump(tmp_path / "dump"), out, now=NOW, batch_files=1)
    # shards 1 and 2 were written out as runs; the last batch (shard 3) was held in memory
    assert [(m, before, after) for m, before, after, _ in seen] == [
        ("2025-09", True, False), ("2025-10", True, False), ("2025-11", False, False),
        ("undated", True, False)]
    for *_, names in seen:
        assert not set(names) & {*gwasi_import._LEFT_OUT_OF_RUNS, "id_hash"}
    import pyarrow.parquet as pq

    def put_back(rows):
        return [(r["post_id"], r["post_date"], r["source"], r["base_version"], r["status"]) for r in rows]

    assert put_back(pq.read_table(gwasi_import.day_file(out, "2025-09-10")).to_pylist()) == [
        ("p1", "2025-09-10", "base", "v1", "ok"), ("q1", "2025-09-10", "base", "v1", "invalid")]
    assert put_back(pq.read_table(out / "undated.parquet").to_pylist()) == [("q2", None, "base", "v1", "invalid")]
