"""Pure parsers on realistic fixtures (formats from reference/sources.md)."""

from pathlib import Path

import pytest

from audio_assets.platforms import gwasi, hotaudio, reddit, scriptbin, soundgasm, whypit

FIX = Path(__file__).with_name("fixtures")
NOW = 1_800_000_000


def test_soundgasm_page_with_escaped_media_url():
    page = soundgasm.parse_audio_page((FIX / "soundgasm_page.html").read_text(),
                                      "https://www.soundgasm.net/user/lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again")
    assert page.media_url == "https://media.soundgasm.net/sounds/5f3a1c0e9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a49.m4a"
    assert page.audio_id == "5f3a1c0e9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a49"
    assert page.user == "LurkyDip"  # canonical casing from the page's user link
    assert page.page_url == "https://soundgasm.net/u/LurkyDip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again"
    assert page.title.endswith("[Script Fill] & more")
    assert "<3" in page.description and page.description.startswith("Script by u/TheWritingJedi")


def test_soundgasm_page_without_player_is_a_clear_error():
    with pytest.raises(soundgasm.ParseError, match="no media URL"):
        soundgasm.parse_audio_page("<html><body>Sound not found</body></html>", "https://soundgasm.net/u/a/b")


def test_soundgasm_profile():
    items = soundgasm.parse_profile((FIX / "soundgasm_profile.html").read_text())
    assert [i["play_count"] for i in items] == [1234, 7]
    assert items[1]["title"] == "Another & One"


def test_whypit_track_json_and_url():
    assert whypit.parse_track_url("https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf") == (
        299338, "threesome-at-the-milk-maid-cafe", "xOYMf")
    import json

    t = whypit.parse_track_json(json.loads((FIX / "whypit_track.json").read_text()),
                                "https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf")
    assert t.track_id == 299338 and t.token == "xOYMf" and t.public is False
    assert t.best_media_url.startswith("https://cdn.whyp.it/") and t.duration_s == pytest.approx(1457.32)
    assert t.user == "SnakeySmut"
    with pytest.raises(whypit.ParseError):
        whypit.parse_track_json({"message": "Not found"}, "https://whyp.it/tracks/1/x")


@pytest.mark.parametrize("duration, expected", [
    (1457.32, 1457.32), (60, 60.0), ("61.5", 61.5), (float("nan"), None), (float("inf"), None), ("-inf", None),
    (True, None), (-3, None), ([1], None), ("long", None), (None, None), (10**400, None)])
def test_whypit_duration_is_a_finite_number_of_seconds_or_none(duration, expected):
    t = whypit.parse_track_json({"track": {"id": 5, "duration": duration}}, "https://whyp.it/tracks/5/x")
    assert t.duration_s == expected


def test_hotaudio_metadata_only():
    p = hotaudio.parse_page((FIX / "hotaudio_page.html").read_text(),
                            "https://hotaudio.net/u/Lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again")
    assert p.title == "Shy Ghost Girl Possesses You To Feel Pleasure Again"
    assert p.script_writer == "TheWritingJedi"
    assert p.length_s == 723.0
    assert p.tags == ["F4M", "ghost"]
    assert p.description == "A shy ghost girl finds you alone & lonely."
    empty = hotaudio.parse_page("<html></html>", "https://hotaudio.net/u/a/b")
    assert empty.title is None and empty.tags == [] and empty.length_s is None


def test_scriptbin_page_full_text():
    s = scriptbin.parse_script_page((FIX / "scriptbin_page.html").read_text(),
                                    "https://scriptbin.works/u/TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure")
    assert s.title == "Shy Ghost Girl Possesses You To Feel Pleasure Again"
    assert s.tags == ["F4M", "Ghost", "Wholesome"]
    assert s.audience == "F4M" and s.author == "TheWritingJedi" and s.word_count == 1234
    assert s.performers_text == "1 female" and s.listeners_text == "1 male"
    assert s.text.splitlines() == ["[soft ambience, a cold draft]", "Oh! You... you can see me?", "",
                                   "I'm sorry, I didn't mean to scare you & I..."]
    with pytest.raises(scriptbin.ParseError, match="no script lines"):
        scriptbin.parse_script_page("<html><p>changed layout</p></html>", "https://scriptbin.works/u/a/b")
    # a word count no script has (past what the table's integer column holds) is no count
    page = (FIX / "scriptbin_page.html").read_text().replace('data-readywordcount="1234"',
                                                             'data-readywordcount="99999999999999999999"')
    assert scriptbin.parse_script_page(page, "https://scriptbin.works/u/a/b").word_count is None


