"""Patreon (public posts; paid posts only with the user's own session) and other hosts
(recorded links; audio through yt-dlp only when opted in), against the replica."""

from __future__ import annotations

import copy
import json
import shutil
import sys
import threading
import time
import traceback
import types
from pathlib import Path

import httpx
import pytest

from audio_assets import media
from audio_assets.ffmpeg_tools import run_ffmpeg
from audio_assets.http_client import FetchError, PoliteClient
from audio_assets.layers import sources
from audio_assets.platforms import other_hosts, patreon
from audio_assets.replica.corpus import build_corpus
from audio_assets.replica.server import ReplicaServer
from audio_assets.settings import KNOWN_HOSTS, load_settings

FIXTURES = Path(__file__).parent / "fixtures"
MEDIA_DIR = Path("/tmp/audio_assets_test_media")
PH_URL = "https://www.pornhub.com/view_video.php?viewkey=688a9b1ce032c"


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


@pytest.fixture(scope="module")
def server(corpus):
    srv = ReplicaServer(corpus, MEDIA_DIR).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("PATREON_SESSION_ID", raising=False)
    monkeypatch.delenv("AUDIO_ASSETS_YTDLP", raising=False)


@pytest.fixture
def env(server, tmp_path):
    server.clear_faults()
    server.clear_requests()
    settings = load_settings(
        {
            "AUDIO_ASSETS_HOST_MAP": server.host_map_env(),
            "AUDIO_ASSETS_DATA": str(tmp_path),
            "AUDIO_ASSETS_RATE_PER_HOST": "500",
        }
    )
    client = PoliteClient(settings, backoff_base=0.01)
    yield settings, client, server
    client.close()
    server.clear_faults()


def _posts(corpus, *, post_type="audio_file", public=None):
    return [
        r
        for r in corpus.patreon.values()
        if r["post_type"] == post_type and (public is None or r["is_public"] == public)
    ]


@pytest.fixture
def public_post(corpus):
    (rec,) = _posts(corpus, public=True)
    return rec


@pytest.fixture
def paid_post(corpus):
    (rec,) = _posts(corpus, public=False)
    return rec


def _url(rec: dict) -> str:
    return f"https://www.patreon.com/posts/{rec['slug']}-{rec['id']}"


def _fetch(settings, client, url, held=None):
    return sources.fetch_audio(settings, client, {"platform": "patreon", "url": url}, held)


def _no_secret(secret: str, *texts: object) -> None:
    for text in texts:
        blob = text if isinstance(text, str) else json.dumps(text, default=str)
        assert secret not in blob


# -- parser ----------------------------------------------------------------------------------


def _fixture_doc() -> dict:
    return json.loads((FIXTURES / "patreon_post.json").read_text())


def test_parse_post_json_fixture():
    post = patreon.parse_post_json(_fixture_doc(), "https://www.patreon.com/posts/108765432")
    assert post.id == "108765432" and post.post_type == "audio_file"
    assert post.title == "[F4M] Your Roommate Finally Admits She Likes You (early access)"
    assert post.url == "https://www.patreon.com/posts/f4m-your-roommate-finally-admits-108765432"
    assert post.slug == "f4m-your-roommate-finally-admits"
    assert post.published_at == "2025-07-18T19:05:40.000+00:00"
    assert post.can_view and not post.locked and post.creator == "VelvetVixenVA"
    assert post.text.splitlines() == [
        "[F4M] Your Roommate Finally Admits She Likes You \u2013 early access!",
        "",
        "Script by u/inkwell_iris",
        "Sound design by EchoForge",
        "",
        "Tags: roommates, confession, cuddles & kisses",
        "",
        "Thank you for supporting me <3",
    ]
    assert (
        post.audio_url.startswith("https://c10.patreonusercontent.com/") and "token-hash=" in post.audio_url
    )
    assert post.audio_name.endswith(".mp3") and post.audio_ext == ".mp3"
    assert post.public_audio_url.endswith("/1.mp3") and "?" not in post.public_audio_url
    assert post.image_url.startswith("https://c10.patreonusercontent.com/") and "/1.png" in post.image_url
    # signed URLs stay out of the record's repr (logs)
    assert "token-hash" not in repr(post)


class _FeedClient:
    """A client that answers a creator page (campaign 77) and then the feed pages given."""

    def __init__(self, *feed_pages):
        self.pages = list(feed_pages)
        self.asked: list[str] = []

    def get(self, url, headers=None, max_redirects=5):
        self.asked.append(url)
        if "/api/posts" not in url:
            return types.SimpleNamespace(text='{"campaign": {"data": {"id": "77"}}}')
        page = self.pages.pop(0)
        return types.SimpleNamespace(json=lambda: page)


