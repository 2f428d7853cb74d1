"""Bad input, one catalogue, one pipeline run.

A small world (one day of the sample corpus, 2025-07-22, with its three releases) gets a
hostile extra: bad GWASI entries in the base shards and the delta, a base that GWASI
replaces in the middle of the walk, hostile Reddit posts, host pages missing every selector,
audio URLs serving web pages, nothing, too much or noise, responses that stall past the
client's timeout, and names with ``../``, slashes, NUL, 500 characters, right-to-left marks
and emoji. The whole pipeline runs once (sources, releases, render, Stash sync) and then,
for every kind in ``CATALOGUE``: its row is there with the expected status and a specific
error, the partition materialised, the day's good releases still match the corpus's ground
truth (rows lost: 0), and nothing was written outside the data root.

Stash's own bad answers (401, 500, GraphQL errors, failed or endless scan jobs) are left to
the Stash fault tests (test_run_faults.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from audio_assets.definitions import PipelineResource
from audio_assets.replica.corpus import _render_audio, build_corpus, synth_params
from audio_assets.replica.ground_truth import release_mismatches
from audio_assets.replica.server import ReplicaServer, Response
from audio_assets.replica.stash_emulator import StashEmulator
from audio_assets.runner import run_pipeline
from audio_assets.settings import environment
from audio_assets.stash.sync import BIDI_CONTROLS

from .conftest import MEDIA_CACHE

DAY = "2025-07-22"
T = 1753185600  # 2025-07-22 12:00 UTC
SIZE_CAP = 2_000_000  # AUDIO_ASSETS_MAX_AUDIO_BYTES for this world
TIMEOUT_S = 3.0  # AUDIO_ASSETS_HTTP_TIMEOUT for this world
NEW_BASE = "zzbase2025"  # the version GWASI switches to in the middle of the walk
ESCAPE = "zz-escape-marker"  # in every traversal attempt: no path holding it may exist outside the data root
DAILY_ASSETS = ["gwasi_index", "reddit_posts", "post_analysis", "audio_files", "scripts", "artwork",
                "rendered_videos", "stash_scenes"]


# -- the catalogue ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    n: int
    name: str
    what: str
    table: str  # where the kind's row is
    key: dict  # column -> value that finds the row (a callable value is a predicate)
    status: str  # the row's expected status
    error: str | None  # a regex its error must match (None: no error expected)
    extra: Callable[[Outcome, dict], None] | None = None  # further checks on the row and the run


def _not_on_disk_outside(o: Outcome, row: dict) -> None:
    o.path_is_safe(row.get("local_path") or row.get("text_path") or row.get("video_path"))


def _release_ok(post_id: str) -> Callable[[Outcome, dict], None]:
    """The post's release is complete: ok, a rendered video with a safe name, a Stash scene."""
    def check(o: Outcome, _row: dict) -> None:
        rel = o.release_of(post_id)
        assert rel["status"] == "ok", f"release of {post_id}: {rel['status']} {rel['status_reason']}"
        videos = [v for v in o.rows["rendered_videos"] if v["release_id"] == rel["release_id"]]
        assert videos and all(v["status"] == "ok" for v in videos), videos
        for v in videos:
            o.path_is_safe(v["video_path"])
            assert v["variant_id"] in o.synced_variants, f"no Stash scene for {v['variant_id']}"
            scene = o.stash.scenes[o.scene_ids[v["variant_id"]]]
            names = [o.stash.performers[i]["name"] for i in scene["performer_ids"]]
            for text in [scene["title"], scene.get("details") or "", *names]:
                assert text and not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text), \
                    f"Stash got a control character: {text[:80]!r}"
                assert not BIDI_CONTROLS & set(text), f"Stash got a bidirectional override: {text[:80]!r}"
    return check


def _release_no_audio(post_id: str, reason: str) -> Callable[[Outcome, dict], None]:
    def check(o: Outcome, _row: dict) -> None:
        rel = o.release_of(post_id)
        assert rel["status"] == "no_audio" and re.search(reason, rel["status_reason"] or ""), \
            f"release of {post_id}: {rel['status']} / {rel['status_reason']!r} (wanted /{reason}/)"
    return check


def _both(*checks):
    def check(o: Outcome, row: dict) -> None:
        for c in checks:
            c(o, row)
    return check


def _dup_later_shard_wins(o: Outcome, row: dict) -> None:
    rows = [r for r in o.rows["gwasi_index"] if r["post_id"] == "zzg10"]
    assert len(rows) == 1, rows
    # The later copy (by shard, then position) in the base as the replica serves it now.
    where = [(n, i, e) for n, shard in enumerate(o.replica.gwasi_shards, start=1)
             for i, e in enumerate(shard["entries"]) if isinstance(e, list) and e and e[0] == "zzg10"]
    assert len(where) == 2, where
    assert row["score"] == max(where)[2][6] and row["title"] == max(where)[2][4], (row, where)


def _base_walked_again(o: Outcome, _row: dict) -> None:
    versions = {r["base_version"] for r in o.rows["gwasi_index"]}
    assert versions == {NEW_BASE}, versions
    assert any(NEW_BASE in note for note in o.gwasi_notes), o.gwasi_notes
    # every base post of the day is there: the corpus's and the hostile ones from late shards
    assert {"zzg09", "zzg10"} <= {r["post_id"] for r in o.rows["gwasi_index"] if r["status"] == "ok"}


def _body_cut(o: Outcome, row: dict) -> None:
    assert row["body_chars"] >= 1_000_000 and len(row["body"]) == 200_000, (row["body_chars"], len(row["body"]))


