"""Deterministic post analysis: what a GWA post says about its release.

Pure functions, no I/O: title tags, audiences, kind, credits (performers, scribe,
other roles), links by platform and role, and variant hints from link labels.
analyse_posts, for many posts, shares a big batch with worker processes (chunks passed
through temporary files); its results are analyse_post's.

Built for throughput (whole GWASI dumps go through here):
- one regex pass finds every link; it opens with a character set, so the engine jumps
  between "[", "<" and ":" (a bare URL is matched from its "://"); a long body is read only
  on its lines that hold a URL;
- the same pass builds a "plain" text (links replaced by their labels) that the credit rules
  read, so "[art](url) by u/X" reads "art by u/X" and no URL can pass for a name;
- credits are read per u/ mention, from the few words before and after it, not by running
  every rule over the whole post; names written without u/ are read line by line;
- what repeats from post to post is memoised: tags and title tag pieces, flairs, URLs, link
  labels, lead-in phrases ("Script by the lovely "), credit lines.

The rules follow r/gonewildaudio practice; audio_assets_tests/fixtures/posts/posts.json
holds the realistic posts they are held to (with notes on the ambiguous ones)."""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import os
import pickle
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from functools import lru_cache
from itertools import chain, islice
from operator import attrgetter, itemgetter

AUDIENCE_RE = re.compile(
    r"^(?:[FMTA]|NB|GF|GM|FF|MM|FM|MF|FFF|MMF|FFM|MFF|FFFF|NB)+4(?:[FMTA]|NB|FF|MM|FM|MF|ANY)+$", re.I
)
_KIND_TAGS = {
    "script fill": "script_fill",
    "scriptfill": "script_fill",
    "private fill": "script_fill",
    "script offer": "script_offer",
    "oc": "oc",
    "original content": "oc",
    "improv": "improv",
    "improvised": "improv",
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
_MENTION_RE = re.compile(USER)
_NOT_NAMES = {"the", "a", "an", "me", "my", "you", "your", "this", "that", "it", "and", "reddit", "soundgasm"}
_NOT_AUTHORS = {"[deleted]", "[removed]", "automoderator"}

AUDIO_PLATFORMS = ("soundgasm", "whypit", "hotaudio", "patreon", "pornhub", "erocast")

# Links: a markdown link (one level of brackets allowed in its label), an <autolink>, or a bare
# URL (ASCII only: an emoji or a zero-width space ends it). The pattern opens with a character
# set, so the regex engine skips straight to "[", "<" and "h" instead of trying every position.
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#@!$&*+,;=%\\]"
LINK_RE = re.compile(
    r"[\[<hH](?:"
    r"(?<=\[)([^\[\]\n]*(?:\[[^\[\]\n]*\][^\[\]\n]*)*)\]\(\s*<?((?i:https?)://[^\s()<>]+)>?\s*\)"
    r"|(?<=<)((?i:https?)://[^\s<>]+)>"
    r"|(?<=[hH])(?i:ttps?)://" + _URL_CHARS + r"+)"
)
# The same matches, but a bare URL is matched from the ":" of its "://" (the scheme before it
# is looked behind for), so the engine stops at "[", "<" and ":" (rare in prose) instead of at
# every "h"; the caller moves such a match's start back over the scheme. The two differ only
# where the scheme before a "://" could belong to the match before it, which takes a bare URL
# ending in front of an "\u017f" (long s, which re.I matches to "s"): for a text that holds one,
# LINK_RE is used.
_LINK_AT_COLON_RE = re.compile(
    r"[\[<:](?:"
    r"(?<=\[)([^\[\]\n]*(?:\[[^\[\]\n]*\][^\[\]\n]*)*)\]\(\s*<?((?i:https?)://[^\s()<>]+)>?\s*\)"
    r"|(?<=<)((?i:https?)://[^\s<>]+)>"
    r"|(?<=[hH](?i:ttps):)//" + _URL_CHARS + r"+"
    r"|(?<=[hH](?i:ttp):)//" + _URL_CHARS + r"+)"
)
# A scheme-less audio or script address ("soundgasm.net/u/A/B"), looked for only when present.
_SCHEMELESS_RE = re.compile(
    r"(?<![\w.@/-])((?:www\.)?(?:soundgasm\.net|whyp\.it|hotaudio\.net|scriptbin\.works)/"
    + _URL_CHARS
    + r"+)",
    re.I,
)

_UNESCAPE_RE = re.compile(r"\\([_*~`\[\]()#>\\|^-])")
_TITLE_STRIP = " -|,:;\u2013\u2014"
_TRAILING_CREDIT_RE = re.compile(
    r"(?:\s*[-|~\u2013\u2014(]?\s*(?:collab(?:oration)?\s+)?(?:with|w/|ft\.?|feat\.?|featuring|and|&|,)\s*/?"
    r"u/[A-Za-z0-9_\-]{2,40}\)?)+\s*$",
    re.I,
)
_TAG_SPLIT_RE = re.compile(r"\s*[/,|&+]\s*|\s+or\s+")


@dataclass
class Link:
    platform: str
    url: str
    label: str | None = None
    variant: str | None = None


@dataclass(slots=True)
class PostAnalysis:
    post_id: str
    clean_title: str
    tags: list[str]
    audiences: list[str]
    kind: str | None
    performers: list[str]
    scribe: str | None
    credits: list[dict]  # {"role": "sfx"|"editing"|"art"|"music"|"script" (co-writer), "name": str}
    private_fill: bool
    audio_links: list[dict]
    script_links: list[dict]
    image_links: list[dict]
    other_links: list[dict]
    variant_hints: list[str]
    content_tags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        # dataclasses.asdict deep-copies through recursion; the shape here is known and flat.
        return {
            "post_id": self.post_id,
            "clean_title": self.clean_title,
            "tags": list(self.tags),
            "audiences": list(self.audiences),
            "kind": self.kind,
            "performers": list(self.performers),
            "scribe": self.scribe,
            "credits": [dict(c) for c in self.credits],
            "private_fill": self.private_fill,
            "audio_links": [dict(x) for x in self.audio_links],
            "script_links": [dict(x) for x in self.script_links],
            "image_links": [dict(x) for x in self.image_links],
            "other_links": [dict(x) for x in self.other_links],
            "variant_hints": list(self.variant_hints),
            "content_tags": list(self.content_tags),
        }


def unescape_markdown(text: str) -> str:
    if not text:
        return ""
    if "\\" not in text:
        return text
    if text.count("\\") == text.count("\\_"):  # the usual case: escaped underscores only
        return text.replace("\\_", "_")
    return _UNESCAPE_RE.sub(r"\1", text)


# -- title ------------------------------------------------------------------------------------


def _title_tags(title: str) -> tuple[list[str], str]:
    if "{" not in title:
        if "[" not in title:
            return [], " ".join(title.split()).strip(_TITLE_STRIP)
        return _bracket_tags(title)
    parts = TAG_RE.split(title)  # text, tag [...], tag {...}, text, ...
    tags = []
    for i in range(1, len(parts), 3):
        tag = (parts[i] or parts[i + 1]).strip()
        if tag:
            tags.append(tag)
    return tags, " ".join(" ".join(parts[::3]).split()).strip(_TITLE_STRIP)


def _bracket_tags(title: str) -> tuple[list[str], str]:
    """_title_tags of a title with no "{": TAG_RE's [...] tags found with str.split and
    str.partition (a "[" opens a tag when a "]" follows within 80 characters, with no bracket
    between)."""
    pieces = title.split("[")
    cur = pieces[0]
    segments = []
    tags = []
    for piece in pieces[1:]:
        tag, sep, rest = piece.partition("]")
        if sep and 0 < len(tag) <= 80:
            tag = tag.strip()
            if tag:
                tags.append(tag)
            segments.append(cur)
            cur = rest
        else:
            cur = cur + "[" + piece
    segments.append(cur)
    return tags, " ".join(" ".join(segments).split()).strip(_TITLE_STRIP)


def title_tags(title: str) -> tuple[list[str], str]:
    """All bracket tags in order, and the title with them removed."""
    return _title_tags(title or "")


def split_tag(tag: str) -> list[str]:
    parts = _TAG_SPLIT_RE.split(tag.strip())
    return [p.strip() for p in parts if p.strip()]


def _norm_kind_text(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


@lru_cache(maxsize=8192)
def _tag_info(tag: str) -> tuple[tuple[str, ...], str | None]:
    """(audiences, kind) of one bracket tag."""
    auds: list[str] = []
    if "4" in tag:
        for part in split_tag(tag):
            token = part.replace(" ", "").upper()
            if AUDIENCE_RE.match(token):
                if token not in auds:
                    auds.append(token)
            elif " " in part:  # "[F4M F4F]"
                words = part.upper().split()
                if all(AUDIENCE_RE.match(w) for w in words):
                    auds.extend(w for w in words if w not in auds)
    kind = _KIND_TAGS.get(_norm_kind_text(tag))
    if kind is None and any(c in tag for c in "/,|&+"):
        for part in split_tag(tag):
            kind = _KIND_TAGS.get(_norm_kind_text(part))
            if kind:
                break
    return tuple(auds), kind


def audiences_of(tags: list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        for a in _tag_info(tag)[0]:
            if a not in out:
                out.append(a)
    return out


_FLAIR_EMOJI_RE = re.compile(r":[A-Za-z0-9_+-]+:")


@lru_cache(maxsize=1024)
def _flair_kind(flair: str) -> str | None:
    text = _FLAIR_EMOJI_RE.sub(" ", flair) if ":" in flair else flair
    text = "".join(c if c.isalnum() else " " for c in text)
    return _FLAIR_KIND.get(" ".join(text.lower().split()))


def kind_of(tags: list[str], flair: str | None) -> str | None:
    for tag in tags:
        k = _tag_info(tag)[1]
        if k:
            return k
    if flair:
        return _flair_kind(flair)
    return None


_NO_TAG = (None, None, (), None)
#: the title pieces (the text after a "[") that are a tag then white space: they repeat
_PIECE_CACHE: dict[str, tuple] = {}


def _piece_info(piece: str) -> tuple:
    """(tag, the text after it, the tag's audiences, its kind) of the text after a "[" in a title
    (the tag stripped, "" if blank), or _NO_TAG when no tag opens there (see _bracket_tags)."""
    tag, sep, rest = piece.partition("]")
    if not sep or not 0 < len(tag) <= 80:
        return _NO_TAG
    tag = tag.strip()
    auds, k = _tag_info(tag) if tag else ((), None)
    return tag, rest, auds, k


def _title_info(title: str) -> tuple[list[str], str, list[str], str | None, list[str]]:
    """(tags, clean title, audiences, kind from tags, content tags) of an (unescaped) title, in
    new lists (not memoised: a title is seldom seen twice; its tag pieces are)."""
    audiences: list[str] = []
    kind = None
    content: list[str] = []
    if "[" in title and "{" not in title:  # _bracket_tags and the loop below, in one pass
        pieces = title.split("[")
        cur = pieces[0]
        segments = []
        tags = []
        cache = _PIECE_CACHE
        for piece in pieces[1:]:
            info = cache.get(piece)
            if info is None:
                info = _piece_info(piece)
                if info[1] is not None and not info[1].strip():
                    if len(cache) >= 20_000:
                        cache.clear()
                    cache[piece] = info
            tag, rest, auds, k = info
            if tag is None:
                cur = cur + "[" + piece
                continue
            segments.append(cur)
            cur = rest
            if tag:
                tags.append(tag)
                if auds:
                    for a in auds:
                        if a not in audiences:
                            audiences.append(a)
                elif not k:
                    content.append(tag)
                if k and kind is None:
                    kind = k
        segments.append(cur)
        clean = " ".join(" ".join(segments).split()).strip(_TITLE_STRIP)
    else:
        tags, clean = _title_tags(title)
        for tag in tags:
            auds, k = _tag_info(tag)
            if auds:
                for a in auds:
                    if a not in audiences:
                        audiences.append(a)
            elif not k:
                content.append(tag)
            if k and kind is None:
                kind = k
    if "u/" in clean:  # "Title w/ u/X and u/Y": a credit, not part of the work's title
        stripped = _TRAILING_CREDIT_RE.sub("", clean).strip(_TITLE_STRIP)
        if stripped:
            clean = stripped
    return tags, clean, audiences, kind, content


# -- URLs -------------------------------------------------------------------------------------

_TRAILING_JUNK = ".,;:!?*'\""


# A URL already in canonical form (the usual case): https, lower-case host, no fragment, no
# markdown escape, no trailing punctuation.
_CANONICAL_URL_RE = re.compile(r"https://([a-z0-9.-]+)((?:/[^\s?#\\]*)?(?:\?[^\s#\\]*)?)")
# The same, with the path and the query apart.
_CANONICAL_PARTS_RE = re.compile(r"https://([a-z0-9.-]+)(/[^\s?#\\]*)?(\?[^\s#\\]*)?")
_END_JUNK = _TRAILING_JUNK + ")]?"


def _normalise_parts(url: str) -> tuple[str, str, str]:
    """(normalised URL, lower-case host with port, path+query) of a URL as written."""
    m = _CANONICAL_URL_RE.fullmatch(url)
    if m is not None and url[-1] not in _TRAILING_JUNK and url[-1] not in ")]?":
        return url, m.group(1), m.group(2)
    if "\\" in url:
        url = unescape_markdown(url)
    url = url.strip().rstrip(_TRAILING_JUNK)
    if url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1]
    if url.endswith("]"):
        url = url[:-1]
    i = url.find("://")
    if i > 0 and url[:i].isalpha():
        scheme = url[:i].lower()
        if scheme == "http":
            scheme = "https"
        rest = url[i + 3 :]
    else:
        scheme, rest = "https", url
    j = rest.find("/")
    host = rest if j < 0 else rest[:j]
    if "?" in host or "#" in host:
        host = rest[: min(k for k in (host.find("?"), host.find("#")) if k >= 0)]
    tail = rest[len(host) :]
    if "@" in host:
        host = host.rpartition("@")[2]
    if not host.islower():
        host = host.lower()
    if host.endswith(":"):
        host = host[:-1]
    if "#" in tail:
        tail = tail[: tail.find("#")]
    if tail.endswith("?"):
        tail = tail[:-1]
    return f"{scheme}://{host}{tail}", host, tail


def _normalise(url: str) -> str:
    return _normalise_parts(url)[0]


def _host_of(url: str) -> tuple[str, str]:
    """(host without www. and port, path) of a URL."""
    _, host, tail = _normalise_parts(url)
    if host.startswith("www."):
        host = host[4:]
    if ":" in host:
        host = host.partition(":")[0]
    q = tail.find("?")
    return host, (tail if q < 0 else tail[:q])


_HOST_PLATFORM = {
    "soundgasm.net": "soundgasm",
    "whyp.it": "whypit",
    "hotaudio.net": "hotaudio",
    "patreon.com": "patreon",
    "pornhub.com": "pornhub",
    "erocast.me": "erocast",
    "scriptbin.works": "scriptbin",
    "reddit.com": "reddit",
    "old.reddit.com": "reddit",
    "new.reddit.com": "reddit",
    "redd.it": "reddit",
    "i.imgur.com": "image",
    "i.redd.it": "image",
    "imgur.com": "image",
    "preview.redd.it": "image",
}
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def _platform(host: str, path: str) -> str:
    known = _HOST_PLATFORM.get(host)
    if known:
        return known
    if host.endswith("soundgasm.net"):
        return "soundgasm"
    if host.endswith(".whyp.it"):
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
    if host.endswith(".reddit.com"):
        return "reddit"
    if path.lower().endswith(_IMAGE_EXTS):
        return "image"
    return "other"


_SG_PAGE_RE = re.compile(r"/u(?:ser)?/[^/]+/[^/]+")
_HA_PAGE_RE = re.compile(r"/u/[^/]+/[^/]+")
_SB_SCRIPT_RE = re.compile(r"/(?:u/[^/]+/[^/]+|s/[^/]+)")


def _is_audio_page(platform: str, url: str, path: str) -> bool:
    if platform == "soundgasm":
        return _SG_PAGE_RE.match(path) is not None
    if platform == "whypit":
        return "/tracks/" in path
    if platform == "hotaudio":
        return _HA_PAGE_RE.match(path) is not None
    if platform == "pornhub":
        return "view_video" in path or "/view_video.php" in url
    if platform == "patreon":
        return "/posts/" in path
    return platform == "erocast"


_LINK_CACHE: dict[str, tuple[str, str, bool, str]] = {}


def _link_info(raw: str) -> tuple[str, str, bool, str]:
    """(normalised URL, platform, is an audio page, path) of a URL as written; memoised."""
    info = _LINK_CACHE.get(raw)
    if info is not None:
        return info
    return _new_link_info(raw)


def _new_link_info(raw: str) -> tuple[str, str, bool, str]:
    """_link_info of a URL not in the memo."""
    m = _CANONICAL_PARTS_RE.fullmatch(raw)
    if m is not None and raw[-1] not in _END_JUNK:  # in canonical form already: the usual case
        url = raw
        host, path, query = m.groups()
        if host.startswith("www."):
            host = host[4:]
        if path is None:
            path = ""
    else:
        url, host, tail = _normalise_parts(raw)
        if host.startswith("www."):
            host = host[4:]
        if ":" in host:
            host = host.partition(":")[0]
        q = tail.find("?")
        path, query = (tail, None) if q < 0 else (tail[:q], tail[q:])
    platform = _HOST_PLATFORM.get(host) or _platform(host, path)
    if platform == "reddit":
        if query is not None:  # share-tracking parameters (utm_*, share_id, ...)
            url = url.partition("?")[0]
    elif (
        len(path) > 1 and path.endswith("/") and platform in ("soundgasm", "whypit", "hotaudio", "scriptbin")
    ):
        stripped = path.rstrip("/")  # the same page
        url = url[: len(url) - len(path) - len(query or "")] + stripped + (query or "")
        path = stripped
    if platform == "soundgasm":
        audio = _SG_PAGE_RE.match(path) is not None
    else:
        audio = _is_audio_page(platform, url, path)
    info = (url, platform, audio, path)
    if len(_LINK_CACHE) >= 50_000:
        _LINK_CACHE.clear()
    _LINK_CACHE[raw] = info
    return info


def normalise_url(url: str) -> str:
    """Strip markdown debris and trailing punctuation; canonical scheme and host case."""
    return _normalise(url)


def platform_of(url: str) -> str:
    return _platform(*_host_of(url))


def is_audio_page(platform: str, url: str) -> bool:
    return _is_audio_page(platform, url, _host_of(url)[1])


# -- variant hints ----------------------------------------------------------------------------

_NO_VARIANT_RE = re.compile(
    r"\b(?:no|without|w/o|sans)[\s-]*(?:background\s+)?(sfx|sound effects|music|bgm)\b|\b(sfx|sound effects)[\s-]*(?:less|free)\b",
    re.I,
)
_AUD_WORD_RE = re.compile(r"\b([A-Za-z]{1,4}4[A-Za-z]{1,4})\b")
_SFX_RE = re.compile(r"\b(?:with\s+)?(?:sfx|sound effects)\b", re.I)
_BLOOPER_RE = re.compile(r"\bbloopers?\b", re.I)
_PART_RE = re.compile(r"\bpart\s*(\d+)\b", re.I)
_MUSIC_VERSION_RE = re.compile(r"\b(?:music|bgm)\s+version\b", re.I)


@lru_cache(maxsize=16384)
def _variant_of(text: str) -> str | None:
    low = text.lower()
    if not (
        "4" in low
        or "sfx" in low
        or "sound" in low
        or "music" in low
        or "bgm" in low
        or "blooper" in low
        or "part" in low
    ):
        return None
    t = unescape_markdown(text).strip()
    m = _NO_VARIANT_RE.search(t)
    if m:
        word = (m.group(1) or m.group(2) or "").lower()
        return "No SFX" if word in ("sfx", "sound effects") else "No Music"
    if "4" in t:
        for tok in _AUD_WORD_RE.findall(t):
            if AUDIENCE_RE.match(tok):
                return tok.upper()
    if _SFX_RE.search(t):
        return "SFX"
    if _BLOOPER_RE.search(t):
        return "Bloopers"
    m = _PART_RE.search(t)
    if m:
        return f"Part {m.group(1)}"
    if _MUSIC_VERSION_RE.search(t):
        return "Music"
    return None


def variant_label(text: str | None) -> str | None:
    """A variant hint from a link label or the text around it ("F4M version", "No SFX")."""
    if not text:
        return None
    return _variant_of(text)


# A line that is nothing but a variant heading ("**F4M version:**", "## No SFX", "Part 2:").
_HEADING_SHAPE_RE = re.compile(
    r"(?:the\s+)?(?:[a-z]{1,4}4[a-z]{1,4}(?:\s*/\s*[a-z]{1,4}4[a-z]{1,4})*|(?:no|without|with|w/o)?[\s-]*"
    r"(?:sfx|sound effects|music|bgm)|part\s*\d+|bloopers?)"
    r"(?:\s+(?:version|ver\.?|cut|edit|mix|audio|links?))?(?:\s*\(?(?:here|below)\)?)?"
)


@lru_cache(maxsize=4096)
def _heading_variant(line: str) -> str | None:
    s = line.strip().strip("#*_~>:| \t").strip().lower()
    if not s or len(s) > 40 or not _HEADING_SHAPE_RE.fullmatch(s):
        return None
    return _variant_of(s)


# -- links ------------------------------------------------------------------------------------


_LONG = 4000  # characters: a long body (a script, a story) is read line by line where it matters


def _link_matches_by_line(text: str, rx: re.Pattern):
    """LINK_RE's matches (by ``rx``) in a long text, read only on the lines that hold a URL."""
    i = text.find("://")
    n = len(text)
    while i >= 0:
        ls = text.rfind("\n", 0, i) + 1
        le = text.find("\n", i)
        if le < 0:
            le = n
        yield from rx.finditer(text, ls, le)
        i = text.find("://", le)


def _scan(text: str) -> tuple[list[tuple], str, str]:
    """Every link in a body, in order and deduplicated by URL; the body with each link replaced by
    its label (markdown) or a space (bare URL), for the credit rules; and that text in lower case.

    A link is (start, end, label, url, platform, is_audio_page, path, variant); where a variant
    could be named or a link is a Reddit one, it carries (line start, end of the link before it on
    its line (or the line start), start of the first link on its line) too."""
    found: list[tuple] = []
    pieces: list[str] = []
    last = 0
    reddit = False
    cache = _LINK_CACHE
    rx = _LINK_AT_COLON_RE if "\u017f" not in text else LINK_RE
    for m in rx.finditer(text) if len(text) < _LONG else _link_matches_by_line(text, rx):
        start, end = m.span()
        label, md_url, auto_url = m.groups()
        if label is None:
            if auto_url is None:  # a bare URL
                if text[start] == ":":  # matched from its "://": it opens at its scheme
                    start -= 4 if text[start - 1] in "pP" else 5
                url_raw = text[start:end]
            else:
                url_raw = auto_url
            pieces.append(text[last:start])
            pieces.append(" ")
        else:
            pieces.append(text[last:start])
            if "\\" in label:
                label = unescape_markdown(label)
            label = label.strip() or None
            pieces.append(label if label and "://" not in label else " ")
            url_raw = md_url
        last = end
        url, platform, audio, path = cache.get(url_raw) or _new_link_info(url_raw)
        if platform == "reddit":
            reddit = True
        found.append((start, end, label, url, platform, audio, path, None))
    if last:
        pieces.append(text[last:])
        plain = "".join(pieces)
    else:
        plain = text
    low = plain.lower()
    if (".net/" in low or ".it/" in low or ".works/" in low) and _SCHEMELESS_RE.search(plain):
        found, plain = _with_schemeless(text, found)
        low = plain.lower()
        reddit = any(link[4] == "reddit" for link in found)
    if not found:
        return found, plain, low
    if len(low) >= _LONG or (
        "4" in low
        or "sfx" in low
        or "sound e" in low
        or "music" in low
        or "bgm" in low
        or "blooper" in low
        or "part" in low
    ):  # else no word could name a variant
        found = _variants(text, found)
    elif reddit:  # _is_reddit_script reads the words before a Reddit link on its line
        found = _with_lines(text, found)
    if len(found) == 1:
        return found, plain, low
    if len(set(map(_URL_OF, found))) == len(found):
        return found, plain, low
    links: list[tuple] = []
    seen: set[str] = set()
    for link in found:
        if link[3] not in seen:
            seen.add(link[3])
            links.append(link)
    return links, plain, low


_URL_OF = itemgetter(3)


def _with_lines(text: str, found: list[tuple]) -> list[tuple]:
    """The links with (line start, end of the link before it on its line or the line start,
    start of the first link on its line) appended."""
    out = []
    line_start = -1
    line_first = prev_end = 0
    for link in found:
        start = link[0]
        ls = text.rfind("\n", 0, start) + 1
        if ls != line_start:
            line_start = prev_end = ls
            line_first = start
        out.append(link + (ls, prev_end, line_first))
        prev_end = link[1]
    return out


def _variants(text: str, found: list[tuple]) -> list[tuple]:
    """The links with their variant hints and their line fields (see _with_lines). A hint is the
    link's label, else the words before it on its line, else the line's opening words, else a
    heading line ("**F4M version**") above the block of audio-link lines it belongs to."""
    out = []
    audio_only: dict[int, bool] = {}  # link line start -> every link on it is an audio page
    unnamed = False  # an audio link without a variant yet
    line_start = -1
    line_first = prev_end = 0
    for link in found:
        start, label = link[0], link[2]
        ls = text.rfind("\n", 0, start) + 1
        if ls != line_start:
            line_start = prev_end = ls
            line_first = start
        variant = _variant_of(label) if label else None
        if variant is None:
            if prev_end < start:
                variant = _variant_of(text[prev_end:start])
            if variant is None and ls < line_first < start:
                variant = _variant_of(text[ls:line_first])
            if variant is None and link[5]:
                unnamed = True
        out.append(link[:7] + (variant, ls, prev_end, line_first))
        audio_only[ls] = audio_only.get(ls, True) and link[5]
        prev_end = link[1]
    if not unnamed:
        return out
    # One pass down the link lines: the nearest non-blank line above each is a heading (its
    # variant), prose (none), or another link line (its heading carries on under audio links).
    heading: dict[int, str | None] = {}
    prev_ls = -1
    gap_start = 0
    for ls in audio_only:
        result = None
        pos = ls
        while pos > gap_start:
            pe = pos - 1
            ps = text.rfind("\n", 0, pe) + 1
            if text[ps:pe].strip():
                result = _heading_variant(text[ps:pe])
                break
            pos = ps
        else:
            if prev_ls >= 0 and audio_only[prev_ls]:
                result = heading[prev_ls]
        heading[ls] = result
        prev_ls = ls
        le = text.find("\n", ls)
        gap_start = len(text) if le < 0 else le + 1
    for i, link in enumerate(out):
        if link[7] is None and link[5]:
            v = heading[link[8]]
            if v:
                out[i] = link[:7] + (v,) + link[8:]
    return out


def _with_schemeless(text: str, found: list[tuple]) -> tuple[list[tuple], str]:
    """Add scheme-less addresses ("soundgasm.net/u/A/B") outside the links already found."""
    extra = []
    for m in _SCHEMELESS_RE.finditer(text):
        s = m.start()
        if not any(link[0] <= s < link[1] for link in found):
            extra.append((s, m.end(), None, "https://" + m.group(1)))
    if not extra:
        return found, _plain_of(text, found)
    merged = sorted([(lk[0], lk[1], lk[2], lk[3]) for lk in found] + extra)
    out: list[tuple] = []
    for start, end, label, url_raw in merged:
        url, platform, audio, path = _link_info(url_raw)
        out.append((start, end, label, url, platform, audio, path, None))
    return out, _plain_of(text, out)


def _plain_of(text: str, found: list[tuple]) -> str:
    pieces = []
    last = 0
    for link in found:
        label = link[2]
        pieces.append(text[last : link[0]])
        pieces.append(label if label and "://" not in label else " ")
        last = link[1]
    pieces.append(text[last:])
    return "".join(pieces)


def extract_links(body: str) -> list[Link]:
    """Every link in a post body in order of appearance (markdown links and bare URLs), deduplicated."""
    links = _scan(body or "")[0]
    return [Link(lk[4], lk[3], lk[2], lk[7]) for lk in links]


def _is_reddit_script(text: str, link: tuple) -> bool:
    """A Reddit post link is a script when its label or the words before it on its line say so,
    when it is a script offer by its slug, or when it is in the script guild."""
    path = link[6]
    if not ("/comments/" in path or "/s/" in path or link[3].startswith("https://redd.it/")):
        return False
    low = path.lower()
    if low.startswith("/r/gwascriptguild/") or "script_offer" in low:
        return True
    if link[2] and "script" in link[2].lower():
        return True
    return "script" in text[link[9] : link[0]].lower()  # the words before it on its line


# -- credits ----------------------------------------------------------------------------------

_ROLE_KW = (
    r"script(?:ed|writer|writing)?|written|writing|words|story|scribe|writer|author|penned|wrote"
    r"|art(?:work|ist)?|cover|illustration|illustrated|drawn|drawing|thumbnail"
    r"|sound\s+design(?:er|ed)?|sfx|sound\s+effects|foley"
    r"|edit(?:ed|ing|or)|mix(?:ed|ing)|master(?:ed|ing)|engineer(?:ed|ing)"
    r"|music"
)
_FILLER = r"\s*(?:(?:the|my|our|a|an|this|these)\s+)?(?:[a-z'\u2019-]+\s+){0,4}?[~(@\s]*$"
# "Script by the wonderful ", "Editing & SFX by ", "Cover art: ", "This script was given to me privately by "
_ROLE_LEAD_RE = re.compile(
    r"\b(?:"
    + _ROLE_KW
    + r")\b[^.!?\n]{0,40}?(?:\bby|\bfrom|\bcredits?|[:=~\-\u2013\u2014|])"
    + _FILLER
    + r"|(?P<fill>\b(?:private(?:ly)?\s+)?fill(?:ing)?\s+(?:of\s+(?:a|the)\s+script\s+)?(?:by|from|for))"
    + _FILLER
    # a role noun right before the name: "my amazing scriptwriter ", "the artist "
    + r"|\b(?:script\s*writer|writer|scribe|author|artist|illustrator|editor|sound\s+designer|composer)\s*[~(@]*\s*$"
)
# "with the lovely ", "w/ ", "feat. ", "Voices: ", "fellow VA "
_PERF_LEAD_RE = re.compile(
    r"(?:(?<![\w/])(?:w/|with|feat\.?|ft\.?|featuring|starring|alongside|joined\s+by|voiced\s+by|performed\s+by"
    r"|voiced\s+with)|\b(?:voices?|performers?|vas?|voice\s+actors?|cast|co-?stars?|characters?)\s*[:=~\-\u2013\u2014]+)"
    + _FILLER
    + r"|\b(?:vas?|voice\s+actors?|voice\s+actress(?:es)?|co-?stars?|scene\s+partners?)\s*[~(@]*\s*$"
)
# A cast line: "Morgana: ~ ", "**Narrator** - "
_CAST_LINE_RE = re.compile(
    r"[\s*_>#-]*([a-z][\w .'\u2019\"()&-]{0,30}?)[*_]*\s*[:=~\-\u2013\u2014|][:=~\-\u2013\u2014|\s]*[~(@]*\s*"
)
_NOT_CAST_LABELS = {
    "edit",
    "edits",
    "update",
    "ps",
    "p.s",
    "pps",
    "note",
    "notes",
    "tags",
    "tl;dr",
    "tldr",
    "listen",
    "link",
    "links",
    "hi",
    "hey",
    "thanks",
    "thank you",
    "shoutout",
    "shout out",
    "credits",
    "credit",
    "soundgasm",
    "whyp",
    "whyp.it",
    "hotaudio",
    "patreon",
    "reddit",
    "scriptbin",
    "original",
    "source",
    "reminder",
    "warning",
    "cw",
    "tw",
    "content warning",
    "trigger warning",
    "disclaimer",
    "also",
    "and",
    "or",
}
_ROLE_NOUNS = (
    r"script|words|story|writing|art(?:work)?|cover|thumbnail|illustration|sfx|sound\s+design|sound\s+effects"
    r"|edit(?:ing)?|mix(?:ing)?|master(?:ing)?|music|collab|voices?|voicing|performance"
)
_POST_POSS_RE = re.compile(r"['\u2019]s?\s+(?:[a-z'\u2019-]+\s+){0,3}?(?:" + _ROLE_NOUNS + r")\b")
_POST_FOR_RE = re.compile(
    r"\s*,?\s*for\s+(?:(?:writing|penning|voicing|editing|mixing|mastering|drawing)\b|(?:[a-z'\u2019-]+\s+){0,3}?(?:"
    + _ROLE_NOUNS
    + r")\b)"
)
_POST_ANDI_RE = re.compile(r"\s*(?:and|&)\s+(?:i|me|myself)\b")
_POST_VERB_RE = re.compile(
    r"\s*,?\s*(?:who\s+)?(?:wrote|penned|scripted|drew|illustrated|mixed|edited|mastered)\b"
    r"|\s*\((?:[a-z'\u2019-]+\s+){0,2}?(?:" + _ROLE_NOUNS + r")\)"  # "u/A (script) and u/B (art)"
)
# "u/A as the witch", "u/B voicing Lily"
_POST_AS_RE = re.compile(
    r"\s*(?:[-:~]\s*)?\(?(?:as|voicing|voices|plays|playing)\s+"
    r"(?!well\b|always\b|usual\b|promised\b|requested\b|mentioned\b|per\b|much\b|soon\b|a\s+(?:thank|treat|gift)\b)"
)
_KW_ROLE_RE = re.compile(
    r"(script|writ|words|story|scribe|author|penn|wrote)|(\bart\b|\bartwork|\bartist|\bcover|illustrat|drawn|drawing"
    r"|\bdrew|thumbnail)|(sound\s+design|sfx|sound\s+effects|foley)|(\bedit|\bmix|\bmaster|engineer)|(music|compos)"
    r"|(collab|voic|perform)"
)
_ROLE_BY_GROUP = (None, "scribe", "art", "sfx", "editing", "music", "perf")
_LIST_SEP_RE = re.compile(r"\s*(?:,\s*(?:and\s+|&\s*)?|&\s*|\+\s*|/\s*|and\s+)/?")


@lru_cache(maxsize=8192)
def _roles_in(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for m in _KW_ROLE_RE.finditer(text):
        role = _ROLE_BY_GROUP[m.lastindex or 0]
        if role and role not in out:
            out.append(role)
    return tuple(out)


@lru_cache(maxsize=16384)
def _lead_roles(pre: str, line_start: bool) -> tuple[str, ...]:
    """The roles the words just before a mention give it ("Script by the lovely " -> scribe)."""
    low = pre.lower()
    m = _ROLE_LEAD_RE.search(low)
    if m:
        if m.group("fill"):
            return ("scribe",)
        roles = _roles_in(m.group(0))
        if roles:
            return (
                (roles[0],)
                if roles[0] in ("scribe", "perf")
                else tuple(r for r in roles if r not in ("scribe", "perf"))
            )
    if _PERF_LEAD_RE.search(low):
        return ("perf",)
    if line_start:
        m = _CAST_LINE_RE.fullmatch(low)
        if m and m.group(1).strip(" *_'\"").rstrip(".") not in _NOT_CAST_LABELS:
            return ("perf",)
    return ()


# The patterns above as one, tried in their order ("poss", then "for", "verb", "andi", "as"): one
# regex call where five mostly failed one by one.
_POST_RE = re.compile(
    "|".join(
        f"(?P<{name}>{rx.pattern})"
        for name, rx in (
            ("poss", _POST_POSS_RE),
            ("for", _POST_FOR_RE),
            ("verb", _POST_VERB_RE),
            ("andi", _POST_ANDI_RE),
            ("as", _POST_AS_RE),
        )
    )
)


@lru_cache(maxsize=16384)
def _trail_roles(post: str) -> tuple[tuple[str, ...], bool]:
    """(roles, strong) from the words after a mention: "'s script", " for the art", " and I"."""
    m = _POST_RE.match(post.lower())
    if m is None:
        return (), False
    which = m.lastgroup
    if which == "poss":
        return _roles_in(m.group(0)), True
    if which == "for" or which == "verb":
        return _roles_in(m.group(0)), False
    return ("perf",), False


def _mentions(hay: str) -> list[list]:
    """u/ mentions with their roles: [name, roles, start]; lists ("u/A, u/B and u/C") share a role."""
    found = []
    for m in _MENTION_RE.finditer(hay):
        s = m.start()
        if s and hay[s - 1].isalnum():
            continue
        found.append((s, m.end(), m.group(1)))
    if not found:
        return []
    # group list members
    groups: list[list[tuple]] = []
    for item in found:
        if groups:
            prev = groups[-1][-1]
            between = hay[prev[1] : item[0]]
            if len(between) <= 8 and _LIST_SEP_RE.fullmatch(between):
                groups[-1].append(item)
                continue
        groups.append([item])
    out = []
    prev_end = 0
    for group in groups:
        s0 = group[0][0]
        ls = hay.rfind("\n", 0, s0) + 1
        start = max(ls, prev_end, s0 - 120)
        pre = hay[start:s0]
        if pre.endswith("/"):
            pre = pre[:-1]
        roles = _lead_roles(pre, start == ls)
        e1 = group[-1][1]
        nl = hay.find("\n", e1, e1 + 80)
        post = hay[e1 : nl if nl >= 0 else e1 + 80]
        if post:
            trail, strong = _trail_roles(post)
            if trail and (strong or not roles):
                roles = trail
        for s, _e, name in group:
            out.append([name, roles, s])
        prev_end = group[-1][1]
    return out


_CREDIT_TAIL = (
    r"\b((?:[ \t]*(?:,|&|and)[ \t]*(?:sound\s+design|sfx|sound\s+effects|edit(?:ed|ing)|mix(?:ed|ing)"
    r"|master(?:ed|ing)|art(?:work)?|music))*)"
    r"[ \t]*(?:(?:is|was|were|are|done|all)[ \t]+)?(by\b|:|\u2013|\u2014|-)[ \t]*(?![ \t]*/?u/)"
)
# One pattern per keyword, each opening with a literal (the regex engine then jumps between the
# keyword's occurrences), run only when the keyword occurs at all.
_NAMED_CREDIT_RES = tuple(
    (lit, re.compile("(" + pat + ")" + _CREDIT_TAIL))
    for lit, pat in (
        ("sound ", r"sound\s+(?:design(?:ed)?|effects)"),
        ("sfx", "sfx"),
        ("foley", "foley"),
        ("edit", r"edit(?:ed|ing)"),
        ("mix", r"mix(?:ed|ing)"),
        ("master", r"master(?:ed|ing)"),
        ("art", r"art(?:work)?"),
        ("illustration", r"illustrations?"),
        ("thumbnail", "thumbnail"),
        ("music", "music"),
    )
)
# The keywords, the common ones first (the first found ends the check; "edit" is in "credit").
_NAMED_LITS = ("sfx", "edit", "art", "sound ", "mix", "music", "master", "foley", "thumbnail", "illustration")
assert set(_NAMED_LITS) == {lit for lit, _rx in _NAMED_CREDIT_RES}
_NAME_CAPS_RE = re.compile(r"[A-Z0-9][\w.'\u2019-]*(?:[ \t]+[A-Z0-9][\w.'\u2019-]*){0,2}")
_HANDLE_RE = re.compile(r"[A-Za-z][a-z]+[A-Z]|[0-9_]")  # "EchoForge", "doodle_moth", "vox99"
_NAME_WORD_RE = re.compile(r"[A-Za-z0-9_-]{2,40}")
_NOT_CREDIT_NAMES = _NOT_NAMES | {
    "by",
    "myself",
    "moi",
    "yours",
    "yours truly",
    "none",
    "no",
    "yes",
    "n/a",
    "na",
    "version",
    "included",
    "link",
    "links",
    "here",
    "below",
    "above",
    "done",
    "https",
    "http",
    "www",
    "i",
    "we",
    "us",
    "off",
    "on",
    "tba",
    "tbd",
}


def _add_credit(credits: list[dict], seen: set[tuple[str, str]], role: str, name: str) -> None:
    key = (role, name.lower())
    if key not in seen:
        seen.add(key)
        credits.append({"role": role, "name": name})


def _named_credits(text: str, low: str, credits: list[dict], seen: set) -> None:
    """Credits to names written without u/ ("Sound design by RainOnTin Studio", "Music: Kevin MacLeod").
    Such a credit never spans lines, so lines are read (and memoised: boilerplate repeats) one by one;
    in a long body only short lines are read (credit lines are short, a story's paragraphs are not)."""
    for lit in _NAMED_LITS:  # a line can only hold a credit where one of its keywords is
        if lit in low:
            break
    else:
        return
    long = len(text) >= _LONG
    for line in text.split("\n"):
        if len(line) < 6 or (long and len(line) > 200):
            continue
        for role, name in _line_credits(line):
            _add_credit(credits, seen, role, name)


@lru_cache(maxsize=16384)
def _line_credits(line: str) -> tuple[tuple[str, str], ...]:
    low = line.lower()
    if len(low) != len(line):  # a character whose lower case is longer: keep offsets aligned
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in line)
    out: list[tuple[str, str]] = []
    for lit, rx in _NAMED_CREDIT_RES:
        if lit not in low:
            continue
        for m in rx.finditer(low):
            start = m.start()
            if start and low[start - 1].isalnum():  # "start by", "heart:"
                continue
            pos = m.end()
            by = m.group(3) == "by"
            n = _NAME_CAPS_RE.match(line, pos)
            if n is None and by:
                n = _NAME_WORD_RE.match(line, pos)
            if n is None:
                continue
            name = n.group(0).rstrip(".'\u2019-")
            if (
                len(name) < 2
                or name.lower() in _NOT_CREDIT_NAMES
                or name.split()[0].lower() in _NOT_CREDIT_NAMES
            ):
                continue
            if not by and " " not in name and not _HANDLE_RE.search(name):
                continue  # "SFX: Rain" lists a sound; a credit after a colon is a handle or a full name
            for role in _roles_in(m.group(1) + " " + m.group(2)):
                if role != "scribe" and role != "perf":
                    out.append((role, name))
    return tuple(out)


_PRIVATE_RE = re.compile(
    r"\bprivate(?:ly)?[\s-]*(?:fill(?!s)|script(?!s)|written|commission(?:ed\b|\b(?!s))|given|shared|sent)"
    r"|\b(?:given|sent|shared|written|gave)\s+(?:(?:to|for)\s+me\s+|me\s+)?(?:privately|exclusively)\b"
    r"|\bexclusive\s+(?:script|fill)\b(?!s)"
)


# -- the analyser -----------------------------------------------------------------------------


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
    if not title:
        title = ""
    elif "\\" in title:
        title = unescape_markdown(title)
    raw = body or ""
    tags, clean, audiences, kind, content_tags = _title_info(title)
    if kind is None and flair:
        kind = _flair_kind(flair)
    if author and author.lower() in _NOT_AUTHORS:
        author = None
    if raw in ("[deleted]", "[removed]"):
        raw = ""

    links, plain, plain_low = _scan(raw) if raw else ((), "", "")
    if "\\" in plain:
        plain = unescape_markdown(plain)
        plain_low = plain.lower()
    extra_text = unescape_markdown(extra) if extra else ""

    audio_links: list[dict] = []
    script_links: list[dict] = []
    image_links: list[dict] = []
    other_links: list[dict] = []
    hints: list[str] = []
    for link in links:
        platform = link[4]
        d = {"platform": platform, "url": link[3], "label": link[2], "variant": link[7]}
        if link[5]:
            audio_links.append(d)
            v = link[7]
            if v and v not in hints:
                hints.append(v)
        elif platform == "image":
            image_links.append(d)
        elif platform == "scriptbin" and _SB_SCRIPT_RE.match(link[6]):
            script_links.append(d)
        elif platform == "reddit" and _is_reddit_script(raw, link):
            script_links.append(d)
        else:
            other_links.append(d)

    # -- credits
    names: list[list] = []
    if "u/" in title:
        names.extend(_mentions(title.replace("w/u/", "w/ u/")))
    if "u/" in plain:
        names.extend(_mentions(plain.replace("w/u/", "w/ u/") if "w/u/" in plain else plain))
    if "u/" in extra_text:
        names.extend(_mentions(extra_text))

    scribe = None
    cowriters: list[str] = []
    for name, roles, _s in names:
        if "scribe" in roles:
            if scribe is None:
                scribe = name
            elif name.lower() != scribe.lower():
                cowriters.append(name)
    if scribe is None and kind == "script_fill" and not plain.strip() and extra_text:
        # No body (deleted, or missing from Reddit): GWASI's extra keeps the u/ mentions; the
        # writer is credited last by GWA convention ("w/ u/Voice, script by u/Writer").
        mentions = _MENTION_RE.findall(extra_text)
        if mentions:
            scribe = mentions[-1]
    if scribe is None:  # the writer's name in a scriptbin address
        for s in script_links:
            i = s["url"].find("scriptbin.works/u/") if s["platform"] == "scriptbin" else -1
            if i >= 0:
                scribe = s["url"][i + 18 :].partition("/")[0] or None
                if scribe:
                    break
    if scribe is None and kind == "script_offer" and author:
        scribe = author

    performers: list[str] = []
    if kind != "script_offer":
        seen = {scribe.lower(), scribe.strip("_-").lower()} if scribe else set()
        if author:  # _add_name(performers, author, set()), then its name is seen
            name = author.strip()
            name = name.strip("_-") or name
            low = name.lower()
            if name and low not in _NOT_NAMES:
                performers.append(name)
                seen.add(low)
        for name, roles, _s in names:
            if "perf" in roles:
                _add_name(performers, name, seen)

    credits: list[dict] = []
    seen_credits: set[tuple[str, str]] = set()
    for name in cowriters:
        _add_credit(credits, seen_credits, "script", name)
    for name, roles, _s in names:
        for role in roles:
            if role != "scribe" and role != "perf":
                _add_credit(credits, seen_credits, role, name)
    if kind != "script_offer":  # an offer's body is often the script: "SFX: door creaks" is no credit
        if plain:
            _named_credits(plain, plain_low, credits, seen_credits)
        if extra_text:
            _named_credits(extra_text, extra_text.lower(), credits, seen_credits)

    private_fill = bool(
        (("rivat" in plain_low or "xclusiv" in plain_low) and _PRIVATE_RE.search(plain_low))
        or (
            ("rivat" in title or "RIVAT" in title or "xclusiv" in title) and _PRIVATE_RE.search(title.lower())
        )
    )

    return PostAnalysis(
        post_id,
        clean,
        tags,
        audiences,
        kind,
        performers,
        scribe,
        credits,
        private_fill,
        audio_links,
        script_links,
        image_links,
        other_links,
        hints,
        content_tags,
    )


def _add_name(names: list[str], name: str, seen: set[str]) -> None:
    """Add a performer once (names are case-insensitive), without markdown debris."""
    name = name.strip()
    bare = name.strip("_-")
    if bare:
        name = bare
    low = name.lower()
    if name and low not in _NOT_NAMES and low not in seen:
        seen.add(low)
        names.append(name)


# -- many posts -------------------------------------------------------------------------------

#: a batch at least this long is spread over processes (a smaller one is analysed in this one)
POOL_MIN_POSTS = 20_000
#: posts per task sent to a worker process
CHUNK_POSTS = 5_000

_FIELD_NAMES = tuple(f.name for f in fields(PostAnalysis))
_fields_of = attrgetter(*_FIELD_NAMES)


def _post_args(post) -> tuple:
    """(post_id, title, body, author, flair, extra) of a post given as such a tuple (flair and
    extra may be left off) or as a mapping with analyse_post's keyword names."""
    if type(post) is tuple and len(post) == 6:
        return post
    if isinstance(post, Mapping):
        return (
            post["post_id"],
            post["title"],
            post["body"],
            post["author"],
            post.get("flair"),
            post.get("extra"),
        )
    post = tuple(post)
    if not 4 <= len(post) <= 6:
        raise ValueError(
            f"a post is (post_id, title, body, author[, flair[, extra]]), not {len(post)} values"
        )
    return post + (None,) * (6 - len(post))


def _pickle_dumps(value) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _write_chunk(path: str, posts: list[tuple]) -> None:
    """A chunk of posts for a worker, in a file: marshalled ("M"), or pickled ("P") where marshal
    cannot write a value (the results come back the same way)."""
    try:
        data = b"M" + marshal.dumps(posts)
    except ValueError:
        data = b"P" + _pickle_dumps(posts)
    with open(path, "wb") as f:
        f.write(data)


def _read_results(path: str) -> tuple[list[bytes], Callable]:
    """What _analyse_chunk wrote in the file ``path`` (which is removed), and how to read an item."""
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    loads = marshal.loads if data[:1] == b"M" else pickle.loads
    return loads(data[1:]), loads


def _analyse_chunk(path: str, keep_going: bool) -> tuple[list[tuple[int, Exception]], float]:
    """A worker process's task: the chunk of posts in the file ``path`` in (the file is removed);
    out, in the file ``path + ".out"``, a list with each analysis written apart (as the tuple of
    its fields, marshalled if the posts were: cheaper to write and to read than the dataclass
    pickled), and returned, the posts that failed ((index, error); the analyses stop at the first
    unless ``keep_going``, which leaves an empty entry in the list) and the seconds taken.

    Files, not the pool's pipes, carry the chunks: a pipe holds 64 KiB, so megabytes sent through
    one go piece by piece, each piece waiting for the busy caller's threads to get the GIL."""
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    codec = data[:1]
    dumps = marshal.dumps if codec == b"M" else _pickle_dumps
    posts = marshal.loads(data[1:]) if codec == b"M" else pickle.loads(data[1:])
    out: list[bytes] = []
    failures: list[tuple[int, Exception]] = []
    for p in posts:
        try:
            a = analyse_post(post_id=p[0], title=p[1], body=p[2], author=p[3], flair=p[4], extra=p[5])
        except Exception as exc:  # noqa: BLE001 - given back to the caller, for that post
            failures.append((len(out), exc))
            if not keep_going:
                break
            out.append(b"")
            continue
        out.append(dumps(_fields_of(a)))
    with open(path + ".out", "wb") as f:
        f.write(codec + dumps(out))
    return failures, time.perf_counter() - t0


def _pool_context():
    """A start method that is safe in a process with threads (a Dagster run): a fork server where
    there is one, else fresh interpreters."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def analyse_posts(
    posts: Iterable,
    workers: int | None = None,
    *,
    errors: str = "raise",
    pool_min_posts: int = POOL_MIN_POSTS,
    chunk_posts: int = CHUNK_POSTS,
) -> Iterator[PostAnalysis | Exception]:
    """Analyse many posts; yields each post's analysis (analyse_post's) in input order.

    A post is a tuple (post_id, title, body, author[, flair[, extra]]) or a mapping with
    analyse_post's keyword names; the posts are read as they are needed. A batch of at least
    ``pool_min_posts`` posts is spread over ``workers`` processes (default: one per CPU), this one
    included: ``workers - 1`` worker processes analyse chunks of ``chunk_posts`` posts, and this
    one analyses a share of the posts in between (sized so that neither side waits) and reads
    the workers' results back. Nothing is held but the posts in flight, so the results can be
    consumed one by one. If a post fails, with ``errors="raise"`` the results before it are
    yielded, then its error is raised; with ``errors="return"`` its error is yielded in its place
    and the batch goes on."""
    if errors not in ("raise", "return"):
        raise ValueError(f'errors is "raise" or "return", not {errors!r}')
    procs = (os.cpu_count() or 1) if workers is None else workers
    return _analyse_posts(iter(posts), procs, errors == "return", pool_min_posts, chunk_posts)


def _analyse_posts(
    it: Iterator, procs: int, keep_going: bool, pool_min_posts: int, chunk_posts: int
) -> Iterator[PostAnalysis | Exception]:
    head = [p if type(p) is tuple and len(p) == 6 else _post_args(p) for p in islice(it, pool_min_posts)]
    if len(head) >= pool_min_posts and procs > 1:
        yield from _with_earlier_objects_set_aside(
            _analyse_pooled(chain(head, it), procs - 1, chunk_posts, keep_going)
        )
        return
    for part in (head, it):
        for p in part:
            if type(p) is not tuple or len(p) != 6:
                p = _post_args(p)
            try:
                a = analyse_post(post_id=p[0], title=p[1], body=p[2], author=p[3], flair=p[4], extra=p[5])
            except Exception as exc:
                if not keep_going:
                    raise
                a = exc
            yield a


def _with_earlier_objects_set_aside(batch: Iterator) -> Iterator:
    """``batch``'s items, each made while the objects alive before it are left out of the
    garbage collector's passes (gc.freeze), and given back (gc.unfreeze) before it is handed
    on, so nothing stays frozen while the caller holds the batch. In a pooled batch the results
    read back from the worker set off a full pass about every 30,000 posts, and each walked the
    caller's posts (often a list of a million): 1.3 s of a 19 s batch. Freezing also restarts
    the collector's count, so while the batch runs it seldom collects at all: analysis makes no
    reference cycles, and any made meanwhile are collected at a later pass. A process that
    froze objects itself (before the batch) is left as it is."""
    if gc.get_freeze_count():
        yield from batch
        return
    try:
        while True:
            gc.freeze()
            try:
                item = next(batch)
            except StopIteration:
                return
            finally:
                gc.unfreeze()
            yield item
    finally:
        batch.close()


def _analyse_ahead(part: list, future, keep_going: bool) -> int:
    """Analyse the posts of a local part ([posts, results so far]) until ``future`` is done; a
    post that fails stops it (it fails again in its turn) unless ``keep_going`` (its error is
    its result). How many were analysed."""
    local, done = part
    n = len(done)
    for p in islice(local, n, None):
        try:
            done.append(
                analyse_post(post_id=p[0], title=p[1], body=p[2], author=p[3], flair=p[4], extra=p[5])
            )
        except Exception as exc:  # noqa: BLE001 - raised (or given) in its turn
            if not keep_going:
                break
            done.append(exc)
        if future.done():
            break
    return len(done) - n


def _analyse_pooled(
    posts: Iterator, children: int, size: int, keep_going: bool
) -> Iterator[PostAnalysis | Exception]:
    """analyse_posts over ``children`` worker processes and this one.

    The input is cut into rounds: a local part (analysed here when its turn comes, so few results
    wait in memory) then one chunk per worker. Three rounds are kept in flight, so a worker
    always has its next chunks queued. Per round, this process spends local * t_local +
    children * size * t_read and a worker size * t_worker (seconds per post, measured as the
    batch goes: t_read is reading a worker's result back; t_local and t_read include the
    caller's time between results). The local share evens them out, times a bias that is raised
    when this process comes to a worker's result before it is ready (it then analyses the next
    local part ahead of its turn meanwhile; those results wait) and still finds it not ready
    after that, and lowered when it finds the worker two chunks ahead (the worker could run dry);
    once changed, the bias is held while the rounds sent before the change come back."""
    # Seconds per post; until measured, guesses relative to t_local (a worker also pickles).
    t_local: float | None = None
    t_worker: float | None = None
    t_read: float | None = None
    bias = 1.0

    def local_share() -> int:
        tl = t_local or 1.0
        tw = t_worker or 1.15 * tl
        tr = t_read or 0.12 * tl
        return min(4 * size, round(bias * size * max(0.0, tw - children * tr) / tl))

    def take(n: int) -> list[tuple]:
        return [p if type(p) is tuple and len(p) == 6 else _post_args(p) for p in islice(posts, n)]

    # In input order: local parts (lists of posts) and chunks sent ((future, file) pairs).
    queue: deque = deque()
    in_flight = 0
    sent = read = 0
    hold = 2 * children  # the first rounds are sized on guesses
    more = True
    files = tempfile.mkdtemp(prefix="audio_assets_analysis_")
    try:
        with ProcessPoolExecutor(max_workers=children, mp_context=_pool_context()) as pool:
            try:
                while True:
                    while more and in_flight < 3 * children:  # send a round
                        n = local_share()
                        local = take(n)
                        more = len(local) == n
                        if local:
                            queue.append([local, []])  # the posts, the results done ahead
                        for _ in range(children if more else 0):
                            chunk = take(size)
                            more = len(chunk) == size
                            if chunk:
                                path = os.path.join(files, str(sent))
                                sent += 1
                                _write_chunk(path, chunk)
                                queue.append((pool.submit(_analyse_chunk, path, keep_going), path))
                                in_flight += 1
                            if not more:
                                break
                    if not queue:
                        return
                    item = queue.popleft()
                    t0 = time.perf_counter()
                    if type(item) is list:
                        local, done = item
                        yield from done
                        t0 = time.perf_counter()
                        for p in islice(local, len(done), None):
                            try:
                                a = analyse_post(
                                    post_id=p[0], title=p[1], body=p[2], author=p[3], flair=p[4], extra=p[5]
                                )
                            except Exception as exc:
                                if not keep_going:
                                    raise
                                a = exc
                            yield a
                        n = len(local) - len(done)
                        if n >= 100:
                            t = (time.perf_counter() - t0) / n
                            t_local = t if t_local is None else 0.7 * t_local + 0.3 * t
                        continue
                    in_flight -= 1
                    future, path = item
                    read += 1
                    change = 1.0
                    if not future.done():  # early: analyse ahead while the worker finishes
                        nxt = next((x for x in queue if type(x) is list), None)
                        if nxt is not None:
                            n = _analyse_ahead(nxt, future, keep_going)
                            if n >= 100:
                                t = (time.perf_counter() - t0) / n
                                t_local = t if t_local is None else 0.7 * t_local + 0.3 * t
                        if not future.done():  # and still early
                            change = 1.15
                    else:
                        ahead = next((x[0] for x in queue if type(x) is tuple), None)
                        if ahead is not None and ahead.done():  # late: the worker could run dry
                            change = 0.85
                    # A new bias tells only on the rounds sent after it: hold it for those in flight.
                    if change != 1.0 and read > hold:
                        bias = min(2.0, max(0.3, bias * change))
                        hold = read + 3 * children
                    failures, seconds = future.result()
                    t0 = time.perf_counter()
                    blobs, loads = _read_results(path + ".out")
                    if failures and keep_going:
                        failed = dict(failures)
                        for i, b in enumerate(blobs):
                            yield failed[i] if i in failed else PostAnalysis(*loads(b))
                    else:
                        for b in blobs:
                            yield PostAnalysis(*loads(b))
                        if failures:
                            raise failures[0][1]
                    if blobs:
                        t = seconds / len(blobs)
                        t_worker = t if t_worker is None else 0.7 * t_worker + 0.3 * t
                        t = (time.perf_counter() - t0) / len(blobs)
                        t_read = t if t_read is None else 0.7 * t_read + 0.3 * t
            finally:
                for item in queue:
                    if type(item) is tuple:
                        item[0].cancel()
    finally:
        shutil.rmtree(files, ignore_errors=True)
