"""Aggregation: posts and audio become releases, variants and mirrors.

A release is one performance of one work. Posts that share an audio (by acoustic
fingerprint or by the host's own id) are one release; within a release, audio files
with the same recording (fingerprint and duration) are one variant with several
sources (mirrors); different recordings are variants labelled from link text and tags.
Ids derive from content (post ids and audio identities), never from run order."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from audio_assets.layers.sources import B, F, I, S, frame  # noqa: E741
from audio_assets.media import fingerprint_similarity

#: mirrors of one recording score >= 0.99; unrelated short clips reach 0.85
SAME_RECORDING_SIMILARITY = 0.93
SAME_RECORDING_MAX_DURATION_DIFF_S = 1.5
RELEASE_KINDS_EXCLUDED = {"script_offer", "verification", "request"}
PLATFORM_PREFERENCE = {"whypit": 0, "soundgasm": 1, "patreon": 2, "hotaudio": 8, "pornhub": 9}

RELEASE_SCHEMA = {
    "release_id": S, "release_date": S, "title": S, "post_ids": S, "primary_post_id": S, "post_urls": S,
    "performers": S, "scribe": S, "credits": S, "script_urls": S, "script_offer_post_id": S, "script_text_path": S,
    "private_fill": B, "kind": S, "audiences": S, "tags": S, "content_tags": S, "artwork_path": S,
    "variant_count": I, "source_urls": S, "description": S, "status": S, "status_reason": S, "content_hash": S,
    "performers_raw": S, "scribe_raw": S,
}
VARIANT_SCHEMA = {
    "release_id": S, "variant_id": S, "release_date": S, "variant_index": I, "label": S, "audience": S,
    "audio_path": S, "audio_sha256": S, "duration_s": F, "codec": S, "source_urls": S, "platform_ids": S,
    "status": S,
}
PERFORMER_SCHEMA = {
    "performer_id": S, "name": S, "aliases": S, "urls": S, "release_count": I, "roles": S,
}


class UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


@dataclass
class _Variant:
    sources: list[dict] = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        ok = [s for s in self.sources if s["status"] == "ok"]
        if not ok:
            return None
        return sorted(ok, key=lambda s: (-(1 if s["codec"] == "flac" else 0), -(s["bit_rate_kbps"] or 0),
                                        PLATFORM_PREFERENCE.get(s["platform"], 5), s["page_url"]))[0]


def _same_recording(a: dict, b: dict) -> bool:
    if a["sha256"] and a["sha256"] == b["sha256"]:
        return True
    if not a["fingerprint"] or not b["fingerprint"]:
        return False
    if a["duration_s"] and b["duration_s"] and abs(a["duration_s"] - b["duration_s"]) > SAME_RECORDING_MAX_DURATION_DIFF_S:
        return False
    return fingerprint_similarity(a["fingerprint"], b["fingerprint"]) >= SAME_RECORDING_SIMILARITY


def _candidate_pairs(audio: list[dict], posts: dict[str, dict]):
    """Pairs of audio rows from different posts that could be one recording: same performer
    (poster or host account, case-insensitive) and durations within the tolerance."""
    by_person: dict[str, list[dict]] = defaultdict(list)
    for a in audio:
        people = {(posts[a["post_id"]]["author"] or "").lower(), (a["platform_user"] or "").lower()} - {""}
        for person in people:
            by_person[person].append(a)
    seen: set[tuple[int, int]] = set()
    for rows in by_person.values():
        rows = sorted(rows, key=lambda r: r["duration_s"] or 0.0)
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if (b["duration_s"] or 0.0) - (a["duration_s"] or 0.0) > SAME_RECORDING_MAX_DURATION_DIFF_S:
                    break
                if a["post_id"] == b["post_id"]:
                    continue
                key = (min(id(a), id(b)), max(id(a), id(b)))
                if key not in seen:
                    seen.add(key)
                    yield a, b


HOST_PROFILE = {"soundgasm": "https://soundgasm.net/u/", "hotaudio": "https://hotaudio.net/u/",
                "whypit": "https://whyp.it/users/", "patreon": None}


def resolve_identities(releases: list[dict], host_accounts: list[tuple[str, str, str]]) -> list[dict]:
    """One identity per person across Reddit and host usernames (case-insensitive): host
    accounts that carry a person's uploads join that person. Rewrites each release's
    performers and scribe to the canonical (Reddit) spelling; returns the performers rows."""
    uf = UnionFind()
    spellings: dict[str, Counter] = defaultdict(Counter)  # lower name -> Reddit spellings seen
    host_names: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in releases:  # the spellings as credited (kept beside the canonical ones, so re-resolving is exact)
        r.setdefault("performers_raw", r["performers"])
        r.setdefault("scribe_raw", r["scribe"])
        for name in json.loads(r["performers_raw"] or "[]") + ([r["scribe_raw"]] if r["scribe_raw"] else []):
            uf.find(name.lower())
            spellings[name.lower()][name] += 1
    for owner, user, platform in host_accounts:
        uf.union(owner.lower(), user.lower())
        host_names[user.lower()].add((user, platform))
    groups: dict[str, list[str]] = defaultdict(list)
    for key in list(uf.parent):
        groups[uf.find(key)].append(key)
    canonical: dict[str, str] = {}
    for keys in groups.values():
        credited = Counter()
        for k in keys:
            credited.update(spellings.get(k, Counter()))
        name = sorted(credited.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if credited else sorted(keys)[0]
        for k in keys:
            canonical[k] = name
    people: dict[str, dict] = {}
    for r in releases:
        perf = []
        for name in json.loads(r["performers_raw"] or "[]"):
            c = canonical[name.lower()]
            if c not in perf:
                perf.append(c)
        r["performers"] = json.dumps(perf)
        r["scribe"] = canonical[r["scribe_raw"].lower()] if r["scribe_raw"] else None
        for role, names in (("voice", perf), ("scribe", [r["scribe"]] if r["scribe"] else [])):
            for name in names:
                rec = people.setdefault(name.lower(), {"name": name, "releases": set(), "roles": set()})
                rec["roles"].add(role)
                if role == "voice":
                    rec["releases"].add(r["release_id"])
    rows = []
    for key, rec in sorted(people.items()):
        members = groups[uf.find(key)]
        aliases, urls = set(), set()
        for k in members:
            for spelling in spellings.get(k, ()):
                urls.add(f"https://www.reddit.com/user/{spelling}")
                if spelling != rec["name"]:
                    aliases.add(spelling)
            for user, platform in host_names.get(k, ()):
                if user != rec["name"]:
                    aliases.add(user)
                if HOST_PROFILE.get(platform) and platform != "whypit":
                    urls.add(HOST_PROFILE[platform] + user)
        rows.append({"performer_id": key, "name": rec["name"], "aliases": json.dumps(sorted(aliases)),
                     "urls": json.dumps(sorted(urls)), "release_count": len(rec["releases"]),
                     "roles": json.dumps(sorted(rec["roles"]))})
    return rows


def _post_url(permalink: str) -> str:
    return permalink if permalink.startswith("http") else f"https://www.reddit.com{permalink}"


def _short_hash(*parts: str, n: int = 10) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:n]


def _title_key(title: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (title or "").lower())


USABLE_POST_STATUSES = ("ok", "deleted", "removed", "locked")


def usable_posts(analysis: pl.DataFrame) -> dict[str, dict]:
    return {r["post_id"]: r for r in analysis.iter_rows(named=True) if r["status"] in USABLE_POST_STATUSES}


def aggregate(analysis: pl.DataFrame, audio: pl.DataFrame, scripts: pl.DataFrame | None,
              artwork: pl.DataFrame | None, reddit_posts: pl.DataFrame | None = None,
              gwasi_rows: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    posts = usable_posts(analysis)
    audio_rows = [a for a in audio.iter_rows(named=True) if a["post_id"] in posts]
    audio_by_post: dict[str, list[dict]] = defaultdict(list)
    for a in audio_rows:
        audio_by_post[a["post_id"]].append(a)

    # 1. Posts sharing an audio are one release (reposts, Patreon early access).
    uf = UnionFind()
    lost_posts = set(reddit_status_lost(reddit_posts))
    lost_why = lost_post_reasons(reddit_posts) if lost_posts else {}
    for pid, p in posts.items():
        if p["kind"] in RELEASE_KINDS_EXCLUDED:
            continue
        if json.loads(p["audio_links"] or "[]") or pid in lost_posts:
            uf.find(pid)
    ok_audio = [a for a in audio_rows if a["status"] == "ok"]
    by_identity: dict[str, str] = {}
    for a in audio_rows:
        if a["post_id"] not in uf.parent:
            continue
        for ident in filter(None, [a["sha256"], f"{a['platform']}:{a['platform_id']}" if a["platform_id"] else None,
                                   a["page_url"].lower()]):
            if ident in by_identity:
                uf.union(by_identity[ident], a["post_id"])
            else:
                by_identity[ident] = a["post_id"]
    # Acoustic matches across posts (reposts, early access): compared only within a performer's
    # audio and a duration window, so the work grows with each performer's catalogue, not the square of all.
    for a, b in _candidate_pairs([a for a in ok_audio if a["post_id"] in uf.parent], posts):
        if uf.find(a["post_id"]) != uf.find(b["post_id"]) and _same_recording(a, b):
            uf.union(a["post_id"], b["post_id"])
    # Without an acoustic match (an audio the host re-encoded, a Patreon early-access copy), the
    # same performer's posts with the same title and an audio of the same length are one release.
    by_title: dict[tuple[str, str], list[str]] = defaultdict(list)
    for pid in uf.parent:
        p = posts[pid]
        if p["author"] and _title_key(p["clean_title"]):
            by_title[(p["author"].lower(), _title_key(p["clean_title"]))].append(pid)
    for same in by_title.values():
        for i, a in enumerate(same):
            for b in same[i + 1:]:
                durations_a = [x["duration_s"] for x in audio_by_post.get(a, []) if x["status"] == "ok" and x["duration_s"]]
                durations_b = [x["duration_s"] for x in audio_by_post.get(b, []) if x["status"] == "ok" and x["duration_s"]]
                if any(abs(x - y) <= SAME_RECORDING_MAX_DURATION_DIFF_S for x in durations_a for y in durations_b):
                    uf.union(a, b)
                elif (a.startswith("pt_") and not durations_a) or (b.startswith("pt_") and not durations_b):
                    uf.union(a, b)  # a locked early-access post: its title is all there is to go on
    groups: dict[str, list[str]] = defaultdict(list)
    for pid in uf.parent:
        groups[uf.find(pid)].append(pid)

    script_rows = list(scripts.iter_rows(named=True)) if scripts is not None else []
    scripts_by_post: dict[str, list[dict]] = defaultdict(list)
    for s in script_rows:
        scripts_by_post[s["post_id"]].append(s)
    # Script offers: their own script links, and which offer a scriptbin URL belongs to.
    offer_of_script: dict[str, str] = {}
    offer_of_fill: dict[str, str] = {}
    if gwasi_rows is not None and "fill_of" in gwasi_rows.columns:
        for g in gwasi_rows.filter(pl.col("fill_of").is_not_null()).iter_rows(named=True):
            offer_of_fill[g["post_id"]] = g["fill_of"]
    offer_by_writer_title: dict[tuple[str, str], str] = {}
    for pid, p in posts.items():
        if p["kind"] == "script_offer" and p["author"]:
            offer_by_writer_title.setdefault((p["author"].lower(), _title_key(p["clean_title"])), pid)
        if p["kind"] == "script_offer":
            for link in json.loads(p["script_links"] or "[]"):
                if link["platform"] == "scriptbin":
                    offer_of_script.setdefault(link["url"].lower(), pid)
    art_by_post: dict[str, list[dict]] = defaultdict(list)
    for a in artwork.iter_rows(named=True) if artwork is not None else []:
        if a["status"] == "ok":
            art_by_post[a["post_id"]].append(a)

    releases, variants = [], []
    for member_ids in groups.values():
        member_ids.sort(key=lambda p: (posts[p]["created_utc"] or 0, p))
        # The public (Reddit) post names and dates the release; an early-access Patreon post joins it.
        primary = next((m for m in member_ids if not m.startswith("pt_")), member_ids[0])
        first = posts[primary]
        release_id = "rel_" + primary
        my_audio = [a for m in member_ids for a in audio_by_post.get(m, [])]
        first_variant = len(variants)
        # 2. Variants: cluster this release's audio by recording.
        clusters: list[_Variant] = []
        for a in sorted(my_audio, key=lambda a: (a["post_id"], a["link_index"])):
            if a["status"] != "ok":
                continue
            for v in clusters:
                if any(_same_recording(a, s) for s in v.sources):
                    v.sources.append(a)
                    break
            else:
                clusters.append(_Variant([a]))
        # Non-downloadable sources (HotAudio pages, pornhub) attach to the only variant, else to the release.
        extra_sources = [a for a in my_audio if a["status"] != "ok"]
        if len(clusters) == 1:
            clusters[0].sources.extend(extra_sources)
            extra_sources = []
        audiences = json.loads(first["audiences"] or "[]")
        for m in member_ids[1:]:
            for aud in json.loads(posts[m]["audiences"] or "[]"):
                if aud not in audiences:
                    audiences.append(aud)
        release_variants = []
        for v in clusters:
            best = v.best
            hints = [s["variant_hint"] for s in v.sources if s["variant_hint"]]
            label = hints[0] if hints else ""
            release_variants.append((label, v, best))
        if len(release_variants) == 1 and not release_variants[0][0]:
            release_variants = [("", release_variants[0][1], release_variants[0][2])]
        release_variants.sort(key=lambda t: (t[0] == "", t[2]["post_id"] if t[2] else "", t[2]["link_index"] if t[2] else 0))
        for idx, (label, v, best) in enumerate(release_variants):
            audience = label if label in audiences else (audiences[0] if len(audiences) == 1 else None)
            identity = best["sha256"] if best else _short_hash(*sorted(s["page_url"] for s in v.sources))
            variants.append({
                "release_id": release_id, "variant_id": f"{release_id}_{identity[:10]}",
                "release_date": first["post_date"], "variant_index": idx, "label": label, "audience": audience,
                "audio_path": best["local_path"] if best else None, "audio_sha256": best["sha256"] if best else None,
                "duration_s": best["duration_s"] if best else None, "codec": best["codec"] if best else None,
                "source_urls": json.dumps(sorted({s["page_url"] for s in v.sources})),
                "platform_ids": json.dumps(sorted({f"{s['platform']}:{s['platform_id']}" for s in v.sources if s["platform_id"]})),
                "status": "ok" if best else "no_audio",
            })
        # 3. Credits.
        performers: list[str] = []
        for m in member_ids:
            for name in json.loads(posts[m]["performers"] or "[]"):
                if all(name.lower() != p.lower() for p in performers):
                    performers.append(name)
        scribe = next((posts[m]["scribe"] for m in member_ids if posts[m]["scribe"]), None)
        my_scripts = [s for m in member_ids for s in scripts_by_post.get(m, [])]
        offer = next((s["offer_post_id"] for s in my_scripts if s["offer_post_id"]), None)
        if offer is None:
            offer = next((offer_of_script[s["url"].lower()] for s in my_scripts
                          if s["url"] and s["url"].lower() in offer_of_script), None)
        if offer is None:  # GWASI's fills: offer -> the posts that filled it
            offer = next((offer_of_fill[m] for m in member_ids if m in offer_of_fill), None)
        if offer is None and scribe:  # the writer's offer with the same title
            offer = offer_by_writer_title.get((scribe.lower(), _title_key(first["clean_title"])))
        if offer and offer in scripts_by_post:
            my_scripts += [s for s in scripts_by_post[offer] if s["platform"] == "scriptbin"]
        if offer and offer in posts and not scribe:
            scribe = posts[offer]["author"]
        script_urls = sorted({s["url"] for s in my_scripts if s["url"]})
        text_path = next((s["text_path"] for s in my_scripts if s["text_path"]), None)
        if scribe is None:
            scribe = next((s["author"] for s in my_scripts if s["author"]), None)
        art = next((a["local_path"] for m in member_ids for a in art_by_post.get(m, [])), None)
        my_variants = variants[first_variant:]
        ok_variants = [v for v in my_variants if v["status"] == "ok"]
        if ok_variants:
            status, reason = "ok", None
        elif lost_posts & set(member_ids) and not my_audio:
            why = "; ".join(sorted({lost_why.get(m, "the Reddit post is gone") for m in member_ids if m in lost_posts}))
            status, reason = "no_audio", f"{why}, and GWASI kept no audio link"
        elif any(a["platform"] == "hotaudio" and a["status"] == "metadata_only" for a in my_audio):
            status, reason = "no_audio", "only on HotAudio, whose audio is encrypted; no other host found"
        elif any(a["status"] == "not_found" for a in my_audio):
            status, reason = "no_audio", "the audio was removed from its host (404)"
        else:
            status, reason = "no_audio", "no downloadable audio: " + "; ".join(sorted({a["error"] or a["status"] for a in my_audio}))[:500]
        tags = []
        content_tags = []
        for m in member_ids:
            for t in json.loads(posts[m]["tags"] or "[]"):
                if t not in tags:
                    tags.append(t)
            for t in json.loads(posts[m]["content_tags"] or "[]"):
                if t not in content_tags:
                    content_tags.append(t)
        credits = []
        for m in member_ids:
            for c in json.loads(posts[m]["credits"] or "[]"):
                if c not in credits:
                    credits.append(c)
        row = {
            "release_id": release_id, "release_date": first["post_date"], "title": first["clean_title"],
            "post_ids": json.dumps(member_ids), "primary_post_id": primary,
            "post_urls": json.dumps([_post_url(posts[m]["permalink"]) for m in member_ids if posts[m]["permalink"]]),
            "performers": json.dumps(performers), "scribe": scribe, "credits": json.dumps(credits),
            "script_urls": json.dumps(script_urls), "script_offer_post_id": offer, "script_text_path": text_path,
            "private_fill": any(posts[m]["private_fill"] for m in member_ids), "kind": first["kind"],
            "audiences": json.dumps(audiences), "tags": json.dumps(tags), "content_tags": json.dumps(content_tags),
            "artwork_path": art, "variant_count": len(release_variants),
            "source_urls": json.dumps(sorted({a["page_url"] for a in my_audio})),
            "description": next((a["platform_description"] for a in sorted(my_audio, key=lambda a: a["page_url"])
                                 if a["platform_description"]), None),
            "status": status,
            "status_reason": reason,
        }
        row["_variants"] = my_variants
        releases.append(row)
    releases.sort(key=lambda r: r["release_id"])
    variants.sort(key=lambda v: (v["release_id"], v["variant_index"]))
    for row in releases:
        row.pop("_variants")
    return finalize(releases, variants, host_accounts_of(posts, audio_rows))


def host_accounts_of(posts: dict[str, dict], audio_rows: list[dict]) -> list[tuple[str, str, str]]:
    """(person, host account, platform) for every upload: the account belongs to the credited
    performer of that name, else to the poster."""
    out = []
    for a in audio_rows:
        user, post = a.get("platform_user"), posts.get(a["post_id"])
        if not user or post is None or a["platform"] not in HOST_PROFILE:
            continue
        credited = {p.lower() for p in json.loads(post["performers"] or "[]")}
        owner = user if user.lower() in credited else post["author"]
        if owner:
            out.append((owner, user, a["platform"]))
    return out


def finalize(releases: list[dict], variants: list[dict], host_accounts: list[tuple[str, str, str]]
             ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Resolve identities over every release, then hash each release's content."""
    releases = sorted((dict(r) for r in releases), key=lambda r: r["release_id"])
    variants = sorted(variants, key=lambda v: (v["release_id"], v["variant_index"]))
    perf_rows = resolve_identities(releases, host_accounts)
    by_release: dict[str, list[dict]] = defaultdict(list)
    for v in variants:
        by_release[v["release_id"]].append(v)
    for row in releases:
        row.pop("content_hash", None)
        row["content_hash"] = _short_hash(json.dumps(row, sort_keys=True),
                                          json.dumps(by_release.get(row["release_id"], []), sort_keys=True), n=16)
    return frame(releases, RELEASE_SCHEMA), frame(variants, VARIANT_SCHEMA), frame(perf_rows, PERFORMER_SCHEMA)


