"""Source layers and the polite client against the replica, with injected faults."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from audio_assets.downloads import DownloadError, download
from audio_assets.http_client import HostNotAllowed, PoliteClient
from audio_assets.layers import sources
from audio_assets.platforms import reddit, scriptbin
from audio_assets.settings import load_settings

MILK_SG = "https://soundgasm.net/u/SnakeySmut/Threesome-At-The-Milk-Maid-Cafe"
MILK_WHYP = "https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf"


@pytest.fixture
def env(tmp_path, replica):
    replica.clear_faults()
    replica.clear_requests()
    settings = load_settings({"AUDIO_ASSETS_HOST_MAP": replica.host_map_env(), "AUDIO_ASSETS_DATA": str(tmp_path / "data"),
                              "AUDIO_ASSETS_RATE_PER_HOST": "500"})
    client = PoliteClient(settings, backoff_base=0.01)
    yield settings, client, replica
    client.close()
    replica.clear_faults()


def _media(replica, host):
    return [r for r in replica.requests if r.host == host]


def test_soundgasm_download_survives_429_503_and_truncation(env):
    settings, client, replica = env
    replica.add_fault(host="soundgasm.net", kind="status", status=429, retry_after=0.2, count=1)
    replica.add_fault(host="media.soundgasm.net", kind="status", status=503, count=1)
    replica.add_fault(host="media.soundgasm.net", kind="truncate", count=1)
    row = sources.fetch_audio(settings, client, {"platform": "soundgasm", "url": MILK_SG})
    assert row["status"] == "ok", row["error"]
    media = _media(replica, "media.soundgasm.net")
    assert [r.status for r in media][:1] == [503] and len(media) == 3
    assert "range" in {k.lower() for k in media[-1].headers}  # resumed, not restarted
    path = settings.data_root / row["local_path"]
    assert path.exists() and not list(path.parent.glob("*.part"))
    assert row["duration_s"] > 1 and len(row["sha256"]) == 64 and row["platform_id"] and row["fingerprint"]
    assert client.stats["soundgasm.net"].retries == 1


def test_file_already_held_is_never_fetched_again(env):
    settings, client, replica = env
    first = sources.fetch_audio(settings, client, {"platform": "soundgasm", "url": MILK_SG})
    replica.clear_requests()
    again = sources.fetch_audio(settings, client, {"platform": "soundgasm", "url": MILK_SG})
    assert again["sha256"] == first["sha256"] and _media(replica, "media.soundgasm.net") == []
    # held under another name (a repost's page): linked from the warehouse's rows, not fetched
    (settings.data_root / first["local_path"]).rename(settings.data_root / "audio" / "elsewhere.m4a")
    held = {f"soundgasm:{first['platform_id']}": "audio/elsewhere.m4a"}
    third = sources.fetch_audio(settings, client, {"platform": "soundgasm", "url": MILK_SG}, held)
    assert third["status"] == "ok" and _media(replica, "media.soundgasm.net") == []


def test_a_day_run_again_reads_no_page_it_has_read(env):
    settings, client, replica = env
    def links(platform, url, label, variant=None):
        return json.dumps([{"platform": platform, "url": url, "label": label, "variant": variant}])

    posts = pl.DataFrame([
        {"post_id": "p1", "post_date": "2025-08-01", "audio_links": links("soundgasm", MILK_SG, "SG")},
        {"post_id": "p2", "post_date": "2025-08-01", "audio_links": links("whypit", MILK_WHYP, "Whyp", "F4M")},
    ])
    first = sources.build_audio_files(settings, client, posts)
    assert first.get_column("status").to_list() == ["ok", "ok"]
    replica.clear_requests()
    again = sources.build_audio_files(settings, client, posts, held=sources.held_files(first),
                                      pages=sources.held_pages(first))
    assert replica.requests == []  # no page, no API call, no media: the rows are the earlier run's
    assert again.to_dicts() == first.to_dicts()
    # another post (another day) linking the same page: its row, with its own post and label
    other = pl.DataFrame([{"post_id": "p3", "post_date": "2025-08-02", "audio_links": links("soundgasm", MILK_SG, "Listen")}])
    row = sources.build_audio_files(settings, client, other, pages=sources.held_pages(first)).row(0, named=True)
    assert replica.requests == [] and (row["post_id"], row["post_date"], row["link_label"]) == ("p3", "2025-08-02", "Listen")
    assert row["sha256"] == first.row(0, named=True)["sha256"]
    # a file that is gone is fetched again
    (settings.data_root / first.row(0, named=True)["local_path"]).unlink()
    refetched = sources.build_audio_files(settings, client, posts, held=sources.held_files(first),
                                          pages=sources.held_pages(first))
    assert refetched.get_column("status").to_list() == ["ok", "ok"]
    assert {r.host for r in replica.requests} == {"soundgasm.net", "media.soundgasm.net"}


def test_whypit_expired_signed_url_gets_a_fresh_one(env):
    settings, client, replica = env
    replica.add_fault(host="cdn.whyp.it", kind="expire", count=1)
    row = sources.fetch_audio(settings, client, {"platform": "whypit", "url": MILK_WHYP})
    assert row["status"] == "ok", row["error"]
    assert len(_media(replica, "api.whyp.it")) == 2  # the track JSON again, for a fresh signed URL
    assert all(r.headers.get("Referer") == "https://whyp.it/" for r in _media(replica, "cdn.whyp.it"))
    assert "token=" not in row["media_url"]  # signed URLs are not stored


def test_unlisted_whypit_needs_its_token_and_removed_audio_is_marked(env):
    settings, client, _ = env
    no_token = sources.fetch_audio(settings, client, {"platform": "whypit", "url": MILK_WHYP.split("?")[0]})
    assert no_token["status"] == "not_found" and "404" in no_token["error"]
    gone = sources.fetch_audio(settings, client, {"platform": "soundgasm",
                                                  "url": "https://soundgasm.net/u/BriarRoseVA/Your-Husband-Missed-You-On-The-Trip"})
    assert gone["status"] == "not_found"


def test_hotaudio_is_metadata_only(env):
    settings, client, replica = env
    row = sources.fetch_audio(settings, client, {"platform": "hotaudio",
                                                 "url": "https://hotaudio.net/u/Lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again"})
    assert row["status"] == "metadata_only" and row["platform_title"] and row.get("local_path") is None
    assert {r.host for r in replica.requests} == {"hotaudio.net"}


def test_download_refuses_web_pages_and_oversized_files(env, tmp_path):
    settings, client, _ = env
    with pytest.raises(DownloadError, match="web page"):
        download(client, MILK_SG, tmp_path / "x.m4a")
    from audio_assets.platforms import soundgasm

    media = soundgasm.resolve(client, MILK_SG).media_url
    with pytest.raises(DownloadError, match="size cap"):
        download(client, media, tmp_path / "y.m4a", max_bytes=1000)
    assert not (tmp_path / "y.m4a").exists() and not (tmp_path / "y.m4a.part").exists()


def test_only_allow_listed_hosts_are_fetched(env):
    _, client, _ = env
    for url in ["https://evil.example.com/x", "file:///etc/passwd", "http://169.254.169.254/latest", "ftp://soundgasm.net/x"]:
        with pytest.raises(HostNotAllowed):
            client.get(url)


def test_reddit_reads_100_posts_per_request(env, corpus):
    settings, client, replica = env
    ids = [e[0] for e in corpus.gwasi_entries]
    found = reddit.fetch_posts_json(client, ids)
    calls = [r for r in replica.requests if "/api/info" in r.path]
    assert len(calls) == math.ceil(len(ids) / 100)
    missing = set(ids) - set(found)
    assert len(missing) == 1  # the post GWASI lists but Reddit no longer returns


def test_reddit_posts_layer_marks_deleted_and_missing(env, corpus):
    settings, client, _ = env
    g = pl.DataFrame([{"post_id": e[0], "post_date": "2025-07-28", "status": "ok", "title": e[4], "author": e[2],
                       "created_utc": e[5], "subreddit": e[1], "flair": e[3], "score": e[6], "extra": None}
                      for e in corpus.gwasi_entries], schema_overrides={"extra": pl.Utf8})
    df = sources.build_reddit_posts(settings, client, g)
    by = {r["post_id"]: r for r in df.iter_rows(named=True)}
    assert by["1mbwvbg"]["status"] == "deleted" and by["1mbwvbg"]["author"] is None
    assert by["1m96mts"]["status"] == "missing" and by["1m96mts"]["source"] == "gwasi" and by["1m96mts"]["title"]
    assert by["1mf0zav"]["status"] == "ok" and by["1mf0zav"]["source"] == "json"


def test_reddit_through_praw_when_credentials_are_set(env, corpus, monkeypatch):
    settings, client, replica = env
    ids = [e[0] for e in corpus.gwasi_entries]
    found = reddit.fetch_posts_praw(client, ids, ("client-id", "client-secret", "python:audio_assets_test:0.1 (by u/test)"))
    assert "1mf0zav" in found and found["1mf0zav"]["author"] == "SnakeySmut"
    calls = [r for r in replica.requests if r.host == "oauth.reddit.com" and "/api/info" in r.path]
    assert len(calls) == math.ceil(len(ids) / 100)
    assert any("access_token" in r.path for r in replica.requests)


def test_reddit_rate_limit_budget_is_honoured(env):
    _, client, _ = env
    import httpx

    client._honour_rate_limit("www.reddit.com", httpx.Headers({"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "0.3"}))
    assert client.stats["www.reddit.com"].rate_limit_waits == 1
    import time

    start = time.monotonic()
    client._wait_for_slot("www.reddit.com")
    assert time.monotonic() - start >= 0.25


def test_scriptbin_gate_short_link_and_full_text(env, corpus):
    _, client, _ = env
    key = "TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure"
    spec = corpus.scripts[key]
    script = scriptbin.resolve(client, f"https://scriptbin.works/s/{spec['short_code']}")
    assert script.url == f"https://scriptbin.works/u/{key}"
    assert script.text == spec["text"]  # the whole text, no line cap
    assert script.author == "TheWritingJedi" and script.title == spec["title"]
    profile = scriptbin.fetch_profile(client, "TheWritingJedi")
    assert scriptbin.match_title(profile, spec["title"]) == script.url


def test_a_script_kept_is_not_read_from_the_site_again(env, corpus):
    settings, client, replica = env
    key = "TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure"
    url = f"https://scriptbin.works/u/{key}"
    posts = pl.DataFrame([{"post_id": f"p{i}", "post_date": "2025-08-01", "private_fill": False, "scribe": None,
                           "kind": "script_fill", "clean_title": "t",
                           "script_links": json.dumps([{"platform": "scriptbin", "url": url, "label": "script"}])}
                          for i in (1, 2)])
    first = sources.build_scripts(settings, client, posts)
    assert first.get_column("status").to_list() == ["ok", "ok"] and len(replica.requests_for("scriptbin.works")) >= 1
    replica.clear_requests()
    again = sources.build_scripts(settings, client, posts, held=sources.held_scripts(first))
    assert replica.requests == [] and again.to_dicts() == first.to_dicts()
    (settings.data_root / first.row(0, named=True)["text_path"]).unlink()  # gone: read from the site again
    third = sources.build_scripts(settings, client, posts, held=sources.held_scripts(first))
    assert third.get_column("status").to_list() == ["ok", "ok"] and replica.requests_for("scriptbin.works")
    assert (settings.data_root / third.row(0, named=True)["text_path"]).read_text() == corpus.scripts[key]["text"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b\\c", "nul\x00byte", "x" * 500, "\u202eevil\u202c.mp4",
                                  "emoji \U0001F49C name", "..", "", "CON", " . "])
def test_outside_names_never_become_unsafe_paths(tmp_path, name):
    from audio_assets.downloads import DownloadError, safe_name, within

    safe = safe_name(name)
    assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe and safe not in (".", "..")
    assert len(safe) <= 80 and all(c.isascii() and (c.isalnum() or c in "._-") for c in safe)
    assert within(tmp_path, tmp_path / safe / "f.m4a")
    with pytest.raises(DownloadError, match="outside the data root"):
        within(tmp_path, tmp_path / ".." / "escape.m4a")


def test_soundgasm_profile_lists_uploads_with_canonical_casing(env, corpus):
    from audio_assets.platforms import soundgasm

    _, client, _ = env
    items = soundgasm.fetch_profile(client, "lurkydip")
    urls = {i["url"] for i in items}
    assert "https://soundgasm.net/u/LurkyDip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again" in urls
    assert all(i["title"] and i["play_count"] is not None for i in items)


def test_a_host_that_keeps_failing_costs_one_round_of_retries(env, tmp_path):
    """A download does not retry what the client has already retried: a host answering 503 to
    everything is asked max_retries + 1 times in all, not that many times per download attempt."""
    from audio_assets.http_client import FetchError
    from audio_assets.platforms import soundgasm

    settings, client, replica = env
    media = soundgasm.resolve(client, MILK_SG).media_url
    replica.clear_requests()
    replica.add_fault(host="media.soundgasm.net", kind="status", status=503, count=100)
    with pytest.raises(FetchError, match="503"):
        download(client, media, tmp_path / "z.m4a")
    assert len(_media(replica, "media.soundgasm.net")) == client.max_retries + 1
    assert not (tmp_path / "z.m4a").exists()