def _stalled_once_then_fine(o: Outcome, _row: dict) -> None:
    assert o.faults.get("delay", 0) >= 2, o.faults  # the Reddit batch read and an audio file each stalled once
    assert any(r["post_id"] == "zzr02" for r in o.rows["reddit_posts"])  # the stalled batch still read


def _title_from_reddit(o: Outcome, _row: dict) -> None:
    assert o.release_of("zzg09")["title"] == "A Title GWASI Lost"


def _title_from_gwasi(o: Outcome, row: dict) -> None:
    assert row["title"] == "[F4M] GWASI Keeps The Title", row["title"]


def _performer_is(post_id: str, name: str) -> Callable[[Outcome, dict], None]:
    def check(o: Outcome, _row: dict) -> None:
        assert json.loads(o.release_of(post_id)["performers"])[0] == name
    return check


def _text_path_safe(o: Outcome, row: dict) -> None:
    o.path_is_safe(row["text_path"])


CATALOGUE: list[Kind] = [
    # -- GWASI ------------------------------------------------------------------------------
    Kind(1, "gwasi_too_few_fields", "a base-shard entry with 3 fields (no timestamp: no day can hold it)",
         "gwasi_rejects", {"post_id": "zzg01"}, "invalid", r"entry has 3 fields, expected 7 to 9"),
    Kind(2, "gwasi_too_many_fields", "a delta entry with 10 fields (its timestamp is usable: a row of its day)",
         "gwasi_index", {"post_id": "zzg02"}, "invalid", r"entry has 10 fields, expected 7 to 9"),
    Kind(3, "gwasi_not_a_list", "a base-shard entry that is a JSON object, not an array",
         "gwasi_rejects", {"raw": lambda v: v is not None and "zzg03" in v}, "invalid",
         r"entry is an object, expected a list"),
    Kind(4, "gwasi_id_traversal", "a delta entry whose post id is '../../zzg04'",
         "gwasi_index", {"raw": lambda v: v is not None and "../../zzg04" in v}, "invalid",
         r"post id '?\.\./\.\./zzg04'? is not a base36 Reddit id"),
    Kind(5, "gwasi_timestamp_text", "a base-shard entry whose created_utc is the text 'yesterday'",
         "gwasi_rejects", {"post_id": "zzg05"}, "invalid", r"created_utc '?yesterday'? is not a number"),
    Kind(6, "gwasi_timestamp_future", "a delta entry created in 2100",
         "gwasi_rejects", {"post_id": "zzg06"}, "invalid", r"created_utc 4102444800 is in the future"),
    Kind(7, "gwasi_score_wrong_type", "a base-shard entry whose score is an object",
         "gwasi_index", {"post_id": "zzg07"}, "invalid", r"score .*up.* is not a number"),
    Kind(8, "gwasi_length_wrong_type", "a delta entry whose length is the text 'long'",
         "gwasi_index", {"post_id": "zzg08"}, "invalid", r"length '?long'? is not a number"),
    Kind(9, "gwasi_null_title", "a base entry with a null title (Reddit has the post)",
         "gwasi_index", {"post_id": "zzg09"}, "ok", None, _both(_title_from_reddit, _release_ok("zzg09"))),
    Kind(10, "gwasi_id_in_two_shards", "one post id in two base shards with different scores and titles",
         "gwasi_index", {"post_id": "zzg10"}, "ok", None, _both(_dup_later_shard_wins, _release_ok("zzg10"))),
    Kind(11, "gwasi_base_vanishes_mid_walk", "GWASI replaces its base after shard 2 of the walk (old shards 404)",
         "gwasi_index", {"post_id": "zzg09"}, "ok", None, _base_walked_again),
    # -- Reddit -----------------------------------------------------------------------------
    Kind(12, "reddit_deleted", "a post deleted by its author ([deleted] author and body)",
         "reddit_posts", {"post_id": "zzr12"}, "deleted", None, _release_no_audio("zzr12", r"deleted by its author")),
    Kind(13, "reddit_removed", "a post removed by the moderators ([removed] body)",
         "reddit_posts", {"post_id": "zzr13"}, "removed", None,
         _release_no_audio("zzr13", r"removed by Reddit's moderators")),
    Kind(14, "reddit_missing", "a post GWASI lists that Reddit does not return",
         "reddit_posts", {"post_id": "zzr14"}, "missing", r"Reddit did not return this post",
         _release_no_audio("zzr14", r"Reddit did not return")),
    Kind(15, "reddit_crosspost", "a crosspost whose links live in the original post (another subreddit)",
         "reddit_posts", {"post_id": "zzr15", "crosspost_parent": "zzorig15"}, "ok", None, _release_ok("zzr15")),
    Kind(16, "reddit_giant_body", "a 1,000,000-character body (the audio link at its start)",
         "reddit_posts", {"post_id": "zzr16"}, "ok", r"body of 1,0\d\d,\d\d\d characters cut to the first 200,000",
         _both(_body_cut, _release_ok("zzr16"))),
    Kind(17, "reddit_unreadable_answer", "Reddit's answer has created_utc 'not-a-time' (the rest of the post is kept)",
         "reddit_posts", {"post_id": "zzr17"}, "ok",
         r"fields of the wrong type, left empty: created_utc \"not-a-time\" \(not a number\)$", _release_ok("zzr17")),
    Kind(18, "reddit_null_title", "Reddit's answer has a null title (GWASI has one)",
         "reddit_posts", {"post_id": "zzr18"}, "ok", None, _title_from_gwasi),
    # -- host pages -------------------------------------------------------------------------
    Kind(19, "soundgasm_page_without_selectors", "a soundgasm page with no player, title or description",
         "audio_files", {"post_id": "zzh19"}, "error",
         r"soundgasm page https://soundgasm\.net/u/zzbare/Bare-Page has no media URL .*layout may have changed",
         _release_no_audio("zzh19", r"has no media URL")),
    Kind(20, "whypit_answer_without_track", "whyp.it's API answers with no track object",
         "audio_files", {"post_id": "zzh20"}, "error", r"whyp\.it API answer for https://whyp\.it/tracks/990020/\S* "
         r"has no track object"),
    Kind(21, "hotaudio_page_without_selectors", "a HotAudio page with none of its fields",
         "audio_files", {"post_id": "zzh21"}, "error",
         r"hotaudio page https://hotaudio\.net/u/zzbare/Bare-Page has no title, length or description"),
    Kind(22, "scriptbin_page_without_selectors", "a scriptbin page with no script lines",
         "scripts", {"post_id": "zzh22"}, "error", r"scriptbin page \S+zzbare/bare-script has no script lines"),
    Kind(23, "scriptbin_gate_loops", "scriptbin's terms gate redirects back to itself forever",
         "scripts", {"post_id": "zzh23"}, "error",
         r"scriptbin's terms gate loops for https://scriptbin\.works/u/zzloop/looping-gate"),
    Kind(24, "image_serves_html", "a cover-art link that serves a web page",
         "artwork", {"post_id": "zzh24"}, "error", r"i\.imgur\.com/zzHtmlArt\.png served a web page"),
    # -- audio ------------------------------------------------------------------------------
    Kind(25, "audio_serves_html", "an audio URL that serves an HTML page",
         "audio_files", {"post_id": "zza25"}, "error", r"served a web page \(text/html.*\), not audio"),
    Kind(26, "audio_zero_bytes", "an audio URL that serves a zero-byte file",
         "audio_files", {"post_id": "zza26"}, "error", r"served an empty \(zero-byte\) file"),
    Kind(27, "audio_over_size_cap", "an audio file of 3,000,000 bytes with a 2,000,000-byte cap",
         "audio_files", {"post_id": "zza27"}, "error",
         r"is 3000000 bytes, over the size cap of 2000000 bytes; raise AUDIO_ASSETS_MAX_AUDIO_BYTES"),
    Kind(28, "audio_does_not_decode", "an audio URL that serves 60 kB of noise as audio/mp4",
         "audio_files", {"post_id": "zza28"}, "error", r"downloaded file failed its check: not audio"),
    Kind(29, "audio_always_cut_short", "an audio URL whose body is cut short on every attempt",
         "audio_files", {"post_id": "zza29"}, "error", r"download did not complete after 4 attempts"),
    Kind(30, "audio_stalls_forever", "an audio URL that sends half its body, then nothing (read timeout)",
         "audio_files", {"post_id": "zza30"}, "error",
         r"timed out: no data for 3 s .*AUDIO_ASSETS_HTTP_TIMEOUT"),
    Kind(31, "responses_stall_once", "the Reddit batch read and an audio file stall past the timeout once",
         "audio_files", {"post_id": "zza31"}, "ok", None, _both(_stalled_once_then_fine, _release_ok("zza31"))),
    # -- names ------------------------------------------------------------------------------
    Kind(32, "username_traversal", f"a Reddit username '../../../{ESCAPE}/x' (slashes and ../)",
         "audio_files", {"post_id": "zzn32"}, "ok", None,
         _both(_release_ok("zzn32"), _performer_is("zzn32", f"../../../{ESCAPE}/x"))),
    Kind(33, "username_nul_rtl", "a Reddit username with a NUL and a right-to-left override",
         "audio_files", {"post_id": "zzn33"}, "ok", None,
         _both(_release_ok("zzn33"), _performer_is("zzn33", "zz\x00nul\u202eevil"))),
    Kind(34, "username_500_emoji", "a Reddit username of 500 characters with emoji",
         "audio_files", {"post_id": "zzn34"}, "ok", None,
         _both(_release_ok("zzn34"), _performer_is("zzn34", "zz\U0001F49C" + "x" * 497))),
    Kind(35, "title_traversal", "a title with ../../../, slashes and a backslash",
         "audio_files", {"post_id": "zzn35"}, "ok", None, _release_ok("zzn35")),
    Kind(36, "title_nul", "a title with a NUL character",
         "audio_files", {"post_id": "zzn36"}, "ok", None, _release_ok("zzn36")),
    Kind(37, "title_500", "a title of 500 characters",
         "audio_files", {"post_id": "zzn37"}, "ok", None, _release_ok("zzn37")),
    Kind(38, "title_rtl", "a title wrapped in a right-to-left override",
         "audio_files", {"post_id": "zzn38"}, "ok", None, _release_ok("zzn38")),
    Kind(39, "title_emoji_only", "a title that is only emoji",
         "audio_files", {"post_id": "zzn39"}, "ok", None, _release_ok("zzn39")),
    Kind(40, "whypit_user_and_slug_traversal", "whyp.it answers a username and slug with ../, slashes and NUL",
         "audio_files", {"post_id": "zzn40"}, "ok", None, _both(_not_on_disk_outside, _release_ok("zzn40"))),
    Kind(41, "soundgasm_username_500", "a soundgasm username of 500 characters",
         "audio_files", {"post_id": "zzn41"}, "ok", None, _both(_not_on_disk_outside, _release_ok("zzn41"))),
    Kind(42, "soundgasm_title_hostile", "a soundgasm title with ../, NUL, emoji, RTL, 500+ characters",
         "audio_files", {"post_id": "zzn42"}, "ok", None, _both(_not_on_disk_outside, _release_ok("zzn42"))),
    Kind(43, "scriptbin_title_hostile", "a scriptbin title with ../, NUL, emoji, RTL, 500+ characters",
         "scripts", {"post_id": "zzn43"}, "ok", None, _text_path_safe),
    Kind(44, "reddit_mistyped_fields", "Reddit's answer has a score of 'lots', num_comments 'x', over_18 'yes', "
         "an author that is an object and a permalink that is a list (a frame of them took the partition down)",
         "reddit_posts", {"post_id": "zzr44"}, "ok",
         r"left empty: author \{\"name\": \"zzMistyped\"\} \(not text\), permalink \[.*\] \(not text\), "
         r"score \"lots\" \(not a number\), num_comments \"x\" \(not a number\), over_18 \"yes\" \(not true or false\)$",
         _release_ok("zzr44")),
    Kind(45, "whypit_fields_of_the_wrong_type", "whyp.it's API answers a title that is an object and a "
         "description that is a list (the audio_files table failed to build)",
         "audio_files", {"post_id": "zzh45"}, "ok",
         r"left empty, of a type its column can't hold: platform_title \{\"en\": \"Mistyped\"\}, "
         r"platform_description \[\"a\", \"list\"\]$", _release_ok("zzh45")),
]