def test_creator_feed_of_odd_shapes_marks_the_bad_post_and_keeps_the_rest():
    doc = _fixture_doc()
    good = doc["data"]
    bad = copy.deepcopy(good)  # a title that is not text: this post is unreadable, not the feed
    bad["id"], bad["attributes"]["title"] = "108765433", 123
    bad["attributes"]["url"] = "https://www.patreon.com/posts/bad-108765433"
    noon = copy.deepcopy(good)  # a day, then no time
    noon["id"], noon["attributes"]["published_at"] = "108765434", "2025-07-18 noon"
    noon["attributes"]["url"] = "https://www.patreon.com/posts/noon-108765434"
    included = copy.deepcopy(doc["included"])
    for inc in included:  # a creator name of the wrong type is no name
        if inc.get("type") == "campaign":
            inc["attributes"]["vanity"] = ["VelvetVixenVA"]
    undated = copy.deepcopy(good)  # attributes that are a list: unreadable, and no date to place it by
    undated["id"], undated["attributes"] = "108765435", [good["attributes"]]
    soon = copy.deepcopy(good)  # readable, but its date is words
    soon["id"], soon["attributes"]["published_at"] = "108765436", "soon"
    soon["attributes"]["url"] = "https://www.patreon.com/posts/soon-108765436"
    no_such_day = copy.deepcopy(good)  # the shape of a date, but no such day
    no_such_day["id"], no_such_day["attributes"]["published_at"] = "108765437", "2025-02-30T10:00:00.000+00:00"
    no_such_day["attributes"]["url"] = "https://www.patreon.com/posts/feb-108765437"
    page = {"data": [good, "a string, not a post", bad, noon, undated, soon, no_such_day], "included": included, "links": {"next": 42}}
    posts = patreon.list_creator_posts(_FeedClient(page), "VelvetVixenVA", env={})
    assert [(p.id, bool(p.error)) for p in posts] == [
        ("108765432", False), ("108765433", True), ("108765434", False), ("108765435", True), ("108765436", False),
        ("108765437", False)]
    assert "title is not a string" in posts[1].error and posts[1].published_at == good["attributes"]["published_at"]
    assert all(p.creator != ["VelvetVixenVA"] for p in posts)

    rows, problems = sources.build_patreon_posts(_FeedClient(page), ["VelvetVixenVA"], ["2025-07-18"])
    by_id = {r["post_id"]: r for r in rows.to_dicts()}
    assert set(by_id) == {"pt_108765432", "pt_108765433", "pt_108765434"}
    assert problems == [
        "Patreon post https://www.patreon.com/posts/108765435 of VelvetVixenVA has no publication date, "
        "so no day's partition holds it: Patreon API answer for post 108765435 has no attributes object",
        "Patreon post https://www.patreon.com/posts/soon-108765436 of VelvetVixenVA has a publication date 'soon' "
        "that is not a date, so no day's partition holds it",
        "Patreon post https://www.patreon.com/posts/feb-108765437 of VelvetVixenVA has a publication date "
        "'2025-02-30T10:00:00.000+00:00' that is not a date, so no day's partition holds it"]
    assert by_id["pt_108765432"]["status"] == "ok" and by_id["pt_108765434"]["status"] == "ok"
    assert by_id["pt_108765434"]["created_utc"] is None
    assert by_id["pt_108765433"]["status"] == "invalid"
    assert by_id["pt_108765433"]["error"].startswith(
        "Patreon post https://www.patreon.com/posts/bad-108765433 could not be read: ")
    # a feed that is not a list of posts is the creator's problem, named, not a crash
    rows, problems = sources.build_patreon_posts(_FeedClient({"data": {"oops": 1}}), ["VelvetVixenVA"], ["2025-07-18"])
    assert rows.height == 0 and problems and "has no list of posts" in problems[0]


