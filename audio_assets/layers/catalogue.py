"""The catalogue (performers, scribes, tags with release counts), release similarity
(TF-IDF over titles, tags and descriptions) and full-text search over releases."""

from __future__ import annotations

import glob
import json
import math
import os
import re
from collections import Counter, defaultdict

import duckdb
import polars as pl

from audio_assets.layers.sources import F, I, S, frame

CATALOGUE_SCHEMA = {"kind": S, "name": S, "release_count": I, "first_release": S, "last_release": S, "names_seen": S}
SIMILARITY_SCHEMA = {"kind": S, "item": S, "similar": S, "rank": I, "score": F}
TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset("a an the and or of to in on for with you your my me i is it at by from this that".split())


def _json(value: str | None) -> list:
    return json.loads(value) if value else []


def build_catalogue(releases: pl.DataFrame) -> pl.DataFrame:
    """Performers, scribes, audiences and tags with how many releases each appears in."""
    seen: dict[tuple[str, str], dict] = {}

    def add(kind: str, name: str | None, release: dict) -> None:
        if not name:
            return
        key = (kind, name.lower())
        rec = seen.setdefault(key, {"kind": kind, "name": name, "releases": set(), "dates": [], "names": Counter()})
        rec["releases"].add(release["release_id"])
        rec["dates"].append(release["release_date"])
        rec["names"][name] += 1

    for r in releases.iter_rows(named=True):
        for p in _json(r["performers"]):
            add("performer", p, r)
        add("scribe", r["scribe"], r)
        for a in _json(r["audiences"]):
            add("audience", a, r)
        for t in _json(r["content_tags"]):
            add("tag", t.strip().lower(), r)
        if r["kind"]:
            add("kind", r["kind"], r)
    rows = []
    for rec in seen.values():
        rows.append({"kind": rec["kind"], "name": rec["names"].most_common(1)[0][0], "release_count": len(rec["releases"]),
                     "first_release": min(rec["dates"]), "last_release": max(rec["dates"]),
                     "names_seen": json.dumps(sorted(rec["names"]))})
    rows.sort(key=lambda r: (r["kind"], -r["release_count"], r["name"].lower()))
    return frame(rows, CATALOGUE_SCHEMA)


def _tokens(text: str) -> list[str]:
    return [t for t in TOKEN_RE.findall(text.lower()) if t not in STOPWORDS and len(t) > 1]


def release_document(r: dict) -> str:
    return " ".join([r["title"] or "", " ".join(_json(r["tags"])), " ".join(_json(r["audiences"])),
                     r.get("description") or ""])


def tfidf(docs: dict[str, str]) -> dict[str, dict[str, float]]:
    """L2-normalised TF-IDF vectors (sparse dicts) for each document."""
    counts = {k: Counter(_tokens(v)) for k, v in docs.items()}
    df = Counter(t for c in counts.values() for t in c)
    n = len(docs)
    vectors = {}
    for k, c in counts.items():
        vec = {t: (1 + math.log(tf)) * math.log((1 + n) / (1 + df[t])) + 0.0 for t, tf in c.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vectors[k] = {t: v / norm for t, v in vec.items() if v}
    return vectors


def _top_similar(vectors: dict[str, dict[str, float]], k: int) -> dict[str, list[tuple[str, float]]]:
    postings: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for key, vec in vectors.items():
        for t, w in vec.items():
            postings[t].append((key, w))
    out = {}
    for key, vec in vectors.items():
        scores: dict[str, float] = defaultdict(float)
        for t, w in vec.items():
            for other, w2 in postings[t]:
                if other != key:
                    scores[other] += w * w2
        out[key] = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return out


def build_similarity(releases: pl.DataFrame, k: int = 5) -> pl.DataFrame:
    """Similar releases (cosine of TF-IDF vectors) and similar performers (cosine of their mean profiles)."""
    rows_by_id = {r["release_id"]: r for r in releases.iter_rows(named=True)}
    vectors = tfidf({rid: release_document(r) for rid, r in rows_by_id.items()})
    rows = []
    for rid, sims in _top_similar(vectors, k).items():
        rows += [{"kind": "release", "item": rid, "similar": o, "rank": i + 1, "score": round(s, 4)}
                 for i, (o, s) in enumerate(sims) if s > 0]
    profiles: dict[str, Counter] = defaultdict(Counter)
    members: dict[str, int] = Counter()
    names: dict[str, str] = {}
    for rid, r in rows_by_id.items():
        for p in _json(r["performers"]):
            names.setdefault(p.lower(), p)
            members[p.lower()] += 1
            for t, w in vectors[rid].items():
                profiles[p.lower()][t] += w
    mean = {}
    for key, prof in profiles.items():
        vec = {t: w / members[key] for t, w in prof.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        mean[names[key]] = {t: v / norm for t, v in vec.items()}
    for p, sims in _top_similar(mean, k).items():
        rows += [{"kind": "performer", "item": p, "similar": o, "rank": i + 1, "score": round(s, 4)}
                 for i, (o, s) in enumerate(sims) if s > 0]
    rows.sort(key=lambda r: (r["kind"], r["item"], r["rank"]))
    return frame(rows, SIMILARITY_SCHEMA)


# -- full-text search --------------------------------------------------------------------------

def _fts_extension() -> str | None:
    """The DuckDB full-text-search extension shipped by the duckdb-ext-fts package, if installed."""
    try:
        import duckdb_ext  # type: ignore[import-not-found]
    except ImportError:
        return None
    for root in list(duckdb_ext.__path__):
        hits = glob.glob(os.path.join(root, "extensions", f"v{duckdb.__version__}", "*", "fts.duckdb_extension"))
        if hits:
            return hits[0]
    return None


def search(releases: pl.DataFrame, text: str, limit: int = 10) -> tuple[list[dict], str]:
    """Releases matching ``text``, best first, and the method used ("bm25" with DuckDB's
    full-text search, or "substring" where that extension is not installed)."""
    con = duckdb.connect()
    try:
        docs = pl.DataFrame({
            "release_id": releases.get_column("release_id"),
            "title": releases.get_column("title"),
            "body": [release_document(r) + " " + " ".join(_json(r["performers"])) + " " + (r["scribe"] or "")
                     for r in releases.iter_rows(named=True)],
        })
        con.register("docs_src", docs.to_arrow())
        con.execute("CREATE TABLE docs AS SELECT * FROM docs_src")
        ext = _fts_extension()
        if ext:
            con.execute(f"LOAD '{ext}'")
            con.execute("PRAGMA create_fts_index('docs', 'release_id', 'title', 'body', overwrite=1)")
            rows = con.execute("""SELECT release_id, title, score FROM (
                                    SELECT *, fts_main_docs.match_bm25(release_id, ?) AS score FROM docs)
                                  WHERE score IS NOT NULL ORDER BY score DESC, release_id LIMIT ?""", [text, limit]).fetchall()
            method = "bm25"
        else:
            words = [w for w in _tokens(text)] or [text.lower()]
            score = " + ".join("(CASE WHEN lower(body) LIKE ? THEN 1 ELSE 0 END)" for _ in words)
            rows = con.execute(f"""SELECT release_id, title, ({score}) AS score FROM docs
                                   WHERE ({score}) > 0 ORDER BY score DESC, release_id LIMIT ?""",
                               [f"%{w}%" for w in words] * 2 + [limit]).fetchall()
            method = "substring"
    finally:
        con.close()
    return [{"release_id": r[0], "title": r[1], "score": round(float(r[2]), 4)} for r in rows], method