# -- the hostile world ------------------------------------------------------------------------

SG_PAGE = "https://soundgasm.net/u/{user}/{slug}"
AUDIO_KIND = {"m4a": "soundgasm", "mp3": "whypit_lossy"}


class HostileWorld:
    """Installs every kind of the catalogue on a replica (its own instance: the shared one is
    untouched) and makes the distinct audio the good posts need."""

    def __init__(self, replica: ReplicaServer, media_dir: Path):
        self.replica, self.media_dir = replica, media_dir
        self.audio: dict[str, bytes] = {}
        self.t = T

    # -- pieces ----------------------------------------------------------------------------
    def audio_bytes(self, key: str, ext: str = "m4a") -> bytes:
        """A recording of its own (a seeded melody), so no two hostile posts share an audio."""
        if key not in self.audio:
            name = hashlib.sha1(key.encode()).hexdigest()[:16]
            entry = {"synth": synth_params(7777, key), "outputs": [[AUDIO_KIND[ext], name, ext]]}
            rel = _render_audio(name, entry, self.media_dir)[(AUDIO_KIND[ext], name)][0]
            self.audio[key] = (self.media_dir / rel).read_bytes()
        return self.audio[key]

    def ts(self) -> int:
        self.t += 60
        return self.t

    def post(self, pid: str, *, author: str | None = "zzposter", title: str | None = "[F4M] A Post",
             body: str = "", where: str = "delta", flair: str = "OC", reddit: bool = True, gwasi_title=...,
             gwasi_author=None, score: int = 10, answer: dict | None = None, **fields) -> dict:
        """A Reddit post and its GWASI entry (in the delta, or in base shard N: where="base:N");
        ``answer`` overrides fields of Reddit's answer last (``score`` is GWASI's)."""
        ts = self.ts()
        data = {
            "id": pid, "name": f"t3_{pid}", "subreddit": "gonewildaudio", "author": author, "title": title,
            "selftext": body, "link_flair_text": flair, "created_utc": float(ts),
            "permalink": f"/r/gonewildaudio/comments/{pid}/post/", "url": f"https://www.reddit.com/r/gonewildaudio/comments/{pid}/post/",
            "score": 10, "num_comments": 1, "over_18": True, "removed_by_category": None, **fields, **(answer or {}),
        }
        entry = [pid, "gonewildaudio", gwasi_author or author or "zzposter", flair,
                 title if gwasi_title is ... else gwasi_title, ts, score, 30]
        self.entry(entry, where)
        if reddit:
            self.replica.add_reddit_post(data)
        return data

    def entry(self, entry, where: str = "delta") -> None:
        if where == "delta":
            with self.replica._lock:
                self.replica.gwasi_delta["entries"].append(entry)
                self.replica._refresh_delta_meta()
        else:
            self.replica.gwasi_shards[int(where.split(":")[1]) - 1]["entries"].append(entry)

    def soundgasm(self, user: str, slug: str, *, title: str = "[F4M] an upload", audio_key: str | None = None,
                  media: Callable | bytes | None = None, ctype: str = "audio/mp4") -> str:
        """A soundgasm page (the replica's own layout) and its media file; returns the page URL."""
        sha1 = hashlib.sha1(f"{user}/{slug}".encode()).hexdigest()
        page = SG_PAGE.format(user=user, slug=slug)
        rec = {"user": user, "title": title, "description": "Posted on r/gonewildaudio", "sha1": sha1}
        self.replica.set_route(page, Response(200, self.replica._soundgasm_page(rec).encode(), None,
                                              "text/html; charset=utf-8"))
        media_url = f"https://media.soundgasm.net/sounds/{sha1}.m4a"
        if callable(media):
            self.replica.set_route(media_url, media)
        else:
            self.replica.serve_bytes(media_url, self.audio_bytes(audio_key or f"{user}/{slug}")
                                     if media is None else media, ctype)
        return page

    def whypit(self, track_id: int, *, user: str, slug: str, title: object, doc: dict | None = None,
               description: object = "hostile") -> str:
        url = f"https://whyp.it/tracks/{track_id}/zz-track"
        cdn = f"https://cdn.whyp.it/{track_id:08d}-0000-4000-8000-000000000000.mp3"
        if doc is None:
            doc = {"track": {"id": track_id, "slug": slug, "title": title, "description": description, "duration": None,
                             "public": True, "user": {"username": user, "slug": user},
                             "lossy_url": cdn + "?token=zz&expires=9999999999", "lossless_url": None,
                             "artwork_url": None}}
            self.replica.serve_bytes(cdn, self.audio_bytes(f"whyp{track_id}", "mp3"), "audio/mpeg")
        body = json.dumps(doc).encode()
        self.replica.set_route(f"https://api.whyp.it/api/tracks/{track_id}",
                               Response(200, body, None, "application/json"))
        return url

    def scriptbin(self, user: str, slug: str, *, title: str, page: str | None = None) -> str:
        url = f"https://scriptbin.works/u/{user}/{slug}"
        if page is None:
            page = self.replica._scriptbin_page({
                "title": title, "tags": ["Tag"], "username": user, "slug": slug, "audience": "F4M",
                "performers_text": "F", "listeners_text": "M", "text": "Line one.\n\nLine two.", "short_code": "zzzzzz"})
        self.replica.set_route(url, Response(200, page.encode(), None, "text/html; charset=utf-8"))
        return url

    # -- the catalogue's input ----------------------------------------------------------------
    def install(self) -> None:
        r, post = self.replica, self.post
        bare = "<!DOCTYPE html><html><head><title>Nothing here</title></head><body><p>hi</p></body></html>"
        html_page = Response(200, bare.encode(), None, "text/html; charset=utf-8")

        # 1-8 GWASI entries that cannot be read
        self.entry(["zzg01", "gonewildaudio", "x"], "base:1")
        self.entry(["zzg02", "gonewildaudio", "a", "OC", "[F4M] t", self.ts(), 1, 10, "x", "one too many"])
        self.entry({"id": "zzg03", "title": "an object, not an entry"}, "base:3")
        self.entry(["../../zzg04", "gonewildaudio", "a", "OC", "[F4M] t", self.ts(), 1, 10])
        self.entry(["zzg05", "gonewildaudio", "a", "OC", "[F4M] t", "yesterday", 1, 10], "base:5")
        self.entry(["zzg06", "gonewildaudio", "a", "OC", "[F4M] t", 4102444800, 1, 10])
        self.entry(["zzg07", "gonewildaudio", "a", "OC", "[F4M] t", self.ts(), {"up": 5}, 10], "base:2")
        self.entry(["zzg08", "gonewildaudio", "a", "OC", "[F4M] t", self.ts(), 1, "long"])
        # 9 a null title in GWASI; 10 one id in two shards; 11 the base replaced after shard 2
        post("zzg09", author="zzNullTitle", title="[F4M] A Title GWASI Lost", gwasi_title=None, where="base:4",
             body=f"[Soundgasm]({self.soundgasm('zzNullTitle', 'A-Title-GWASI-Lost')})")
        dup = post("zzg10", author="zzDuplicate", title="[F4M] Duplicate Later Copy", where="base:5", score=99,
                   body=f"[Soundgasm]({self.soundgasm('zzDuplicate', 'Duplicate')})")
        early = [dup["id"], "gonewildaudio", "zzDuplicate", "OC", "[F4M] Duplicate Early Copy", int(dup["created_utc"]), 1, 30]
        r.gwasi_shards[1]["entries"].append(early)
        r.vanish_base_after(2, NEW_BASE)

        # 12-18 Reddit
        post("zzr12", author="[deleted]", body="[deleted]", gwasi_author="zzDeletedAuthor",
             title="[F4M] Deleted Post", removed_by_category="deleted")
        post("zzr13", author="zzRemoved", body="[removed]", title="[F4M] Removed Post", removed_by_category="moderator")
        post("zzr14", author="zzMissing", title="[F4M] Missing Post", reddit=False)
        original = {"id": "zzorig15", "subreddit": "pillowtalkaudio", "author": "zzCrossposter",
                    "selftext": f"[Soundgasm]({self.soundgasm('zzCrossposter', 'Crossposted')})",
                    "link_flair_text": "OC", "title": "[F4M] Crossposted"}
        post("zzr15", author="zzCrossposter", title="[F4M] Crossposted", body="", crosspost_parent_list=[original])
        link16 = self.soundgasm("zzGiant", "Giant-Body")
        filler = ("All the words of a very long story. " * 30_000)[:1_000_000]
        post("zzr16", author="zzGiant", title="[F4M] Giant Body", body=f"[Soundgasm]({link16})\n\n{filler}")
        post("zzr17", author="zzUnreadable", title="[F4M] Unreadable Answer", created_utc="not-a-time",
             body=f"[Soundgasm]({self.soundgasm('zzUnreadable', 'Unreadable-Answer')})")
        post("zzr18", author="zzNoTitle", title=None, gwasi_title="[F4M] GWASI Keeps The Title")
        # 45 (whyp.it): a title and a description of the wrong type
        mistyped = self.whypit(990045, user="zzMistypedWhyp", slug="zz-mistyped", title={"en": "Mistyped"},
                               description=["a", "list"])
        post("zzh45", author="zzMistypedWhyp", title="[F4M] Mistyped Whyp", body=f"[Whyp]({mistyped})")
        # 44 (Reddit): fields of the wrong type; GWASI has the author
        post("zzr44", author={"name": "zzMistyped"}, gwasi_author="zzMistyped", title="[F4M] Mistyped Answer",
             body=f"[Soundgasm]({self.soundgasm('zzMistyped', 'Mistyped-Answer')})",
             answer={"score": "lots", "num_comments": "x", "over_18": "yes",
                     "permalink": ["/r/gonewildaudio/comments/zzr44/"]})

        # 19-24 host pages missing every selector, a gate that loops, an image that is a page
        r.set_route(SG_PAGE.format(user="zzbare", slug="Bare-Page"), html_page)
        post("zzh19", author="zzBareSg", body=f"[Soundgasm]({SG_PAGE.format(user='zzbare', slug='Bare-Page')})")
        post("zzh20", author="zzBareWhyp",
             body=f"[Whyp]({self.whypit(990020, user='x', slug='x', title='x', doc={'message': 'ok'})})")
        r.set_route("https://hotaudio.net/u/zzbare/Bare-Page", html_page)
        post("zzh21", author="zzBareHa", body="[HotAudio](https://hotaudio.net/u/zzbare/Bare-Page)")
        bare_script = self.scriptbin("zzbare", "bare-script", title="x", page=bare)
        post("zzh22", author="zzBareSb", flair="Script Fill", title="[F4M] [Script Fill] Bare Script",
             body=f"[script]({bare_script}) by u/zzbare")
        loop = "https://scriptbin.works/u/zzloop/looping-gate"
        r.set_route(loop, Response(302, b"", [("Location", "https://scriptbin.works/agree-terms?agree=1&next="
                                                           "/u/zzloop/looping-gate")], "text/html"))
        post("zzh23", author="zzLoopSb", flair="Script Fill", title="[F4M] [Script Fill] Looping Gate",
             body=f"[script]({loop}) by u/zzloop")
        r.set_route("https://i.imgur.com/zzHtmlArt.png", html_page)
        post("zzh24", author="zzHtmlArt", body="[Cover art](https://i.imgur.com/zzHtmlArt.png)")

        # 25-31 audio
        for pid, media, ctype in [("zza25", bare.encode(), "text/html; charset=utf-8"),
                                  ("zza26", b"", "audio/mp4"),
                                  ("zza27", os.urandom(3_000_000), "audio/mp4"),
                                  ("zza28", os.urandom(60_000), "audio/mp4")]:
            post(pid, author=f"zzAudio{pid}", body=f"[Soundgasm]({self.soundgasm(f'zzAudio{pid}', pid, media=media, ctype=ctype)})")
        cut = self.soundgasm("zzCut", "Always-Cut-Short", audio_key="zza29")
        post("zza29", author="zzCut", body=f"[Soundgasm]({cut})")
        stall = self.soundgasm("zzStall", "Stalls-Forever", audio_key="zza30")
        post("zza30", author="zzStall", body=f"[Soundgasm]({stall})")
        once = self.soundgasm("zzStallOnce", "Stalls-Once")
        post("zza31", author="zzStallOnce", title="[F4M] Stalls Once", body=f"[Soundgasm]({once})")
        post("zzr02", author="zzRedditStall", title="[F4M] Read After A Stall")
        sha = {u: self._sha(u) for u in (cut, stall, once)}
        r.add_fault(host="media.soundgasm.net", path_contains=sha[cut], kind="truncate", count=None)
        r.add_fault(host="media.soundgasm.net", path_contains=sha[stall], kind="stall", retry_after=TIMEOUT_S + 3,
                    count=None)
        r.add_fault(host="media.soundgasm.net", path_contains=sha[once], kind="delay", retry_after=TIMEOUT_S + 2,
                    count=1)
        r.add_fault(host="www.reddit.com", path_contains="/api/info", kind="delay", retry_after=TIMEOUT_S + 2, count=1)

        # 32-43 names
        for pid, author, title in [
            ("zzn32", f"../../../{ESCAPE}/x", "[F4M] Traversal In The Username"),
            ("zzn33", "zz\x00nul\u202eevil", "[F4M] NUL And RTL In The Username"),
            ("zzn34", "zz\U0001F49C" + "x" * 497, "[F4M] A Long Username"),
            ("zzn35", "zzTitleTraversal", f"[F4M] ../../../{ESCAPE}/etc/passwd and a/b\\c"),
            ("zzn36", "zzTitleNul", "[F4M] Null\x00Byte In The Title"),
            ("zzn37", "zzTitleLong", "[F4M] " + ("Very Long Title " * 40)[:494]),
            ("zzn38", "zzTitleRtl", "[F4M] \u202eRight To Left Title\u202c"),
            ("zzn39", "zzTitleEmoji", "[F4M] \U0001F49C\U0001F3A7\U0001F49C\U0001F3A7"),
        ]:
            link = self.soundgasm(f"zzUser{pid}", f"Upload-{pid}")
            post(pid, author=author, title=title, body=f"[Soundgasm]({link})")
        whyp = self.whypit(990040, user=f"../../{ESCAPE}\x00/x", slug=f"../../../{ESCAPE}-slug",
                           title=f"..\x00/{ESCAPE} \U0001F49C")
        post("zzn40", author="zzWhypHostile", title="[F4M] Hostile Whyp Names", body=f"[Whyp]({whyp})")
        long_user = "zz" + "A" * 498
        post("zzn41", author="zzLongSgUser", title="[F4M] Long Soundgasm User",
             body=f"[Soundgasm]({self.soundgasm(long_user, 'Long-User-Upload')})")
        hostile_title = f"../../../{ESCAPE}\x00 \U0001F49C \u202eevil" + "x" * 500
        post("zzn42", author="zzSgTitle", title="[F4M] Hostile Soundgasm Title",
             body=f"[Soundgasm]({self.soundgasm('zzSgTitle', 'Hostile-Title', title=hostile_title)})")
        script = self.scriptbin("zzscribe", "hostile-title-script", title=hostile_title)
        post("zzn43", author="zzScriptFill", flair="Script Fill", title="[F4M] [Script Fill] Hostile Script Title",
             body=f"[script]({script}) by u/zzscribe")

    @staticmethod
    def _sha(page: str) -> str:
        user, slug = page.rsplit("/", 2)[-2:]
        return hashlib.sha1(f"{user}/{slug}".encode()).hexdigest()


