"""The whole pipeline through Dagster against the replica and the Stash emulator."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from audio_assets.definitions import PipelineResource, defs
from audio_assets.ffmpeg_tools import probe
from audio_assets.replica.ground_truth import release_mismatches
from audio_assets.runner import run_pipeline

DAYS = ["2025-07-31", "2025-08-01", "2025-08-02"]
TABLES = ["gwasi_index", "reddit_posts", "post_analysis", "audio_files", "scripts", "artwork", "releases",
          "release_variants", "performers", "rendered_videos", "stash_scenes"]


@pytest.fixture(scope="module")
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _counts(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f'SELECT count(*), sum(hash(COLUMNS(*) )) FROM "{t}"').fetchone()[0] for t in TABLES}
    finally:
        con.close()


def test_three_days_end_to_end(tmp_path, world_factory, corpus, instance):
    w = world_factory(tmp_path / "data")
    result = run_pipeline(DAYS[0], DAYS[-1], pipeline=PipelineResource(), instance=instance)
    assert result.success and result.failed_checks == []

    db = w.data_root / "warehouse.duckdb"
    counts = _counts(db)
    assert all(counts[t] > 0 for t in TABLES), counts
    for t in ["gwasi_index", "reddit_posts", "audio_files", "rendered_videos"]:
        assert sorted(p.name for p in (w.data_root / "parquet" / t).glob("day=*")) == [f"day={d}" for d in DAYS]

    # Releases agree with the corpus's ground truth for these days.
    assert release_mismatches(db, corpus, set(DAYS)) == []

    # Incremental aggregation equals a full rebuild: aggregate the first two days, add the third.
    from audio_assets.layers import releases as rl
    from audio_assets.warehouse import Warehouse

    wh = Warehouse(w.data_root)
    inputs = {t: wh.read(t) for t in ["post_analysis", "audio_files", "scripts", "artwork", "reddit_posts", "gwasi_index"]}

    def upto(df, n):
        return None if df is None else df.filter(df["post_date"].is_in(DAYS[:n]))

    early = [upto(inputs[t], 2) for t in inputs]
    r0, v0, _p0, s0, _ = rl.aggregate_incremental(*early, previous_releases=None, previous_variants=None, previous_signatures=None)
    r1, v1, p1, _s1, stats = rl.aggregate_incremental(*inputs.values(), previous_releases=r0, previous_variants=v0,
                                                      previous_signatures=s0, full_rebuild_share=1.0)
    full_r, full_v, full_p = rl.aggregate(*inputs.values())
    assert stats["mode"] == "incremental" and stats["reaggregated_posts"] < len(s0) + 20
    assert r1.sort("release_id").equals(full_r.sort("release_id"))
    assert v1.equals(full_v) and p1.equals(full_p)

    # The catalogue, similar and search commands answer on this data.
    from audio_assets import cli

    def run_cli(*argv):
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(list(argv))
        return code, out.getvalue()

    code, text = run_cli("catalogue", "--kind", "performers")
    assert code == 0 and "SnakeySmut" in text and "Lurkydip" in text
    code, text = run_cli("similar", "rel_1mf1onp")
    assert code == 0 and text.count("rel_") >= 3
    code, text = run_cli("search", "shy", "ghost")
    assert code == 0 and text.splitlines()[1].split()[1] == "rel_1mf1onp"

    # Files where the seed's layout says.
    assert list((w.data_root / "audio" / "soundgasm").rglob("*.m4a")) and list((w.data_root / "audio" / "whypit").rglob("*.mp3"))
    assert list((w.data_root / "scripts" / "scriptbin").rglob("*.txt"))
    release_db = json.loads((w.data_root / "releases" / "release_db.json").read_text())
    seed = {r["title"]: r for r in release_db["releases"]}
    milk = seed["Threesome At The Milk Maid Cafe!"]
    assert milk["performers"] == ["SnakeySmut", "alekirser"] and milk["scribe"] == "Enno_Zalenno2" and milk["private_fill"]
    ghost = seed["Shy Ghost Girl Possesses You To Feel Pleasure Again"]
    assert ghost["scribe"] == "TheWritingJedi" and ghost["script_offer_post_id"] == "1me43oy"
    assert "https://scriptbin.works/u/TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure" in ghost["script_urls"]
    [ghost_variant] = ghost["variants"]
    assert {u.split("/")[2] for u in ghost_variant["source_urls"]} == {"hotaudio.net", "soundgasm.net", "whyp.it"}

    # Playable mp4s with a real video stream, one scene each in Stash, with performers; groups for variants.
    videos = sorted((w.data_root / "videos").rglob("*.mp4"))
    con = duckdb.connect(str(db), read_only=True)
    ok_videos = con.execute("SELECT count(*) FROM rendered_videos WHERE status = 'ok'").fetchone()[0]
    multi = con.execute("SELECT count(*) FROM releases WHERE variant_count > 1 AND status = 'ok'").fetchone()[0]
    con.close()
    assert len(videos) == ok_videos >= 8
    for v in videos[:3]:
        info = probe(v)
        assert info.has_real_video and info.video_codec == "h264" and info.audio_codec in ("aac", "mp3", "flac")
    scenes = list(w.stash.scenes.values())
    assert len(scenes) == ok_videos
    assert all(s.get("performer_ids") or s.get("performers") for s in scenes), scenes[0]
    assert multi >= 2 and len(w.stash.groups) == multi
    by_name = {p["name"].lower(): p for p in w.stash.performers.values()}
    # One identity across Reddit (Lurkydip) and soundgasm (LurkyDip): the case variant is kept in our
    # performers table; Stash forbids an alias equal to the name, so there it shows as the soundgasm URL.
    assert "https://soundgasm.net/u/LurkyDip" in by_name["lurkydip"]["urls"]
    assert "lurkydip" in {p["name"].lower() for p in release_db["performers"]}
    assert "LurkyDip" in next(p["aliases"] for p in release_db["performers"] if p["name"] == "Lurkydip")

    # Dagster knows the partitions are materialised.
    status = instance.get_status_by_partition(dg.AssetKey("gwasi_index"), DAYS, defs.get_assets_def("gwasi_index").partitions_def) \
        if hasattr(instance, "get_status_by_partition") else None
    materialized = instance.get_materialized_partitions(dg.AssetKey("stash_scenes"))
    assert set(DAYS) <= materialized, (status, materialized)

    # The decode check looks at new files only, and still notices a file that was cut short.
    from audio_assets.definitions import audio_files_decode

    assert audio_files_decode(pipeline=PipelineResource()).metadata["decoded_now"].value == 0
    victim = next((w.data_root / "audio" / "soundgasm").rglob("*.m4a"))
    original = victim.read_bytes()
    victim.write_bytes(original[: len(original) // 2])
    broken = audio_files_decode(pipeline=PipelineResource())
    assert not broken.passed and victim.name in str(broken.metadata["failures"].value)
    victim.write_bytes(original)

    # Running it again changes nothing: same rows, no download, no mutation in Stash.
    mutations_before = w.stash.mutation_count
    w.replica.clear_requests()
    run_pipeline(DAYS[0], DAYS[-1], pipeline=PipelineResource(), instance=instance)
    assert _counts(db) == counts
    assert w.stash.mutation_count == mutations_before
    media_hosts = {"media.soundgasm.net", "cdn.whyp.it", "i.imgur.com", "i.redd.it"}
    assert [r for r in w.replica.requests if r.host in media_hosts] == []


def test_stash_api_key_is_sent_and_never_leaks(tmp_path, replica, monkeypatch):
    """With a Stash API key set, the sync authenticates, and the key appears in no log,
    asset metadata, table or file the pipeline writes."""
    from audio_assets.replica.stash_emulator import StashEmulator

    secret = "sk-test-3f9c1a7e5b2d4c6f8a0e"
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    with StashEmulator(data / "videos", api_key=secret) as stash:
        for k, v in {"AUDIO_ASSETS_DATA": str(data), "AUDIO_ASSETS_HOST_MAP": replica.host_map_env(),
                     "STASH_URL": stash.url, "STASH_API_KEY": secret, "AUDIO_ASSETS_RATE_PER_HOST": "200"}.items():
            monkeypatch.setenv(k, v)
        with dg.DagsterInstance.ephemeral() as instance:
            result = run_pipeline("2025-08-01", "2025-08-01", pipeline=PipelineResource(), instance=instance)
            assert result.success and result.failed_checks == []
            assert stash.scenes  # authenticated writes went through
            keys = instance.get_asset_keys()
            assert keys
            for key in keys:
                for record in instance.fetch_materializations(key, limit=1000).records:
                    assert secret not in str(record.event_log_entry)
            logs = [str(e) for r in result.run_ids for e in instance.all_logs(r)]
            assert logs and not any(secret in line for line in logs)
    for path in data.rglob("*"):
        if path.is_file() and path.suffix not in (".m4a", ".mp3", ".flac", ".mp4", ".png", ".jpg"):
            assert secret.encode() not in path.read_bytes(), path


def test_patreon_early_access_joins_its_reddit_release(tmp_path, world_factory, corpus, monkeypatch):
    """A followed creator's early-access Patreon post and the later Reddit post are one release:
    the public one by its audio, the paid one (no session: locked) by performer and title."""
    w = world_factory(tmp_path / "data")
    monkeypatch.setenv("AUDIO_ASSETS_PATREON_CREATORS", "VelvetVixenVA,BriarRoseVA")
    monkeypatch.delenv("PATREON_SESSION_ID", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_pipeline("2025-07-20", "2025-07-23", pipeline=PipelineResource(), instance=instance).success
    db = w.data_root / "warehouse.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    rel = con.execute("SELECT post_ids, release_date FROM releases WHERE release_id = 'rel_1m84pfh'").fetchone()
    pt = con.execute("SELECT status FROM audio_files WHERE post_id = 'pt_135256930'").fetchone()
    con.close()
    assert json.loads(rel[0]) == ["pt_135256930", "1m84pfh"] and rel[1] == "2025-07-23" and pt == ("ok",)
    assert release_mismatches(db, corpus, {"2025-07-20", "2025-07-21", "2025-07-22", "2025-07-23"}, patreon=True) == []
