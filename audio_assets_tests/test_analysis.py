"""The post analyser on realistic GWA posts."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from audio_assets.analysis import analyse_post, analyse_posts, normalise_url, title_tags, variant_label

MILK_MAID_BODY = """Hi everyone! So excited to finally share this one \U0001f49c

This is a **private fill** of a script written by u/Enno\\_Zalenno2, recorded with the wonderful u/alekirser!

[Soundgasm](https://soundgasm.net/u/SnakeySmut/Threesome-At-The-Milk-Maid-Cafe)

[Whyp](https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf)

Art by u/SomeArtist: [here](https://i.imgur.com/Qm1lkMd.png)

Thanks for listening!"""

SHY_GHOST_BODY = """[Script](https://www.reddit.com/r/gonewildaudio/comments/1me43oy/f4m_shy_ghost_girl_possesses_you_to_feel_pleasure/) by u/TheWritingJedi (also on [scriptbin](https://scriptbin.works/u/TheWritingJedi/f4m-shy-ghost-girl-possesses-you-to-feel-pleasure))

HotAudio: https://hotaudio.net/u/Lurkydip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again

Soundgasm: https://soundgasm.net/u/LurkyDip/Shy-Ghost-Girl-Possesses-You-To-Feel-Pleasure-Again.

Whyp: <https://whyp.it/tracks/299350/shy-ghost-girl-possesses-you-to-feel-pleasure-again>
"""


def test_milk_maid_cafe_post():
    a = analyse_post(
        post_id="1mf0zav",
        title="[FF4M] [Script Fill] Threesome At The Milk Maid Cafe! [Collab] [Maids] [Cafe]",
        body=MILK_MAID_BODY,
        author="SnakeySmut",
        flair="Script Fill",
    )
    assert a.clean_title == "Threesome At The Milk Maid Cafe!"
    assert a.audiences == ["FF4M"] and a.kind == "script_fill"
    assert a.performers == ["SnakeySmut", "alekirser"]
    assert a.scribe == "Enno_Zalenno2"
    assert a.private_fill is True
    assert [(x["platform"], x["url"]) for x in a.audio_links] == [
        ("soundgasm", "https://soundgasm.net/u/SnakeySmut/Threesome-At-The-Milk-Maid-Cafe"),
        ("whypit", "https://whyp.it/tracks/299338/threesome-at-the-milk-maid-cafe?token=xOYMf"),
    ]
    assert a.image_links[0]["url"] == "https://i.imgur.com/Qm1lkMd.png"
    assert {"role": "art", "name": "SomeArtist"} in a.credits
    assert a.script_links == []


def test_shy_ghost_girl_post():
    a = analyse_post(
        post_id="1mf1onp",
        title="[F4M] Shy Ghost Girl Possesses You To Feel Pleasure Again [Script Fill] [Ghost] [Wholesome]",
        body=SHY_GHOST_BODY,
        author="Lurkydip",
    )
    assert a.performers == ["Lurkydip"]
    assert a.scribe == "TheWritingJedi"
    assert [x["platform"] for x in a.audio_links] == ["hotaudio", "soundgasm", "whypit"]
    assert a.audio_links[1]["url"].endswith("Pleasure-Again")  # trailing full stop dropped
    assert (
        a.audio_links[2]["url"]
        == "https://whyp.it/tracks/299350/shy-ghost-girl-possesses-you-to-feel-pleasure-again"
    )
    assert [s["platform"] for s in a.script_links] == ["reddit", "scriptbin"]
    assert a.private_fill is False and a.kind == "script_fill"


@pytest.mark.parametrize(
    ("title", "audiences", "kind", "clean"),
    [
        (
            "[F4M] [F4F] [Script Fill] Your Girlfriend Comes Home [Kissing]",
            ["F4M", "F4F"],
            "script_fill",
            "Your Girlfriend Comes Home",
        ),
        ("[M4F] [OC] Late night drive [Improv-ish]", ["M4F"], "oc", "Late night drive"),
        ("[F4A] [Improv] Just a ramble {sleep aid}", ["F4A"], "improv", "Just a ramble"),
        (
            "[F4M/F4F] [Script Offer] Witch's Bargain [Fantasy]",
            ["F4M", "F4F"],
            "script_offer",
            "Witch's Bargain",
        ),
        ("[ff4m] [script fill] lowercase tags", ["FF4M"], "script_fill", "lowercase tags"),
        ("[NB4M] [TF4M] [OC] Two audiences", ["NB4M", "TF4M"], "oc", "Two audiences"),
        ("[Ramblefap] [F4M] morning thoughts [12m37s]", ["F4M"], "ramblefap", "morning thoughts"),
        ("No tags at all", [], None, "No tags at all"),
    ],
)
def test_title_conventions(title, audiences, kind, clean):
    a = analyse_post(post_id="x", title=title, body="", author="someone")
    assert a.audiences == audiences and a.kind == kind and a.clean_title == clean


@pytest.mark.parametrize(
    ("body", "performers", "scribe"),
    [
        ("Script by u/WriterOne. Collab with u/VoiceTwo!", ["Poster", "VoiceTwo"], "WriterOne"),
        ("Written by u/Writer\\_Under w/ u/Second\\_Voice", ["Poster", "Second_Voice"], "Writer_Under"),
        (
            "[script](https://scriptbin.works/u/Scribe/x) by u/Scribe\n\nrecorded with u/Duo",
            ["Poster", "Duo"],
            "Scribe",
        ),
        (
            "Character: ~ u/GuestVoice\nThanks to u/Writer for writing this",
            ["Poster", "GuestVoice"],
            "Writer",
        ),
        ("Sound design by FoleyPerson. Script by u/Someone", ["Poster"], "Someone"),
        ("just me today, no script", ["Poster"], None),
    ],
)
def test_credits(body, performers, scribe):
    a = analyse_post(post_id="x", title="[F4M] t", body=body, author="Poster")
    assert a.performers == performers and a.scribe == scribe


def test_scribe_from_scriptbin_link_when_uncredited():
    a = analyse_post(
        post_id="x",
        title="[F4M] t",
        body="script: https://scriptbin.works/u/QuietWriter/some-slug",
        author="P",
    )
    assert a.scribe == "QuietWriter"


def test_other_credits_and_variants():
    body = """F4M version: https://soundgasm.net/u/Poster/Thing-F4M
[F4F version](https://soundgasm.net/u/Poster/Thing-F4F)
[No SFX version](https://whyp.it/tracks/12/thing-nosfx)
[SFX version](https://whyp.it/tracks/13/thing-sfx)
Sound design by u/Mixer, edited by u/Editor"""
    a = analyse_post(post_id="x", title="[F4M] [F4F] [OC] Thing", body=body, author="Poster")
    assert [x["variant"] for x in a.audio_links] == ["F4M", "F4F", "No SFX", "SFX"]
    assert a.variant_hints == ["F4M", "F4F", "No SFX", "SFX"]
    assert {"role": "sfx", "name": "Mixer"} in a.credits and {
        "role": "editing",
        "name": "Editor",
    } in a.credits


def test_urls_are_normalised():
    assert normalise_url("http://WWW.Soundgasm.net/u/A/B).") == "https://www.soundgasm.net/u/A/B"
    assert normalise_url("https://soundgasm.net/u/a\\_b/c\\_d") == "https://soundgasm.net/u/a_b/c_d"
    assert (
        normalise_url("https://whyp.it/tracks/1/x?token=abcde,") == "https://whyp.it/tracks/1/x?token=abcde"
    )
    assert title_tags("[F4M] a [b] c")[1] == "a c"
    assert variant_label("Without SFX") == "No SFX" and variant_label("m4f ver") == "M4F"
    assert variant_label("Soundgasm") is None


def test_pornhub_and_other_links_are_recorded():
    body = "Also on https://www.pornhub.com/view_video.php?viewkey=688a9b1ce032c and https://example.com/page"
    a = analyse_post(post_id="x", title="[F4M] t", body=body, author="P")
    assert [(x["platform"]) for x in a.audio_links] == ["pornhub"]
    assert a.other_links[0]["url"] == "https://example.com/page"


def test_script_offer_has_no_performers():
    a = analyse_post(
        post_id="x",
        title="[F4M] [Script Offer] A Witch's Bargain",
        body="Feel free to fill! https://scriptbin.works/u/Witchy/a-witchs-bargain",
        author="Witchy",
    )
    assert a.kind == "script_offer" and a.performers == [] and a.scribe == "Witchy"


def test_cli_analyze_reads_a_listing(tmp_path):
    listing = {
        "kind": "Listing",
        "data": {
            "children": [
                {
                    "kind": "t3",
                    "data": {
                        "id": "1mf0zav",
                        "title": "[FF4M] [Script Fill] Threesome At The Milk Maid Cafe!",
                        "selftext": MILK_MAID_BODY,
                        "author": "SnakeySmut",
                        "link_flair_text": "Script Fill",
                    },
                }
            ]
        },
    }
    f = tmp_path / "post.json"
    f.write_text(json.dumps(listing))
    out = subprocess.run(
        [sys.executable, "-m", "audio_assets.cli", "analyze", str(f)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert isinstance(result, list) and result[0]["performers"] == ["SnakeySmut", "alekirser"]
    assert set(result[0]["audio_links"][0]) == {"platform", "url"}
    assert set(result[0]) == {
        "clean_title",
        "tags",
        "audiences",
        "kind",
        "performers",
        "scribe",
        "other_credits",
        "private_fill",
        "audio_links",
        "script_links",
        "variant_hints",
    }


# -- realistic posts: fixtures/posts/posts.json ------------------------------------------------

REALISTIC = json.loads(
    (Path(__file__).parent / "fixtures" / "posts" / "posts.json").read_text(encoding="utf-8")
)


def _observed(a, expected: dict) -> dict:
    got = {
        "clean_title": a.clean_title,
        "audiences": a.audiences,
        "kind": a.kind,
        "performers": a.performers,
        "scribe": a.scribe,
        "private_fill": a.private_fill,
        "audio_links": [[x["platform"], x["url"], x["variant"]] for x in a.audio_links],
        "script_links": [x["url"] for x in a.script_links],
        "variant_hints": a.variant_hints,
        "credits": sorted(a.credits, key=lambda c: (c["role"], c["name"])),
    }
    if "image_links" in expected:
        got["image_links"] = [x["url"] for x in a.image_links]
    if "other_links" in expected:
        got["other_links"] = [x["url"] for x in a.other_links]
    return got


def test_realistic_fixture_set_is_broad():
    assert len(REALISTIC) >= 40
    assert len({c["name"] for c in REALISTIC}) == len(REALISTIC)
    kinds = {c["expected"]["kind"] for c in REALISTIC}
    assert {"script_fill", "script_offer", "oc", "improv", "ramblefap", "verification"} <= kinds
    platforms = {link[0] for c in REALISTIC for link in c["expected"]["audio_links"]}
    assert {"soundgasm", "whypit", "hotaudio", "patreon", "pornhub"} <= platforms


@pytest.mark.parametrize("case", REALISTIC, ids=[c["name"] for c in REALISTIC])
def test_realistic_post(case):
    p = case["post"]
    a = analyse_post(
        post_id=p["id"],
        title=p["title"],
        body=p["selftext"],
        author=p["author"],
        flair=p.get("link_flair_text"),
    )
    expected = dict(case["expected"])
    expected["credits"] = sorted(expected["credits"], key=lambda c: (c["role"], c["name"]))
    assert _observed(a, expected) == expected, case.get("note", "")


def test_as_dict_keeps_the_dataclass_shape():
    import dataclasses

    for case in REALISTIC[:10]:
        p = case["post"]
        a = analyse_post(post_id=p["id"], title=p["title"], body=p["selftext"], author=p["author"])
        d = a.as_dict()
        assert d == dataclasses.asdict(a)
        assert list(d) == [f.name for f in dataclasses.fields(a)]
        d["audio_links"].append({})  # a copy: the analysis itself is untouched
        assert {} not in a.audio_links


# -- many posts: analyse_posts ------------------------------------------------------------------


def _batch_posts(n: int) -> list[tuple]:
    """n posts (post_id, title, body, author, flair, extra) made from the realistic fixtures,
    with bodies and titles crossed so that no two are alike."""
    out = []
    for i in range(n):
        a, b = REALISTIC[i % len(REALISTIC)]["post"], REALISTIC[(i * 7 + 3) % len(REALISTIC)]["post"]
        body = a["selftext"] if i % 3 else a["selftext"] + "\n\n" + b["selftext"]
        extra = f"w/ u/Extra{i} script by u/Writer{i % 5}" if i % 4 == 0 else None
        out.append((f"p{i}", f"{a['title']} #{i}", body, a["author"], b.get("link_flair_text"), extra))
    return out


def _one_by_one(posts):
    return [
        analyse_post(post_id=p[0], title=p[1], body=p[2], author=p[3], flair=p[4], extra=p[5]) for p in posts
    ]


def test_analyse_posts_in_process_is_analyse_post_in_order():
    posts = _batch_posts(120)
    want = _one_by_one(posts)
    got = analyse_posts(posts)
    assert not isinstance(got, list)  # an iterator: results can be consumed as they come
    assert list(got) == want
    # the other shapes of a post: a mapping with analyse_post's names, a tuple without flair/extra
    as_dicts = [
        dict(zip(("post_id", "title", "body", "author", "flair", "extra"), p, strict=True)) for p in posts
    ]
    assert list(analyse_posts(iter(as_dicts), workers=4)) == want
    short = [p[:4] for p in posts[:20]]
    assert list(analyse_posts(short)) == _one_by_one([(*p, None, None) for p in short])
    assert list(analyse_posts([])) == []


def test_analyse_posts_over_worker_processes_is_analyse_post_in_order(monkeypatch):
    from audio_assets import analysis

    pooled = []
    real = analysis._analyse_pooled

    def spy(*args):
        pooled.append(args[1:])
        return real(*args)

    monkeypatch.setattr(analysis, "_analyse_pooled", spy)
    posts = _batch_posts(400)
    want = _one_by_one(posts)
    # small chunks: many rounds, each with a share analysed here and chunks in the worker
    got = list(analyse_posts(iter(posts), workers=2, pool_min_posts=50, chunk_posts=30))
    assert pooled == [(1, 30, False)]
    assert got == want
    assert [a.post_id for a in got] == [p[0] for p in posts]
    assert list(analyse_posts(posts[:49], workers=2, pool_min_posts=50)) == want[:49]  # in process
    assert len(pooled) == 1
    # values marshal cannot write (the chunk and its results are pickled instead)
    odd = [(Decimal(i), *p[1:]) for i, p in enumerate(posts[:90])]
    got = list(analyse_posts(odd, workers=2, pool_min_posts=50, chunk_posts=30))
    assert got == _one_by_one(odd)
    assert [a.post_id for a in got] == [Decimal(i) for i in range(90)]


def test_a_pooled_batch_sets_earlier_objects_aside_while_it_works_never_while_it_is_held(monkeypatch):
    """gc.freeze while each result is made, gc.unfreeze before it is handed on (so a batch that is
    dropped unfinished can't leave the process frozen); none for an in-process batch, none when
    the process had frozen objects itself; given back when the batch fails."""
    from audio_assets import analysis

    calls: list[str] = []
    frozen = [0]

    class SpyGC:
        @staticmethod
        def get_freeze_count():
            return frozen[0]

        @staticmethod
        def freeze():
            calls.append("freeze")

        @staticmethod
        def unfreeze():
            calls.append("unfreeze")

    monkeypatch.setattr(analysis, "gc", SpyGC)
    posts = _batch_posts(120)
    for _a in analyse_posts(posts, workers=2, pool_min_posts=50, chunk_posts=30):
        assert calls[-1] == "unfreeze"  # nothing is frozen while the caller holds the batch
    assert calls == ["freeze", "unfreeze"] * 121  # each result, then the end
    calls.clear()
    batch = analyse_posts(posts, workers=2, pool_min_posts=50, chunk_posts=30)
    next(batch)
    batch.close()
    assert calls == ["freeze", "unfreeze"]
    calls.clear()
    assert len(list(analyse_posts(posts[:40], workers=2, pool_min_posts=50))) == 40 and calls == []
    bad = list(posts)
    bad[70] = ("bad", 12345, "body", "someone", None, None)
    with pytest.raises(TypeError):
        list(analyse_posts(bad, workers=2, pool_min_posts=50, chunk_posts=30))
    assert calls.count("freeze") == calls.count("unfreeze") > 0 and calls[-1] == "unfreeze"
    calls.clear()
    frozen[0] = 7  # the process's own freeze: left as it is
    assert (
        len(list(analyse_posts(posts, workers=2, pool_min_posts=50, chunk_posts=30))) == 120 and calls == []
    )


@pytest.mark.parametrize("pool", [False, True])
def test_analyse_posts_raises_at_the_post_that_fails(pool):
    posts = _batch_posts(200)
    posts[137] = ("bad", 12345, "body", "someone", None, None)  # a title that is no text
    got = []
    with pytest.raises(TypeError):
        for a in analyse_posts(posts, workers=2, pool_min_posts=50 if pool else 10_000, chunk_posts=20):
            got.append(a)
    assert got == _one_by_one(posts[:137])


@pytest.mark.parametrize("pool", [False, True])
def test_analyse_posts_can_give_each_error_in_place_and_go_on(pool):
    posts = _batch_posts(200)
    bad = {13, 14, 88, 137, 199}
    for i in bad:
        posts[i] = (f"bad{i}", 12345, "body", "someone", None, None)
    got = list(
        analyse_posts(
            posts, workers=2, errors="return", pool_min_posts=50 if pool else 10_000, chunk_posts=20
        )
    )
    assert len(got) == 200
    assert {i for i, a in enumerate(got) if isinstance(a, TypeError)} == bad
    good = [i for i in range(200) if i not in bad]
    assert [got[i] for i in good] == _one_by_one([posts[i] for i in good])


def test_analyse_posts_checks_its_errors_argument():
    with pytest.raises(ValueError):
        analyse_posts([], errors="ignore")


def test_analysing_ahead_stops_when_the_result_is_ready_or_at_a_failing_post():
    from concurrent.futures import Future

    from audio_assets.analysis import _analyse_ahead

    posts = _batch_posts(10)
    posts[6] = ("bad", 12345, "body", "someone", None, None)
    part = [posts, []]
    _analyse_ahead(part, Future(), False)  # never ready: up to the post that fails (raised in its turn)
    assert part[1] == _one_by_one(posts[:6])
    part = [posts, []]
    _analyse_ahead(part, Future(), True)  # the error is that post's result
    assert isinstance(part[1][6], TypeError)
    assert part[1][:6] + part[1][7:] == _one_by_one(posts[:6] + posts[7:])
    ready = Future()
    ready.set_result(None)
    part = [posts, []]
    _analyse_ahead(part, ready, False)
    assert part[1] == _one_by_one(posts[:1])


def test_post_analysis_rows_are_the_same_when_worker_processes_share_the_batch(monkeypatch):
    from functools import partial

    from audio_assets import analysis
    from audio_assets.layers import sources

    posts = _batch_posts(300)
    reddit = sources.frame(
        [
            {
                "post_id": p[0],
                "post_date": "2025-07-01",
                "title": p[1],
                "body": p[2],
                "author": p[3],
                "flair": p[4],
                "permalink": f"https://www.reddit.com/r/gonewildaudio/comments/{p[0]}/",
                "created_utc": 1.0e9 + i,
                "status": "missing" if i % 7 == 0 else "ok",
            }
            for i, p in enumerate(posts)
        ],
        sources.REDDIT_SCHEMA,
    )
    gwasi = sources.frame(
        [{"post_id": p[0], "post_date": "2025-07-01", "extra": p[5]} for p in posts if p[5]],
        sources.GWASI_SCHEMA,
    )
    want = sources.build_post_analysis(reddit, gwasi)  # 300 posts: analysed in this process
    assert want.height == 300 and want["status"].to_list() == ["ok"] * 300
    monkeypatch.setattr(
        analysis,
        "analyse_posts",
        partial(analysis.analyse_posts, workers=2, pool_min_posts=50, chunk_posts=30),
    )
    assert sources.build_post_analysis(reddit, gwasi).equals(want)
