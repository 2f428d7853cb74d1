"""GWASI (gwasi.com): an index of r/gonewildaudio posts.

Formats (reference/sources.md): ``delta.json`` with ``base``, ``entries``, ``fills``,
``removed`` ...; the base snapshot as sharded ``base_<v>/<N>.json`` (walked upward until
several consecutive 404s) or one ``base_<v>.json``. An entry is a positional array
``[post_id, subreddit, author, flair, title, created_utc, score, length, extra?]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from audio_assets.http_client import FetchError, PoliteClient

GWASI_BASE_URL = "https://gwasi.com"
#: consecutive 404s that end the walk over base shards
SHARD_404_LIMIT = 3
#: created timestamps later than this many seconds past "now" are rejected
FUTURE_TOLERANCE_S = 2 * 86400

GWASI_COLUMNS = [
    "post_id",
    "subreddit",
    "author",
    "flair",
    "title",
    "created_utc",
    "post_date",
    "score",
    "length",
    "duration_s",
    "script_words",
    "extra",
    "raw",
    "source",
    "status",
    "error",
]


@dataclass
class GwasiEntry:
    post_id: str | None
    subreddit: str | None
    author: str | None
    flair: str | None
    title: str | None
    created_utc: int | None
    post_date: str | None
    score: int | None
    length: float | None
    duration_s: float | None
    script_words: int | None
    extra: str | None
    raw: str | None  # the entry's JSON text, kept for invalid entries (the decoded columns hold a valid one)
    source: str  # "base" or "delta"
    status: str  # "ok" or "invalid"
    error: str | None

    def as_row(self) -> dict:
        return {c: getattr(self, c) for c in GWASI_COLUMNS}


def _invalid(raw: object, source: str, error: str, post_id: str | None = None,
             post_date: str | None = None) -> GwasiEntry:
    return GwasiEntry(
        post_id=post_id, subreddit=None, author=None, flair=None, title=None, created_utc=None,
        post_date=post_date, score=None, length=None, duration_s=None, script_words=None, extra=None,
        raw=json.dumps(raw, ensure_ascii=False, default=str)[:10_000], source=source, status="invalid",
        error=error,
    )


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: object) -> float | None:
    """A number, or the text of one (GWASI's JSON is read leniently); never a boolean."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", str: "a string"}.get(type(value), f"a {type(value).__name__}")


def _date_hint(raw: list, now: float) -> str | None:
    """The post date of an entry whose 6th field is a usable timestamp (so an invalid entry
    still lands in its day's partition, with its error)."""
    created = _number(raw[5]) if len(raw) >= 6 else None
    if created is None or not math.isfinite(created) or created <= 0 or created > now + FUTURE_TOLERANCE_S:
        return None
    return datetime.fromtimestamp(int(created), UTC).date().isoformat()


def parse_entry(raw: object, *, source: str = "base", now: float | None = None) -> GwasiEntry:
    """Decode one positional GWASI entry. Never raises: a bad entry gets status 'invalid' (and
    its post date when its timestamp is usable)."""
    if not isinstance(raw, list):
        return _invalid(raw, source, f"entry is {_json_kind(raw)}, expected a list")
    now = datetime.now(UTC).timestamp() if now is None else now
    day = _date_hint(raw, now)
    if len(raw) < 7 or len(raw) > 9:
        pid = str(raw[0]) if raw and isinstance(raw[0], str | int) and not isinstance(raw[0], bool) else None
        pid = pid.lower() if pid and pid.isascii() and pid.isalnum() and len(pid) <= 12 else None
        return _invalid(raw, source, f"entry has {len(raw)} fields, expected 7 to 9", pid, day)
    post_id, subreddit, author, flair, title, created, score = raw[:7]
    length = raw[7] if len(raw) >= 8 else None
    extra = raw[8] if len(raw) == 9 else None
    if isinstance(post_id, int) and not isinstance(post_id, bool):
        post_id = str(post_id)
    if not isinstance(post_id, str) or not post_id.isascii() or not post_id.isalnum() or len(post_id) > 12:
        return _invalid(raw, source, f"post id {post_id!r} is not a base36 Reddit id", None, day)
    post_id = post_id.lower()
    created = _number(created)
    if created is None or not math.isfinite(created):
        return _invalid(raw, source, f"created_utc {raw[5]!r} is not a number", post_id)
    if created <= 0 or created > now + FUTURE_TOLERANCE_S:
        when = "is not after 1970-01-01" if created <= 0 else "is in the future"
        return _invalid(raw, source, f"created_utc {raw[5]!r} {when}", post_id)
    if score is not None and _number(score) is None:
        return _invalid(raw, source, f"score {score!r} is not a number", post_id, day)
    score = _number(score)
    if length is not None and (_number(length) is None or not math.isfinite(_number(length))):
        return _invalid(raw, source, f"length {length!r} is not a number", post_id, day)
    length = _number(length)
    duration_s = script_words = None
    if length is not None and length > 0:
        duration_s = round(float(length) * 6.0, 1)  # tenths of a minute
    elif length is not None and length < 0:
        script_words = int(round(-float(length) * 100))
    created_i = int(created)
    return GwasiEntry(
        post_id=post_id,
        subreddit=_opt_str(subreddit),
        author=_opt_str(author),
        flair=_opt_str(flair) or None,
        title=_opt_str(title),
        created_utc=created_i,
        post_date=datetime.fromtimestamp(created_i, UTC).date().isoformat(),
        score=int(score) if score is not None else None,  # truncated like the SQL decoder
        length=float(length) if length is not None else None,
        duration_s=duration_s,
        script_words=script_words,
        extra=_opt_str(extra) or None,
        raw=None,
        source=source,
        status="ok",
        error=None,
    )


@dataclass
class GwasiSnapshot:
    """The merged index: base overlaid with the delta (the reference for the SQL import's overlay)."""

    base_version: str
    entries: dict[str, GwasiEntry]  # post_id -> entry (valid ones)
    invalid: list[GwasiEntry]
    fills: dict[str, list]
    removed: set[str]


def merge(base_entries: Iterable[object], delta: dict, *, base_version: str, now: float | None = None,
          base_fills: dict | None = None) -> GwasiSnapshot:
    """Merge base and delta: delta entries override base entries, ``removed`` ids are dropped."""
    entries: dict[str, GwasiEntry] = {}
    invalid: list[GwasiEntry] = []
    for raw in base_entries:
        e = parse_entry(raw, source="base", now=now)
        if e.status == "ok":
            entries[e.post_id] = e
        else:
            invalid.append(e)
    for raw in delta.get("entries") or []:
        e = parse_entry(raw, source="delta", now=now)
        if e.status == "ok":
            entries[e.post_id] = e
        else:
            invalid.append(e)
    removed = {str(r).lower() for r in (delta.get("removed") or [])}
    for pid in removed:
        entries.pop(pid, None)
    fills = {**(base_fills or {}), **(delta.get("fills") or {})}
    return GwasiSnapshot(base_version=base_version, entries=entries, invalid=invalid, fills=fills, removed=removed)


# -- fetching -------------------------------------------------------------------------------

class BaseReplaced(RuntimeError):
    """GWASI replaced its base while it was being walked: the shards read are an incomplete,
    stale base. Walk the new one (``new_version``)."""

    def __init__(self, old_version: str, new_version: str, shard: int):
        super().__init__(f"GWASI replaced its base {old_version} with {new_version} while it was being walked "
                         f"(shard {shard} of {old_version} answered 404); the walk starts again on {new_version}")
        self.old_version, self.new_version = old_version, new_version


def fetch_delta(client: PoliteClient, base_url: str = GWASI_BASE_URL) -> dict:
    return client.get(f"{base_url}/delta.json").json()


def iter_base_shards(client: PoliteClient, version: str, base_url: str = GWASI_BASE_URL,
                     cache_dir: Path | None = None) -> Iterator[tuple[int, dict]]:
    """Walk ``base_<v>/N.json`` upward until SHARD_404_LIMIT consecutive 404s.

    A network error is not a 404: it raises (after the client's retries). Shards are
    cached under ``cache_dir/base_<v>/`` so a base version is fetched once. A walk that ends
    on 404s asks delta.json once more whether ``version`` is still the base: if GWASI replaced
    it meanwhile, the 404s were the old base vanishing, not its end (raises BaseReplaced)."""
    misses = 0
    n = 0
    found = False
    while misses < SHARD_404_LIMIT:
        n += 1
        cached = cache_dir / f"base_{version}" / f"{n}.json" if cache_dir else None
        if cached and cached.exists():
            misses = 0
            found = True
            yield n, json.loads(cached.read_bytes())
            continue
        try:
            body = client.get(f"{base_url}/base_{version}/{n}.json").content
        except FetchError as exc:
            if exc.status == 404:
                misses += 1
                continue
            raise
        misses = 0
        found = True
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".part")
            tmp.write_bytes(body)
            tmp.replace(cached)
        yield n, json.loads(body)
    if found:
        current = str(fetch_delta(client, base_url).get("base") or "")
        if current and current != version:
            raise BaseReplaced(version, current, n - SHARD_404_LIMIT + 1)


def fetch_base(client: PoliteClient, version: str, base_url: str = GWASI_BASE_URL,
               cache_dir: Path | None = None) -> tuple[list, dict]:
    """Return (entries, fills) of a base version, sharded form first, single file as fallback."""
    entries: list = []
    fills: dict = {}
    shards = 0
    for _n, shard in iter_base_shards(client, version, base_url, cache_dir):
        shards += 1
        entries.extend(shard.get("entries") or [])
        fills.update(shard.get("fills") or {})
    if shards:
        return entries, fills
    cached = cache_dir / f"base_{version}.json" if cache_dir else None
    if cached and cached.exists():
        doc = json.loads(cached.read_bytes())
    else:
        body = client.get(f"{base_url}/base_{version}.json").content
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(body)
        doc = json.loads(body)
    return doc.get("entries") or [], doc.get("fills") or {}
