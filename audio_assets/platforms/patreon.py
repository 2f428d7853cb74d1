"""patreon.com: posts and their audio through Patreon's JSON:API.

Public posts are read without logging in. Posts for paying patrons are read only with the
user's OWN logged-in session: the ``session_id`` cookie of their patreon.com login, taken
from the environment variable ``PATREON_SESSION_ID`` (never from a file). The cookie is
sent to www.patreon.com only, never to the media CDN, never through a redirect, and it
never appears in logs, exception texts, returned records or asset metadata.

Access control is never worked around: a post the session cannot view
(``current_user_can_view: false``) is returned with ``locked=True`` and no audio URL, even
if the answer carried one.

Media live on ``c10.patreonusercontent.com`` behind signed URLs (``token-time`` and
``token-hash`` in the query). Those grant access, so only ``strip_query(url)`` is stored.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit, urlunsplit

from audio_assets.downloads import DownloadError
from audio_assets.http_client import FetchError, PoliteClient

POST_URL_RE = re.compile(
    r"(?:https?://)?(?:www\.)?patreon\.com/posts/(?:(?P<slug>[A-Za-z0-9_-]*?)-)?(?P<id>\d+)(?=$|[/?#&\s])",
    re.I,
)
API_BASE = "https://www.patreon.com"
SESSION_ENV = "PATREON_SESSION_ID"
API_PARAMS = {"include": "campaign,user,audio", "json-api-version": "1.0"}
API_HEADERS = {"Accept": "application/vnd.api+json"}
AUDIO_EXTS = (".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".opus")
AUDIO_POST_TYPES = ("audio_file", "audio_embed", "podcast")
_COOKIE_VALUE_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~:/=]+$")  # RFC 6265 cookie-octets, minus some
_SIGNED_RE = re.compile(r"(https?://[^\s'\"<>?#]*patreonusercontent\.com/[^\s'\"<>?#]*)\?[^\s'\"<>#]*", re.I)


class ParseError(ValueError):
    pass


@dataclass
class PatreonPost:
    id: str
    url: str  # canonical https://www.patreon.com/posts/<slug>-<id>
    slug: str | None
    title: str | None
    text: str | None  # the post body as plain text (None when locked)
    published_at: str | None
    post_type: str | None
    can_view: bool
    locked: bool
    # Signed media URLs grant access: use them to download, store only strip_query(...).
    audio_url: str | None = field(default=None, repr=False)
    audio_name: str | None = None
    image_url: str | None = field(default=None, repr=False)
    creator: str | None = None  # the campaign's (or user's) vanity name
    is_public: bool | None = None
    session_used: bool = False  # set by resolve(): was the user's own session sent?
    error: str | None = None  # a feed's item that could not be read (its post is listed, as unreadable)

    @property
    def public_audio_url(self) -> str | None:
        return strip_query(self.audio_url)

    @property
    def audio_ext(self) -> str:
        for candidate in (self.audio_name, urlsplit(self.audio_url or "").path):
            suffix = PurePosixPath(candidate or "").suffix.lower()
            if suffix in AUDIO_EXTS:
                return suffix
        return ".mp3"


def parse_post_url(url: str) -> tuple[str, str, str | None] | None:
    """(canonical url, post id, slug or None) for a Patreon post URL, else None."""
    m = POST_URL_RE.search(url or "")
    if not m:
        return None
    post_id, slug = m.group("id"), m.group("slug") or None
    canon = (
        f"https://www.patreon.com/posts/{slug}-{post_id}"
        if slug
        else f"https://www.patreon.com/posts/{post_id}"
    )
    return canon, post_id, slug


def strip_query(url: str | None) -> str | None:
    """The URL without its query and fragment (signed URLs carry their grant there)."""
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(content: str | None) -> str | None:
    """Plain text of a post's HTML body: one line per paragraph/line break, no tags."""
    if content is None:
        return None
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    text = html.unescape("".join(parser.parts)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() or None


def _included(doc: dict) -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for item in doc.get("included") or []:
        if isinstance(item, dict) and item.get("type") and item.get("id") is not None:
            attrs = item.get("attributes")
            found[(str(item["type"]), str(item["id"]))] = attrs if isinstance(attrs, dict) else {}
    return found


def _related(data: dict, name: str) -> list[tuple[str, str]]:
    rel = (data.get("relationships") or {}).get(name)
    target = rel.get("data") if isinstance(rel, dict) else None
    items = target if isinstance(target, list) else [target]
    return [
        (str(t["type"]), str(t["id"])) for t in items if isinstance(t, dict) and "type" in t and "id" in t
    ]


def _creator(data: dict, included: dict[tuple[str, str], dict]) -> str | None:
    for kind, name_key in (("campaign", "name"), ("user", "full_name")):
        for key in _related(data, kind):
            attrs = included.get(key) or {}
            if not isinstance(attrs, dict):
                continue
            vanity, name = attrs.get("vanity"), attrs.get(name_key)  # text only: a name of another type is none
            vanity = (vanity if isinstance(vanity, str) else None) or _vanity_from_url(attrs.get("url"))
            name = name if isinstance(name, str) else None
            if vanity or name:
                return vanity or name
    return None


def _vanity_from_url(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) == 1 and parts[0] not in ("posts", "user", "api"):
        return parts[0]
    return None


def _is_audio(name: str | None, url: str | None) -> bool:
    for candidate in (name, urlsplit(url or "").path):
        if PurePosixPath(candidate or "").suffix.lower() in AUDIO_EXTS:
            return True
    return False


def parse_post_json(doc: object, url: str) -> PatreonPost:
    """A Patreon post from the JSON:API answer of ``GET /api/posts/<id>`` (pure)."""
    if not isinstance(doc, dict):
        raise ParseError(f"Patreon API answer for {url} is not a JSON object")
    data = doc.get("data")
    if not isinstance(data, dict):
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            detail = str(errors[0].get("detail") or errors[0].get("title") or "an error")[:200]
            raise ParseError(f"Patreon API answered an error for {url}: {detail}")
        raise ParseError(f"Patreon API answer for {url} has no data object")
    if data.get("type") != "post":
        raise ParseError(f"Patreon API answer for {url} is a {data.get('type')!r}, not a post")
    post_id = str(data.get("id") or "")
    if not post_id.isdigit():
        raise ParseError(f"Patreon API answer for {url} has no numeric post id")
    attrs = data.get("attributes")
    if not isinstance(attrs, dict):
        raise ParseError(f"Patreon API answer for post {post_id} has no attributes object")
    post_file = attrs.get("post_file")
    if post_file is not None and not isinstance(post_file, dict):
        raise ParseError(f"Patreon post {post_id}: post_file is neither an object nor null")
    image = attrs.get("image")
    if image is not None and not isinstance(image, dict):
        raise ParseError(f"Patreon post {post_id}: image is neither an object nor null")
    title = attrs.get("title")
    if title is not None and not isinstance(title, str):
        raise ParseError(f"Patreon post {post_id}: title is not a string")
    content = attrs.get("content")
    if content is not None and not isinstance(content, str):
        raise ParseError(f"Patreon post {post_id}: content is not a string")

    is_public = attrs.get("is_public") if isinstance(attrs.get("is_public"), bool) else None
    can_view_raw = attrs.get("current_user_can_view")
    if isinstance(can_view_raw, bool):
        can_view = can_view_raw
    elif can_view_raw is None:
        can_view = bool(is_public)  # unknown: only a public post counts as viewable
    else:
        raise ParseError(f"Patreon post {post_id}: current_user_can_view is not a boolean")

    post_type = attrs.get("post_type") if isinstance(attrs.get("post_type"), str) else None
    audio_url = audio_name = None
    if can_view:  # a locked post's media are never used, even if the answer carried some
        included = _included(doc)
        if post_file and isinstance(post_file.get("url"), str):
            name = post_file.get("name") if isinstance(post_file.get("name"), str) else None
            if (post_type or "") in AUDIO_POST_TYPES or _is_audio(name, post_file["url"]):
                audio_url, audio_name = post_file["url"], name
        if audio_url is None:  # audio posts may carry the file as an included media object
            for key in _related(data, "audio"):
                media = included.get(key) or {}
                link = media.get("download_url") or media.get("url")
                if isinstance(link, str) and link:
                    audio_url, audio_name = link, media.get("file_name")
                    break
    image_url = None
    if image and can_view:
        for k in ("large_url", "url", "thumb_url"):
            if isinstance(image.get(k), str) and image[k]:
                image_url = image[k]
                break

    page = attrs.get("url") if isinstance(attrs.get("url"), str) else None
    parsed = parse_post_url(urljoin(API_BASE, page)) if page else None
    if not parsed or parsed[1] != post_id:
        parsed = parse_post_url(url)
    if not parsed or parsed[1] != post_id:
        parsed = (f"https://www.patreon.com/posts/{post_id}", post_id, None)
    published = attrs.get("published_at")
    return PatreonPost(
        id=post_id,
        url=parsed[0],
        slug=parsed[2],
        title=title.strip() if title else None,
        text=html_to_text(content) if can_view else None,
        published_at=published if isinstance(published, str) else None,
        post_type=post_type,
        can_view=can_view,
        locked=not can_view,
        audio_url=audio_url,
        audio_name=audio_name if isinstance(audio_name, str) else None,
        image_url=image_url,
        creator=_creator(data, _included(doc)),
        is_public=is_public,
    )


# -- the session and keeping it secret ---------------------------------------------------------


def session_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The user's own patreon.com ``session_id`` cookie from ``PATREON_SESSION_ID``, if set."""
    value = ((os.environ if env is None else env).get(SESSION_ENV) or "").strip()
    if not value:
        return None
    if value.lower().startswith("session_id="):
        value = value.split("=", 1)[1].strip()
    if not _COOKIE_VALUE_RE.fullmatch(value):
        # never echo the value: it is a secret
        raise ValueError(
            f"{SESSION_ENV} is not a valid cookie value (copy only the value of the session_id cookie)"
        )
    return value


def scrub(text: str, session_id: str | None = None) -> str:
    """``text`` with the session id and the grants of signed media URLs removed."""
    if session_id:
        text = text.replace(session_id, "[PATREON_SESSION_ID]")
    return _SIGNED_RE.sub(r"\1", text)


def redacted(exc: BaseException, session_id: str | None = None) -> BaseException:
    """The same error with its text scrubbed (FetchError keeps its status for the row)."""
    message = scrub(str(exc), session_id)
    if isinstance(exc, FetchError):
        return type(exc)(message, url=strip_query(exc.url) or "", status=exc.status)
    if isinstance(exc, DownloadError):
        return DownloadError(message)
    if isinstance(exc, ParseError):
        return ParseError(message)
    return RuntimeError(f"{type(exc).__name__}: {message}")


def locked_message(post: PatreonPost) -> str:
    tier = "for paying patrons"
    if post.session_used:
        return (
            f"Patreon post {post.id} is {tier} and your own session (PATREON_SESSION_ID) cannot view it: "
            "your subscription does not include it. It is recorded, not downloaded; set PATREON_SESSION_ID "
            "to the session of the patreon.com account that subscribes to this tier to archive it."
        )
    return (
        f"Patreon post {post.id} is {tier}; no Patreon session was used. To archive posts from creators "
        f"you subscribe to, set PATREON_SESSION_ID to the session_id cookie of your own patreon.com login."
    )


# -- fetching ------------------------------------------------------------------------------------


def resolve(
    client: PoliteClient, url: str, *, session_id: str | None = None, env: Mapping[str, str] | None = None
) -> PatreonPost:
    """Fetch a post through ``GET https://www.patreon.com/api/posts/<id>``.

    The session comes from ``session_id`` or else ``PATREON_SESSION_ID``; without one only
    public posts are viewable. Errors raised here never contain the session id."""
    parsed = parse_post_url(url)
    if not parsed:
        raise ParseError(f"not a Patreon post URL: {strip_query(url)}")
    canon, post_id, _slug = parsed
    sid = session_id or session_from_env(env)
    headers = dict(API_HEADERS)
    if sid:
        headers["Cookie"] = f"session_id={sid}"
    api = f"{API_BASE}/api/posts/{post_id}"
    try:
        # With the cookie attached no redirect is followed: it must not travel to another place.
        response = client.get(api, headers=headers, params=API_PARAMS, max_redirects=0 if sid else 5)
        doc = response.json()
    except FetchError as exc:
        if exc.status in (401, 403) and sid:
            raise FetchError(
                f"Patreon refused post {post_id} (HTTP {exc.status}): the session in {SESSION_ENV} may have "
                "expired; log in to patreon.com again and copy a fresh session_id",
                url=api,
                status=exc.status,
            ) from None
        if exc.status is None and "redirect" in str(exc):
            raise FetchError(
                f"Patreon answered post {post_id} with a redirect, not followed while your session cookie "
                "is attached",
                url=api,
            ) from None
        raise redacted(exc, sid) from None
    except ValueError:
        raise ParseError(f"Patreon API answer for post {post_id} is not JSON") from None
    post = parse_post_json(doc, canon)
    post.session_used = bool(sid)
    return post


# -- a creator's feed ------------------------------------------------------------------------------

_CAMPAIGN_RE = re.compile(r'"campaign"\s*:\s*\{\s*"data"\s*:\s*\{\s*"id"\s*:\s*"(\d+)"|/api/campaigns/(\d+)')
FEED_MAX_PAGES = 500


def parse_campaign_id(page_html: str) -> str | None:
    """The campaign id a creator's page embeds in its bootstrap data."""
    m = _CAMPAIGN_RE.search(page_html or "")
    return (m.group(1) or m.group(2)) if m else None


def list_creator_posts(client: PoliteClient, vanity: str, *, session_id: str | None = None,
                       env: Mapping[str, str] | None = None) -> list[PatreonPost]:
    """Every post of a creator the user follows, newest first, through Patreon's JSON:API feed
    (``/api/posts?filter[campaign_id]=...``, following ``links.next``). Posts the user's session
    cannot view come back locked, with no audio URL."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", vanity or ""):
        raise ParseError(f"not a Patreon creator name: {vanity!r}")
    sid = session_id or session_from_env(env)
    headers = dict(API_HEADERS)
    if sid:
        headers["Cookie"] = f"session_id={sid}"
    try:
        page = client.get(f"{API_BASE}/{vanity}", headers=headers, max_redirects=0 if sid else 5).text
    except FetchError as exc:
        raise redacted(exc, sid) from None
    campaign = parse_campaign_id(page)
    if not campaign:
        raise ParseError(f"Patreon page of {vanity} names no campaign: is the creator name right?")
    url: str | None = f"{API_BASE}/api/posts?filter[campaign_id]={campaign}&sort=-published_at"
    posts: list[PatreonPost] = []
    for _ in range(FEED_MAX_PAGES):
        if not url:
            break
        try:
            doc = client.get(url, headers=headers, max_redirects=0 if sid else 5).json()
        except FetchError as exc:
            raise redacted(exc, sid) from None
        except ValueError:
            raise ParseError(f"Patreon feed of {vanity} is not JSON") from None
        items = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ParseError(f"Patreon feed of {vanity} has no list of posts (the API's shape may have changed)")
        included = doc.get("included") if isinstance(doc.get("included"), list) else []
        for item in items:
            if not isinstance(item, dict):
                continue  # no id, no post to mark
            attrs = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
            given_url = attrs.get("url")
            post_url = given_url if isinstance(given_url, str) and given_url else f"{API_BASE}/posts/{item.get('id')}"
            try:
                post = parse_post_json({"data": item, "included": included}, post_url)
            except ParseError as exc:  # this post is unreadable; the creator's others are kept
                published = attrs.get("published_at")
                post = PatreonPost(id=str(item.get("id") or ""), url=post_url, slug=None, title=None, text=None,
                                   published_at=published if isinstance(published, str) else None, post_type=None,
                                   can_view=False, locked=False, error=str(exc))
            post.session_used = bool(sid)
            posts.append(post)
        links = doc.get("links")
        url = links.get("next") if isinstance(links, dict) else None
        if not isinstance(url, str):
            url = None
    return posts
