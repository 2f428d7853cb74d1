"""Local replica of the outside world (GWASI, Reddit, soundgasm, whyp.it, hotaudio,
scriptbin, Patreon, image hosts) serving the deterministic corpus of `corpus.py`.

Every request path starts with `/<real host>`; the rest is the real path, e.g.
`GET http://127.0.0.1:PORT/soundgasm.net/u/SnakeySmut/Threesome-At-The-Milk-Maid-Cafe`.
Pages and JSON always carry the real https URLs, never the replica's address; clients
map hosts through `host_map()` / `AUDIO_ASSETS_HOST_MAP`.

Run it by hand: `python -m audio_assets.replica.server --port 8100 --media-dir DIR`.
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import hashlib
import hmac
import html
import json
import random
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from audio_assets.replica.corpus import Corpus, build_corpus, media_durations, render_media

__all__ = ["ReplicaServer", "RequestRecord", "Fault", "HOSTS", "main"]

HOSTS = [
    "soundgasm.net",
    "www.soundgasm.net",
    "media.soundgasm.net",
    "whyp.it",
    "www.whyp.it",
    "api.whyp.it",
    "cdn.whyp.it",
    "hotaudio.net",
    "www.hotaudio.net",
    "scriptbin.works",
    "www.scriptbin.works",
    "gwasi.com",
    "www.gwasi.com",
    "reddit.com",
    "www.reddit.com",
    "old.reddit.com",
    "oauth.reddit.com",
    "i.imgur.com",
    "i.redd.it",
    "patreon.com",
    "www.patreon.com",
    "c10.patreonusercontent.com",
]

CONTENT_TYPES = {
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "png": "image/png",
    "jpg": "image/jpeg",
}
GWASI_SHARDS = 5
REDDIT_RATE_WINDOW_S = 600
REDDIT_RATE_LIMIT = 1000
WHYP_PAGE_SIZE = 10


class RequestRecord(NamedTuple):
    method: str
    host: str
    path: str  # real path with query
    headers: dict
    status: int  # 0 when the connection was reset without an answer
    bytes_sent: int  # body bytes written
    at: float = 0.0  # time.monotonic() when the request arrived


@dataclass
class Fault:
    host: str | None
    path_contains: str | None
    kind: str
    status: int
    retry_after: float | None
    count: int | None
    rate: float | None
    rng: random.Random

    def matches(self, host: str, path: str) -> bool:
        if self.host is not None and self.host != host:
            return False
        if self.path_contains is not None and self.path_contains not in path:
            return False
        return True


@dataclass
class Request:
    method: str
    host: str
    path: str  # real path, unquoted, without query
    raw_path: str  # real path with query, as sent
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("cookie")
        if not raw:
            return None
        jar = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] | None = None
    content_type: str = "text/plain; charset=utf-8"

    def header_list(self) -> list[tuple[str, str]]:
        return list(self.headers or [])


def _json(obj, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode(), headers, "application/json; charset=utf-8")


def _html(text: str, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode("utf-8"), headers, "text/html; charset=utf-8")


def _redirect(location: str, status: int = 302, extra: list[tuple[str, str]] | None = None) -> Response:
    body = f'<html><body>Redirecting to <a href="{html.escape(location)}">{html.escape(location)}</a></body></html>'
    return _html(body, status, [("Location", location), *(extra or [])])


def _not_found_html() -> Response:
    return _html(
        "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>",
        404,
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class ReplicaServer:
    """The local replica. `start()` renders media if needed and serves in a daemon thread."""

    def __init__(
        self,
        corpus: Corpus | None = None,
        media_dir: Path | str = "/tmp/audio_assets_replica_media",
        host: str = "127.0.0.1",
        port: int = 0,
        signed_url_ttl_s: float = 300.0,
    ) -> None:
        self.corpus = corpus if corpus is not None else build_corpus()
        self.media_dir = Path(media_dir)
        self.host = host
        self.port = port
        self.signed_url_ttl_s = signed_url_ttl_s
        self._requests: list[RequestRecord] = []
        self._lock = threading.RLock()
        self._answering = 0  # requests being answered right now (logged once answered)
        self._idle = threading.Condition(self._lock)
        self._faults: list[Fault] = []
        # Opt-in extras for tests (none by default, so the corpus's answers are unchanged):
        # pages and files served at exact paths, and a GWASI base that is replaced mid-walk.
        self._routes: dict[tuple[str, str], Response | Callable[[Request], Response]] = {}
        self._base_vanishes: tuple[int, str] | None = None
        self.faults_injected: collections.Counter = collections.Counter()  # by kind, for tests and the soak
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._media: dict[tuple[str, str], Path] = {}
        self._durations: dict[str, float] = {}
        self._bytes_cache: dict[Path, bytes] = {}
        self._secret = hashlib.sha256(f"whypit-cdn-secret:{self.corpus.seed}".encode()).digest()
        self._patreon_secret = hashlib.sha256(f"patreon-cdn-secret:{self.corpus.seed}".encode()).digest()
        self._tokens: dict[str, float] = {}
        self._reddit_window_start = 0.0
        self._reddit_used = 0
        self._init_state()

    # -- state -----------------------------------------------------------------
    def _init_state(self) -> None:
        c = self.corpus
        self.reddit_posts: dict[str, dict] = copy.deepcopy(c.reddit_posts)
        delta_days = set(c.days[-c.gwasi_delta_days :]) if c.gwasi_delta_days else set()
        day_of = {e[0]: time.strftime("%Y-%m-%d", time.gmtime(e[5])) for e in c.gwasi_entries}
        delta_entries = [list(e) for e in c.gwasi_entries if day_of[e[0]] in delta_days]
        base_entries = [list(e) for e in c.gwasi_entries if day_of[e[0]] not in delta_days]
        delta_ids = {e[0] for e in delta_entries}
        base_fills = {}
        delta_fills = {}
        for offer, fills in c.gwasi_fills.items():
            if any(f in delta_ids for f in fills):
                delta_fills[offer] = list(fills)
            else:
                base_fills[offer] = list(fills)
        shuffled = list(base_entries)
        random.Random(f"{c.seed}:gwasi-shards:{c.gwasi_base_version}").shuffle(shuffled)
        n = GWASI_SHARDS
        self.gwasi_version = c.gwasi_base_version
        self.gwasi_shards = [{"entries": shuffled[i::n], "off": []} for i in range(n)]
        self.gwasi_base = {"entries": sorted(base_entries, key=lambda e: (e[5], e[0])), "fills": base_fills}
        self.gwasi_delta = {
            "base": c.gwasi_base_version,
            "entries": delta_entries,
            "fills": delta_fills,
            "flairs": {
                "Script Fill": "#ff66ac",
                "OC": "#46d160",
                "Script Offer": "#0079d3",
                "Ramblefap": "#ffb000",
                "Verification": "#7193ff",
                "Request": "#cc5289",
            },
            "newest": 0,
            "oldest": 0,
            "removed": [],
            "scores": [],
        }
        self._refresh_delta_meta()
        self._sg_index = {k.lower(): k for k in c.soundgasm}
        self._ha_index = {k.lower(): k for k in c.hotaudio}
        self._sb_index = {k.lower(): k for k in c.scripts}
        self._sb_codes = {s["short_code"]: k for k, s in c.scripts.items()}
        self._sha1_index = {r["sha1"]: k for k, r in c.soundgasm.items() if not r["removed"]}
        self._cdn_index: dict[str, tuple[str, str, int]] = {}
        for tid, t in c.whypit.items():
            self._cdn_index[f"{t['lossy_uuid']}.mp3"] = ("whypit_lossy", t["lossy_uuid"], tid)
            if t["lossless_uuid"]:
                self._cdn_index[f"{t['lossless_uuid']}.flac"] = ("whypit_lossless", t["lossless_uuid"], tid)

    def _refresh_delta_meta(self) -> None:
        entries = self.gwasi_delta["entries"]
        times = [int(e[5]) for e in entries]
        self.gwasi_delta["newest"] = max(times) if times else 0
        self.gwasi_delta["oldest"] = min(times) if times else 0
        self.gwasi_delta["scores"] = [int(e[6]) for e in entries]

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> ReplicaServer:
        if self._httpd is not None:
            return self
        self._media = render_media(self.corpus, self.media_dir)
        self._durations = media_durations(self.media_dir)
        handler = type("ReplicaHandler", (_Handler,), {"replica": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.name = f"replica-server-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def host_map(self) -> dict[str, str]:
        return {h: f"{self.base_url}/{h}" for h in HOSTS}

    def host_map_env(self) -> str:
        return ",".join(f"{h}={b}" for h, b in self.host_map().items())

    def url_for(self, real_url: str) -> str:
        """The replica URL serving a real https URL."""
        parts = urlsplit(real_url)
        rest = parts.path or "/"
        if parts.query:
            rest += "?" + parts.query
        return f"{self.base_url}/{parts.hostname}{rest}"

    # -- request log -----------------------------------------------------------------
    def _log(self, rec: RequestRecord) -> None:
        with self._lock:
            self._requests.append(rec)

    def _begin_request(self) -> None:
        with self._lock:
            self._answering += 1

    def _end_request(self) -> None:
        with self._idle:
            self._answering -= 1
            self._idle.notify_all()

    def _settle(self, timeout: float = 1.0) -> None:
        """Wait (briefly) for requests still being answered: a request is logged just after its
        body is written, so a client that has read its whole answer may be a moment ahead."""
        with self._idle:
            self._idle.wait_for(lambda: self._answering == 0, timeout)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far (after any in flight are answered and logged)."""
        self._settle()
        return self._requests

    def requests_for(self, host: str) -> list[RequestRecord]:
        self._settle()
        with self._lock:
            return [r for r in self._requests if r.host == host]

    def clear_requests(self) -> None:
        self._settle()
        with self._lock:
            self._requests.clear()

    # -- faults --------------------------------------------------------------------------
    def add_fault(
        self,
        *,
        host: str | None = None,
        path_contains: str | None = None,
        kind: str = "status",
        status: int = 503,
        retry_after: float | None = None,
        count: int | None = 1,
        rate: float | None = None,
        seed: int = 0,
    ) -> None:
        """Fail matching requests: ``status`` (answer ``status``, with Retry-After when given),
        ``reset`` (drop the connection), ``truncate`` (half the body, then close), ``delay`` (wait
        ``retry_after`` seconds before answering: past a client's timeout, a timeout), ``stall``
        (half the body, then ``retry_after`` seconds of silence: a read timeout mid-body) or
        ``expire`` (a signed URL's 403). ``count`` requests, or a share ``rate`` of them."""
        if kind not in ("status", "reset", "truncate", "delay", "stall", "expire"):
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._faults.append(
                Fault(
                    host,
                    path_contains,
                    kind,
                    status,
                    retry_after,
                    None if rate is not None else count,
                    rate,
                    random.Random(seed),
                )
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, host: str, path: str) -> Fault | None:
        fault = self._pick_fault(host, path)
        if fault is not None:
            with self._lock:
                self.faults_injected[f"{fault.kind}:{fault.status}" if fault.kind == "status" else fault.kind] += 1
        return fault

    def _pick_fault(self, host: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if not f.matches(host, path):
                    continue
                if f.rate is not None:
                    if f.rng.random() < f.rate:
                        return f
                    continue
                if f.count is None:
                    return f
                if f.count > 0:
                    f.count -= 1
                    return f
            return None

    # -- runtime additions ---------------------------------------------------------------
    def add_gwasi_entry(self, entry: list) -> None:
        with self._lock:
            self.gwasi_delta["entries"] = [e for e in self.gwasi_delta["entries"] if e[0] != entry[0]] + [
                list(entry)
            ]
            self._refresh_delta_meta()

    def remove_gwasi_post(self, post_id: str) -> None:
        with self._lock:
            if post_id not in self.gwasi_delta["removed"]:
                self.gwasi_delta["removed"].append(post_id)

    def add_gwasi_fill(self, offer_id: str, fill_id: str) -> None:
        with self._lock:
            fills = self.gwasi_delta["fills"].setdefault(
                offer_id, list(self.gwasi_base["fills"].get(offer_id, []))
            )
            if fill_id not in fills:
                fills.append(fill_id)

    def set_gwasi_delta(self, delta: dict) -> None:
        with self._lock:
            self.gwasi_delta = copy.deepcopy(delta)

    def add_reddit_post(self, data: dict) -> None:
        with self._lock:
            self.reddit_posts[data["id"]] = copy.deepcopy(data)

    def add_post(self, data: dict, *, length: float = 0, extra: str | None = None) -> list:
        """Add a Reddit post and its GWASI delta entry at once; returns the entry."""
        entry: list = [
            data["id"],
            data.get("subreddit", "gonewildaudio"),
            data.get("author"),
            data.get("link_flair_text") or "",
            data.get("title", ""),
            int(data.get("created_utc", 0)),
            int(data.get("score", 1)),
            length,
        ]
        if extra:
            entry.append(extra)
        self.add_reddit_post(data)
        self.add_gwasi_entry(entry)
        return entry

    def set_route(self, url: str, answer: Response | Callable[[Request], Response]) -> None:
        """Answer ``url`` (a real https URL; its query is ignored) with ``answer`` instead of the
        corpus: a Response, or a callable taking the Request. For hostile pages and files in tests."""
        parts = urlsplit(url)
        with self._lock:
            self._routes[((parts.hostname or "").lower(), parts.path or "/")] = answer

    def serve_bytes(self, url: str, data: bytes, content_type: str = "audio/mp4") -> None:
        """Serve ``data`` at ``url`` like a media file (ETag, Range requests)."""
        self.set_route(url, lambda req: self._serve_data(req, data, content_type))

    def vanish_base_after(self, shard: int, new_version: str) -> None:
        """Once shard ``shard`` of the current GWASI base has been served, the base is replaced
        by ``new_version`` (the same entries, reshuffled): the old version's shards answer 404
        and delta.json names the new one, as when GWASI regenerates its base during a walk."""
        if not new_version.isalnum():
            raise ValueError(f"base version {new_version!r} must be alphanumeric")
        with self._lock:
            self._base_vanishes = (shard, new_version)

    def _rotate_base(self, new_version: str) -> None:
        entries = [e for shard in self.gwasi_shards for e in shard["entries"]]
        random.Random(f"{self.corpus.seed}:gwasi-shards:{new_version}").shuffle(entries)
        n = len(self.gwasi_shards)
        self.gwasi_shards = [{"entries": entries[i::n], "off": []} for i in range(n)]
        self.gwasi_version = new_version
        self.gwasi_delta["base"] = new_version
        self._base_vanishes = None

    # -- media ------------------------------------------------------------------------------
    def _file_bytes(self, path: Path) -> bytes:
        with self._lock:
            data = self._bytes_cache.get(path)
        if data is None:
            data = path.read_bytes()
            with self._lock:
                self._bytes_cache[path] = data
        return data

    def _serve_file(self, req: Request, kind: str, key: str, ext: str) -> Response:
        path = self._media.get((kind, key))
        if path is None or not path.is_file():
            return _not_found_html()
        return self._serve_data(req, self._file_bytes(path), CONTENT_TYPES[ext])

    def _serve_data(self, req: Request, data: bytes, ctype: str) -> Response:
        size = len(data)
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        base_headers = [
            ("Accept-Ranges", "bytes"),
            ("ETag", etag),
            ("Last-Modified", _http_date(1754000000)),
            ("Cache-Control", "public, max-age=31536000"),
        ]
        rng_header = req.headers.get("range")
        if rng_header:
            if_range = req.headers.get("if-range")
            if not if_range or if_range == etag:
                m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng_header)
                if m and (m.group(1) or m.group(2)):
                    a, b = m.group(1), m.group(2)
                    if a:
                        start = int(a)
                        end = min(int(b), size - 1) if b else size - 1
                    else:
                        start = max(0, size - int(b))
                        end = size - 1
                    if start >= size or start > end:
                        return Response(
                            416,
                            b"",
                            [("Content-Range", f"bytes */{size}"), *base_headers],
                            "text/plain; charset=utf-8",
                        )
                    return Response(
                        206,
                        data[start : end + 1],
                        [("Content-Range", f"bytes {start}-{end}/{size}"), *base_headers],
                        ctype,
                    )
        return Response(200, data, base_headers, ctype)

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        with self._lock:
            route = self._routes.get((req.host, req.path))
        if route is not None:
            return route(req) if callable(route) else route
        site: Callable[[Request], Response] | None = {
            "gwasi.com": self._gwasi,
            "www.gwasi.com": self._gwasi,
            "reddit.com": self._reddit,
            "www.reddit.com": self._reddit,
            "old.reddit.com": self._reddit,
            "oauth.reddit.com": self._reddit_oauth,
            "soundgasm.net": self._soundgasm,
            "www.soundgasm.net": self._soundgasm,
            "media.soundgasm.net": self._soundgasm_media,
            "whyp.it": self._whyp_web,
            "www.whyp.it": self._whyp_web,
            "api.whyp.it": self._whyp_api,
            "cdn.whyp.it": self._whyp_cdn,
            "hotaudio.net": self._hotaudio,
            "www.hotaudio.net": self._hotaudio,
            "scriptbin.works": self._scriptbin,
            "www.scriptbin.works": self._scriptbin,
            "i.imgur.com": self._image_host,
            "i.redd.it": self._image_host,
            "patreon.com": self._patreon_bare,
            "www.patreon.com": self._patreon,
            "c10.patreonusercontent.com": self._patreon_cdn,
        }.get(req.host)
        if site is None:
            return Response(404, b"unknown host\n")
        return site(req)

    # -- GWASI -------------------------------------------------------------------------------------
    def _gwasi(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n")
        headers = [("Access-Control-Allow-Origin", "*")]
        with self._lock:
            version = self.gwasi_version
            if req.path == "/delta.json":
                return _json(copy.deepcopy(self.gwasi_delta), headers=headers)
            if req.path == f"/base_{version}.json":
                return _json(self.gwasi_base, headers=headers)
            m = re.fullmatch(rf"/base_{version}/(\d+)\.json", req.path)
            if m:
                n = int(m.group(1))
                if 1 <= n <= len(self.gwasi_shards):
                    answer = _json(self.gwasi_shards[n - 1], headers=headers)
                    if self._base_vanishes is not None and n == self._base_vanishes[0]:
                        self._rotate_base(self._base_vanishes[1])
                    return answer
        return _not_found_html()

    # -- Reddit -------------------------------------------------------------------------------------
    def _ratelimit_headers(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        with self._lock:
            if now - self._reddit_window_start >= REDDIT_RATE_WINDOW_S:
                self._reddit_window_start = now
                self._reddit_used = 0
            self._reddit_used += 1
            used = self._reddit_used
            reset = int(REDDIT_RATE_WINDOW_S - (now - self._reddit_window_start))
        return [
            ("x-ratelimit-remaining", f"{max(0, REDDIT_RATE_LIMIT - used):.1f}"),
            ("x-ratelimit-used", str(used)),
            ("x-ratelimit-reset", str(max(0, reset))),
        ]

    def _post_view(self, data: dict, raw_json: bool) -> dict:
        out = copy.deepcopy(data)
        if not raw_json:
            # Reddit's legacy escaping when raw_json=1 is not given
            for key in ("title", "selftext", "selftext_html"):
                if isinstance(out.get(key), str):
                    out[key] = out[key].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return out

    @staticmethod
    def _listing(children: list[dict], dist: int | None = None) -> dict:
        return {
            "kind": "Listing",
            "data": {
                "after": None,
                "dist": len(children) if dist is None else dist,
                "modhash": "",
                "geo_filter": "",
                "children": children,
                "before": None,
            },
        }

    def _reddit(self, req: Request) -> Response:
        rl = self._ratelimit_headers()
        if req.method == "POST" and req.path == "/api/v1/access_token":
            return self._reddit_token(req, rl)
        return self._reddit_read(req, rl)

    def _reddit_token(self, req: Request, rl: list[tuple[str, str]]) -> Response:
        auth = req.headers.get("authorization", "")
        ok = False
        if auth.lower().startswith("basic "):
            try:
                user, _, _pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
                ok = bool(user)
            except Exception:
                ok = False
        if not ok:
            return _json({"message": "Unauthorized", "error": 401}, 401, rl)
        form = parse_qs(req.body.decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        if grant not in (
            "client_credentials",
            "https://oauth.reddit.com/grants/installed_client",
            "password",
        ):
            return _json({"error": "unsupported_grant_type"}, 400, rl)
        token = "replica-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + 86400
        return _json(
            {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}, 200, rl
        )

    def _reddit_oauth(self, req: Request) -> Response:
        rl = self._ratelimit_headers()
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            valid = token in self._tokens and self._tokens[token] > time.time()
        if not valid:
            return _json(
                {"message": "Unauthorized", "error": 401},
                401,
                [*rl, ("www-authenticate", 'Bearer realm="reddit", error="invalid_token"')],
            )
        return self._reddit_read(req, rl)

    def _reddit_read(self, req: Request, rl: list[tuple[str, str]]) -> Response:
        if req.method not in ("GET", "HEAD"):
            return _json({"message": "Method Not Allowed", "error": 405}, 405, rl)
        raw_json = req.q("raw_json") == "1"
        path = req.path
        if path in ("/api/info", "/api/info/", "/api/info.json"):
            ids = [x.strip() for x in (req.q("id") or "").split(",") if x.strip()]
            return self._reddit_info(ids, raw_json, rl)
        m = re.fullmatch(r"/by_id/([a-z0-9_,]+?)(?:\.json|/)?", path)
        if m:
            return self._reddit_info(m.group(1).split(","), raw_json, rl)
        m = re.fullmatch(r"(?:/r/([A-Za-z0-9_]+))?/comments/([a-z0-9]+)(?:/[^/]*)?(?:/?\.json|/)?", path)
        if m:
            sub, pid = m.group(1), m.group(2)
            with self._lock:
                data = self.reddit_posts.get(pid)
            if data is None or (sub and sub.lower() != data["subreddit"].lower()):
                return _json({"message": "Not Found", "error": 404}, 404, rl)
            post = {"kind": "t3", "data": self._post_view(data, raw_json)}
            return _json([self._listing([post], dist=1), self._listing([], dist=None)], 200, rl)
        return _json({"message": "Not Found", "error": 404}, 404, rl)

    def _reddit_info(self, ids: list[str], raw_json: bool, rl: list[tuple[str, str]]) -> Response:
        if len(ids) > 100:
            return _json({"message": "Bad Request", "error": 400, "reason": "TOO_MANY_IDS"}, 400, rl)
        children = []
        with self._lock:
            for fullname in ids:
                if not fullname.startswith("t3_"):
                    continue
                data = self.reddit_posts.get(fullname[3:])
                if data is not None:
                    children.append({"kind": "t3", "data": self._post_view(data, raw_json)})
        return _json(self._listing(children), 200, rl)

    # -- soundgasm -------------------------------------------------------------------------------------
    def _soundgasm(self, req: Request) -> Response:
        m = re.fullmatch(r"/u(?:ser)?/([0-9A-Za-z_-]+)/([0-9A-Za-z_-]+)/?", req.path)
        if m:
            key = self._sg_index.get(f"{m.group(1)}/{m.group(2)}".lower())
            if key is None:
                return _not_found_html()
            rec = self.corpus.soundgasm[key]
            if rec["removed"]:
                return _not_found_html()
            return _html(self._soundgasm_page(rec))
        m = re.fullmatch(r"/u(?:ser)?/([0-9A-Za-z_-]+)/?", req.path)
        if m:
            user = m.group(1).lower()
            recs = [
                r for r in self.corpus.soundgasm.values() if r["user"].lower() == user and not r["removed"]
            ]
            if not recs:
                return _not_found_html()
            return _html(self._soundgasm_profile(recs))
        if req.path == "/":
            return _html(
                "<!DOCTYPE html><html><head><title>Soundgasm</title></head><body><h1>Soundgasm</h1></body></html>"
            )
        return _not_found_html()

    def _soundgasm_page(self, rec: dict) -> str:
        user, title, desc = rec["user"], rec["title"], rec["description"]
        media = f"https://media.soundgasm.net/sounds/{rec['sha1']}.m4a"
        if int(rec["sha1"][:2], 16) % 4 == 0:
            media = media.replace("/", "\\/")
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} - Soundgasm</title>
<link rel="stylesheet" href="/css/style.css">
<script type="text/javascript" src="/js/jquery.min.js"></script>
<script type="text/javascript" src="/js/jquery.jplayer.min.js"></script>
</head>
<body>
<header><a href="https://soundgasm.net/">Soundgasm</a></header>
<div id="container">
<div class="user-profile"><a href="https://soundgasm.net/u/{_e(user)}">{_e(user)}</a></div>
<div id="jquery_jplayer_1" class="jp-jplayer"></div>
<div id="jp_container_1" class="jp-audio" role="application" aria-label="media player">
<div class="jp-type-single">
<div class="jp-gui jp-interface">
<div class="jp-controls"><button class="jp-play" role="button" tabindex="0">play</button></div>
<div class="jp-progress"><div class="jp-seek-bar"><div class="jp-play-bar"></div></div></div>
</div>
<div class="jp-details">
<div class="jp-title" aria-label="title">{_e(title)}</div>
</div>
<div class="jp-description"><p style="white-space: pre-wrap;">{_e(desc)}</p></div>
</div>
</div>
</div>
<script type="text/javascript">
$(document).ready(function(){{
  $("#jquery_jplayer_1").jPlayer({{
    ready: function () {{
      $(this).jPlayer("setMedia", {{ m4a: "{media}" }});
    }},
    cssSelectorAncestor: "#jp_container_1",
    swfPath: "/js",
    supplied: "m4a",
    useStateClassSkin: true,
    autoBlur: false,
    smoothPlayBar: true,
    keyEnabled: true,
    remainingDuration: true,
    toggleDuration: true
  }});
}});
</script>
</body>
</html>
"""

    def _soundgasm_profile(self, recs: list[dict]) -> str:
        user = recs[0]["user"]
        blocks = []
        for r in recs:
            url = f"https://soundgasm.net/u/{r['user']}/{r['slug']}"
            blocks.append(
                f'<div class="sound-details"><a href="{_e(url)}">{_e(r["title"])}</a>'
                f'<span class="soundDescription">{_e(r["description"].splitlines()[0] if r["description"] else "")}</span>'
                f' <span class="playCount">Play Count: {r["play_count"]}</span></div>'
            )
        return (
            f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{_e(user)} - Soundgasm</title></head>\n'
            f'<body>\n<div id="container">\n<h1>{_e(user)}</h1>\n'
            + "\n".join(blocks)
            + "\n</div>\n</body>\n</html>\n"
        )

    def _soundgasm_media(self, req: Request) -> Response:
        m = re.fullmatch(r"/sounds/([0-9a-f]{40})\.m4a", req.path)
        if not m or m.group(1) not in self._sha1_index:
            return _not_found_html()
        return self._serve_file(req, "soundgasm", m.group(1), "m4a")

    # -- whyp.it -------------------------------------------------------------------------------------------
    def _whyp_visible(self, tid: int, token: str | None) -> dict | None:
        track = self.corpus.whypit.get(tid)
        if track is None:
            return None
        if not track["public"] and token != track["token"]:
            return None
        return track

    def _sign(self, name: str, expires: int) -> str:
        return hmac.new(self._secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def signed_cdn_url(self, name: str, ttl_s: float | None = None) -> str:
        expires = int(time.time() + (self.signed_url_ttl_s if ttl_s is None else ttl_s))
        return f"https://cdn.whyp.it/{name}?token={self._sign(name, expires)}&expires={expires}"

    def _track_json(self, t: dict) -> dict:
        lossy = self.signed_cdn_url(f"{t['lossy_uuid']}.mp3")
        lossless = self.signed_cdn_url(f"{t['lossless_uuid']}.flac") if t["lossless_uuid"] else None
        duration = self._durations.get(f"whypit_lossy:{t['lossy_uuid']}", t["duration"])
        return {
            "id": t["id"],
            "slug": t["slug"],
            "title": t["title"],
            "description": t["description"],
            "duration": float(duration),
            "created_at": t["created_at"],
            "public": t["public"],
            "token": t["token"],
            "allow_downloads": t["allow_downloads"],
            "lossy_url": lossy,
            "lossless_url": lossless,
            "artwork_url": f"https://cdn.whyp.it/artwork/{t['artwork_uuid']}.jpg"
            if t["artwork_uuid"]
            else None,
            "user": dict(t["user"]),
        }

    def _whyp_api(self, req: Request) -> Response:
        headers = [("Access-Control-Allow-Origin", "https://whyp.it")]
        m = re.fullmatch(r"/api/tracks/(\d+)/?", req.path)
        if m:
            track = self._whyp_visible(int(m.group(1)), req.q("token"))
            if track is None:
                return _json({"message": "Not found"}, 404, headers)
            return _json({"track": self._track_json(track)}, 200, headers)
        m = re.fullmatch(r"/api/users/(\d+)/tracks/?", req.path)
        if m:
            uid = int(m.group(1))
            tracks = [t for t in self.corpus.whypit.values() if t["user"]["id"] == uid]
            if not tracks:
                return _json({"message": "Not found"}, 404, headers)
            public = sorted(
                (t for t in tracks if t["public"]), key=lambda t: (t["created_at"], t["id"]), reverse=True
            )
            cursor = req.q("cursor")
            offset = 0
            if cursor:
                try:
                    offset = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
                except Exception:
                    return _json({"message": "Invalid cursor"}, 400, headers)
            page = public[offset : offset + WHYP_PAGE_SIZE]
            nxt = offset + WHYP_PAGE_SIZE
            next_cursor = (
                base64.urlsafe_b64encode(str(nxt).encode()).decode().rstrip("=")
                if nxt < len(public)
                else None
            )
            return _json(
                {"tracks": [self._track_json(t) for t in page], "next_cursor": next_cursor}, 200, headers
            )
        return _json({"message": "Not found"}, 404, headers)

    def _whyp_web(self, req: Request) -> Response:
        m = re.fullmatch(r"/tracks/(\d+)(?:/([-A-Za-z0-9_]+))?/?", req.path)
        if not m:
            if req.path == "/":
                return _html("<!DOCTYPE html><html><head><title>Whyp</title></head><body></body></html>")
            return _not_found_html()
        track = self._whyp_visible(int(m.group(1)), req.q("token"))
        if track is None:
            return _not_found_html()
        url = f"https://whyp.it/tracks/{track['id']}/{track['slug']}"
        if not track["public"]:
            url += f"?token={track['token']}"
        image = f"https://cdn.whyp.it/artwork/{track['artwork_uuid']}.jpg" if track["artwork_uuid"] else ""
        return _html(
            f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(track["title"])} by {_e(track["user"]["username"])} - Whyp</title>
<meta property="og:title" content="{_e(track["title"])}">
<meta property="og:description" content="{_e(track["description"])}">
<meta property="og:url" content="{_e(url)}">
<meta property="og:type" content="music.song">
{f'<meta property="og:image" content="{_e(image)}">' if image else ""}
</head>
<body><div id="__nuxt"></div></body>
</html>
"""
        )

    def _whyp_cdn(self, req: Request) -> Response:
        m = re.fullmatch(r"/artwork/([0-9a-f-]{36})\.jpg", req.path)
        if m:
            image_id = self.corpus.images.get(f"https://cdn.whyp.it/artwork/{m.group(1)}.jpg")
            if image_id is None:
                return Response(404, b"Not Found")
            return self._serve_file(req, "image", image_id, "jpg")
        m = re.fullmatch(r"/([0-9a-f-]{36}\.(?:mp3|flac))", req.path)
        if not m or m.group(1) not in self._cdn_index:
            return Response(404, b"Not Found")
        name = m.group(1)
        referer = req.headers.get("referer", "")
        if not (referer.startswith("https://whyp.it/") or referer.startswith("https://www.whyp.it/")):
            return Response(403, b"Forbidden")
        token, expires = req.q("token"), req.q("expires")
        try:
            exp = int(expires or "")
        except ValueError:
            return Response(403, b"Forbidden")
        if not token or not hmac.compare_digest(token, self._sign(name, exp)) or exp < time.time():
            return Response(403, b"Forbidden")
        kind, key, _tid = self._cdn_index[name]
        return self._serve_file(req, kind, key, name.rsplit(".", 1)[1])

    # -- hotaudio -----------------------------------------------------------------------------------------
    def _hotaudio(self, req: Request) -> Response:
        m = re.fullmatch(r"/u/([0-9A-Za-z_-]+)/([0-9A-Za-z_-]+)/?", req.path)
        if m:
            key = self._ha_index.get(f"{m.group(1)}/{m.group(2)}".lower())
            if key is None:
                return _not_found_html()
            return _html(self._hotaudio_page(self.corpus.hotaudio[key]))
        m = re.fullmatch(r"/u/([0-9A-Za-z_-]+)/?", req.path)
        if m:
            recs = [r for r in self.corpus.hotaudio.values() if r["user"].lower() == m.group(1).lower()]
            if not recs:
                return _not_found_html()
            user = recs[0]["user"]
            items = "\n".join(
                f'<li class="py-2"><a href="/u/{_e(r["user"])}/{_e(r["slug"])}">{_e(r["title"])}</a></li>'
                for r in recs
            )
            return _html(
                f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(user)} - HotAudio</title></head>'
                f'<body><main><h1 class="text-2xl">{_e(user)}</h1><ul>\n{items}\n</ul></main></body></html>'
            )
        return _not_found_html()

    def _hotaudio_page(self, rec: dict) -> str:
        rng = random.Random(f"{self.corpus.seed}:hotaudio-blob:{rec['user']}/{rec['slug']}")
        blob = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(384))).decode()
        nonce = base64.b64encode(struct.pack(">QI", rng.getrandbits(64), rng.getrandbits(32))).decode()
        rows = []
        if rec["script_writer"]:
            w = rec["script_writer"]
            rows.append(
                f'<div class="tagm"><span class="font-bold">script</span> <a href="/u/{_e(w)}">{_e(w)}</a></div>'
            )
        for partner in rec.get("cast") or []:
            rows.append(
                f'<div class="tagm"><span class="font-bold">with</span> <a href="/u/{_e(partner)}">{_e(partner)}</a></div>'
            )
        rows.append(
            f'<div class="tagm"><span class="font-bold">length</span> <span>{_e(rec["length_text"])}</span></div>'
        )
        tags = "".join(
            f'<a class="tag" href="/tag/{quote(t)}"><span class="tag">{_e(t)}</span></a>' for t in rec["tags"]
        )
        desc = rec["description"]
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(rec["title"])} - HotAudio</title>
<meta property="og:title" content="{_e(rec["title"])}">
<meta property="og:description" content="{_e(desc)}">
<meta property="og:site_name" content="HotAudio">
</head>
<body>
<main>
<div id="postbody" class="container">
<div class="flex"><a href="/u/{_e(rec["user"])}" class="author">{_e(rec["user"])}</a></div>
<span class="text-2xl font-bold">{_e(rec["title"])}</span>
<div class="meta">
{chr(10).join(rows)}
</div>
<div id="player" class="ha-player" data-state="encrypted"></div>
<div class="prose prose-ha">{"".join(f"<p>{_e(line)}</p>" for line in desc.split(chr(10)) if line.strip())}</div>
<div class="tags">{tags}</div>
</div>
</main>
<script>window.__HA_STATE__={{"v":3,"n":"{nonce}","s":"{blob}"}};</script>
</body>
</html>
"""

    # -- scriptbin -----------------------------------------------------------------------------------------
    def _scriptbin(self, req: Request) -> Response:
        path = req.path
        if path == "/agree-terms":
            next_path = req.q("next") or "/"
            if req.method == "POST":
                form = parse_qs(req.body.decode("utf-8", "replace"))
                next_path = (form.get("next") or [next_path])[0]
            if not next_path.startswith("/") or next_path.startswith("//"):
                next_path = "/"
            if req.method == "POST" or req.q("agree") == "1":
                return _redirect(f"https://scriptbin.works{next_path}", 302, [("Set-Cookie", "ta=y; Path=/")])
            return _html(
                f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Terms - scriptbin</title></head>
<body><main><h1>Before you continue</h1>
<p>scriptbin.works hosts scripts written for adults (18+). By continuing you confirm you are an adult and agree to the terms of use.</p>
<form method="post" action="/agree-terms"><input type="hidden" name="next" value="{_e(next_path)}">
<button type="submit" name="agree" value="1">I agree</button></form>
</main></body></html>
"""
            )
        if path.startswith("/u/") or path.startswith("/s/"):
            if req.cookie("ta") != "y":
                target = req.raw_path
                return _redirect(f"https://scriptbin.works/agree-terms?next={quote(target, safe='')}")
            m = re.fullmatch(r"/s/([A-Za-z0-9]+)/?", path)
            if m:
                key = self._sb_codes.get(m.group(1))
                if key is None:
                    return _not_found_html()
                s = self.corpus.scripts[key]
                return _redirect(f"https://scriptbin.works/u/{s['username']}/{s['slug']}")
            m = re.fullmatch(r"/u/([0-9A-Za-z_-]+)\.json", path)
            if m:
                recs = [
                    s for s in self.corpus.scripts.values() if s["username"].lower() == m.group(1).lower()
                ]
                if not recs:
                    return _json({"error": "not found"}, 404)
                return _json([self._scriptbin_summary(s) for s in recs])
            m = re.fullmatch(r"/u/([0-9A-Za-z_-]+)/([0-9A-Za-z_-]+)/?", path)
            if m:
                key = self._sb_index.get(f"{m.group(1)}/{m.group(2)}".lower())
                if key is None:
                    return _not_found_html()
                return _html(self._scriptbin_page(self.corpus.scripts[key]))
            m = re.fullmatch(r"/u/([0-9A-Za-z_-]+)/?", path)
            if m:
                recs = [
                    s
                    for s in self.corpus.scripts.values()
                    if s["username"].lower() == m.group(1).lower() and s["public_listed"]
                ]
                if not recs:
                    return _not_found_html()
                items = "\n".join(
                    f'<li><a href="/u/{_e(s["username"])}/{_e(s["slug"])}">{_e(s["title"])}</a></li>'
                    for s in recs
                )
                return _html(
                    f"<!DOCTYPE html><html><head><title>{_e(recs[0]['username'])} - scriptbin</title></head><body><ul>\n{items}\n</ul></body></html>"
                )
            return _not_found_html()
        if path == "/":
            return _html(
                "<!DOCTYPE html><html><head><title>scriptbin</title></head><body><h1>scriptbin</h1></body></html>"
            )
        return _not_found_html()

    @staticmethod
    def _word_count(text: str) -> int:
        return len(text.split())

    def _scriptbin_summary(self, s: dict) -> dict:
        return {
            "username": s["username"],
            "slug": s["slug"],
            "link": f"https://scriptbin.works/u/{s['username']}/{s['slug']}",
            "titleAndTags": s["title"] + "".join(f" [{t}]" for t in s["tags"]),
            "metadata": {
                "publicListed": s["public_listed"],
                "audienceShort": s["audience"],
                "shortDescription": next((ln for ln in s["text"].splitlines()[2:] if ln.strip()), "")[:140],
                "textStats": {"wordCount": self._word_count(s["text"])},
            },
        }

    def _scriptbin_page(self, s: dict) -> str:
        words = self._word_count(s["text"])
        chars = len(s["text"])
        lines = []
        for line in s["text"].split("\n"):
            if line.strip():
                lines.append(f'<div class="line-raw">{_e(line)}</div>')
            else:
                lines.append('<div class="line-raw" data-isblank="yes"></div>')
        tags = "".join(f"<span>[{_e(t)}]</span>" for t in s["tags"])
        user = s["username"]
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(s["title"])} - scriptbin</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<nav class="breadcrumbs"><a href="/">scriptbin</a> &rsaquo; <a href="/u/{_e(user)}">{_e(user)}</a> &rsaquo; <span>{_e(s["slug"])}</span></nav>
<main class="script">
<h1 class="script-title"><span class="title-and-tags"><span>{_e(s["title"])}</span>{tags}</span></h1>
<div class="script-info">
<span class="script-audience">{_e(s["audience"])}</span>
<p>Performers: {_e(s["performers_text"])}<br>Listeners: {_e(s["listeners_text"])}</p>
<p>{words} words &middot; {chars} characters</p>
<p class="short-link">Short link: <a href="https://scriptbin.works/s/{_e(s["short_code"])}">scriptbin.works/s/{_e(s["short_code"])}</a></p>
</div>
<div class="script-text">
<div class="script-text-real">
{chr(10).join(lines)}
</div>
</div>
<div id="script-bits" data-readywordcount="{words}"></div>
</main>
</body>
</html>
"""

    # -- Patreon ---------------------------------------------------------------------------------------------
    def _patreon_bare(self, req: Request) -> Response:
        """patreon.com answers with a permanent redirect to www.patreon.com."""
        return _redirect(f"https://www.patreon.com{req.raw_path}", 301)

    def _patreon_sign(self, name: str, expires: int) -> str:
        digest = hmac.new(self._patreon_secret, f"{name}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def patreon_media_url(self, rec: dict, ttl_s: float | None = None) -> str:
        """A signed media URL of a Patreon post's file, as the API hands it to a viewer."""
        expires = int(time.time() + (self.signed_url_ttl_s if ttl_s is None else ttl_s))
        name = f"{rec['id']}/{rec['file_key']}"
        ext = rec["media"][2]
        return (
            f"https://c10.patreonusercontent.com/4/patreon-media/p/post/{name}/eyJhIjoxLCJwIjoxfQ%3D%3D/1.{ext}"
            f"?token-time={expires}&token-hash={self._patreon_sign(name, expires)}"
        )

    def patreon_can_view(self, rec: dict, req: Request) -> bool:
        if rec["is_public"]:
            return True
        session = req.cookie("session_id")
        expected = self.corpus.patreon_session_id
        return bool(session and expected) and hmac.compare_digest(session, expected)

    def _patreon_post_json(self, rec: dict, can_view: bool) -> dict:
        c = rec["creator"]
        slug_path = f"/posts/{rec['slug']}-{rec['id']}"
        post_file = None
        if can_view and rec["media"]:
            post_file = {"name": rec["file_name"], "url": self.patreon_media_url(rec)}
        return {
            "data": {
                "id": rec["id"],
                "type": "post",
                "attributes": {
                    "title": rec["title"],
                    "content": rec["content_html"] if can_view else None,
                    "teaser_text": rec["teaser_text"],
                    "published_at": rec["published_at"],
                    "edited_at": rec["published_at"],
                    "post_type": rec["post_type"],
                    "url": f"https://www.patreon.com{slug_path}",
                    "patreon_url": slug_path,
                    "current_user_can_view": can_view,
                    "current_user_can_comment": can_view,
                    "is_public": rec["is_public"],
                    "is_paid": False,
                    "min_cents_pledged_to_view": rec["min_cents_pledged_to_view"],
                    "post_file": post_file,
                    "image": None,
                    "thumbnail": None,
                    "embed": None,
                    "like_count": rec["like_count"],
                    "comment_count": rec["comment_count"],
                    "was_posted_by_campaign_owner": True,
                },
                "relationships": {
                    "campaign": {
                        "data": {"id": c["campaign_id"], "type": "campaign"},
                        "links": {"related": f"https://www.patreon.com/api/campaigns/{c['campaign_id']}"},
                    },
                    "user": {
                        "data": {"id": c["user_id"], "type": "user"},
                        "links": {"related": f"https://www.patreon.com/api/user/{c['user_id']}"},
                    },
                },
            },
            "included": [
                {
                    "id": c["campaign_id"],
                    "type": "campaign",
                    "attributes": {
                        "name": c["name"],
                        "url": f"https://www.patreon.com/{c['vanity']}",
                        "is_nsfw": True,
                        "creation_name": "ASMR audio",
                        "pay_per_name": "month",
                    },
                },
                {
                    "id": c["user_id"],
                    "type": "user",
                    "attributes": {
                        "full_name": c["name"],
                        "vanity": c["vanity"],
                        "url": f"https://www.patreon.com/{c['vanity']}",
                    },
                },
            ],
            "links": {"self": f"https://www.patreon.com/api/posts/{rec['id']}"},
        }

    @staticmethod
    def _patreon_error(status: int, detail: str) -> Response:
        body = {
            "errors": [
                {
                    "code": 3 if status == 404 else 1,
                    "code_name": "ResourceMissing" if status == 404 else _reason(status),
                    "detail": detail,
                    "id": secrets.token_hex(16),
                    "status": str(status),
                    "title": _reason(status),
                }
            ]
        }
        resp = _json(body, status)
        resp.content_type = "application/vnd.api+json"
        return resp

    def _patreon(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return self._patreon_error(405, "method not allowed")
        m = re.fullmatch(r"/api/posts/(\d+)/?", req.path)
        if m:
            rec = self.corpus.patreon.get(m.group(1))
            if rec is None:
                return self._patreon_error(404, "The post you requested could not be found.")
            resp = _json(self._patreon_post_json(rec, self.patreon_can_view(rec, req)))
            resp.content_type = "application/vnd.api+json"
            return resp
        if req.path.rstrip("/") == "/api/posts":
            return self._patreon_feed(req)
        m = re.fullmatch(r"/([A-Za-z0-9_]+)/?", req.path)
        if m and m.group(1).lower() not in ("api", "posts", "login", "home"):
            creators = {r["creator"]["vanity"].lower(): r["creator"] for r in self.corpus.patreon.values()}
            c = creators.get(m.group(1).lower())
            if c is None:
                return _not_found_html()
            bootstrap = {"campaign": {"data": {"id": c["campaign_id"], "type": "campaign"},
                                      "links": {"self": f"https://www.patreon.com/api/campaigns/{c['campaign_id']}"}}}
            return _html(f"""<!DOCTYPE html><html><head><title>{_e(c["name"])} | Patreon</title></head><body>
<script>window.patreon = {{"bootstrap": {json.dumps(bootstrap)}}};</script></body></html>
""")
        m = re.fullmatch(r"/posts/(?:[A-Za-z0-9_-]*-)?(\d+)/?", req.path)
        if m:
            rec = self.corpus.patreon.get(m.group(1))
            if rec is None:
                return _not_found_html()
            can_view = self.patreon_can_view(rec, req)
            body = (
                rec["content_html"] if can_view else f"<p>{_e(rec['teaser_text'])}</p><p>Join to unlock</p>"
            )
            return _html(
                f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(rec["title"])} | Patreon</title>
<meta property="og:title" content="{_e(rec["title"])}">
<meta property="og:url" content="https://www.patreon.com/posts/{_e(rec["slug"])}-{rec["id"]}">
</head><body><div id="renderPageContentWrapper"><h1>{_e(rec["title"])}</h1>{body}</div></body></html>
"""
            )
        return _not_found_html()

    PATREON_FEED_PAGE = 2

    def _patreon_feed(self, req: Request) -> Response:
        """``/api/posts?filter[campaign_id]=ID&sort=-published_at&page[cursor]=N``: a creator's posts,
        newest first, a page at a time with ``links.next`` (as Patreon's web client reads them)."""
        cid = req.q("filter[campaign_id]")
        if not cid:
            return self._patreon_error(400, "filter[campaign_id] is required")
        recs = sorted((r for r in self.corpus.patreon.values() if r["creator"]["campaign_id"] == cid),
                      key=lambda r: (r["published_at"], r["id"]), reverse=True)
        try:
            start = int(req.q("page[cursor]") or 0)
        except ValueError:
            return self._patreon_error(400, "bad cursor")
        page = recs[start:start + self.PATREON_FEED_PAGE]
        data, included = [], {}
        for rec in page:
            doc = self._patreon_post_json(rec, self.patreon_can_view(rec, req))
            data.append(doc["data"])
            for inc in doc["included"]:
                included[(inc["type"], inc["id"])] = inc
        body = {"data": data, "included": list(included.values()), "meta": {"pagination": {"total": len(recs)}}}
        if start + self.PATREON_FEED_PAGE < len(recs):
            body["links"] = {"next": f"https://www.patreon.com/api/posts?filter[campaign_id]={cid}&sort=-published_at"
                                     f"&page[cursor]={start + self.PATREON_FEED_PAGE}"}
        resp = _json(body)
        resp.content_type = "application/vnd.api+json"
        return resp

    def _patreon_cdn(self, req: Request) -> Response:
        m = re.fullmatch(
            r"/4/patreon-media/p/post/(\d+)/([0-9a-f]{32})/[A-Za-z0-9=_-]+/1\.(m4a|mp3)", req.path
        )
        if not m:
            return Response(404, b"Not Found")
        rec = self.corpus.patreon.get(m.group(1))
        if rec is None or not rec["media"] or rec["file_key"] != m.group(2) or rec["media"][2] != m.group(3):
            return Response(404, b"Not Found")
        token, expires = req.q("token-hash"), req.q("token-time")
        try:
            exp = int(expires or "")
        except ValueError:
            return Response(403, b"Forbidden")
        name = f"{rec['id']}/{rec['file_key']}"
        if not token or not hmac.compare_digest(token, self._patreon_sign(name, exp)) or exp < time.time():
            return Response(403, b"Forbidden")
        kind, key, ext = rec["media"]
        return self._serve_file(req, kind, key, ext)

    # -- images ----------------------------------------------------------------------------------------------
    def _image_host(self, req: Request) -> Response:
        m = re.fullmatch(r"/([A-Za-z0-9]+)\.(png|jpg)", req.path)
        if not m:
            return Response(404, b"Not Found")
        image_id = self.corpus.images.get(f"https://{req.host}{req.path}")
        if image_id is None:
            return Response(404, b"Not Found")
        return self._serve_file(req, "image", image_id, m.group(2))


# ---------------------------------------------------------------------------
# HTTP handler
# ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "replica"
    # headers and body go out as two writes: without TCP_NODELAY each answer waits ~40 ms for a delayed ACK
    disable_nagle_algorithm = True

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client went away (or a reset fault ended it): nothing to answer
    sys_version = ""
    replica: ReplicaServer  # set on the subclass made by ReplicaServer.start

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def _parse(self, method: str) -> Request:
        raw = self.path
        if raw.startswith("http://") or raw.startswith("https://"):
            parts = urlsplit(raw)
            raw = parts.path + (f"?{parts.query}" if parts.query else "")
        target, _, query = raw.partition("?")
        segs = target.split("/", 2)  # "", host, rest
        host = segs[1].lower() if len(segs) > 1 else ""
        rest = "/" + segs[2] if len(segs) > 2 else "/"
        rest = re.sub(r"/{2,}", "/", rest)  # e.g. PRAW joins "<base>/" + "/api/v1/access_token"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(
            method=method,
            host=host,
            path=unquote(rest),
            raw_path=rest + (f"?{query}" if query else ""),
            query=parse_qs(query, keep_blank_values=True),
            headers=headers,
            body=body,
        )

    def _handle(self, method: str) -> None:
        self.replica._begin_request()
        try:
            self._answer(method)
        finally:
            self.replica._end_request()

    def _answer(self, method: str) -> None:
        replica = self.replica
        arrived = time.monotonic()
        try:
            req = self._parse(method)
        except Exception:
            self.send_error(400)
            return
        real_method = "GET" if method == "HEAD" else method
        req.method = real_method
        fault = replica._take_fault(req.host, req.raw_path)
        record_headers = dict(self.headers.items())
        if fault is not None and fault.kind == "reset":
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            replica._log(RequestRecord(method, req.host, req.raw_path, record_headers, 0, 0, arrived))
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.retry_after or 1.0)
        if fault is not None and fault.kind == "status":
            extra = [("Retry-After", _fmt_retry(fault.retry_after))] if fault.retry_after is not None else []
            if req.host.endswith("reddit.com"):
                extra += replica._ratelimit_headers()
            resp = Response(
                fault.status,
                json.dumps({"message": _reason(fault.status), "error": fault.status}).encode(),
                extra,
                "application/json; charset=utf-8",
            )
        elif fault is not None and fault.kind == "expire":
            resp = Response(403, b"Forbidden: expired")
        else:
            try:
                resp = replica.dispatch(req)
            except Exception as exc:  # a bug in the replica must still answer
                resp = Response(500, f"replica error: {exc!r}\n".encode())
        truncate = fault is not None and fault.kind == "truncate"
        stall = (fault.retry_after or 1.0) if fault is not None and fault.kind == "stall" else None
        self._send(method, req, resp, truncate, record_headers, arrived, stall)

    def _send(self, method: str, req: Request, resp: Response, truncate: bool, record_headers: dict,
              arrived: float = 0.0, stall: float | None = None) -> None:
        body = resp.body
        sent = 0
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in resp.header_list():
                self.send_header(k, v)
            if truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            if method != "HEAD":
                if stall is not None:  # half the body, then silence (a read timeout), then a cut
                    chunk = body[: len(body) // 2]
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    sent = len(chunk)
                    time.sleep(stall)
                    self.close_connection = True
                elif truncate:
                    chunk = body[: len(body) // 2]
                    self.wfile.write(chunk)
                    sent = len(chunk)
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(body)
                    sent = len(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        self.replica._log(RequestRecord(method, req.host, req.raw_path, record_headers, resp.status, sent, arrived))


def _fmt_retry(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the audio_assets outside-world replica in the foreground."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--media-dir", default="/tmp/audio_assets_replica_media")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--signed-url-ttl", type=float, default=300.0)
    args = parser.parse_args(argv)
    corpus = build_corpus(args.seed) if args.seed is not None else build_corpus()
    server = ReplicaServer(
        corpus, Path(args.media_dir), host=args.host, port=args.port, signed_url_ttl_s=args.signed_url_ttl
    )
    stop = threading.Event()

    def _on_signal(signum, frame) -> None:
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        print(f"AUDIO_ASSETS_HOST_MAP={server.host_map_env()}", flush=True)
        print(
            f"replica serving {len(corpus.releases)} releases at {server.base_url}",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
