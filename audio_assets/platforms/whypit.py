"""whyp.it: public or unlisted (token) tracks through its JSON API; signed CDN URLs."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from audio_assets.http_client import PoliteClient

TRACK_URL_RE = re.compile(r"whyp\.it/tracks/(\d+)/?([-A-Za-z0-9_]+)?(?:\?token=([A-Za-z0-9]+))?", re.I)
API_BASE = "https://api.whyp.it"
CDN_HEADERS = {"Referer": "https://whyp.it/"}


class ParseError(ValueError):
    pass


@dataclass
class WhypitTrack:
    page_url: str
    track_id: int
    slug: str | None
    token: str | None
    title: str | None
    description: str | None
    duration_s: float | None
    created_at: str | None
    public: bool | None
    user: str | None
    lossy_url: str | None
    lossless_url: str | None
    artwork_url: str | None

    @property
    def best_media_url(self) -> str | None:
        return self.lossless_url or self.lossy_url


def parse_track_url(url: str) -> tuple[int, str | None, str | None] | None:
    m = TRACK_URL_RE.search(url)
    if not m:
        return None
    return int(m.group(1)), m.group(2), m.group(3)


def _seconds(value) -> float | None:
    """A track's duration: a finite, non-negative number of seconds (or its text); anything else
    (NaN, infinity, true, a list, words) is no duration, not a value to store."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_track_json(doc: dict, page_url: str) -> WhypitTrack:
    track = doc.get("track") if isinstance(doc, dict) else None
    if not isinstance(track, dict) or "id" not in track:
        raise ParseError(f"whyp.it API answer for {page_url} has no track object")
    user = track.get("user") or {}
    parsed = parse_track_url(page_url)
    return WhypitTrack(
        page_url=page_url,
        track_id=int(track["id"]),
        slug=track.get("slug"),
        token=track.get("token") or (parsed[2] if parsed else None),
        title=track.get("title"),
        description=track.get("description"),
        duration_s=_seconds(track.get("duration")),
        created_at=track.get("created_at"),
        public=track.get("public"),
        user=user.get("username") or user.get("slug"),
        lossy_url=track.get("lossy_url"),
        lossless_url=track.get("lossless_url"),
        artwork_url=track.get("artwork_url"),
    )


def resolve(client: PoliteClient, page_url: str) -> WhypitTrack:
    """Fetch the track JSON (with its token when the link has one): fresh signed media URLs."""
    parsed = parse_track_url(page_url)
    if not parsed:
        raise ParseError(f"not a whyp.it track URL: {page_url}")
    track_id, _slug, token = parsed
    params = {"token": token} if token else None
    doc = client.get(f"{API_BASE}/api/tracks/{track_id}", params=params).json()
    return parse_track_json(doc, page_url)
