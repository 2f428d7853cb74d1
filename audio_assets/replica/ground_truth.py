"""Compare the pipeline's releases with the replica corpus's ground truth."""

from __future__ import annotations

import json

import duckdb


def release_mismatches(db_path, corpus, days: set[str] | None = None, *, patreon: bool = False) -> list[tuple]:
    """Every way the releases table differs from the corpus's truth (empty when they agree).
    With ``patreon``, the followed creators' early-access posts belong to their releases too."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rels = con.execute("SELECT release_id, post_ids, performers, scribe, script_urls, script_offer_post_id, "
                           "private_fill, status FROM releases").fetchall()
        variants = con.execute("SELECT release_id, label, source_urls, status FROM release_variants").fetchall()
        known_posts = {r[0] for r in con.execute("SELECT post_id FROM gwasi_index").fetchall()}
    finally:
        con.close()
    by_post = {}
    for r in rels:
        for p in json.loads(r[1]):
            by_post[p] = r
    problems = []
    for t in corpus.releases:
        if days is not None and t.day not in days:
            continue
        r = by_post.get(t.post_ids[0])
        if r is None:
            problems.append((t.key, "missing release", t.status))
            continue
        expected_posts = list(t.post_ids)
        if patreon:
            expected_posts += [f"pt_{pid}" for pid, rec in getattr(corpus, "patreon", {}).items()
                               if rec.get("release_key") == t.key and (days is None or rec["published_at"][:10] in days)]
        if sorted(json.loads(r[1])) != sorted(expected_posts):
            problems.append((t.key, "posts", json.loads(r[1]), expected_posts))
        # A post missing from Reddit keeps only what GWASI knows: its poster.
        expected_performers = t.performers[:1] if t.status == "reddit_missing" else t.performers
        if json.loads(r[2]) != expected_performers:
            problems.append((t.key, "performers", json.loads(r[2]), t.performers))
        if r[3] != t.scribe:
            problems.append((t.key, "scribe", r[3], t.scribe))
        if t.script_url and t.script_url not in json.loads(r[4]):
            problems.append((t.key, "script", json.loads(r[4]), t.script_url))
        # An offer posted on a day this run did not read cannot be known (sharded GWASI bases carry no fills).
        if r[5] != t.script_offer_post_id and (t.script_offer_post_id in known_posts or r[5] is not None):
            problems.append((t.key, "script offer", r[5], t.script_offer_post_id))
        if bool(r[6]) != t.private_fill:
            problems.append((t.key, "private fill", r[6], t.private_fill))
        if (r[7] == "ok") != (t.status == "ok"):
            problems.append((t.key, "status", r[7], t.status))
        mine = [v for v in variants if v[0] == r[0] and v[3] == "ok"]
        truth = [v for v in t.variants if v.downloadable]
        if len(mine) != len(truth):
            problems.append((t.key, "variant count", [v[1] for v in mine], [v.label for v in truth]))
            continue
        for v in truth:
            want = {u.lower() for u in v.urls}
            # pornhub and other link-only hosts are recorded on the variant too; the truth lists audio hosts
            match = [m for m in mine if {u.lower() for u in json.loads(m[2]) if "pornhub.com" not in u and "patreon.com" not in u} == want]
            if not match:
                problems.append((t.key, "variant sources", sorted(want), [json.loads(m[2]) for m in mine]))
            elif match[0][1] != v.label:
                problems.append((t.key, "variant label", match[0][1], v.label))
    return problems
