"""soundgasm.net: public audio pages and profiles."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from audio_assets.http_client import PoliteClient

PAGE_URL_RE = re.compile(
    r"https?://(?:www\.)?soundgasm\.net/u(?:ser)?/(?P<user>[0-9a-zA-Z_-]+)/(?P<slug>[0-9a-zA-Z_-]+)", re.I
)
MEDIA_RE = re.compile(r"""m4a\s*:\s*["'](https?:(?:\\?/){2}media\.soundgasm\.net(?:\\?/)sounds(?:\\?/)([0-9a-f]{40})\.(m4a|mp3|ogg|wav))["']""", re.I)
TITLE_RE = re.compile(r'<div[^>]*class="jp-title"[^>]*>(.*?)</div>', re.S | re.I)
DESC_RE = re.compile(r'<div[^>]*class="jp-description"[^>]*>\s*<p[^>]*>(.*?)</p>', re.S | re.I)
USER_LINK_RE = re.compile(r'<a href="https?://(?:www\.)?soundgasm\.net/u/([0-9a-zA-Z_-]+)"\s*>', re.I)
PROFILE_ITEM_RE = re.compile(
    r'<div class="sound-details">\s*<a href="(https?://(?:www\.)?soundgasm\.net/u/[^"]+)">(.*?)</a>.*?'
    r'(?:<span class="playCount">Play Count:\s*(\d+)</span>)?\s*</div>', re.S | re.I
)


class ParseError(ValueError):
    pass


@dataclass
class SoundgasmAudio:
    page_url: str
    user: str
    slug: str
    title: str | None
    description: str | None
    media_url: str
    audio_id: str  # the 40-hex file name: a stable identity


def canonical_page_url(url: str) -> tuple[str, str, str] | None:
    """(canonical url, user, slug) for a soundgasm audio page URL, else None."""
    m = PAGE_URL_RE.search(url)
    if not m:
        return None
    user, slug = m.group("user"), m.group("slug")
    return f"https://soundgasm.net/u/{user}/{slug}", user, slug


def parse_audio_page(page_html: str, page_url: str) -> SoundgasmAudio:
    canon = canonical_page_url(page_url)
    if not canon:
        raise ParseError(f"not a soundgasm audio page URL: {page_url}")
    _, user, slug = canon
    m = MEDIA_RE.search(page_html)
    if not m:
        raise ParseError(f"soundgasm page {page_url} has no media URL (jPlayer setMedia m4a) — the page layout may have changed")
    media_url = m.group(1).replace("\\/", "/")
    title = TITLE_RE.search(page_html)
    desc = DESC_RE.search(page_html)
    ul = USER_LINK_RE.search(page_html)
    return SoundgasmAudio(
        page_url=f"https://soundgasm.net/u/{ul.group(1) if ul else user}/{slug}",
        user=ul.group(1) if ul else user,
        slug=slug,
        title=html.unescape(title.group(1)).strip() if title else None,
        description=html.unescape(re.sub(r"<[^>]+>", "", desc.group(1))).strip() if desc else None,
        media_url=media_url,
        audio_id=m.group(2).lower(),
    )


def parse_profile(page_html: str) -> list[dict]:
    out = []
    for m in PROFILE_ITEM_RE.finditer(page_html):
        out.append({"url": m.group(1), "title": html.unescape(m.group(2)).strip(),
                    "play_count": int(m.group(3)) if m.group(3) else None})
    return out


def resolve(client: PoliteClient, page_url: str) -> SoundgasmAudio:
    canon = canonical_page_url(page_url)
    if not canon:
        raise ParseError(f"not a soundgasm audio page URL: {page_url}")
    return parse_audio_page(client.get(canon[0]).text, canon[0])




def fetch_profile(client: PoliteClient, user: str) -> list[dict]:
    """A performer's uploads from ``/u/USER`` (routing ignores case; links carry the canonical casing)."""
    if not re.fullmatch(r"[0-9a-zA-Z_-]+", user or ""):
        raise ParseError(f"not a soundgasm user name: {user!r}")
    return parse_profile(client.get(f"https://soundgasm.net/u/{user}").text)