SIGNATURE_SCHEMA = {"post_id": S, "signature": S}


def post_signatures(analysis: pl.DataFrame, audio: pl.DataFrame, scripts: pl.DataFrame | None,
                    artwork: pl.DataFrame | None, reddit_posts: pl.DataFrame | None,
                    gwasi_rows: pl.DataFrame | None) -> dict[str, str]:
    """A hash per post of everything aggregation reads about it (vectorised: polars row hashes)."""
    parts: dict[str, list[int]] = defaultdict(list)
    for df in (analysis, audio, scripts, artwork, reddit_posts, gwasi_rows):
        if df is None or not df.height or "post_id" not in df.columns:
            continue
        hashed = df.select(pl.col("post_id"), df.hash_rows(seed=7).alias("h")).group_by("post_id").agg(
            pl.col("h").sort())
        for pid, hs in hashed.iter_rows():
            parts[pid].extend(hs)
    return {pid: _short_hash(",".join(map(str, sorted(hs))), n=16) for pid, hs in parts.items()}


def aggregate_incremental(analysis: pl.DataFrame, audio: pl.DataFrame, scripts: pl.DataFrame | None,
                          artwork: pl.DataFrame | None, reddit_posts: pl.DataFrame | None,
                          gwasi_rows: pl.DataFrame | None, *, previous_releases: pl.DataFrame | None,
                          previous_variants: pl.DataFrame | None, previous_signatures: dict[str, str] | None,
                          full_rebuild_share: float = 0.3):
    """Re-aggregate only the releases a change touches; the result equals a full rebuild.

    A change to a post reaches: the releases it was in, every post of the same people (acoustic
    and title matches are only made within a performer's work), every post sharing an audio
    with it, and (as lookups) every script offer. Returns (releases, variants, performers,
    signatures, stats)."""
    sigs = post_signatures(analysis, audio, scripts, artwork, reddit_posts, gwasi_rows)
    if previous_releases is None or previous_variants is None or not previous_signatures:
        rel, var, perf = aggregate(analysis, audio, scripts, artwork, reddit_posts, gwasi_rows)
        return rel, var, perf, sigs, {"mode": "full", "changed_posts": len(sigs), "reaggregated_posts": len(sigs)}
    changed = {p for p, h in sigs.items() if previous_signatures.get(p) != h} | (set(previous_signatures) - set(sigs))
    if len(changed) > full_rebuild_share * max(len(sigs), 1):
        rel, var, perf = aggregate(analysis, audio, scripts, artwork, reddit_posts, gwasi_rows)
        return rel, var, perf, sigs, {"mode": "full", "changed_posts": len(changed), "reaggregated_posts": len(sigs)}
    posts = {r["post_id"]: r for r in analysis.iter_rows(named=True)}
    audio_rows = audio.to_dicts()
    release_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for r in previous_releases.select("release_id", "post_ids").iter_rows():
        members[r[0]] = json.loads(r[1])
        for p in members[r[0]]:
            release_of[p] = r[0]
    people_of: dict[str, set[str]] = defaultdict(set)
    posts_of_person: dict[str, set[str]] = defaultdict(set)
    idents_of: dict[str, set[str]] = defaultdict(set)
    posts_of_ident: dict[str, set[str]] = defaultdict(set)
    for pid, p in posts.items():
        for name in [p["author"], *json.loads(p["performers"] or "[]")]:
            if name:
                people_of[pid].add(name.lower())
    for a in audio_rows:
        if a["platform_user"]:
            people_of[a["post_id"]].add(a["platform_user"].lower())
        for ident in filter(None, [a["sha256"], f"{a['platform']}:{a['platform_id']}" if a["platform_id"] else None,
                                   (a["page_url"] or "").lower() or None]):
            idents_of[a["post_id"]].add(ident)
    for pid, names in people_of.items():
        for n in names:
            posts_of_person[n].add(pid)
    for pid, ids in idents_of.items():
        for i in ids:
            posts_of_ident[i].add(pid)
    affected: set[str] = set()
    frontier = set(changed)
    while frontier:
        affected |= frontier
        grow: set[str] = set()
        for pid in frontier:
            if pid in release_of:
                grow.update(members[release_of[pid]])
            for n in people_of.get(pid, ()):
                grow |= posts_of_person[n]
            for i in idents_of.get(pid, ()):
                grow |= posts_of_ident[i]
        frontier = grow - affected
    lookups = {pid for pid, p in posts.items() if p["kind"] == "script_offer"}
    subset = affected | lookups

    def only(df: pl.DataFrame | None, keep: set[str]) -> pl.DataFrame | None:
        return None if df is None else df.filter(pl.col("post_id").is_in(list(keep)))

    sub_rel, sub_var, _ = aggregate(only(analysis, subset), only(audio, affected), only(scripts, subset),
                                    only(artwork, affected), only(reddit_posts, affected), gwasi_rows)
    stale = {release_of[p] for p in affected if p in release_of}
    kept_rel = previous_releases.filter(~pl.col("release_id").is_in(list(stale)))
    kept_var = previous_variants.filter(~pl.col("release_id").is_in(list(stale)))
    usable = usable_posts(analysis)
    rel, var, perf = finalize(kept_rel.to_dicts() + sub_rel.to_dicts(), kept_var.to_dicts() + sub_var.to_dicts(),
                              host_accounts_of(usable, [a for a in audio_rows if a["post_id"] in usable]))
    return rel, var, perf, sigs, {"mode": "incremental", "changed_posts": len(changed),
                                  "reaggregated_posts": len(affected)}


