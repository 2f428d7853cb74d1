"""reddit_reads: reading posts through the batched /api/info (fetch_posts_json) vs one request per post."""

from __future__ import annotations

import time

from audio_assets.replica.corpus import base36
from benchmarks.common import REPLICA_MEDIA, BenchResult, say

FULL_EXTRA_POSTS = 1000
REDDIT_HOSTS = {"reddit.com", "www.reddit.com", "old.reddit.com", "oauth.reddit.com"}


def extra_post(n: int) -> dict:
    pid = "zz" + base36(36**4 + n)
    created = 1754000000.0 + n * 60
    return {
        "id": pid,
        "name": f"t3_{pid}",
        "subreddit": "gonewildaudio",
        "author": f"BenchVoice{n % 50}",
        "title": f"[F4M] [OC] [Whispers] Bench post {n}",
        "link_flair_text": "OC",
        "selftext": f"[Soundgasm](https://soundgasm.net/u/BenchVoice{n % 50}/bench-{n})\n\nThanks for listening!",
        "created_utc": created,
        "created": created,
        "permalink": f"/r/gonewildaudio/comments/{pid}/bench_post_{n}/",
        "score": 10 + n % 90,
        "num_comments": n % 7,
        "over_18": True,
        "removed_by_category": None,
    }


def run(scale: float, **_) -> BenchResult:
    import httpx

    from audio_assets.http_client import PoliteClient
    from audio_assets.platforms.reddit import fetch_posts_json
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.replica.server import ReplicaServer
    from audio_assets.settings import load_settings

    res = BenchResult("reddit_reads")
    extra = max(50, round(FULL_EXTRA_POSTS * scale))
    server = ReplicaServer(build_corpus(), REPLICA_MEDIA).start()
    try:
        for n in range(extra):
            server.add_post(extra_post(n), length=120)
        ids = sorted(server.reddit_posts)
        res.details.update(posts=len(ids), extra_posts=extra)
        settings = load_settings(
            {"AUDIO_ASSETS_HOST_MAP": server.host_map_env(), "AUDIO_ASSETS_RATE_PER_HOST": "1000"}
        )

        # The project: batched reads through the polite client.
        server.clear_requests()
        with PoliteClient(settings) as client:
            t0 = time.perf_counter()
            found = fetch_posts_json(client, ids)
            proj_s = time.perf_counter() - t0
        reddit_reqs = [r for r in server.requests if r.host in REDDIT_HOSTS]
        info_reqs = [r for r in reddit_reqs if r.path.startswith("/api/info")]
        proj_n = len(reddit_reqs)
        say(
            f"  fetch_posts_json: {len(found):,}/{len(ids):,} posts in {proj_s:.3f}s with {len(info_reqs)} /api/info "
            f"request(s) ({proj_n} to Reddit in all)"
        )
        if len(found) != len(ids):
            res.note(f"fetch_posts_json returned {len(found)} of {len(ids)} posts")

        # Baseline: one request per post (/comments/<id>/.json). A plain keep-alive httpx client: the
        # replica's Reddit budget (1000 requests / 10 min, like Reddit's) would stall the polite client.
        server.clear_requests()
        got = 0
        with httpx.Client(timeout=30) as http:
            t0 = time.perf_counter()
            for pid in ids:
                r = http.get(
                    server.url_for(f"https://www.reddit.com/comments/{pid}/.json"), params={"raw_json": "1"}
                )
                r.raise_for_status()
                got += bool(r.json()[0]["data"]["children"])
            base_s = time.perf_counter() - t0
        base_n = len([r for r in server.requests if r.host in REDDIT_HOSTS])
        say(f"  one request per post: {got:,} posts in {base_s:.3f}s with {base_n:,} requests")
        per100_p, per100_b = 100 * proj_n / len(ids), 100 * base_n / len(ids)
        res.details.update(
            project_requests=proj_n,
            project_info_requests=len(info_reqs),
            project_seconds=round(proj_s, 3),
            baseline_requests=base_n,
            baseline_seconds=round(base_s, 3),
        )
        if base_n > 1000:
            res.note(
                f"at Reddit's budget of 1000 requests per 10 minutes the per-post baseline's {base_n:,} requests "
                f"would take >= {10 * (base_n // 1000)} minutes; the batched reads stay far inside it"
            )
        # "at most one request per 100 posts": one per started batch of 100, ceil(n / 100)
        batches = -(-len(ids) // 100)
        res.row(
            f"requests per 100 posts ({len(ids):,} posts, {proj_n} vs {base_n:,} requests)",
            per100_p,
            per100_b,
            "req/100 posts",
            per100_p / per100_b,
            "x baseline",
            f"<= 1/100 posts (ceil: {batches})",
            proj_n <= batches,
        )
        res.row("wall time", proj_s, base_s, "s", base_s / proj_s, "x faster", "(info)", None)
        res.note(
            f"each replica response costs ~{1000 * base_s / max(1, base_n):.1f} ms on loopback (the replica's own "
            "Python work per request), so wall time mostly counts requests"
        )
    finally:
        server.stop()
    return res
