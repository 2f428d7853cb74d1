"""Deterministic post analysis: what a GWA post says about its release.

Pure functions, no I/O: title tags, audiences, kind, credits (performers, scribe,
other roles), links by platform and role, and variant hints from link labels."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit, urlunsplit

AUDIENCE_RE = re.compile(r"^(?:[FMTA]|NB|GF|GM|FF|MM|FM|MF|FFF|MMF|FFM|MFF|FFFF|NB)+4(?:[FMTA]|NB|FF|MM|FM|MF|ANY)+$", re.I)
_KIND_TAGS = {
    "script fill": "script_fill",
    "scriptfill": "script_fill",
    "script offer": "script_offer",
    "oc": "oc",
    "original content": "oc",
    "improv": "improv",
    "improvisation": "improv",
    "ramblefap": "ramblefap",
    "request": "request",
    "verification": "verification",
}
_FLAIR_KIND = {
    "script fill": "script_fill",
    "oc": "oc",
    "script offer": "script_offer",
    "ramblefap": "ramblefap",
    "verification": "verification",
    "improv": "improv",
    "request": "request",
}
TAG_RE = re.compile(r"\[([^\[\]]{1,80})\]|\{([^{}]{1,80})\}")
USER = r"u/([A-Za-z0-9_\-]{2,40})"
MD_LINK_RE = re.compile(r"\[([^\[\]]*)\]\(\s*<?(https?://[^\s)<>]+)>?\s*\)")
BARE_URL_RE = re.compile(r"(?<![\(\[])\bhttps?://[^\s<>\"'\]\)]+", re.I)
SCRIPT_CREDIT_RES = [
    re.compile(r"\[script\]\([^)]*\)\s*(?:is\s+)?by\s+/?" + USER, re.I),
    re.compile(r"\b(?:script|written|writing|words|story)\s*(?:was\s+)?(?:written\s+)?by\s*:?\s*(?:the\s+)?(?:[A-Za-z']+\s+){0,2}?/?" + USER, re.I),
    re.compile(r"\bscribe\s*:?\s*/?" + USER, re.I),
    re.compile(r"\b(?:private(?:ly)?\s+)?(?:fill(?:ing)?|script)\s+(?:of\s+a\s+script\s+)?(?:by|from|for)\s+/?" + USER, re.I),
    re.compile(r"\b(?:thanks|thank you)\s+(?:to\s+)?/?" + USER + r"\s+for\s+(?:the|this|writing)", re.I),
]
COLLAB_RES = [
    re.compile(r"\b(?:collab(?:oration)?|recorded|performed|made|voiced|together)\s+(?:with|w/)\s+(?:[A-Za-z']+\s+){0,3}?/?" + USER, re.I),
    re.compile(r"(?:^|[\s(\[])(?:w/|with|feat\.?|ft\.?|featuring|and)\s+/?" + USER, re.I),
    re.compile(r"\bcharacter\s*:\s*~?\s*/?" + USER, re.I),
    re.compile(r"\b(?:voices?|voiced by|performers?)\s*:\s*((?:/?u/[A-Za-z0-9_\-]{2,40}[\s,&and]*)+)", re.I),
]
OTHER_CREDIT_RES = [
    ("sfx", re.compile(r"\b(?:sound design|sfx|sound effects|foley)\s*(?:and editing\s*)?(?:by|:)\s*/?(?:u/)?([A-Za-z0-9_\-]{2,40})", re.I)),
    ("editing", re.compile(r"\b(?:edited|editing|mixed|mixing|mastering)\s*(?:by|:)\s*/?(?:u/)?([A-Za-z0-9_\-]{2,40})", re.I)),
    ("art", re.compile(r"\b(?:art(?:work)?|cover art|illustration|thumbnail)\s*(?:is\s+)?(?:by|:)\s*/?(?:u/)?([A-Za-z0-9_\-]{2,40})", re.I)),
    ("music", re.compile(r"\bmusic\s*(?:by|:)\s*/?(?:u/)?([A-Za-z0-9_\-]{2,40})", re.I)),
]
PRIVATE_FILL_RE = re.compile(r"\bprivate(?:ly)?[\s-]*(?:fill|script|written|commission)", re.I)
_NOT_NAMES = {"the", "a", "an", "me", "my", "you", "your", "this", "that", "it", "and", "reddit", "soundgasm"}

AUDIO_PLATFORMS = ("soundgasm", "whypit", "hotaudio", "patreon", "pornhub", "erocast")
IMAGE_EXT_RE = re.compile(r"\.(?:png|jpe?g|gif|webp)$", re.I)


@dataclass
class Link:
    platform: str
    url: str
    label: str | None = None
    variant: str | None = None


@dataclass
class PostAnalysis:
    post_id: str
    clean_title: str
    tags: list[str]
    audiences: list[str]
    kind: str | None
    performers: list[str]
    scribe: str | None
    credits: list[dict]  # {"role": "sfx"|"editing"|"art"|"music", "name": str}
    private_fill: bool
    audio_links: list[dict]
    script_links: list[dict]
    image_links: list[dict]
    other_links: list[dict]
    variant_hints: list[str]
    content_tags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def unescape_markdown(text: str) -> str:
    return re.sub(r"\\([_*~`\[\]()#>\\|^-])", r"\1", text or "")


def title_tags(title: str) -> tuple[list[str], str]:
    """All bracket tags in order, and the title with them removed."""
    tags = [(m.group(1) or m.group(2)).strip() for m in TAG_RE.finditer(title or "")]
    clean = TAG_RE.sub(" ", title or "")
    clean = re.sub(r"\s+", " ", clean).strip(" -|,:;")
    return [t for t in tags if t], clean


def split_tag(tag: str) -> list[str]:
    parts = re.split(r"\s*[/,|&+]\s*|\s+or\s+", tag.strip())
    return [p.strip() for p in parts if p.strip()]


def audiences_of(tags: list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        for part in split_tag(tag):
            token = part.replace(" ", "").upper()
            if AUDIENCE_RE.match(token) and token not in out:
                out.append(token)
    return out


def kind_of(tags: list[str], flair: str | None) -> str | None:
    for tag in tags:
        k = _KIND_TAGS.get(tag.strip().lower())
        if k:
            return k
    if flair:
        return _FLAIR_KIND.get(flair.strip().lower())
    return None


def normalise_url(url: str) -> str:
    """Strip markdown debris and trailing punctuation; canonical scheme and host case."""
    url = unescape_markdown(url.strip())
    while url and url[-1] in ".,;:!?*'\"":
        url = url[:-1]
    if url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1]
    if url.endswith("]"):
        url = url[:-1]
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    scheme = "https" if parts.scheme.lower() in ("http", "https") else parts.scheme.lower()
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def platform_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if host.endswith("soundgasm.net"):
        return "soundgasm"
    if host == "whyp.it" or host.endswith(".whyp.it"):
        return "whypit"
    if host.endswith("hotaudio.net"):
        return "hotaudio"
    if host.endswith("patreon.com"):
        return "patreon"
    if host.endswith("pornhub.com"):
        return "pornhub"
    if host.endswith("erocast.me"):
        return "erocast"
    if host.endswith("scriptbin.works"):
        return "scriptbin"
    if host in ("reddit.com", "old.reddit.com", "new.reddit.com", "redd.it") or host.endswith(".reddit.com"):
        return "reddit"
    if host in ("i.imgur.com", "i.redd.it", "imgur.com", "preview.redd.it") or IMAGE_EXT_RE.search(urlsplit(url).path):
        return "image"
    return "other"


def is_audio_page(platform: str, url: str) -> bool:
    path = urlsplit(url).path
    if platform == "soundgasm":
        return bool(re.match(r"^/u(?:ser)?/[^/]+/[^/]+", path))
    if platform == "whypit":
        return "/tracks/" in path
    if platform == "hotaudio":
        return bool(re.match(r"^/u/[^/]+/[^/]+", path))
    if platform == "pornhub":
        return "view_video" in path or "/view_video.php" in url
    if platform == "patreon":
        return "/posts/" in path
    return platform == "erocast"


def variant_label(text: str | None) -> str | None:
    """A variant hint from a link label or the text around it ("F4M version", "No SFX")."""
    if not text:
        return None
    t = unescape_markdown(text).strip()
    if re.search(r"\b(?:no|without|w/o|sans)[\s-]*(?:sfx|sound effects|music|bgm)\b", t, re.I):
        m = re.search(r"\b(sfx|sound effects|music|bgm)\b", t, re.I)
        word = "SFX" if m and m.group(1).lower() in ("sfx", "sound effects") else "Music"
        return f"No {word}"
    aud = [tok.upper() for tok in re.findall(r"\b([A-Za-z]{1,4}4[A-Za-z]{1,4})\b", t) if AUDIENCE_RE.match(tok)]
    if aud:
        return aud[0]
    if re.search(r"\b(?:with\s+)?(?:sfx|sound effects)\b", t, re.I):
        return "SFX"
    if re.search(r"\bbloopers?\b", t, re.I):
        return "Bloopers"
    m = re.search(r"\bpart\s*(\d+)\b", t, re.I)
    if m:
        return f"Part {m.group(1)}"
    if re.search(r"\b(?:music|bgm)\s+version\b", t, re.I):
        return "Music"
    return None


def extract_links(body: str) -> list[Link]:
    """Every link in a post body in order of appearance (markdown links and bare URLs), deduplicated."""
    text = body or ""
    found: list[tuple[int, Link]] = []
    spans: list[tuple[int, int]] = []
    for m in MD_LINK_RE.finditer(text):
        url = normalise_url(m.group(2))
        spans.append(m.span())
        label = unescape_markdown(m.group(1)).strip() or None
        before = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
        found.append((m.start(), Link(platform_of(url), url, label, variant_label(label) or variant_label(before))))
    for m in BARE_URL_RE.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        url = normalise_url(m.group(0))
        before = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
        found.append((m.start(), Link(platform_of(url), url, None, variant_label(before))))
    links: list[Link] = []
    seen: set[str] = set()
    for _pos, link in sorted(found, key=lambda t: t[0]):
        if link.url not in seen:
            seen.add(link.url)
            links.append(link)
    return links


def _add_name(names: list[str], name: str) -> None:
    name = name.strip().strip("_-") if name.strip("_-") else name.strip()
    if not name or name.lower() in _NOT_NAMES:
        return
    if all(n.lower() != name.lower() for n in names):
        names.append(name)


def analyse_post(
    *,
    post_id: str,
    title: str | None,
    body: str | None,
    author: str | None,
    flair: str | None = None,
    extra: str | None = None,
) -> PostAnalysis:
    """Analyse one post (title, body markdown, poster, flair, GWASI extra)."""
    title = unescape_markdown(title or "")
    text = unescape_markdown(body or "")
    extra_text = unescape_markdown(extra or "")
    tags, clean = title_tags(title)
    audiences = audiences_of(tags)
    kind = kind_of(tags, flair)
    content_tags = [t for t in tags if not audiences_of([t]) and not _KIND_TAGS.get(t.strip().lower())]

    links = extract_links(body or "")
    audio_links = [asdict(link) for link in links if link.platform in AUDIO_PLATFORMS and is_audio_page(link.platform, link.url)]
    script_links = [
        asdict(link)
        for link in links
        if link.platform == "scriptbin"
        or (link.platform == "reddit" and "/comments/" in link.url and (link.label or "").lower().find("script") >= 0)
    ]
    script_link_urls = {s["url"] for s in script_links}
    image_links = [asdict(link) for link in links if link.platform == "image"]
    other_links = [
        asdict(link)
        for link in links
        if link.url not in script_link_urls
        and link.platform not in ("image",)
        and not (link.platform in AUDIO_PLATFORMS and is_audio_page(link.platform, link.url))
    ]

    scribe = None
    haystacks = [title, text, extra_text]
    for rx in SCRIPT_CREDIT_RES:
        for hay in haystacks:
            m = rx.search(hay)
            if m:
                scribe = m.group(1)
                break
        if scribe:
            break
    if scribe is None and kind == "script_fill" and not text.strip():
        # No body (deleted, or missing from Reddit): GWASI's extra keeps the u/ mentions; the
        # writer is credited last by GWA convention ("w/ u/Voice, script by u/Writer").
        mentions = re.findall(USER, extra_text)
        if mentions:
            scribe = mentions[-1]
    if scribe is None:
        for s in script_links:
            m = re.search(r"scriptbin\.works/u/([A-Za-z0-9_\-]+)/", s["url"])
            if m:
                scribe = m.group(1)
                break

    performers: list[str] = []
    if author:
        _add_name(performers, author)
    if kind != "script_offer":
        for rx in COLLAB_RES:
            for hay in haystacks:
                for m in rx.finditer(hay):
                    group = m.group(1)
                    for name in re.findall(r"u/([A-Za-z0-9_\-]{2,40})", group) or [group]:
                        if scribe and name.lower() == scribe.lower():
                            continue
                        _add_name(performers, name)
    else:
        performers = []

    credits: list[dict] = []
    for role, rx in OTHER_CREDIT_RES:
        for hay in haystacks:
            for m in rx.finditer(hay):
                name = m.group(1)
                if name.lower() in _NOT_NAMES or name.lower() in ("by", "me", "myself"):
                    continue
                if not any(c["role"] == role and c["name"].lower() == name.lower() for c in credits):
                    credits.append({"role": role, "name": name})

    private_fill = bool(PRIVATE_FILL_RE.search(text) or PRIVATE_FILL_RE.search(title))
    hints = []
    for a in audio_links:
        if a["variant"] and a["variant"] not in hints:
            hints.append(a["variant"])
    return PostAnalysis(
        post_id=post_id,
        clean_title=clean,
        tags=tags,
        audiences=audiences,
        kind=kind,
        performers=performers,
        scribe=scribe,
        credits=credits,
        private_fill=private_fill,
        audio_links=audio_links,
        script_links=script_links,
        image_links=image_links,
        other_links=other_links,
        variant_hints=hints,
        content_tags=content_tags,
    )
