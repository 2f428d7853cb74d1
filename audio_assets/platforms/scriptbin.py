"""scriptbin.works: scripts behind a terms gate (cookie ``ta=y``)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from audio_assets.http_client import PoliteClient, TooManyRedirects

SCRIPT_URL_RE = re.compile(r"https?://(?:www\.)?scriptbin\.works/u/([0-9A-Za-z_-]+)/([0-9A-Za-z_-]+)", re.I)
SHORT_URL_RE = re.compile(r"https?://(?:www\.)?scriptbin\.works/s/([0-9A-Za-z_-]+)", re.I)
GATE_COOKIE = {"Cookie": "ta=y"}
_TITLE_TAGS_RE = re.compile(r'<span[^>]*class="title-and-tags"[^>]*>(.*?)</span>\s*(?:</h\d>|<br|<div|<p|$)', re.S | re.I)
_SPAN_RE = re.compile(r"<span[^>]*>(.*?)</span>", re.S | re.I)
_AUDIENCE_RE = re.compile(r'<span[^>]*class="script-audience"[^>]*>(.*?)</span>', re.S | re.I)
_AUTHOR_RE = re.compile(r'<a[^>]*href="(?:https?://(?:www\.)?scriptbin\.works)?/u/([0-9A-Za-z_-]+)"', re.I)
_PERFORMERS_RE = re.compile(r"Performers:\s*(.*?)<br\s*/?>\s*Listeners:\s*(.*?)</p>", re.S | re.I)
_WORDS_RE = re.compile(r"([\d,]+)\s+words", re.I)
_LINE_RE = re.compile(r'<div[^>]*class="line-raw"([^>]*)>(.*?)</div>', re.S | re.I)
_BITS_RE = re.compile(r'id="script-bits"[^>]*data-readywordcount="(\d+)"', re.I)


class ParseError(ValueError):
    pass


class TermsGateError(RuntimeError):
    pass


@dataclass
class Script:
    url: str
    user: str
    slug: str
    title: str | None
    tags: list[str]
    audience: str | None
    author: str | None
    performers_text: str | None
    listeners_text: str | None
    word_count: int | None
    text: str
    lines: int = 0
    extra: dict = field(default_factory=dict)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def parse_script_page(page_html: str, url: str) -> Script:
    m = SCRIPT_URL_RE.search(url)
    if not m:
        raise ParseError(f"not a scriptbin script URL: {url}")
    if "agree-terms" in page_html and "script-text-real" not in page_html:
        raise TermsGateError(f"scriptbin answered its terms page instead of {url}")
    lines_html = _LINE_RE.findall(page_html)
    if not lines_html:
        raise ParseError(f"scriptbin page {url} has no script lines (.script-text-real .line-raw) — layout changed?")
    lines = ["" if 'data-isblank="yes"' in attrs else _text(body) for attrs, body in lines_html]
    tt = _TITLE_TAGS_RE.search(page_html)
    parts = [_text(s) for s in _SPAN_RE.findall(tt.group(1))] if tt else []
    title = parts[0] if parts else None
    tags = [p.strip("[]") for p in parts[1:] if p]
    aud = _AUDIENCE_RE.search(page_html)
    authors = _AUTHOR_RE.findall(page_html)
    perf = _PERFORMERS_RE.search(page_html)
    bits = _BITS_RE.search(page_html)
    words = _WORDS_RE.search(page_html)
    word_count = int(bits.group(1)) if bits else int(words.group(1).replace(",", "")) if words else None
    if word_count is not None and word_count >= 2**63:  # no script has that many words: a broken page
        word_count = None
    return Script(
        url=f"https://scriptbin.works/u/{m.group(1)}/{m.group(2)}",
        user=m.group(1),
        slug=m.group(2),
        title=title,
        tags=tags,
        audience=_text(aud.group(1)) if aud else None,
        author=authors[0] if authors else m.group(1),
        performers_text=_text(perf.group(1)) if perf else None,
        listeners_text=_text(perf.group(2)) if perf else None,
        word_count=word_count,
        text="\n".join(lines),
        lines=len(lines),
    )


def resolve(client: PoliteClient, url: str) -> Script:
    """Fetch a script (short links too), passing the terms gate with its cookie."""
    try:
        with client.stream("GET", url, headers=GATE_COOKIE) as response:
            response.read()
            final_url = response.extensions.get("real_url", url)
            body = response.text
    except TooManyRedirects as exc:
        if any("agree-terms" in hop for hop in exc.hops):
            raise TermsGateError(
                f"scriptbin's terms gate loops for {url}: it keeps redirecting through /agree-terms even with "
                "the ta=y cookie; the script is skipped (open the link in a browser to check it)") from None
        raise

    if "agree-terms" in final_url:
        raise TermsGateError(f"scriptbin kept redirecting {url} to its terms page even with the ta=y cookie")
    return parse_script_page(body, final_url)


def parse_profile_json(doc: object, user: str) -> list[dict]:
    """The scripts listed by ``GET /u/USER.json``: [{url, slug, title, tags, public}]."""
    from audio_assets.analysis import title_tags

    out = []
    for item in doc if isinstance(doc, list) else []:
        if not isinstance(item, dict) or not item.get("slug"):
            continue
        tags, title = title_tags(str(item.get("titleAndTags") or ""))
        meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        out.append({"url": f"https://scriptbin.works/u/{item.get('username') or user}/{item['slug']}",
                    "slug": item["slug"], "title": title, "tags": tags, "public": meta.get("publicListed")})
    return out


def _title_key(title: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (title or "").lower())


def fetch_profile(client: PoliteClient, user: str) -> list[dict]:
    """A writer's script list from ``GET /u/USER.json`` (behind the terms gate)."""
    return parse_profile_json(client.get(f"https://scriptbin.works/u/{user}.json", headers=GATE_COOKIE).json(), user)


def match_title(items: list[dict], title: str | None) -> str | None:
    """The URL of the listed script whose title matches (ignoring case, tags and punctuation)."""
    want = _title_key(title)
    return next((item["url"] for item in items if want and _title_key(item["title"]) == want), None)
