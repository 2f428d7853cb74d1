"""Stash plans, apply and rollback against the emulator, on pipeline data."""

from __future__ import annotations

import dagster as dg
import pytest

from audio_assets.definitions import PipelineResource
from audio_assets.runner import SOURCE_ASSETS, _materialize
from audio_assets.settings import load_settings
from audio_assets.stash import service
from audio_assets.stash.client import StashClient
from audio_assets.warehouse import Warehouse

DAY = "2025-07-31"


def _state(stash) -> dict:
    snap = stash.snapshot()
    scenes = {sid: (s.get("title"), s.get("details"), sorted(s.get("performer_ids") or []), sorted(s.get("tag_ids") or []),
                    s.get("studio_id"), [(g.get("group_id"), g.get("scene_index")) for g in s.get("groups") or []],
                    list(s.get("urls") or []))
              for sid, s in snap["scenes"].items()}
    return {"scenes": scenes, **{k: sorted(v) for k, v in snap.items() if k != "scenes"}}


@pytest.fixture
def built(tmp_path, world_factory):
    """The day's releases rendered, nothing sent to Stash yet."""
    import audio_assets.definitions as d

    w = world_factory(tmp_path / "data")
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = PipelineResource()
        _materialize(dg.AssetSelection.assets(*SOURCE_ASSETS), DAY, DAY, pipeline, instance)
        _materialize(dg.AssetSelection.assets(d.releases), None, None, pipeline, instance)
        _materialize(dg.AssetSelection.assets(d.rendered_videos), DAY, DAY, pipeline, instance)
    return w


def test_plan_apply_rollback_round_trip_restores_stash(built):
    w = built
    settings, wh = load_settings(), Warehouse(w.data_root)
    with StashClient(w.stash.url) as client:
        before = _state(w.stash)
        mutations = w.stash.mutation_count
        plan = service.sync_days(settings, wh, client, [DAY], run_id="plan", dry_run=True)
        assert w.stash.mutation_count == mutations and _state(w.stash) == before  # a plan writes nothing
        kinds = {(c["kind"], c["action"]) for c in plan.changes}
        assert {("scene", "scan"), ("scene", "update"), ("performer", "create"), ("tag", "create")} <= kinds
        assert "| scene" in plan.plan_markdown and wh.read("stash_scenes") is None

        applied = service.sync_days(settings, wh, client, [DAY], run_id="run-1")
        after = _state(w.stash)
        assert after != before and len(applied.changes) == len(plan.changes)
        assert all(r["status"] == "ok" for r in applied.rows)
        # a second sync plans nothing
        assert service.sync_days(settings, wh, client, [DAY], run_id="plan-2", dry_run=True).changes == []

        undone = service.rollback_run(wh, client, "run-1")
        assert undone == len(applied.changes)
        assert _state(w.stash) == before


def test_fields_edited_by_hand_in_stash_are_kept(built, monkeypatch):
    w = built
    settings, wh = load_settings(), Warehouse(w.data_root)
    with StashClient(w.stash.url) as client:
        service.sync_days(settings, wh, client, [DAY], run_id="run-1")
        scene_id = next(iter(w.stash.scenes))
        client.execute("SceneUpdate", {"input": {"id": scene_id, "title": "My own title"}})
        # the next sync does not put our title back: the edit made in Stash wins
        plan = service.sync_days(settings, wh, client, [DAY], run_id="plan", dry_run=True)
        assert plan.changes == []
        rows = service.sync_days(settings, wh, client, [DAY], run_id="run-2").rows
        assert w.stash.scenes[scene_id]["title"] == "My own title"
        assert any("title" in r["kept_fields"] for r in rows)
        monkeypatch.setenv("AUDIO_ASSETS_STASH_OVERWRITE_EDITS", "1")
        service.sync_days(settings, wh, client, [DAY], run_id="run-3")
        assert w.stash.scenes[scene_id]["title"] != "My own title"


def test_an_interrupted_sync_resumes_without_duplicates(built):
    """The sync dies after a few writes (as a killed run would): its writes are on record from
    its journal and can be rolled back; the next sync finishes the job without creating
    anything twice."""
    w = built
    settings, wh = load_settings(), Warehouse(w.data_root)

    class Killed(RuntimeError):
        pass

    with StashClient(w.stash.url) as client:
        real = client.execute
        writes = {"n": 0}

        def dying(operation, variables=None):
            if operation.endswith(("Create", "Update")):
                writes["n"] += 1
                if writes["n"] > 4:
                    raise Killed(f"killed before {operation}")
            return real(operation, variables)

        client.execute = dying
        before = _state(w.stash)
        with pytest.raises(Killed):
            service.sync_days(settings, wh, client, [DAY], run_id="broken")
        assert 0 < len(w.stash.performers) + len(w.stash.tags)  # some writes had landed
        client.execute = real
        # the dead sync never recorded its changes, but its journal did: the next look lists them
        assert wh.read("stash_changes") is None
        assert [run for run, n, _ in service.runs(wh) if n >= 4] == ["broken"]
        service.sync_days(settings, wh, client, [DAY], run_id="resumed")
        assert service.sync_days(settings, wh, client, [DAY], run_id="check", dry_run=True).changes == []
        after = _state(w.stash)
    names = [p["name"].lower() for p in w.stash.performers.values()]
    assert len(names) == len(set(names))
    paths = [f["path"] for s in w.stash.scenes.values() for f in s["files"]]
    assert len(paths) == len(set(paths))
    groups = [g["name"] for g in w.stash.groups.values()]
    assert len(groups) == len(set(groups))
    tags = [t["name"].lower() for t in w.stash.tags.values()]
    assert len(tags) == len(set(tags))
    # and both runs can be undone, the killed one too, newest first
    with StashClient(w.stash.url) as client:
        service.rollback_run(wh, client, "resumed")
        assert _state(w.stash) != after
        service.rollback_run(wh, client, "broken")
    assert _state(w.stash) == before