def test_scriptbin_profile_items_of_the_wrong_shape():
    items = [{"slug": "a", "titleAndTags": "[F4M] A", "metadata": "public"},
             {"slug": "b", "titleAndTags": "[F4M] B", "metadata": [True]},
             {"slug": "c", "titleAndTags": "[F4M] C", "metadata": {"publicListed": True}}, "not an item"]
    assert [(s["slug"], s["public"]) for s in scriptbin.parse_profile_json(items, "w")] == [
        ("a", None), ("b", None), ("c", True)]


def test_frame_leaves_a_value_its_column_cannot_hold_empty_and_names_it():
    from audio_assets.layers.sources import AUDIO_SCHEMA, SCRIPT_SCHEMA, frame

    rows = [{"post_id": "a", "platform_title": {"en": "x"}, "artwork_url": ["u"], "bytes": 5, "status": "ok"},
            {"post_id": "b", "platform_user": 777, "bytes": True, "duration_s": "long", "status": "error",
             "error": "a 404"}]
    df = frame(rows, AUDIO_SCHEMA)  # a whyp.it title object reached this and failed the partition
    got = {r["post_id"]: r for r in df.to_dicts()}
    assert (got["a"]["platform_title"], got["a"]["artwork_url"], got["a"]["bytes"], got["a"]["status"]) == (
        None, None, 5, "ok")
    assert got["a"]["error"] == ("left empty, of a type its column can't hold: platform_title {\"en\": \"x\"}, "
                                 "artwork_url [\"u\"]")
    assert (got["b"]["platform_user"], got["b"]["bytes"], got["b"]["duration_s"]) == ("777", None, None)
    assert got["b"]["error"] == "a 404; left empty, of a type its column can't hold: bytes true, duration_s \"long\""
    big = frame([{"post_id": "c", "word_count": 10**20, "status": "ok"}], SCRIPT_SCHEMA).row(0, named=True)
    assert big["word_count"] is None and big["error"].endswith("word_count 100000000000000000000")
    # rows that fit are built as they are
    assert frame([{"post_id": "d", "bytes": 1, "status": "ok"}], AUDIO_SCHEMA).row(0, named=True)["error"] is None


def test_gwasi_entry_shapes():
    e = gwasi.parse_entry(["wsytww", "gonewildaudio", "ASMRdotWav", "Script Fill",
                           "[Script Fill] [F4M] Nine Tails of Love [Azur Lane]", 1660971997, 57, 125.3, "u/SomeWriter"], now=NOW)
    assert e.status == "ok" and e.post_date == "2022-08-20" and e.duration_s == pytest.approx(751.8)
    assert e.extra == "u/SomeWriter" and e.script_words is None
    s = gwasi.parse_entry(["abc123", "gonewildaudio", "Writer", "Script Offer", "[F4M] x", 1660971997, 3, -12.5], now=NOW)
    assert s.script_words == 1250 and s.duration_s is None
    assert gwasi.parse_entry(["a", "b"], now=NOW).status == "invalid"
    assert gwasi.parse_entry({"id": "x"}, now=NOW).error.startswith("entry is an object")
    assert "created_utc" in gwasi.parse_entry(["abc", "g", "a", "", "t", "soon", 1, 1], now=NOW).error
    assert "in the future" in gwasi.parse_entry(["abc", "g", "a", "", "t", NOW + 10 * 86400, 1, 1], now=NOW).error
    assert gwasi.parse_entry(["../x", "g", "a", "", "t", 1660971997, 1, 1], now=NOW).status == "invalid"


def test_gwasi_merge_delta_overrides_and_removed():
    base = [["aaa", "gonewildaudio", "A", "OC", "old title", 1660971997, 1, 10],
            ["bbb", "gonewildaudio", "B", "OC", "b", 1660971998, 1, 10]]
    delta = {"base": "8e9caeff4e", "entries": [["aaa", "gonewildaudio", "A", "OC", "new title", 1660971997, 9, 10]],
             "removed": ["bbb"], "fills": {"x": ["aaa"]}}
    snap = gwasi.merge(base, delta, base_version="8e9caeff4e", base_fills={"y": ["bbb"]}, now=NOW)
    assert set(snap.entries) == {"aaa"} and snap.entries["aaa"].title == "new title"
    assert snap.fills == {"y": ["bbb"], "x": ["aaa"]}