# -- the run and what it left ------------------------------------------------------------------

TABLES = ["gwasi_index", "gwasi_rejects", "reddit_posts", "post_analysis", "audio_files", "scripts", "artwork",
          "releases", "release_variants", "rendered_videos", "stash_scenes"]


class Outcome:
    def __init__(self, data_root: Path, rows: dict, replica, stash, result, instance, gwasi_notes: list[str],
                 faults: dict):
        self.data_root, self.rows, self.replica, self.stash = data_root, rows, replica, stash
        self.result, self.instance, self.gwasi_notes, self.faults = result, instance, gwasi_notes, faults
        self.scene_ids = {s["variant_id"]: s["scene_id"] for s in rows["stash_scenes"]
                          if s["status"] == "ok" and s["scene_id"]}
        self.synced_variants = set(self.scene_ids)

    def find(self, table: str, key: dict) -> list[dict]:
        return [row for row in self.rows[table]
                if all(v(row.get(k)) if callable(v) else row.get(k) == v for k, v in key.items())]

    def release_of(self, post_id: str) -> dict:
        found = [r for r in self.rows["releases"] if post_id in json.loads(r["post_ids"])]
        assert len(found) == 1, f"{len(found)} releases hold post {post_id}"
        return found[0]

    def path_is_safe(self, rel: str | None) -> None:
        assert rel, "no path recorded"
        path = (self.data_root / rel)
        assert path.exists(), rel
        assert path.resolve().is_relative_to(self.data_root.resolve()), rel
        for part in Path(rel).parts:
            assert safe_component(part), f"unsafe name on disk: {part!r} in {rel!r}"