def test_parse_locked_and_audio_relationship():
    doc = _fixture_doc()
    attrs = doc["data"]["attributes"]
    attrs.update(current_user_can_view=False, content=None)  # post_file left in: still never used
    post = patreon.parse_post_json(doc, "https://www.patreon.com/posts/108765432")
    assert post.locked and not post.can_view
    assert post.audio_url is None and post.image_url is None and post.text is None
    assert post.title and post.creator == "VelvetVixenVA"

    doc = _fixture_doc()
    doc["data"]["attributes"]["post_file"] = None  # the file only as the included `audio` media
    post = patreon.parse_post_json(doc, "https://www.patreon.com/posts/108765432")
    assert post.audio_url and post.audio_url.split("?")[0].endswith("/1.mp3") and post.audio_ext == ".mp3"

    doc = _fixture_doc()
    doc["data"]["attributes"].update(post_type="text_only", post_file=None)
    doc["data"]["relationships"].pop("audio")
    post = patreon.parse_post_json(doc, "https://www.patreon.com/posts/108765432")
    assert post.audio_url is None and not post.locked and post.post_type == "text_only"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: [], "not a JSON object"),
        (lambda d: {"data": None}, "no data object"),
        (
            lambda d: {"errors": [{"status": "404", "detail": "The post could not be found."}]},
            "could not be found",
        ),
        (lambda d: {**d, "data": {**d["data"], "type": "campaign"}}, "not a post"),
        (lambda d: {**d, "data": {**d["data"], "id": "abc"}}, "no numeric post id"),
        (lambda d: {**d, "data": {**d["data"], "attributes": "x"}}, "no attributes"),
        (lambda d: {**d, "data": {**d["data"], "attributes": {"post_file": "x.mp3"}}}, "post_file"),
        (
            lambda d: {**d, "data": {**d["data"], "attributes": {"current_user_can_view": "yes"}}},
            "current_user_can_view",
        ),
    ],
)
def test_parse_post_json_malformed(mutate, message):
    with pytest.raises(patreon.ParseError, match=message):
        patreon.parse_post_json(mutate(copy.deepcopy(_fixture_doc())), "https://www.patreon.com/posts/1")


def test_post_url_patterns():
    assert patreon.parse_post_url("https://www.patreon.com/posts/f4m-some-title-12345678") == (
        "https://www.patreon.com/posts/f4m-some-title-12345678",
        "12345678",
        "f4m-some-title",
    )
    assert patreon.parse_post_url("https://www.patreon.com/posts/12345678")[1:] == ("12345678", None)
    assert patreon.parse_post_url("patreon.com/posts/my-2nd-audio-987654?utm_source=x")[1:] == (
        "987654",
        "my-2nd-audio",
    )
    assert patreon.parse_post_url("https://patreon.com/posts/title-55/")[1] == "55"
    for bad in (
        "https://www.patreon.com/VelvetVixenVA",
        "https://www.patreon.com/posts/no-id",
        "https://x.com/posts/1",
    ):
        assert patreon.parse_post_url(bad) is None
    assert patreon.strip_query("https://c10.patreonusercontent.com/a/1.mp3?token-time=1&token-hash=x#f") == (
        "https://c10.patreonusercontent.com/a/1.mp3"
    )
    assert "c10.patreonusercontent.com" in KNOWN_HOSTS


def test_session_value_is_checked_without_echoing_it():
    assert patreon.session_from_env({}) is None
    assert patreon.session_from_env({"PATREON_SESSION_ID": " abc-DEF_123 "}) == "abc-DEF_123"
    assert patreon.session_from_env({"PATREON_SESSION_ID": "session_id=abc"}) == "abc"
    bad = "abc\r\nX-Injected: 1"
    with pytest.raises(ValueError) as info:
        patreon.session_from_env({"PATREON_SESSION_ID": bad})
    assert "abc" not in str(info.value)


# -- the replica -----------------------------------------------------------------------------


def test_replica_patreon_corpus_is_separate(corpus, server):
    hm = server.host_map()
    assert {"patreon.com", "www.patreon.com", "c10.patreonusercontent.com"} <= set(hm)
    assert len(_posts(corpus, public=True)) == 1 and len(_posts(corpus, public=False)) == 1
    assert len(_posts(corpus, post_type="text_only")) == 1
    assert corpus.patreon_session_id and build_corpus().patreon == corpus.patreon
    # linked from no Reddit post: the pipeline's outputs over the Reddit corpus are unchanged
    for post in corpus.reddit_posts.values():
        assert "patreon" not in (post["selftext"] or "").lower()
    # the audio is an existing recording (the early-access copy of a release)
    for rec in _posts(corpus):
        assert rec["audio_id"] in {v.audio_id for r in corpus.releases for v in r.variants}


