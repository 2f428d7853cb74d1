"""The GWASI sensor, the release-change sensor and declarative automation."""

from __future__ import annotations

import dagster as dg
import pytest

from audio_assets.definitions import (
    ALL_ASSETS,
    PipelineResource,
    defs,
    gwasi_index,
    gwasi_sensor,
    patreon_posts,
    releases_changed_sensor,
)
from audio_assets_tests.conftest import MEDIA_CACHE


@pytest.fixture
def own_replica(corpus):
    """A replica of our own: these tests change GWASI's delta."""
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.replica.server import ReplicaServer

    with ReplicaServer(build_corpus(), MEDIA_CACHE) as server:
        yield server


def _tick(instance, cursor):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"pipeline": PipelineResource()})
    result = gwasi_sensor(ctx)
    return result, ctx.cursor


def test_gwasi_sensor_requests_only_changed_days(tmp_path, monkeypatch, own_replica, corpus):
    monkeypatch.setenv("AUDIO_ASSETS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIO_ASSETS_HOST_MAP", own_replica.host_map_env())
    with dg.DagsterInstance.ephemeral() as instance:
        first, cursor = _tick(instance, None)
        delta_days = sorted({r.partition_key for r in first})
        assert delta_days == corpus.days[-corpus.gwasi_delta_days:]

        unchanged, cursor2 = _tick(instance, cursor)
        assert isinstance(unchanged, dg.SkipReason)

        # One new post on an older day: exactly that day's run, nothing else.
        own_replica.add_post({"id": "1zzzzz1", "subreddit": "gonewildaudio", "author": "NewVoice",
                              "title": "[F4M] [OC] A brand new post", "selftext": "https://soundgasm.net/u/NewVoice/x",
                              "created_utc": 1753444800.0 + 3600, "link_flair_text": "OC"}, length=50)
        requests, cursor3 = _tick(instance, cursor2)
        assert [r.partition_key for r in requests] == ["2025-07-25"]
        assert isinstance(_tick(instance, cursor3)[0], dg.SkipReason)

        # A post GWASI reports removed requests the day it was on (known from the warehouse).
        day = "2025-07-22"
        dg.materialize([gwasi_index], partition_key=day, instance=instance, resources={"pipeline": PipelineResource()})
        victim = next(e[0] for e in corpus.gwasi_entries if e[5] >= 1753142400 and e[5] < 1753228800)
        own_replica.remove_gwasi_post(victim)
        requests, _ = _tick(instance, cursor3)
        assert [r.partition_key for r in requests] == [day]


def test_downstream_follows_by_declarative_automation(tmp_path, monkeypatch, replica):
    monkeypatch.setenv("AUDIO_ASSETS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIO_ASSETS_HOST_MAP", replica.host_map_env())
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # nothing upstream happened: no history sweep
        # what a GWASI sensor run materialises: the day's index and the followed Patreon feeds
        dg.materialize([gwasi_index, patreon_posts], partition_key="2025-07-25", instance=instance,
                       resources={"pipeline": PipelineResource()})
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        # The day's chain follows in the same tick (Dagster plans the downstream of what it requests),
        # and only that day: one partition's work.
        daily = ["reddit_posts", "post_analysis", "audio_files", "scripts", "artwork"]
        for name in daily:
            assert second.get_requested_partitions(dg.AssetKey(name)) == {"2025-07-25"}, name
        assert second.get_num_requested(dg.AssetKey("rendered_videos")) == 0
        all_days = sum(second.get_num_requested(dg.AssetKey(k)) for k in ("releases", "catalogue", "release_similarity"))
        assert second.total_requested == len(daily) + all_days


def test_release_changes_request_render_runs_for_their_days():
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "releases", metadata={"changed_release_days": dg.MetadataValue.json(["2025-07-25", "2025-08-01"])}))
        ctx = dg.build_sensor_context(instance=instance, definitions=defs)
        requests = list(releases_changed_sensor(ctx) or [])
        assert sorted(r.partition_key for r in requests) == ["2025-07-25", "2025-08-01"]


def test_definitions_load_with_partitions_sensors_and_checks():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} >= {"gwasi_sensor", "releases_changed_sensor", "automation_sensor"}
    assert len(list(defs.resolve_asset_graph().asset_check_keys)) >= 5
    groups = {a.key.path[-1]: a.group_names_by_key[a.key] for a in ALL_ASSETS}
    assert set(groups.values()) == {"sources", "media", "releases", "stash"}
    assert all(a.descriptions_by_key[a.key] for a in ALL_ASSETS)
