"""The local replica of the outside world: corpus ground truth and the HTTP server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from audio_assets.ffmpeg_tools import probe
from audio_assets.replica.corpus import build_corpus
from audio_assets.replica.server import ReplicaServer

MEDIA_DIR = Path(os.environ.get("AUDIO_ASSETS_TEST_MEDIA", "/tmp/audio_assets_test_media"))
SG_MEDIA = re.compile(
    r'm4a:\s*"(https?:(?:\\/|/)(?:\\/|/)media\.soundgasm\.net(?:\\/|/)sounds(?:\\/|/)[0-9a-f]{40}\.m4a)"'
)


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


@pytest.fixture(scope="module")
def server(corpus):
    srv = ReplicaServer(corpus, MEDIA_DIR).start()
    yield srv
    srv.stop()


@pytest.fixture()
def client():
    with httpx.Client(timeout=10, follow_redirects=False) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").clear_faults()


def url(server: ReplicaServer, real: str) -> str:
    return server.url_for(real)


# ---------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------


def test_corpus_is_deterministic(corpus):
    again = build_corpus()
    assert again == corpus
    assert build_corpus(7) != corpus
    assert len(corpus.days) >= 14 and corpus.days[0] == "2025-07-20" and corpus.days[-1] == "2025-08-05"


def test_corpus_shape(corpus):
    rels = corpus.releases
    assert len(rels) >= 60
    assert len({r.key for r in rels}) == len(rels)
    assert len({r.day for r in rels}) >= 14
    assert all(r.day in corpus.days for r in rels)
    performers = {p for r in rels for p in r.performers}
    scribes = {r.scribe for r in rels if r.scribe}
    assert len(performers) >= 10 and len(scribes) >= 5
    ids = [e[0] for e in corpus.gwasi_entries]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[0-9a-z]{6,7}", i) for i in ids)
    lo, hi = 1752969600, 1754438400  # 2025-07-20 .. 2025-08-06 UTC
    for pid, post in corpus.reddit_posts.items():
        assert post["id"] == pid and post["name"] == f"t3_{pid}"
        assert lo <= post["created_utc"] < hi
        assert post["permalink"].startswith(f"/r/gonewildaudio/comments/{pid}/")
        assert post["is_self"] and post["over_18"] and post["domain"] == "self.gonewildaudio"
        assert "crosspost_parent_list" not in post
        assert re.match(r"^\[[^\]]+\]", post["title"])
    for e in corpus.gwasi_entries:
        assert e[1] == "gonewildaudio" and isinstance(e[5], int) and len(e) in (8, 9)
    # every distinct recording has its own audio id; mirrors share one
    aids = corpus.audio_ids()
    assert len(aids) == len(set(aids)) >= 60
    assert len({r["sha1"] for r in corpus.soundgasm.values()}) == len(corpus.soundgasm)
    assert len(set(corpus.images.values())) == len(corpus.images)
    assert sum(1 for r in rels if r.artwork_url) >= len(rels) // 3


def test_seed_releases(corpus):
    milk = corpus.release("milk-maid-cafe")
    assert milk.title == "Threesome At The Milk Maid Cafe!"
    assert milk.post_ids == ["1mf0zav"] and milk.day == "2025-08-01"
    assert milk.performers == ["SnakeySmut", "alekirser"] and milk.scribe == "Enno_Zalenno2"
    assert milk.private_fill and milk.script_url is None and milk.audiences == ["FF4M"]
    (v,) = milk.variants
    assert v.urls == [
        "https://soundgasm.net/u/SnakeySmut/Threesome-At-The-Milk-Maid-Cafe",
        "https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf",
    ]
    assert corpus.whypit[299338]["public"] is False and corpus.whypit[299338]["token"] == "xOYMf"
    assert corpus.soundgasm["SnakeySmut/Threesome-At-The-Milk-Maid-Cafe"]["audio_id"] == v.audio_id
    assert corpus.whypit[299338]["audio_id"] == v.audio_id
    body = corpus.reddit_posts["1mf0zav"]["selftext"]
    assert "https://www.pornhub.com/view_video.php?viewkey=688a9b1ce032c" in body
    assert corpus.reddit_posts["1mf0zav"]["permalink"].endswith(
        "/ff4m_threesome_at_the_milk_maid_cafe_script_fill/"
    )

    shy = corpus.release("shy-ghost-girl")
    assert shy.post_ids == ["1mf1onp"] and shy.performers == ["Lurkydip"] and shy.scribe == "TheWritingJedi"
    assert shy.script_offer_post_id == "1me43oy"
    assert (
        shy.script_url
        == "https://scriptbin.works/u/TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure"
    )
    (v,) = shy.variants
    assert v.urls == [
        "https://hotaudio.net/u/Lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again",
        "https://soundgasm.net/u/LurkyDip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again",
        "https://whyp.it/tracks/299350/shy-ghost-girl-possesses-you-to-feel-pleasure-again",
    ]
    assert corpus.whypit[299350]["public"] is True
    offer = corpus.reddit_posts["1me43oy"]
    assert offer["link_flair_text"] == "Script Offer" and shy.script_url in offer["selftext"]
    assert (
        offer["permalink"]
        == "/r/gonewildaudio/comments/1me43oy/f4m_shy_ghost_girl_possesses_you_to_feel_pleasure/"
    )
    fill_body = corpus.reddit_posts["1mf1onp"]["selftext"]
    assert "comments/1me43oy/" in fill_body and shy.script_url in fill_body
    assert "TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure" in corpus.scripts
    assert corpus.gwasi_fills["1me43oy"] == ["1mf1onp"]


def test_special_cases(corpus):
    sc = corpus.special_cases
    rel = corpus.release
    collabs = [r for r in corpus.releases if len(r.performers) >= 2]
    assert len(collabs) >= 4
    for key in sc["audience_variants"]:
        assert [v.label for v in rel(key).variants] == ["F4M", "F4F"]
    for key in sc["sfx_variants"]:
        assert [v.label for v in rel(key).variants] == ["SFX", "No SFX"]
        body = corpus.reddit_posts[rel(key).post_ids[0]]["selftext"]
        assert "SFX version" in body and "No SFX version" in body
    a, b = (rel(k) for k in sc["double_fill"])
    assert a.script_url == b.script_url and a.script_offer_post_id == b.script_offer_post_id
    assert a.day != b.day and a.performers[0] != b.performers[0]
    assert sorted(corpus.gwasi_fills[a.script_offer_post_id]) == sorted(a.post_ids + b.post_ids)
    assert len(corpus.script_offer_post_ids) >= 5
    for pid in corpus.script_offer_post_ids:
        post = corpus.reddit_posts[pid]
        assert "scriptbin.works/" in post["selftext"] and "soundgasm" not in post["selftext"]
        assert pid not in {p for r in corpus.releases for p in r.post_ids}
    mirrored = [
        r
        for r in corpus.releases
        if any(
            any("soundgasm" in u for u in v.urls) and any("whyp.it" in u for u in v.urls) for v in r.variants
        )
    ]
    assert len(mirrored) >= 5
    statuses = Counter(r.status for r in corpus.releases)
    assert statuses["hotaudio_only"] == statuses["deleted"] == statuses["audio_removed"] == 1
    hot = rel(sc["hotaudio_only"][0])
    assert all(not v.downloadable and all("hotaudio.net" in u for u in v.urls) for v in hot.variants)
    deleted = rel(sc["deleted"][0])
    post = corpus.reddit_posts[deleted.post_ids[0]]
    assert (post["author"], post["selftext"], post["removed_by_category"]) == (
        "[deleted]",
        "[deleted]",
        "deleted",
    )
    assert deleted.variants == []
    missing = rel(sc["reddit_missing"][0])
    assert missing.post_ids[0] not in corpus.reddit_posts
    assert missing.post_ids[0] in {e[0] for e in corpus.gwasi_entries}
    removed = rel(sc["audio_removed"][0])
    (v,) = removed.variants
    assert not v.downloadable and corpus.soundgasm[v.urls[0].split("/u/")[1]]["removed"]
    assert "\\_" in corpus.reddit_posts[rel(sc["escaped_url"][0]).post_ids[0]]["selftext"]
    # performers whose soundgasm casing differs from Reddit's
    assert any(
        k.split("/")[0] not in {p for r in corpus.releases for p in r.performers} for k in corpus.soundgasm
    )


# ---------------------------------------------------------------------------
# GWASI
# ---------------------------------------------------------------------------


def test_gwasi_delta_and_shards(server, corpus, client):
    gw = server.host_map()["gwasi.com"]
    delta = client.get(f"{gw}/delta.json").json()
    assert delta["base"] == corpus.gwasi_base_version and re.fullmatch(r"[0-9a-f]{10}", delta["base"])
    assert {"entries", "fills", "flairs", "newest", "oldest", "removed", "scores"} <= set(delta)
    delta_days = set(corpus.days[-corpus.gwasi_delta_days :])
    assert delta["entries"] and all(corpus.day_of(e[0]) in delta_days for e in delta["entries"])
    shard_entries, n = [], 1
    while True:
        r = client.get(f"{gw}/base_{delta['base']}/{n}.json")
        if r.status_code == 404:
            break
        assert r.status_code == 200 and r.json()["off"] == []
        shard_entries += r.json()["entries"]
        n += 1
    assert n - 1 >= 3
    single = client.get(f"{gw}/base_{delta['base']}.json").json()
    assert sorted(map(tuple, single["entries"]), key=str) == sorted(map(tuple, shard_entries), key=str)
    all_ids = sorted(e[0] for e in shard_entries + delta["entries"])
    assert all_ids == sorted(e[0] for e in corpus.gwasi_entries)
    fills = {**single["fills"], **delta["fills"]}
    assert fills == corpus.gwasi_fills
    assert client.get(f"{gw}/base_0000000000/1.json").status_code == 404
    assert client.head(f"{gw}/delta.json").status_code == 200


def test_gwasi_runtime_changes(corpus):
    srv = ReplicaServer(corpus, MEDIA_DIR)
    post = dict(corpus.reddit_posts["1mf0zav"], id="1mzzzzz", name="t3_1mzzzzz", created_utc=1754400000.0)
    entry = srv.add_post(post, length=123)
    srv.remove_gwasi_post("1mf1onp")
    with srv, httpx.Client(timeout=10) as c:
        delta = c.get(f"{srv.host_map()['gwasi.com']}/delta.json").json()
        assert entry in delta["entries"] and delta["removed"] == ["1mf1onp"]
        info = c.get(f"{srv.host_map()['www.reddit.com']}/api/info.json?id=t3_1mzzzzz").json()
        assert [ch["data"]["id"] for ch in info["data"]["children"]] == ["1mzzzzz"]


# ---------------------------------------------------------------------------
# Reddit
# ---------------------------------------------------------------------------


def test_reddit_info_batching(server, corpus, client):
    rd = server.host_map()["www.reddit.com"]
    known = sorted(corpus.reddit_posts)
    missing = corpus.release(corpus.special_cases["reddit_missing"][0]).post_ids[0]
    ids = [known[5], missing, known[0], known[3]]
    r = client.get(f"{rd}/api/info.json", params={"id": ",".join(f"t3_{i}" for i in ids), "raw_json": "1"})
    assert r.status_code == 200
    for h in ("x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset"):
        assert h in r.headers
    listing = r.json()
    assert listing["kind"] == "Listing"
    assert [c["data"]["id"] for c in listing["data"]["children"]] == [known[5], known[0], known[3]]
    hundred = [f"t3_{i}" for i in (known * 2)[:100]]
    assert client.get(f"{rd}/api/info.json", params={"id": ",".join(hundred)}).status_code == 200
    r = client.get(f"{rd}/api/info.json", params={"id": ",".join([*hundred, "t3_" + known[0]])})
    assert r.status_code == 400
    # single post, both comment URL forms; legacy escaping without raw_json
    post = corpus.reddit_posts["1mf0zav"]
    page = client.get(f"{server.host_map()['reddit.com']}{post['permalink']}.json").json()
    assert page[0]["data"]["children"][0]["data"]["id"] == "1mf0zav" and page[1]["data"]["children"] == []
    short = client.get(f"{rd}/comments/1mf0zav/.json").json()[0]["data"]["children"][0]["data"]
    assert "&amp;" in short["selftext"] and short["selftext"] == post["selftext"].replace("&", "&amp;")
    raw = client.get(f"{rd}/comments/1mf0zav/.json?raw_json=1").json()[0]["data"]["children"][0]["data"]
    assert raw["selftext"] == post["selftext"]
    deleted_id = corpus.release(corpus.special_cases["deleted"][0]).post_ids[0]
    d = client.get(f"{rd}/comments/{deleted_id}/.json").json()[0]["data"]["children"][0]["data"]
    assert d["author"] == "[deleted]" and d["removed_by_category"] == "deleted"
    assert client.get(f"{rd}/comments/{missing}/.json").status_code == 404


def test_reddit_oauth(server, client):
    hm = server.host_map()
    assert (
        client.post(
            f"{hm['www.reddit.com']}/api/v1/access_token", data={"grant_type": "client_credentials"}
        ).status_code
        == 401
    )
    tok = client.post(
        f"{hm['www.reddit.com']}/api/v1/access_token",
        data={"grant_type": "client_credentials"},
        auth=("cid", "secret"),
    ).json()
    assert tok["token_type"] == "bearer" and tok["expires_in"] == 86400 and tok["access_token"]
    info = f"{hm['oauth.reddit.com']}/api/info/?id=t3_1mf0zav&raw_json=1"
    assert client.get(info).status_code == 401
    r = client.get(info, headers={"Authorization": f"bearer {tok['access_token']}"})
    assert r.status_code == 200 and r.json()["data"]["children"][0]["data"]["author"] == "SnakeySmut"
    assert "x-ratelimit-remaining" in r.headers


def test_praw_against_replica(server):
    praw = pytest.importorskip("praw")
    hm = server.host_map()
    reddit = praw.Reddit(
        client_id="cid",
        client_secret="secret",
        user_agent="linux:audio_assets.tests:0.1 (by u/audio_assets)",
        oauth_url=hm["oauth.reddit.com"] + "/",  # PRAW url-joins paths: keep the trailing slash
        reddit_url=hm["www.reddit.com"] + "/",
        check_for_updates=False,
    )
    subs = list(reddit.info(fullnames=["t3_1mf0zav", "t3_1mf1onp"]))
    assert [s.id for s in subs] == ["1mf0zav", "1mf1onp"]
    assert str(subs[1].author) == "Lurkydip"


# ---------------------------------------------------------------------------
# Audio hosts
# ---------------------------------------------------------------------------


def test_soundgasm_page_profile_and_range(server, corpus, client):
    page = client.get(
        url(server, "https://soundgasm.net/u/lurkydip/shy-ghost-girl-possesses-you-to-feel-pleasure-again")
    )
    assert page.status_code == 200
    rec = corpus.soundgasm["LurkyDip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again"]
    assert '<a href="https://soundgasm.net/u/LurkyDip">LurkyDip</a>' in page.text
    assert '<div class="jp-title" aria-label="title">' in page.text
    assert '<p style="white-space: pre-wrap;">' in page.text
    media = SG_MEDIA.search(page.text).group(1).replace("\\/", "/")
    assert media == f"https://media.soundgasm.net/sounds/{rec['sha1']}.m4a"
    escaped = [
        r for r in corpus.soundgasm.values() if not r["removed"] and int(r["sha1"][:2], 16) % 4 == 0
    ]  # some pages JSON-escape the URL
    assert escaped
    p2 = client.get(url(server, f"https://soundgasm.net/user/{escaped[0]['user']}/{escaped[0]['slug']}")).text
    assert "https:\\/\\/media.soundgasm.net\\/sounds\\/" in p2
    profile = client.get(url(server, "https://www.soundgasm.net/u/lurkydip")).text
    assert (
        'href="https://soundgasm.net/u/LurkyDip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again"'
        in profile
    )
    assert re.search(r'<span class="playCount">Play Count: \d+</span>', profile)

    murl = url(server, media)
    full = client.get(murl)
    assert full.status_code == 200 and full.headers["content-type"] == "audio/mp4"
    assert full.headers["accept-ranges"] == "bytes" and int(full.headers["content-length"]) == len(
        full.content
    )
    size = len(full.content)
    part = client.get(murl, headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-{size - 1}/{size}"
    assert full.content[:100] + part.content == full.content
    assert client.get(murl, headers={"Range": "bytes=0-9"}).content == full.content[:10]
    assert client.get(murl, headers={"Range": f"bytes={size}-"}).status_code == 416
    head = client.head(murl)
    assert head.status_code == 200 and head.headers["content-length"] == str(size) and head.content == b""

    removed = corpus.release(corpus.special_cases["audio_removed"][0]).variants[0].urls[0]
    assert client.get(url(server, removed)).status_code == 404
    assert client.get(url(server, "https://soundgasm.net/u/nobody/nothing")).status_code == 404
    assert client.get(f"{server.base_url}/example.com/").status_code == 404


def test_whypit_api_token_and_cdn(server, corpus, client):
    api = server.host_map()["api.whyp.it"]
    assert client.get(f"{api}/api/tracks/299338").status_code == 404
    assert client.get(f"{api}/api/tracks/299338?token=wrong").json() == {"message": "Not found"}
    track = client.get(f"{api}/api/tracks/299338?token=xOYMf").json()["track"]
    assert track["slug"] == "threesome-at-the-milk-maid-cafe" and track["public"] is False
    assert track["user"]["username"] == "SnakeySmut" and isinstance(track["duration"], float)
    assert client.get(f"{api}/api/tracks/299350").status_code == 200  # public: no token needed
    lossy = track["lossy_url"]
    assert re.fullmatch(r"https://cdn\.whyp\.it/[0-9a-f-]{36}\.mp3\?token=[0-9a-f]+&expires=\d+", lossy)
    ref = {"Referer": "https://whyp.it/"}
    assert client.get(url(server, lossy)).status_code == 403
    ok = client.get(url(server, lossy), headers={"Referer": "https://whyp.it/tracks/299338"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "audio/mpeg" and len(ok.content) > 1000
    rng = client.get(url(server, lossy), headers={**ref, "Range": "bytes=10-19"})
    assert rng.status_code == 206 and rng.content == ok.content[10:20]
    name = lossy.split("/")[-1].split("?")[0]
    assert client.get(url(server, server.signed_cdn_url(name, ttl_s=-5)), headers=ref).status_code == 403
    assert (
        client.get(
            url(server, re.sub(r"token=[0-9a-f]+", "token=" + "0" * 32, lossy)), headers=ref
        ).status_code
        == 403
    )
    server.add_fault(host="cdn.whyp.it", kind="expire", count=1)
    assert client.get(url(server, lossy), headers=ref).status_code == 403
    assert client.get(url(server, lossy), headers=ref).status_code == 200
    if track["lossless_url"]:
        flac = client.get(url(server, track["lossless_url"]), headers=ref)
        assert flac.status_code == 200 and flac.headers["content-type"] == "audio/flac"
    if track["artwork_url"]:
        art = client.get(url(server, track["artwork_url"]))
        assert art.status_code == 200 and art.headers["content-type"] == "image/jpeg"
    # user listing: public tracks only, paginated
    uid = next(t["user"]["id"] for t in corpus.whypit.values() if t["public"])
    seen, cursor = [], None
    while True:
        page = client.get(
            f"{api}/api/users/{uid}/tracks", params={"cursor": cursor} if cursor else None
        ).json()
        assert len(page["tracks"]) <= 10
        seen += [t["id"] for t in page["tracks"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(
        t["id"] for t in corpus.whypit.values() if t["user"]["id"] == uid and t["public"]
    )
    web = client.get(url(server, "https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf"))
    assert '<meta property="og:title" content="Threesome At The Milk Maid Cafe!">' in web.text


def test_hotaudio_has_metadata_but_no_audio(server, corpus, client):
    page = client.get(
        url(server, "https://hotaudio.net/u/Lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again")
    )
    assert page.status_code == 200
    text = page.text
    assert 'id="postbody"' in text and "Shy Ghost Girl Possesses You To Feel Pleasure Again" in text
    assert '<span class="font-bold">script</span> <a href="/u/TheWritingJedi">TheWritingJedi</a>' in text
    assert '<div class="prose prose-ha">' in text and 'property="og:description"' in text
    assert '<a class="tag"' in text and "18m 7s" in text
    assert not re.search(r"\.(m4a|mp3|flac|ogg|wav|m3u8)\b|media\.|cdn\.|audio/", text)
    profile = client.get(url(server, "https://hotaudio.net/u/lurkydip")).text
    assert 'href="/u/Lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again"' in profile


def test_scriptbin_terms_gate(server, corpus, client):
    script_url = "https://scriptbin.works/u/TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure"
    r = client.get(url(server, script_url))
    assert r.status_code == 302 and "agree-terms" in r.headers["location"]
    gate = client.get(url(server, r.headers["location"]))
    assert gate.status_code == 200 and "<form" in gate.text
    agreed = client.get(url(server, r.headers["location"] + "&agree=1"))
    assert agreed.status_code == 302 and agreed.headers["location"] == script_url
    assert "ta=y" in agreed.headers["set-cookie"]
    posted = client.post(
        url(server, "https://scriptbin.works/agree-terms"), data={"next": "/u/TheWritingJedi"}
    )
    assert (
        posted.status_code == 302 and posted.headers["location"] == "https://scriptbin.works/u/TheWritingJedi"
    )
    page = client.get(url(server, script_url), headers={"Cookie": "ta=y"})
    assert page.status_code == 200
    s = corpus.scripts["TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure"]
    words = len(s["text"].split())
    assert (
        '<span class="title-and-tags"><span>Shy Ghost Girl Possesses You To Feel Pleasure Again</span>'
        in page.text
    )
    assert '<span class="script-audience">F4M</span>' in page.text
    assert "<p>Performers: F<br>Listeners: M</p>" in page.text
    assert f'data-readywordcount="{words}"' in page.text and f"{words} words" in page.text
    assert page.text.count('class="line-raw"') == len(s["text"].split("\n"))
    assert 'data-isblank="yes"' in page.text
    short = client.get(
        url(server, f"https://scriptbin.works/s/{s['short_code']}"), headers={"Cookie": "ta=y"}
    )
    assert short.status_code == 302 and short.headers["location"] == script_url
    js = client.get(
        url(server, "https://scriptbin.works/u/TheWritingJedi.json"), headers={"Cookie": "ta=y"}
    ).json()
    item = next(x for x in js if x["slug"] == s["slug"])
    assert item["link"] == script_url and item["metadata"]["textStats"]["wordCount"] == words
    assert item["metadata"]["audienceShort"] == "F4M"


def test_images(server, corpus, client):
    for real in list(corpus.images)[:6]:
        r = client.get(url(server, real))
        assert r.status_code == 200
        assert r.headers["content-type"] == ("image/png" if real.endswith(".png") else "image/jpeg")
    assert client.get(url(server, "https://i.imgur.com/nothere.png")).status_code == 404


def test_mirrors_decode_to_same_recording(server, corpus, client, tmp_path):
    for key in ("milk-maid-cafe", "shy-ghost-girl"):
        (v,) = corpus.release(key).variants
        sg_url = next(u for u in v.urls if "soundgasm" in u)
        page = client.get(url(server, sg_url)).text
        m4a = client.get(url(server, SG_MEDIA.search(page).group(1).replace("\\/", "/"))).content
        tid = int(next(u for u in v.urls if "whyp.it" in u).split("/tracks/")[1].split("/")[0])
        token = corpus.whypit[tid]["token"]
        track = client.get(f"{server.host_map()['api.whyp.it']}/api/tracks/{tid}?token={token}").json()[
            "track"
        ]
        mp3 = client.get(url(server, track["lossy_url"]), headers={"Referer": "https://whyp.it/"}).content
        (tmp_path / f"{key}.m4a").write_bytes(m4a)
        (tmp_path / f"{key}.mp3").write_bytes(mp3)
        d1 = probe(tmp_path / f"{key}.m4a").duration_s
        d2 = probe(tmp_path / f"{key}.mp3").duration_s
        assert 3.0 <= d1 <= 6.2 and abs(d1 - d2) < 0.15
        assert abs(track["duration"] - d2) < 0.05


# ---------------------------------------------------------------------------
# Faults and robustness
# ---------------------------------------------------------------------------


def test_fault_injection(server, corpus, client):
    gw = server.host_map()["gwasi.com"]
    server.add_fault(host="gwasi.com", path_contains="delta", status=429, retry_after=2, count=1)
    r = client.get(f"{gw}/delta.json")
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert client.get(f"{gw}/delta.json").status_code == 200

    server.add_fault(host="gwasi.com", kind="reset", count=1)
    with pytest.raises(httpx.TransportError):
        client.get(f"{gw}/delta.json")
    assert client.get(f"{gw}/delta.json").status_code == 200

    rec = next(r for r in corpus.soundgasm.values() if not r["removed"])
    media = url(server, f"https://media.soundgasm.net/sounds/{rec['sha1']}.m4a")
    server.add_fault(host="media.soundgasm.net", kind="truncate", count=1)
    with pytest.raises(httpx.TransportError):
        client.get(media)
    last = server.requests_for("media.soundgasm.net")[-1]
    assert last.status == 200 and 0 < last.bytes_sent
    full = client.get(media)
    assert full.status_code == 200 and last.bytes_sent == len(full.content) // 2

    server.add_fault(host="gwasi.com", kind="delay", retry_after=0.3, count=1)
    t0 = time.monotonic()
    assert client.get(f"{gw}/delta.json").status_code == 200
    assert time.monotonic() - t0 >= 0.3

    server.add_fault(host="api.whyp.it", status=503, rate=0.5, seed=1)
    codes = [
        client.get(f"{server.host_map()['api.whyp.it']}/api/tracks/299350").status_code for _ in range(20)
    ]
    assert 0 < codes.count(503) < 20 and set(codes) == {200, 503}
    server.clear_faults()
    assert client.get(f"{server.host_map()['api.whyp.it']}/api/tracks/299350").status_code == 200
    recs = server.requests_for("gwasi.com")
    assert recs and {"method", "host", "path", "headers", "status", "bytes_sent"} <= set(recs[0]._fields)


def test_concurrent_requests(server, corpus):
    urls = [
        url(server, f"https://soundgasm.net/u/{r['user']}/{r['slug']}") for r in corpus.soundgasm.values()
    ]
    with httpx.Client(timeout=10) as c, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda u: c.get(u).status_code, urls * 2))
    removed = sum(1 for r in corpus.soundgasm.values() if r["removed"]) * 2
    assert codes.count(404) == removed and codes.count(200) == len(codes) - removed


def test_cli_prints_host_map_and_stops(server, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio_assets.replica.server", "--port", "0", "--media-dir", str(MEDIA_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("AUDIO_ASSETS_HOST_MAP=soundgasm.net=http://127.0.0.1:")
        pairs = dict(p.split("=", 1) for p in line.split("=", 1)[1].split(","))
        assert httpx.get(pairs["gwasi.com"] + "/delta.json", timeout=10).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
