"""Catalogue, similarity and search over releases."""

import json

import polars as pl

from audio_assets.layers import catalogue
from audio_assets.layers.releases import RELEASE_SCHEMA
from audio_assets.layers.sources import frame


def _releases():
    def r(rid, title, performers, scribe, tags, audiences, day, desc=""):
        return {"release_id": rid, "title": title, "performers": json.dumps(performers), "scribe": scribe,
                "tags": json.dumps(tags), "content_tags": json.dumps(tags), "audiences": json.dumps(audiences),
                "release_date": day, "kind": "script_fill", "description": desc}

    return frame([
        r("rel_a", "Shy Ghost Girl Possesses You", ["Lurkydip"], "TheWritingJedi", ["Ghost", "Wholesome"], ["F4M"], "2025-08-01",
          "a shy ghost haunts your flat"),
        r("rel_b", "The Haunted Lighthouse Keeper", ["lurkydip"], "ScribbleSmith", ["Ghost", "Fantasy"], ["F4F"], "2025-07-29",
          "a lonely ghost keeps the light"),
        r("rel_c", "Threesome At The Milk Maid Cafe!", ["SnakeySmut", "alekirser"], "Enno_Zalenno2", ["Maids", "Cafe"],
          ["FF4M"], "2025-08-01", "maid cafe fun"),
        r("rel_d", "Maid Cafe Closing Time", ["SnakeySmut"], "Enno_Zalenno2", ["Maids", "Cafe"], ["F4M"], "2025-08-03",
          "the maid cafe closes for the night"),
    ], RELEASE_SCHEMA)


def test_catalogue_counts_one_identity_across_case():
    df = catalogue.build_catalogue(_releases())
    perf = {r["name"]: r["release_count"] for r in df.filter(pl.col("kind") == "performer").iter_rows(named=True)}
    assert perf == {"Lurkydip": 2, "SnakeySmut": 2, "alekirser": 1}
    scribes = {r["name"]: r["release_count"] for r in df.filter(pl.col("kind") == "scribe").iter_rows(named=True)}
    assert scribes["Enno_Zalenno2"] == 2
    ghost = df.filter((pl.col("kind") == "tag") & (pl.col("name") == "ghost")).row(0, named=True)
    assert ghost["release_count"] == 2 and ghost["first_release"] == "2025-07-29"


def test_similarity_finds_the_related_release_and_performer():
    df = catalogue.build_similarity(_releases())
    top = {r["item"]: r["similar"] for r in df.filter((pl.col("kind") == "release") & (pl.col("rank") == 1)).iter_rows(named=True)}
    assert top["rel_a"] == "rel_b" and top["rel_c"] == "rel_d"
    perf = df.filter((pl.col("kind") == "performer") & (pl.col("item") == "alekirser") & (pl.col("rank") == 1))
    assert perf.row(0, named=True)["similar"] == "SnakeySmut"


def test_search_ranks_the_best_match_first():
    import platform

    hits, method = catalogue.search(_releases(), "ghost lighthouse")
    assert hits[0]["release_id"] == "rel_b"
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        assert method == "bm25"  # DuckDB's full-text search, shipped by duckdb-ext-fts
    hits, _ = catalogue.search(_releases(), "snakeysmut")
    assert {h["release_id"] for h in hits} == {"rel_c", "rel_d"}


def test_credits_and_tag_taxonomy():
    from audio_assets.layers.releases import credits_and_tags

    rel = _releases().with_columns(pl.lit('[{"role": "sfx", "name": "RainOnTin"}]').alias("credits"))
    credits, tags = credits_and_tags(rel)
    c = credits.filter(pl.col("release_id") == "rel_c")
    assert [(r["person"], r["role"]) for r in c.iter_rows(named=True)] == [
        ("SnakeySmut", "voice"), ("alekirser", "voice"), ("Enno_Zalenno2", "scribe"), ("RainOnTin", "sfx")]
    t = tags.filter(pl.col("release_id") == "rel_a")
    assert {(r["category"], r["tag"]) for r in t.iter_rows(named=True)} == {
        ("audience", "F4M"), ("kind", "Script Fill"), ("content", "Ghost"), ("content", "Wholesome")}


def test_one_script_many_performances():
    from audio_assets.layers.releases import script_works

    rel = _releases().with_columns(
        pl.Series("script_urls", ['["https://scriptbin.works/u/W/ghost"]', "[]", "[]", '["https://scriptbin.works/u/W/ghost"]']),
        pl.Series("script_offer_post_id", [None, "offer1", None, "offer1"]))
    works = script_works(rel)
    multi = works.filter(pl.col("performance_count") > 1).row(0, named=True)
    assert json.loads(multi["release_ids"]) == ["rel_b", "rel_a", "rel_d"]  # by url, by offer, by both
    assert json.loads(multi["performers"]) == ["lurkydip", "Lurkydip", "SnakeySmut"]


def test_identities_join_reddit_and_host_accounts():
    from audio_assets.layers.releases import resolve_identities, split_identities

    rows = [{"release_id": "r1", "performers": '["Lurkydip"]', "scribe": "TheWritingJedi"},
            {"release_id": "r2", "performers": '["lurkydip", "Guest"]', "scribe": None},
            {"release_id": "r3", "performers": '["QuietVoice"]', "scribe": None}]
    perf = resolve_identities(rows, [("Lurkydip", "LurkyDip", "soundgasm"), ("QuietVoice", "QuietVoiceASMR", "soundgasm")])
    assert [r["performers"] for r in rows] == ['["Lurkydip"]', '["Lurkydip", "Guest"]', '["QuietVoice"]']
    by = {p["name"]: p for p in perf}
    assert json.loads(by["Lurkydip"]["aliases"]) == ["LurkyDip", "lurkydip"] and by["Lurkydip"]["release_count"] == 2
    assert "https://soundgasm.net/u/QuietVoiceASMR" in json.loads(by["QuietVoice"]["urls"])
    assert split_identities(pl.DataFrame(perf)) == []