CREDIT_SCHEMA = {"release_id": S, "person": S, "person_id": S, "role": S, "position": I}
TAG_SCHEMA = {"release_id": S, "tag": S, "category": S, "raw": S}
#: tag text (lower case) -> normalised tag; the raw tag is always kept beside it
TAG_SYNONYMS = {"sfx": "SFX", "asmr": "ASMR", "sleep aid": "Sleep Aid", "sleepaid": "Sleep Aid", "gfe": "Girlfriend Experience",
                "girlfriend experience": "Girlfriend Experience", "bfe": "Boyfriend Experience", "kisses": "Kissing",
                "kissing": "Kissing", "cuddle": "Cuddles", "cuddles": "Cuddles", "binaural": "Binaural", "collab": "Collab"}
KIND_LABELS = {"script_fill": "Script Fill", "oc": "OC", "improv": "Improv", "ramblefap": "Ramblefap",
               "script_offer": "Script Offer", "verification": "Verification", "request": "Request"}


def normalise_tag(raw: str) -> str:
    text = " ".join(raw.split())
    return TAG_SYNONYMS.get(text.lower(), text[:1].upper() + text[1:] if text.islower() else text)


def credits_and_tags(releases: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The credits table (person, role: voice, scribe, sfx, editing, art, music) and the tag
    taxonomy (audience, kind, content; normalised, with the raw tag kept)."""
    credits, tags = [], []
    for r in releases.iter_rows(named=True):
        rid = r["release_id"]
        for i, p in enumerate(json.loads(r["performers"] or "[]")):
            credits.append({"release_id": rid, "person": p, "person_id": p.lower(), "role": "voice", "position": i})
        if r["scribe"]:
            credits.append({"release_id": rid, "person": r["scribe"], "person_id": r["scribe"].lower(), "role": "scribe",
                            "position": 0})
        for i, c in enumerate(json.loads(r["credits"] or "[]")):
            credits.append({"release_id": rid, "person": c["name"], "person_id": c["name"].lower(), "role": c["role"],
                            "position": i})
        for a in json.loads(r["audiences"] or "[]"):
            tags.append({"release_id": rid, "tag": a, "category": "audience", "raw": a})
        if r["kind"]:
            tags.append({"release_id": rid, "tag": KIND_LABELS.get(r["kind"], r["kind"]), "category": "kind", "raw": r["kind"]})
        seen = set()
        for t in json.loads(r["content_tags"] or "[]"):
            norm = normalise_tag(t)
            if norm.lower() not in seen:
                seen.add(norm.lower())
                tags.append({"release_id": rid, "tag": norm, "category": "content", "raw": t})
    return frame(credits, CREDIT_SCHEMA), frame(tags, TAG_SCHEMA)


SCRIPT_WORK_SCHEMA = {"script_id": S, "script_urls": S, "script_offer_post_id": S, "scribe": S, "release_ids": S,
                      "performers": S, "performance_count": I, "first_release": S, "last_release": S}


def script_works(releases: pl.DataFrame) -> pl.DataFrame:
    """One row per script with every release that performs it (by script URL or offer post)."""
    uf = UnionFind()
    by_key: dict[str, list[dict]] = defaultdict(list)
    for r in releases.iter_rows(named=True):
        keys = [u.lower() for u in json.loads(r["script_urls"] or "[]") if "scriptbin.works" in u]
        if r["script_offer_post_id"]:
            keys.append("offer:" + r["script_offer_post_id"])
        for k in keys:
            uf.union(keys[0], k)
            by_key[k].append(r)
    works: dict[str, dict[str, dict]] = defaultdict(dict)
    for k, rows in by_key.items():
        for r in rows:
            works[uf.find(k)][r["release_id"]] = r
    out = []
    for root, rels in works.items():
        rs = sorted(rels.values(), key=lambda r: (r["release_date"], r["release_id"]))
        urls = sorted({u for r in rs for u in json.loads(r["script_urls"] or "[]")})
        perf = []
        for r in rs:
            for p in json.loads(r["performers"] or "[]"):
                if p not in perf:
                    perf.append(p)
        offer = next((r["script_offer_post_id"] for r in rs if r["script_offer_post_id"]), None)
        out.append({"script_id": "script_" + _short_hash(root), "script_urls": json.dumps(urls), "script_offer_post_id": offer,
                    "scribe": next((r["scribe"] for r in rs if r["scribe"]), None),
                    "release_ids": json.dumps([r["release_id"] for r in rs]), "performers": json.dumps(perf),
                    "performance_count": len(rs), "first_release": rs[0]["release_date"], "last_release": rs[-1]["release_date"]})
    out.sort(key=lambda w: w["script_id"])
    return frame(out, SCRIPT_WORK_SCHEMA)


def split_identities(performers: pl.DataFrame) -> list[str]:
    """Names or aliases that belong to more than one performer row (should be none)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for p in performers.iter_rows(named=True):
        for n in [p["name"], *json.loads(p["aliases"] or "[]")]:
            owners[n.lower()].add(p["performer_id"])
    return sorted(n for n, ids in owners.items() if len(ids) > 1)


def reddit_status_lost(reddit_posts: pl.DataFrame | None) -> list[str]:
    """Posts whose text (and so their links) Reddit no longer gives: deleted, removed or missing."""
    if reddit_posts is None or not reddit_posts.height:
        return []
    return reddit_posts.filter(pl.col("status").is_in(["deleted", "removed", "missing"])).get_column("post_id").to_list()


def lost_post_reasons(reddit_posts: pl.DataFrame | None) -> dict[str, str]:
    """Why each lost post's text is gone, in words (a release without audio says it)."""
    out = {}
    for r in reddit_posts.iter_rows(named=True) if reddit_posts is not None else []:
        if r["status"] == "deleted":
            out[r["post_id"]] = f"Reddit post {r['post_id']} was deleted by its author"
        elif r["status"] == "removed":
            by = f" ({r['removed_by_category']})" if r.get("removed_by_category") else ""
            out[r["post_id"]] = f"Reddit post {r['post_id']} was removed by Reddit's moderators{by}"
        elif r["status"] == "missing":
            out[r["post_id"]] = f"Reddit did not return post {r['post_id']} (deleted, or never public)"
    return out


def export_release_db(path: Path, releases: pl.DataFrame, variants: pl.DataFrame, performers: pl.DataFrame) -> None:
    """Write data/releases/release_db.json deterministically (sorted keys and rows)."""
    json_cols = {"post_ids", "post_urls", "performers", "credits", "script_urls", "audiences", "tags", "content_tags",
                 "source_urls", "platform_ids", "aliases", "urls", "roles"}

    def decode(row: dict) -> dict:
        return {k: (json.loads(v) if k in json_cols and isinstance(v, str) else v) for k, v in row.items()}

    by_release: dict[str, list] = defaultdict(list)
    for v in variants.iter_rows(named=True):
        by_release[v["release_id"]].append(decode(v))
    doc = {
        "version": 1,
        "releases": [{**decode(r), "variants": by_release.get(r["release_id"], [])} for r in releases.iter_rows(named=True)],
        "performers": [decode(p) for p in performers.iter_rows(named=True)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def changed_release_days(old: pl.DataFrame | None, new: pl.DataFrame) -> list[str]:
    """Release dates whose releases were added, changed or removed since the last build."""
    def index(df: pl.DataFrame | None) -> dict[str, tuple[str, str]]:
        if df is None or not df.height:
            return {}
        return {r["release_id"]: (r["release_date"], r["content_hash"]) for r in df.iter_rows(named=True)}

    a, b = index(old), index(new)
    days = set()
    for rid in set(a) | set(b):
        if a.get(rid) != b.get(rid):
            for side in (a.get(rid), b.get(rid)):
                if side:
                    days.add(side[0])
    return sorted(days)


