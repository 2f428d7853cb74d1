"""hotaudio.net: public page metadata only.

HotAudio encrypts its audio on purpose; this project never circumvents that. The
release takes its audio from another host; here we read title, tags, script writer,
length and description."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from audio_assets.http_client import PoliteClient

PAGE_URL_RE = re.compile(r"https?://(?:www\.)?hotaudio\.net/u/([0-9A-Za-z_-]+)/([0-9A-Za-z_-]+)", re.I)
_TITLE_RE = re.compile(r'id="postbody".*?<span[^>]*class="[^"]*\btext-2xl\b[^"]*"[^>]*>(.*?)</span>', re.S | re.I)
_TAGM_RE = re.compile(r'<div[^>]*class="[^"]*\btagm\b[^"]*"[^>]*>\s*<span[^>]*>(.*?)</span>(.*?)</div>', re.S | re.I)
_DESC_RE = re.compile(r'<div[^>]*class="[^"]*\bprose prose-ha\b[^"]*"[^>]*>(.*?)</div>', re.S | re.I)
_OG_DESC_RE = re.compile(r'<meta[^>]*property="og:description"[^>]*content="([^"]*)"', re.I)
_TAG_RE = re.compile(r'<a[^>]*class="[^"]*\btag\b[^"]*"[^>]*>\s*<span[^>]*class="[^"]*\btag\b[^"]*"[^>]*>(.*?)</span>', re.S | re.I)
_LENGTH_RE = re.compile(r"(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?", re.I)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).strip()


@dataclass
class HotaudioPage:
    page_url: str
    user: str
    slug: str
    title: str | None
    description: str | None
    script_writer: str | None
    length_s: float | None
    tags: list[str] = field(default_factory=list)


def parse_length(text: str | None) -> float | None:
    if not text:
        return None
    m = _LENGTH_RE.fullmatch(re.sub(r"\s+", " ", text.strip()))
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def parse_page(page_html: str, page_url: str) -> HotaudioPage:
    m = PAGE_URL_RE.search(page_url)
    if not m:
        raise ValueError(f"not a hotaudio page URL: {page_url}")
    title = _TITLE_RE.search(page_html)
    rows = {_text(label).lower().rstrip(":"): value for label, value in _TAGM_RE.findall(page_html)}
    script_writer = None
    if "script" in rows:
        sm = re.search(r'href="/u/([0-9A-Za-z_-]+)"', rows["script"])
        script_writer = sm.group(1) if sm else (_text(rows["script"]) or None)
    desc = _DESC_RE.search(page_html)
    og = _OG_DESC_RE.search(page_html)
    return HotaudioPage(
        page_url=page_url,
        user=m.group(1),
        slug=m.group(2),
        title=_text(title.group(1)) if title else None,
        description=_text(desc.group(1)) if desc else (html.unescape(og.group(1)) if og else None),
        script_writer=script_writer,
        length_s=parse_length(_text(rows["length"])) if "length" in rows else None,
        tags=[_text(t) for t in _TAG_RE.findall(page_html)],
    )


class ParseError(ValueError):
    pass


def resolve(client: PoliteClient, page_url: str) -> HotaudioPage:
    page = parse_page(client.get(page_url).text, page_url)
    if page.title is None and page.length_s is None and page.description is None:
        raise ParseError(f"hotaudio page {page_url} has no title, length or description — the page layout may "
                         "have changed; nothing is kept from it")
    return page