def test_replica_patreon_api_and_signed_cdn(server, corpus, paid_post):
    api = f"{server.host_map()['www.patreon.com']}/api/posts/{paid_post['id']}"
    with httpx.Client(timeout=10, follow_redirects=False) as c:
        anon = c.get(api).json()["data"]["attributes"]
        assert (
            anon["current_user_can_view"] is False and anon["post_file"] is None and anon["content"] is None
        )
        wrong = c.get(api, headers={"Cookie": "session_id=someone-else"}).json()["data"]["attributes"]
        assert wrong["current_user_can_view"] is False and wrong["post_file"] is None
        doc = c.get(api, headers={"Cookie": f"session_id={corpus.patreon_session_id}"}).json()
        attrs = doc["data"]["attributes"]
        assert attrs["current_user_can_view"] is True and doc["data"]["type"] == "post"
        media_url = attrs["post_file"]["url"]
        assert media_url.startswith("https://c10.patreonusercontent.com/") and "token-hash=" in media_url
        assert c.get(f"{server.host_map()['www.patreon.com']}/api/posts/1").status_code == 404
        bare = c.get(f"{server.host_map()['patreon.com']}/posts/{paid_post['id']}")
        assert bare.status_code == 301 and bare.headers["location"].startswith(
            "https://www.patreon.com/posts/"
        )

        full = c.get(server.url_for(media_url))
        assert (
            full.status_code == 200
            and full.headers["content-type"] == "audio/mp4"
            and len(full.content) > 1000
        )
        part = c.get(server.url_for(media_url), headers={"Range": "bytes=100-"})
        assert part.status_code == 206 and part.content == full.content[100:]
        assert part.headers["content-range"] == f"bytes 100-{len(full.content) - 1}/{len(full.content)}"
        unsigned = media_url.split("?")[0]
        assert c.get(server.url_for(unsigned)).status_code == 403
        tampered = media_url[:-3] + ("AAA" if not media_url.endswith("AAA") else "BBB")
        assert c.get(server.url_for(tampered)).status_code == 403
        other = _posts(corpus, public=True)[0]
        swapped = media_url.replace(
            f"/post/{paid_post['id']}/{paid_post['file_key']}/", f"/post/{other['id']}/{other['file_key']}/"
        )
        assert c.get(server.url_for(swapped)).status_code == 403  # a signature grants one file only


# -- Patreon through fetch_audio -------------------------------------------------------------


def test_public_post_downloads_and_decodes(env, public_post, corpus):
    settings, client, replica = env
    for url in (
        _url(public_post),
        f"https://www.patreon.com/posts/{public_post['id']}",
        f"patreon.com/posts/{public_post['slug']}-{public_post['id']}",
    ):
        row = _fetch(settings, client, url)
        assert row["status"] == "ok", row["error"]
    assert (
        row["platform_id"] == public_post["id"] and row["platform_user"] == public_post["creator"]["vanity"]
    )
    assert row["page_url"] == _url(public_post) and row["platform_title"] == public_post["title"]
    assert "Early access" in row["platform_description"] and "<p>" not in row["platform_description"]
    assert row["local_path"] == (
        f"audio/patreon/{public_post['creator']['vanity']}/{public_post['id']}-{public_post['slug']}.m4a"
    )
    path = settings.data_root / row["local_path"]
    check = media.check_audio(path)
    assert check.ok and row["duration_s"] > 1 and row["codec"] == "aac" and row["fingerprint"]
    assert not list(path.parent.glob("*.part"))
    assert row["media_url"].startswith("https://c10.patreonusercontent.com/") and "?" not in row["media_url"]
    # the early-access file is the same recording as the release's soundgasm upload
    sg = next(r for r in corpus.soundgasm.values() if r["audio_id"] == public_post["audio_id"])
    assert row["sha256"] == media.sha256_file(MEDIA_DIR / "soundgasm" / f"{sg['sha1']}.m4a")
    # no session: no cookie sent anywhere
    assert not any("cookie" in {k.lower() for k in r.headers} for r in replica.requests)
    # held: never fetched again
    replica.clear_requests()
    again = _fetch(settings, client, _url(public_post), {f"patreon:{public_post['id']}": row["local_path"]})
    assert again["status"] == "ok" and not replica.requests_for("c10.patreonusercontent.com")


def test_paid_post_without_session_is_locked(env, paid_post):
    settings, client, replica = env
    row = _fetch(settings, client, _url(paid_post))
    assert row["status"] == "locked"
    assert "PATREON_SESSION_ID" in row["error"] and "your own" in row["error"]
    assert (
        row.get("local_path") is None
        and row["media_url"] is None
        and row["platform_title"] == paid_post["title"]
    )
    assert not replica.requests_for("c10.patreonusercontent.com")
    assert not (settings.data_root / "audio" / "patreon").exists()