def test_reddit_post_states():
    ok = reddit.parse_post({"id": "1mf0zav", "author": "SnakeySmut", "title": "t", "selftext": "body",
                            "created_utc": 1754070000.0, "subreddit": "gonewildaudio"})
    assert ok.status == "ok" and ok.post_date == "2025-08-01"
    deleted = reddit.parse_post({"id": "x1", "author": "[deleted]", "selftext": "[deleted]", "title": "t",
                                 "removed_by_category": "deleted", "created_utc": 1754070000.0})
    assert deleted.status == "deleted" and deleted.author is None and deleted.body is None
    removed = reddit.parse_post({"id": "x2", "author": "a", "selftext": "[removed]", "title": "t",
                                 "removed_by_category": "moderator", "created_utc": 1754070000.0})
    assert removed.status == "removed" and removed.is_removed
    cross = reddit.parse_post({"id": "x3", "author": "a", "selftext": "", "title": "t", "created_utc": 1754070000.0,
                               "crosspost_parent_list": [{"id": "orig", "selftext": "the original body", "author": "b"}]})
    assert cross.crosspost_parent == "orig" and cross.body == "the original body" and cross.author == "b"
    giant = reddit.parse_post({"id": "x4", "author": "a", "selftext": "x" * 300_000, "title": "t", "created_utc": 1.0})
    assert giant.body_chars == 300_000 and len(giant.body) == reddit.MAX_BODY_CHARS



def test_reddit_fields_of_the_wrong_type_are_left_empty_and_the_post_kept():
    from audio_assets.layers.sources import REDDIT_SCHEMA, frame

    answer = {"id": "1mf0zav", "author": {"name": "SnakeySmut"}, "title": 42, "created_utc": "not-a-time",
              "selftext": "[F4M] https://soundgasm.net/u/SnakeySmut/Late-Night", "subreddit": "gonewildaudio",
              "score": "lots", "num_comments": 3.5, "over_18": "yes", "permalink": ["/r/x/"], "url": None}
    post = reddit.parse_post(answer)
    # the body (and so its links) is kept; an author of the wrong type is unknown, not deleted
    assert post.status == "ok" and not post.is_deleted and post.body == answer["selftext"]
    assert (post.author, post.title, post.created_utc, post.post_date, post.score, post.num_comments,
            post.over_18, post.permalink) == (None,) * 8
    assert post.error == (
        "Reddit's answer had fields of the wrong type, left empty: author {\"name\": \"SnakeySmut\"} (not text), "
        "created_utc \"not-a-time\" (not a number), title 42 (not text), permalink [\"/r/x/\"] (not text), "
        "score \"lots\" (not a number), num_comments 3.5 (not a whole number), over_18 \"yes\" (not true or false)")
    frame([post.as_row()], REDDIT_SCHEMA)  # the row fits the table (a string score stopped the partition)
    # numbers written as text are read; a time no date can hold is left empty
    lenient = reddit.parse_post({"id": "x5", "selftext": "b", "score": "7", "created_utc": "1754070000"})
    assert (lenient.score, lenient.post_date, lenient.error) == (7, "2025-08-01", None)
    far = reddit.parse_post({"id": "x6", "selftext": "b", "created_utc": 1e20})
    assert far.created_utc is None and far.post_date is None and "created_utc 1e+20 (not a time)" in far.error
    huge = reddit.parse_post({"id": "x8", "selftext": "b", "score": 10**30})
    assert huge.score is None and "score 1000000000000000000000000000000 (not a whole number)" in huge.error
    frame([huge.as_row()], REDDIT_SCHEMA)
    both = reddit.parse_post({"id": "x7", "selftext": "x" * 300_000, "over_18": 1})
    assert both.error.startswith("body of 300,000 characters cut") and both.error.endswith("over_18 1 (not true or false)")

def test_reddit_listing_and_batches():
    listing = {"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": "a", "title": "x"}},
                                                         {"kind": "t1", "data": {"id": "c"}}]}}
    assert [d["id"] for d in reddit.parse_listing(listing)] == ["a"]
    assert [d["id"] for d in reddit.parse_listing([listing, {"kind": "Listing", "data": {"children": []}}])] == ["a"]
    assert [len(b) for b in reddit.batches([str(i) for i in range(250)])] == [100, 100, 50]
    # children and listings of the wrong shape are skipped, not raised on (the whole batch's answer)
    odd = {"kind": "Listing", "data": {"children": [5, {"kind": "t3", "data": [1]}, {"kind": "t3"},
                                                    {"kind": "t3", "data": {"id": "b"}}]}}
    assert [d["id"] for d in reddit.parse_listing(odd)] == ["b"]
    for shape in ({"kind": "Listing", "data": [1]}, {"kind": "Listing", "data": {"children": "x"}},
                  {"kind": "t3", "data": "x"}):
        assert reddit.parse_listing(shape) == []
