"""Reddit: full posts for the ids GWASI lists.

Batched reads only: ``/api/info`` takes up to 100 fullnames per call, through PRAW
(``reddit.info``) when credentials are set, else through Reddit's public JSON."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from audio_assets.http_client import PoliteClient

REDDIT_BASE_URL = "https://www.reddit.com"
BATCH_SIZE = 100
#: bodies longer than this are cut (the full length is kept in ``body_chars``)
MAX_BODY_CHARS = 200_000

REDDIT_COLUMNS = [
    "post_id", "post_date", "subreddit", "author", "title", "body", "body_chars", "flair",
    "created_utc", "permalink", "url", "score", "num_comments", "over_18", "is_deleted",
    "is_removed", "removed_by_category", "crosspost_parent", "source", "status", "error",
]


@dataclass
class RedditPost:
    post_id: str
    post_date: str | None
    subreddit: str | None
    author: str | None
    title: str | None
    body: str | None
    body_chars: int
    flair: str | None
    created_utc: float | None
    permalink: str | None
    url: str | None
    score: int | None
    num_comments: int | None
    over_18: bool | None
    is_deleted: bool
    is_removed: bool
    removed_by_category: str | None
    crosspost_parent: str | None
    source: str  # "api" (PRAW), "json" (public JSON), "gwasi" (missing from Reddit)
    status: str  # "ok", "deleted", "removed", "missing", "invalid"
    error: str | None  # why a post is not ok; on an ok post, a note (a body cut to MAX_BODY_CHARS)

    def as_row(self) -> dict:
        return {c: getattr(self, c) for c in REDDIT_COLUMNS}


def _date(created: float | None) -> str | None:
    from datetime import UTC, datetime

    if created is None:
        return None
    return datetime.fromtimestamp(float(created), UTC).date().isoformat()


class _TypedFields:
    """An answer's fields read by type: a field of another type (a score of "lots", an author that
    is an object) is left empty and named in ``bad``, so the rest of the post is kept."""

    def __init__(self, data: dict):
        self.data = data
        self.bad: list[str] = []

    def wrong(self, key: str, value: object, kind: str) -> None:
        self.bad.append(f"{key} {json.dumps(value, default=str)[:40]} (not {kind})")

    def _of(self, key: str, kind: type, name: str):
        """The field when it is None or a ``kind``; else None, and the field named as bad."""
        value = self.data.get(key)
        if value is None or isinstance(value, kind):
            return value
        self.wrong(key, value, name)
        return None

    def text(self, key: str) -> str | None:
        return self._of(key, str, "text")

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = None
            if number is not None and math.isfinite(number):
                return number
        self.wrong(key, value, "a number")
        return None

    def whole(self, key: str) -> int | None:
        number = self.number(key)
        if number is None:
            return None
        if number.is_integer() and abs(number) < 2**63:  # what the table's integer column holds
            return int(number)
        self.wrong(key, self.data.get(key), "a whole number")
        return None

    def flag(self, key: str) -> bool | None:
        return self._of(key, bool, "true or false")


def parse_post(data: dict, *, source: str = "json") -> RedditPost:
    """Turn a Reddit t3 ``data`` dict into a RedditPost. Crossposts resolve to the original.

    A field of the wrong type is left empty and named in the post's ``error`` (a note: the post,
    its body and so its links, is kept); an answer with no id is no post (ValueError)."""
    if not isinstance(data, dict) or not data.get("id"):
        raise ValueError("not a Reddit post: no id")
    original = data
    crosspost_parent = None
    parents = data.get("crosspost_parent_list") or []
    if isinstance(parents, list) and parents and isinstance(parents[0], dict):
        crosspost_parent = parents[0].get("id")
        original = {**data, **{k: v for k, v in parents[0].items() if k in (
            "selftext", "selftext_html", "author", "link_flair_text", "removed_by_category")}}
    read = _TypedFields(original)
    author = read.text("author")
    body = read.text("selftext")
    removed_by = read.text("removed_by_category")
    unknown_author = author is None and original.get("author") is not None  # of the wrong type: not a deletion
    is_deleted = (author in (None, "[deleted]") and not unknown_author) or removed_by == "deleted" or body == "[deleted]"
    is_removed = body == "[removed]" or (removed_by not in (None, "deleted"))
    if author == "[deleted]":
        author = None
    if body in ("[deleted]", "[removed]"):
        body = None
    body_chars = len(body or "")
    notes = []
    if body and len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS]
        notes.append(f"body of {body_chars:,} characters cut to the first {MAX_BODY_CHARS:,} "
                     "(links after the cut are not read)")
    status = "deleted" if is_deleted else "removed" if is_removed else "ok"
    created = read.number("created_utc")
    try:
        post_date = _date(created)
    except (OverflowError, OSError, ValueError):  # a number, but no date (1e20)
        read.wrong("created_utc", created, "a time")
        created = post_date = None
    post = RedditPost(
        post_id=str(data["id"]).lower(),
        post_date=post_date,
        subreddit=read.text("subreddit"),
        author=author,
        title=read.text("title"),
        body=body,
        body_chars=body_chars,
        flair=read.text("link_flair_text"),
        created_utc=created,
        permalink=read.text("permalink"),
        url=read.text("url"),
        score=read.whole("score"),
        num_comments=read.whole("num_comments"),
        over_18=read.flag("over_18"),
        is_deleted=is_deleted,
        is_removed=is_removed,
        removed_by_category=removed_by,
        crosspost_parent=crosspost_parent if isinstance(crosspost_parent, str) else None,
        source=source,
        status=status,
        error=None,
    )
    if read.bad:
        notes.append("Reddit's answer had fields of the wrong type, left empty: " + ", ".join(read.bad))
    post.error = "; ".join(notes) or None
    return post


def parse_listing(doc: object) -> list[dict]:
    """The t3 data dicts of a Listing (or of a list of Listings, as comments pages are)."""
    if isinstance(doc, list):
        out: list[dict] = []
        for part in doc[:1]:  # the first listing holds the post, the second its comments
            out.extend(parse_listing(part))
        return out
    if not isinstance(doc, dict):
        return []
    if doc.get("kind") == "t3":
        return [doc["data"]] if isinstance(doc.get("data"), dict) else []
    if doc.get("kind") == "Listing":
        listing = doc.get("data")
        children = listing.get("children") if isinstance(listing, dict) else None
        return [c["data"] for c in children if isinstance(c, dict) and c.get("kind") == "t3"
                and isinstance(c.get("data"), dict)] if isinstance(children, list) else []
    if "id" in doc and "title" in doc:
        return [doc]
    return []


def batches(ids: Iterable[str], size: int = BATCH_SIZE) -> Iterator[list[str]]:
    batch: list[str] = []
    for i in ids:
        batch.append(i)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fetch_posts_json(client: PoliteClient, post_ids: list[str], base_url: str = REDDIT_BASE_URL) -> dict[str, dict]:
    """Fetch posts through the public JSON ``/api/info.json``, 100 per request."""
    found: dict[str, dict] = {}
    for batch in batches(post_ids):
        names = ",".join(f"t3_{pid}" for pid in batch)
        doc = client.get(f"{base_url}/api/info.json", params={"id": names, "raw_json": "1"}).json()
        for data in parse_listing(doc):
            if data.get("id"):
                found[str(data["id"]).lower()] = data
    return found


def praw_credentials(env: dict | None = None) -> tuple[str, str, str] | None:
    env = os.environ if env is None else env
    cid, secret, ua = env.get("REDDIT_CLIENT_ID"), env.get("REDDIT_CLIENT_SECRET"), env.get("REDDIT_USER_AGENT")
    if cid and secret:
        return cid, secret, ua or "python:audio_assets:0.1.0 (by u/unknown)"
    return None


def fetch_posts_praw(client: PoliteClient, post_ids: list[str], credentials: tuple[str, str, str]) -> dict[str, dict]:
    """Fetch posts with PRAW ``reddit.info`` (100 fullnames a call); endpoints follow the host map."""
    import praw

    cid, secret, ua = credentials
    reddit = praw.Reddit(
        client_id=cid,
        client_secret=secret,
        user_agent=ua,
        # PRAW joins paths onto these: they need their trailing slash.
        oauth_url=client.map_url("https://oauth.reddit.com/"),
        reddit_url=client.map_url("https://www.reddit.com/"),
        check_for_updates=False,
        check_for_async=False,
    )
    reddit.read_only = True
    found: dict[str, dict] = {}
    for batch in batches(post_ids):
        for sub in reddit.info(fullnames=[f"t3_{pid}" for pid in batch]):
            data = {k: v for k, v in vars(sub).items() if not k.startswith("_")}
            data["subreddit"] = str(data.get("subreddit") or "")
            data["author"] = str(data["author"]) if data.get("author") is not None else None
            found[str(sub.id).lower()] = json.loads(json.dumps(data, default=str))
    return found


def missing_post(post_id: str, gwasi_row: dict | None) -> RedditPost:
    """A post GWASI lists but Reddit no longer returns: keep what GWASI knows."""
    g = gwasi_row or {}
    return RedditPost(
        post_id=post_id, post_date=g.get("post_date"), subreddit=g.get("subreddit"), author=g.get("author"),
        title=g.get("title"), body=g.get("extra"), body_chars=len(g.get("extra") or ""), flair=g.get("flair"),
        created_utc=float(g["created_utc"]) if g.get("created_utc") is not None else None,
        permalink=f"/r/{g.get('subreddit') or 'gonewildaudio'}/comments/{post_id}/", url=None, score=g.get("score"),
        num_comments=None, over_18=None, is_deleted=False, is_removed=False, removed_by_category=None,
        crosspost_parent=None, source="gwasi", status="missing",
        error="Reddit did not return this post (api/info); GWASI's title and text are kept",
    )