def test_paid_post_with_someone_elses_session_stays_locked(env, paid_post, monkeypatch):
    settings, client, replica = env
    monkeypatch.setenv("PATREON_SESSION_ID", "not-a-patron-of-this-tier")
    row = _fetch(settings, client, _url(paid_post))
    assert row["status"] == "locked" and "cannot view it" in row["error"]
    _no_secret("not-a-patron-of-this-tier", row)
    assert not replica.requests_for("c10.patreonusercontent.com")


def test_paid_post_with_own_session_downloads_and_secret_stays_out(env, paid_post, corpus, monkeypatch):
    settings, client, replica = env
    secret = corpus.patreon_session_id
    monkeypatch.setenv("PATREON_SESSION_ID", secret)
    row = _fetch(settings, client, _url(paid_post))
    assert row["status"] == "ok", row["error"]
    assert media.check_audio(settings.data_root / row["local_path"]).ok
    _no_secret(secret, row)
    assert "token-hash" not in json.dumps(row) and "?" not in row["media_url"]
    # the cookie went to www.patreon.com only (not to the media CDN)
    with_cookie = [r for r in replica.requests if any(secret in str(v) for v in r.headers.values())]
    assert with_cookie and {r.host for r in with_cookie} == {"www.patreon.com"}
    assert replica.requests_for("c10.patreonusercontent.com")


def test_expired_signed_url_is_refreshed(env, paid_post, corpus, monkeypatch):
    settings, client, replica = env
    monkeypatch.setenv("PATREON_SESSION_ID", corpus.patreon_session_id)
    replica.add_fault(host="c10.patreonusercontent.com", kind="expire", count=1)
    row = _fetch(settings, client, _url(paid_post))
    assert row["status"] == "ok", row["error"]
    assert len(replica.requests_for("www.patreon.com")) == 2  # the post again, for a fresh signed URL


def test_secret_never_in_error_texts(env, paid_post, corpus, monkeypatch):
    settings, client, replica = env
    secret = corpus.patreon_session_id
    monkeypatch.setenv("PATREON_SESSION_ID", secret)

    missing = _fetch(settings, client, "https://www.patreon.com/posts/gone-123")
    assert missing["status"] == "not_found" and "404" in missing["error"]
    _no_secret(secret, missing)

    replica.add_fault(host="www.patreon.com", kind="status", status=401, count=1)
    expired = _fetch(settings, client, _url(paid_post))
    assert expired["status"] == "error" and "expired" in expired["error"]
    _no_secret(secret, expired)

    replica.add_fault(host="c10.patreonusercontent.com", kind="status", status=404, count=5)
    gone = _fetch(settings, client, _url(paid_post))
    assert gone["status"] == "not_found"
    _no_secret(secret, gone)
    assert "token-hash" not in gone["error"] and "token-time" not in gone["error"]
    replica.clear_faults()

    for url, fault in (("https://www.patreon.com/posts/gone-123", None), (_url(paid_post), 403)):
        if fault:
            replica.add_fault(host="www.patreon.com", kind="status", status=fault, count=1)
        with pytest.raises(FetchError) as info:
            patreon.resolve(client, url)
        exc = info.value
        _no_secret(secret, str(exc), repr(exc), exc.url, "".join(traceback.format_exception(exc)))


def test_text_only_post_has_no_audio(env, corpus):
    settings, client, _ = env
    (rec,) = _posts(corpus, post_type="text_only")
    row = _fetch(settings, client, _url(rec))
    assert row["status"] == "no_audio" and "text_only" in row["error"] and row.get("local_path") is None


# -- other hosts: yt-dlp ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_audio(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ytdlp") / "sample.m4a"
    run_ffmpeg(
        ["-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-ac", "1", "-c:a", "aac", str(path)]
    )
    return path


