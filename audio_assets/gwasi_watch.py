"""What changed in GWASI since the last look: the logic behind the GWASI sensor.

The cursor remembers the base version and a digest per day. A tick fetches only
``delta.json`` unless the base version changed; it returns the days whose posts were
added, changed or removed, so a tick with nothing new requests nothing."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from audio_assets.platforms import gwasi


@dataclass
class WatchResult:
    changed_days: list[str]
    digests: dict[str, str]
    cursor: str
    base_changed: bool


def day_digests(entries: Iterable[gwasi.GwasiEntry]) -> dict[str, str]:
    """A digest per day of its entries' decoded fields."""
    per_day: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        if e.post_date:
            per_day[e.post_date].append(json.dumps([e.post_id, e.subreddit, e.author, e.flair, e.title, e.created_utc,
                                                    e.score, e.length, e.extra], ensure_ascii=False))
    return {d: hashlib.sha1("\n".join(sorted(rows)).encode()).hexdigest()[:12] for d, rows in per_day.items()}


def check(delta: dict, cursor_text: str | None, *, load_day_digests: Callable[[dict], dict[str, str]],
          days_of_posts: Callable[[list[str]], dict[str, str]]) -> WatchResult:
    """Compare ``delta`` with the cursor. ``load_day_digests(delta)`` gives a digest per day of
    the whole merged index (only called when the base version changed or on the first tick);
    ``days_of_posts(ids)`` says which day each known post id is on (for ids GWASI reports removed)."""
    cursor = json.loads(cursor_text) if cursor_text else {}
    version = str(delta.get("base") or "")
    delta_entries = [gwasi.parse_entry(e, source="delta") for e in delta.get("entries") or []]
    delta_digests = day_digests(e for e in delta_entries if e.status == "ok")
    removed = sorted({str(r).lower() for r in delta.get("removed") or []})
    changed: set[str] = set()
    base_changed = version != cursor.get("base")
    all_digests = dict(cursor.get("all_days") or {})
    if base_changed:
        new_all = load_day_digests(delta)
        if cursor:
            changed |= {d for d in set(new_all) | set(all_digests) if new_all.get(d) != all_digests.get(d)}
        else:
            changed |= set(delta_digests)  # first tick: only the newest days; history is a backfill
        all_digests = new_all
    else:
        old_delta = cursor.get("delta_days") or {}
        changed |= {d for d in set(delta_digests) | set(old_delta) if delta_digests.get(d) != old_delta.get(d)}
        new_removed = sorted(set(removed) - set(cursor.get("removed") or []))
        if new_removed:
            changed |= set(days_of_posts(new_removed).values())
        all_digests.update(delta_digests)
    new_cursor = json.dumps({"base": version, "delta_days": delta_digests, "removed": removed, "all_days": all_digests},
                            sort_keys=True)
    return WatchResult(sorted(changed), {d: all_digests.get(d) or delta_digests.get(d, "gone") for d in changed},
                       new_cursor, base_changed)