def safe_component(part: str) -> bool:
    return (part not in (".", "..") and len(part.encode()) <= 255 and part.isascii()
            and all(c in string.ascii_letters + string.digits + "._- []()=," for c in part))


def _rows(db: Path) -> dict[str, list[dict]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        out = {}
        for t in TABLES:
            if t not in present:
                out[t] = []
                continue
            cur = con.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            out[t] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        return out
    finally:
        con.close()


def evaluate(kind: Kind, o: Outcome) -> str | None:
    """None when the kind behaves as catalogued, else what is wrong."""
    try:
        found = o.find(kind.table, kind.key)
        assert found, f"no row in {kind.table} for {kind.key}"
        assert len(found) == 1, f"{len(found)} rows in {kind.table} for {kind.key}"
        row = found[0]
        assert row.get("post_date") in (None, DAY), f"row on {row['post_date']}, not in the {DAY} partition"
        assert row["status"] == kind.status, f"status {row['status']!r} (wanted {kind.status!r}): {row.get('error')}"
        if kind.error is None:
            assert not row.get("error") or row["status"] == "ok", row.get("error")
        else:
            assert row.get("error") and re.search(kind.error, row["error"]), \
                f"error {row.get('error')!r} does not match /{kind.error}/"
        if kind.extra is not None:
            kind.extra(o, row)
    except AssertionError as exc:
        return f"{kind.n} {kind.name}: {exc}"[:1500]
    return None


def rows_lost(o: Outcome, corpus) -> list[str]:
    """Every input that should have a row downstream and has none."""
    lost = []
    r = o.rows
    for t in ("gwasi_index", "reddit_posts", "post_analysis", "audio_files", "rendered_videos", "stash_scenes"):
        if not [x for x in r[t] if (x.get("post_date") or x.get("release_date")) == DAY]:
            lost.append(f"{t}: no rows for {DAY}")
    gwasi_ok = {x["post_id"] for x in r["gwasi_index"] if x["status"] == "ok" and x["post_date"] == DAY}
    expected_ok = {e[0] for e in corpus.gwasi_entries if time.strftime("%Y-%m-%d", time.gmtime(e[5])) == DAY}
    lost += [f"gwasi_index: corpus post {p}" for p in sorted(expected_ok - gwasi_ok)]
    reddit = {x["post_id"] for x in r["reddit_posts"]}
    lost += [f"reddit_posts: {p}" for p in sorted(gwasi_ok - reddit)]
    analysed = {x["post_id"] for x in r["post_analysis"]}
    lost += [f"post_analysis: {p}" for p in sorted(reddit - analysed)]
    audio_rows = {(x["post_id"], x["link_index"]) for x in r["audio_files"]}
    script_rows = {x["post_id"] for x in r["scripts"]}
    for a in r["post_analysis"]:
        for i, _link in enumerate(json.loads(a["audio_links"] or "[]")):
            if (a["post_id"], i) not in audio_rows:
                lost.append(f"audio_files: {a['post_id']} link {i}")
        if json.loads(a["script_links"] or "[]") and a["post_id"] not in script_rows:
            lost.append(f"scripts: {a['post_id']}")
    in_releases = {p for x in r["releases"] for p in json.loads(x["post_ids"])}
    lost += [f"releases: {p}" for p in sorted({x["post_id"] for x in r["audio_files"]} - in_releases)]
    rendered = {x["variant_id"] for x in r["rendered_videos"]}
    lost += [f"rendered_videos: {v['variant_id']}" for v in r["release_variants"]
             if v["release_date"] == DAY and v["variant_id"] not in rendered]
    lost += [f"stash_scenes: {x['variant_id']}" for x in r["rendered_videos"]
             if x["status"] == "ok" and x["variant_id"] not in o.synced_variants]
    return lost


def _listing(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_input")
    media_dir, data_root = tmp / "hostile_media", tmp / "w" / "a" / "b" / "data"
    (data_root / "videos").mkdir(parents=True)
    corpus = build_corpus()
    with ReplicaServer(corpus, MEDIA_CACHE) as replica, StashEmulator(data_root / "videos") as stash:
        HostileWorld(replica, media_dir).install()
        before = _listing(tmp)
        env = {"AUDIO_ASSETS_DATA": str(data_root), "AUDIO_ASSETS_HOST_MAP": replica.host_map_env(),
               "STASH_URL": stash.url, "AUDIO_ASSETS_RATE_PER_HOST": "200", "STASH_API_KEY": None,
               "REDDIT_CLIENT_ID": None, "AUDIO_ASSETS_MAX_AUDIO_BYTES": str(SIZE_CAP),
               "AUDIO_ASSETS_HTTP_TIMEOUT": str(TIMEOUT_S), "AUDIO_ASSETS_PATREON_CREATORS": None}
        cwd_before = set(os.listdir("."))
        started = time.perf_counter()
        with environment(env), dg.DagsterInstance.ephemeral() as instance:
            result = run_pipeline(DAY, DAY, pipeline=PipelineResource(), instance=instance, log_level="ERROR")
            materialised = {a: DAY in instance.get_materialized_partitions(dg.AssetKey(a)) for a in DAILY_ASSETS}
            notes = []
            for rec in instance.fetch_materializations(dg.AssetKey("gwasi_index"), limit=5).records:
                meta = rec.asset_materialization.metadata
                if "base_restarts" in meta:
                    notes += list(meta["base_restarts"].value)
        seconds = time.perf_counter() - started
        o = Outcome(data_root, _rows(data_root / "warehouse.duckdb"), replica, stash, result, instance, notes,
                    dict(replica.faults_injected))
        o.materialised, o.seconds, o.corpus = materialised, seconds, corpus
        o.created = sorted(_listing(tmp) - before)
        o.tmp, o.cwd_new = tmp, set(os.listdir(".")) - cwd_before
        o.mismatches = release_mismatches(data_root / "warehouse.duckdb", corpus, {DAY})
        o.failures = [f for f in (evaluate(k, o) for k in CATALOGUE) if f]
        o.lost = rows_lost(o, corpus)
        yield o


def test_catalogue_is_numbered_and_large_enough():
    assert [k.n for k in CATALOGUE] == list(range(1, len(CATALOGUE) + 1))
    assert len({k.name for k in CATALOGUE}) == len(CATALOGUE) >= 30


def test_partition_materialises_and_checks_pass(outcome):
    assert outcome.result.success and outcome.materialised == dict.fromkeys(DAILY_ASSETS, True), outcome.materialised
    assert outcome.result.failed_checks == []


@pytest.mark.parametrize("kind", CATALOGUE, ids=[f"{k.n:02d}-{k.name}" for k in CATALOGUE])
def test_each_kind_gets_its_row_status_and_error(outcome, kind):
    problem = evaluate(kind, outcome)
    assert problem is None, problem


def test_good_releases_of_the_day_are_intact_and_no_row_is_lost(outcome):
    assert outcome.mismatches == []
    assert outcome.lost == []


def test_nothing_is_written_outside_the_data_root(outcome):
    root = outcome.data_root.resolve()
    # every path the run created in the test's temp dir: located in the data root, and (links too) resolving there
    outside = [p for p in outcome.created
               if not (Path(os.path.realpath(p.parent)) / p.name).is_relative_to(root) or not p.resolve().is_relative_to(root)]
    assert outside == []
    unsafe = [str(p.relative_to(outcome.data_root)) for p in outcome.created
              if not all(map(safe_component, p.relative_to(outcome.data_root).parts))]
    assert unsafe == []
    # a traversal that climbed further would leave a name holding the marker above the temp dir
    strays = [p for p in outcome.tmp.rglob(f"*{ESCAPE}*") if not p.resolve().is_relative_to(root)]
    for base in (outcome.tmp.parent, Path(os.environ.get("TMPDIR") or "/tmp"), Path.cwd()):
        strays += [p for p in base.iterdir() if ESCAPE in p.name]
    assert strays == [] and outcome.cwd_new == set()


def test_summary(outcome, capsys):
    passing = len(CATALOGUE) - len(outcome.failures)
    line = (f"bad input: {len(CATALOGUE)} kinds tried, {passing} passing, rows lost: {len(outcome.lost)} "
            f"(one pipeline run, {outcome.seconds:.0f} s)")
    with capsys.disabled():
        print("\n" + line)
    for f in outcome.failures:
        print(f)
    assert passing == len(CATALOGUE) and not outcome.lost, "\n".join([line, *outcome.failures, *outcome.lost])