@pytest.fixture
def fake_ytdlp(monkeypatch, sample_audio):
    """A stand-in `yt_dlp` module: writes a small audio file, touches no network."""
    calls: list[dict] = []
    state = {"active": 0, "max_active": 0, "delay": 0.0}
    lock = threading.Lock()

    class YoutubeDL:
        def __init__(self, params=None):
            self.params = dict(params or {})

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def extract_info(self, url, download=True):
            with lock:
                state["active"] += 1
                state["max_active"] = max(state["max_active"], state["active"])
                calls.append({"url": url, "params": self.params, "download": download})
            try:
                time.sleep(state["delay"])
                path = Path(self.params["outtmpl"].replace("%(ext)s", "m4a"))
                shutil.copyfile(sample_audio, path)
                return {
                    "id": "688a9b1ce032c",
                    "title": "A title",
                    "ext": "m4a",
                    "requested_downloads": [{"filepath": str(path)}],
                }
            finally:
                with lock:
                    state["active"] -= 1

    module = types.ModuleType("yt_dlp")
    module.YoutubeDL = YoutubeDL
    module.calls, module.state = calls, state
    monkeypatch.setitem(sys.modules, "yt_dlp", module)
    return module


def test_ytdlp_fetch_when_enabled(env, fake_ytdlp, monkeypatch):
    settings, client, _ = env
    monkeypatch.setenv("AUDIO_ASSETS_YTDLP", "1")
    row = sources.fetch_audio(settings, client, {"platform": "pornhub", "url": PH_URL})
    assert row["status"] == "ok", row["error"]
    assert row["local_path"] == "audio/pornhub/688a9b1ce032c.m4a" and row["platform_id"] == "688a9b1ce032c"
    assert row["duration_s"] > 2 and row["fingerprint"] and len(row["sha256"]) == 64
    (call,) = fake_ytdlp.calls
    params = call["params"]
    assert call["url"] == PH_URL and call["download"] is True
    assert params["format"].startswith("bestaudio") and params["concurrent_fragment_downloads"] == 1
    assert params["noplaylist"] and params["postprocessors"][0]["key"] == "FFmpegExtractAudio"
    assert not any(k in params for k in ("cookiefile", "cookiesfrombrowser", "username", "password"))
    folder = settings.data_root / "audio" / "pornhub"
    assert sorted(p.name for p in folder.iterdir()) == ["688a9b1ce032c.m4a"]  # staging cleaned up
    # a file already held is never fetched again
    again = sources.fetch_audio(settings, client, {"platform": "pornhub", "url": PH_URL})
    assert again["status"] == "ok" and again["sha256"] == row["sha256"] and len(fake_ytdlp.calls) == 1


def test_ytdlp_one_download_at_a_time_per_host(tmp_path, fake_ytdlp, monkeypatch):
    monkeypatch.setenv("AUDIO_ASSETS_YTDLP", "1")
    fake_ytdlp.state["delay"] = 0.2
    urls = [f"https://www.pornhub.com/view_video.php?viewkey=ph{i}" for i in range(3)]
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda u=u: results.append(
                other_hosts.fetch_with_ytdlp(u, tmp_path / "ph", lock_dir=tmp_path / "locks")
            )
        )
        for u in urls
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(p.is_file() and p.parent == tmp_path / "ph" for p in results)
    assert fake_ytdlp.state["max_active"] == 1


def test_ytdlp_not_enabled_records_the_link(env, fake_ytdlp):
    settings, client, _ = env
    row = sources.fetch_audio(settings, client, {"platform": "pornhub", "url": PH_URL})
    assert (
        row["status"] == "link_only"
        and "pip install yt-dlp" in row["error"]
        and "AUDIO_ASSETS_YTDLP=1" in row["error"]
    )
    assert row.get("local_path") is None and fake_ytdlp.calls == []
    with pytest.raises(other_hosts.YtdlpUnavailable, match="AUDIO_ASSETS_YTDLP"):
        other_hosts.fetch_with_ytdlp(PH_URL, settings.data_root / "x")


def test_ytdlp_enabled_but_not_installed_records_the_link(env, monkeypatch):
    settings, client, _ = env
    monkeypatch.setenv("AUDIO_ASSETS_YTDLP", "1")
    monkeypatch.setitem(sys.modules, "yt_dlp", None)  # import yt_dlp -> ImportError
    row = sources.fetch_audio(
        settings, client, {"platform": "erocast", "url": "https://erocast.me/track/4321/some-audio"}
    )
    assert (
        row["status"] == "link_only"
        and "not installed" in row["error"]
        and "pip install yt-dlp" in row["error"]
    )


def test_ytdlp_only_for_its_hosts(env, fake_ytdlp, monkeypatch):
    settings, client, _ = env
    monkeypatch.setenv("AUDIO_ASSETS_YTDLP", "1")
    row = sources.fetch_audio(settings, client, {"platform": "other", "url": "https://example.com/a.mp3"})
    assert row["status"] == "link_only" and fake_ytdlp.calls == []