def test_studio_setting():
    from audio_assets.stash.sync import studio_for

    assert studio_for(["SnakeySmut", "alekirser"], env={}) == "SnakeySmut"
    assert studio_for(["SnakeySmut"], env={"AUDIO_ASSETS_STASH_STUDIO": "none"}) is None
    assert studio_for(["SnakeySmut"], env={"AUDIO_ASSETS_STASH_STUDIO": "r/gonewildaudio"}) == "r/gonewildaudio"


def test_scenes_carry_the_post_text_and_a_cover(built):
    w = built
    settings, wh = load_settings(), Warehouse(w.data_root)
    with StashClient(w.stash.url) as client:
        service.sync_days(settings, wh, client, [DAY], run_id="run-1")
        mutations = w.stash.mutation_count
        service.sync_days(settings, wh, client, [DAY], run_id="run-2")
        assert w.stash.mutation_count == mutations  # the cover is sent once, not on every sync
    scenes = list(w.stash.scenes.values())
    assert all(s.get("cover_image") or s.get("cover") or s.get("has_cover") for s in scenes), sorted(scenes[0])
    posts = wh.read("reddit_posts", [DAY])
    body = next(r["body"] for r in posts.iter_rows(named=True) if r["body"])
    assert any(body.strip()[:40] in (s.get("details") or "") for s in scenes)


def test_scan_jobs_failed_gone_or_stuck(tmp_path):
    """The client waits on its own job: FAILED raises with Stash's reason, a job gone from the
    10-job graveyard counts as done, a job that never ends times out with advice."""
    from audio_assets.ffmpeg_tools import run_ffmpeg
    from audio_assets.replica.stash_emulator import StashEmulator
    from audio_assets.stash.client import StashError

    lib = tmp_path / "lib"
    lib.mkdir()
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "color=c=blue:s=64x64:d=1", "-f", "lavfi", "-i", "sine=d=1",
                "-c:v", "libx264", "-c:a", "aac", "-shortest", str(lib / "a.mp4")])
    with StashEmulator(lib) as stash, StashClient(stash.url) as client:
        stash.scan_mode = "fail"
        job = client.execute("MetadataScan", {"input": {"paths": [str(lib)]}})["metadataScan"]
        with pytest.raises(StashError, match="failed"):
            client.wait_for_job(job, timeout_s=10)
        stash.scan_mode = "normal"
        first = client.execute("MetadataScan", {"input": {"paths": [str(lib)]}})["metadataScan"]
        client.wait_for_job(first, timeout_s=10)
        for _ in range(11):
            client.wait_for_job(client.execute("MetadataScan", {"input": {"paths": [str(lib)]}})["metadataScan"], timeout_s=10)
        assert client.wait_for_job(first, timeout_s=1) is None  # left the graveyard: the caller re-reads scenes
        stash.scan_mode = "hang"
        stuck = client.execute("MetadataScan", {"input": {"paths": [str(lib)]}})["metadataScan"]
        with pytest.raises(StashError, match="did not finish"):
            client.wait_for_job(stuck, timeout_s=0.5)


def test_stash_errors_mark_rows_and_retries_cover_blips(built):
    """A 500 on a read is retried; a GraphQL error on one scene's write marks that scene's row
    with Stash's message and the rest of the day still syncs; the next sync finishes it."""
    from audio_assets.stash.client import StashError

    w = built
    settings, wh = load_settings(), Warehouse(w.data_root)
    with StashClient(w.stash.url) as client:
        w.stash.fail_next_requests(status=500, count=2)
        assert service.sync_days(settings, wh, client, [DAY], run_id="plan", dry_run=True).changes
        real, failed_once = client.execute, {"done": False}

        def flaky(operation, variables=None):
            if operation == "SceneUpdate" and not failed_once["done"]:
                failed_once["done"] = True
                raise StashError(operation, "database is locked")
            return real(operation, variables)

        client.execute = flaky
        rows = service.sync_days(settings, wh, client, [DAY], run_id="run-1").rows
        failed = [r for r in rows if r["status"] == "error"]
        assert len(failed) == 1 and "database is locked" in failed[0]["error"]
        assert sum(r["status"] == "ok" for r in rows) == len(rows) - 1
        client.execute = real
        again = service.sync_days(settings, wh, client, [DAY], run_id="run-2").rows
        assert all(r["status"] == "ok" for r in again)
        assert service.sync_days(settings, wh, client, [DAY], run_id="check", dry_run=True).changes == []
