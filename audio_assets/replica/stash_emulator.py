"""A local emulator of the Stash (stashapp/stash) GraphQL server.

It serves the subset of Stash's schema that the project uses (see
``stash_emulator_schema.graphqls`` beside this file) over HTTP at ``/graphql`` and behaves like
the real server where the project can tell the difference:

* ``ApiKey`` header (``apikey`` query parameter as fallback) authentication with 401 answers;
* parse and validation errors answer HTTP 422 with ``errors`` (like gqlgen), resolver errors
  answer HTTP 200 with ``errors`` and partial ``data``;
* ``metadataScan`` runs as a background job (READY -> RUNNING -> FINISHED/FAILED) that walks the
  library for files with video extensions, fingerprints them (oshash + md5), probes them with
  ffmpeg and creates one scene per new file; files are matched to scenes by oshash/md5 only;
* a job graveyard that keeps only the last 10 finished jobs;
* string criteria use SQL ``LIKE`` semantics (ASCII case-insensitive, ``_`` and ``%`` are
  wildcards), INCLUDES/EXCLUDES split the value into words like Stash does;
* only one of AND/OR/NOT per filter level;
* partial updates where list fields replace the old list.

With ``state_file`` (``--state-file``) the entity state (scenes with their files, performers,
tags, studios, groups, folders and the id counters) is kept in a JSON file like Stash keeps its
database: it is loaded at start() and saved atomically after every request that ran a mutation,
after every scan job and at stop(). Jobs are not persisted (Stash forgets them on restart too).

Run ``python -m audio_assets.replica.stash_emulator --library DIR --port 9999`` to serve in the
foreground.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import queue
import random
import re
import signal
import string
import struct
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationType,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.utilities import get_operation_ast

from audio_assets.ffmpeg_tools import FfmpegError, ffmpeg_exe, parse_ffmpeg_info

log = logging.getLogger(__name__)
#: files fingerprinted and probed at once by a scan job
SCAN_THREADS = 2

SCHEMA_PATH = Path(__file__).with_name("stash_emulator_schema.graphqls")

STASH_VERSION = "v0.30.1"
VIDEO_EXTENSIONS = (
    "m4v",
    "mp4",
    "mov",
    "wmv",
    "avi",
    "mpg",
    "mpeg",
    "rmvb",
    "rm",
    "flv",
    "asf",
    "mkv",
    "webm",
)
GRAVEYARD_SIZE = 10
OSHASH_CHUNK = 64 * 1024

_ENTITY_KINDS = ("scenes", "performers", "tags", "studios", "groups")
_PERSISTED_STORES = (*_ENTITY_KINDS, "folders")
STATE_FORMAT = 1


class StashError(Exception):
    """An error a resolver reports; it becomes a GraphQL error (HTTP 200)."""


# --------------------------------------------------------------------------- helpers


def _now() -> str:
    """RFC3339 timestamp in local time with offset, like Go's time.Time marshalling."""
    return dt.datetime.now().astimezone().isoformat()


def _ts_from_epoch(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat()


def oshash(path: str | os.PathLike) -> str:
    """OpenSubtitles hash as Stash computes it: file size plus the 64-bit little-endian words
    of the first and last 64 KiB, modulo 2**64, as 16 hex digits."""
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError("cannot calculate oshash for empty file")
    chunk = min(OSHASH_CHUNK, size)
    with open(path, "rb") as fh:
        head = fh.read(chunk)
        fh.seek(size - chunk)
        tail = fh.read(chunk)
    buf = head + tail
    n = len(buf) // 8
    total = size + sum(struct.unpack(f"<{n}Q", buf[: n * 8]))
    return f"{total & 0xFFFFFFFFFFFFFFFF:016x}"


def md5sum(path: str | os.PathLike) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_FPS = re.compile(r"Stream #\d+:\d+.*?: Video: .*?(\d+(?:\.\d+)?) fps")


def _probe_video(path: str) -> dict[str, Any]:
    """Probe a file with ffmpeg -i and return the VideoFile media fields (Stash's view: an
    attached picture is not a video stream)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path], capture_output=True, timeout=120
    )
    text = proc.stderr.decode("utf-8", "replace")
    info = parse_ffmpeg_info(text)
    if info.duration_s is None and info.audio_codec is None and info.video_codec is None:
        raise FfmpegError(f"not a readable media file: {path}")
    frame_rate = 0.0
    for line in text.splitlines():
        if "Video:" in line and "attached pic" not in line:
            m = _FPS.search(line)
            if m:
                frame_rate = float(m.group(1))
            break
    real_video = info.has_real_video
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    fmt = {"mkv": "matroska", "mpg": "mpeg", "rm": "rmvb"}.get(ext, ext)
    return {
        "format": fmt,
        "duration": round(info.duration_s or 0.0, 2),
        "video_codec": info.video_codec if real_video else "",
        "audio_codec": info.audio_codec or "",
        "width": (info.width or 0) if real_video else 0,
        "height": (info.height or 0) if real_video else 0,
        "frame_rate": frame_rate if real_video else 0.0,
        "bit_rate": (info.bit_rate_kbps or 0) * 1000,
    }


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@functools.lru_cache(maxsize=4096)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern.translate(_ASCII_LOWER):
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def sql_like(value: str, pattern: str) -> bool:
    """SQLite LIKE without ESCAPE: ASCII case-insensitive, % any run, _ any one character."""
    return _like_regex(pattern).fullmatch(value.translate(_ASCII_LOWER)) is not None


def _search_words(value: str) -> tuple[list[str], bool]:
    """Stash's getStringSearchClause: a fully quoted value is one phrase, else whitespace words."""
    q = value.strip()
    trimmed = q.strip('"')
    if trimmed == q:
        return re.sub(r"\s+", " ", q).split(" "), False
    return [trimmed], True


def _natural_key(value: str | None) -> tuple:
    if value is None:
        return (0,)
    parts = []
    for chunk in re.split(r"(\d+)", value.translate(_ASCII_LOWER)):
        if chunk.isdigit():
            parts.append((0, int(chunk), ""))
        elif chunk:
            parts.append((1, 0, chunk))
    return (1, tuple(parts))


_DATE_FORMATS = (
    ("%Y-%m-%d", re.compile(r"\d{4}-\d{2}-\d{2}")),
    ("%Y-%m", re.compile(r"\d{4}-\d{2}")),
    ("%Y", re.compile(r"\d{4}")),
)


def _parse_date(value: str | None) -> str | None:
    """Stash accepts YYYY, YYYY-MM and YYYY-MM-DD; an empty string clears the date."""
    if value is None or value.strip() == "":
        return None
    v = value.strip()
    for fmt, rx in _DATE_FORMATS:
        if rx.fullmatch(v):
            try:
                dt.datetime.strptime(v, fmt)
            except ValueError:
                break
            return v
    raise StashError(f"could not parse date '{value}': expected YYYY, YYYY-MM or YYYY-MM-DD")


def _parse_timestamp(value: str) -> dt.datetime:
    m = re.fullmatch(r"\s*([<>])\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
    now = dt.datetime.now().astimezone()
    if m:
        secs = float(m.group(2)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(3)]
        delta = dt.timedelta(seconds=secs)
        return now - delta if m.group(1) == "<" else now + delta
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise StashError(f"invalid timestamp '{value}'") from exc
    return t if t.tzinfo else t.astimezone()


def _process_image(value: str | None, what: str) -> dict[str, str] | None:
    """Stash's ProcessImageInput: an http(s) URL (fetched by the real server; stored as is here)
    or a base64 string, optionally as a data URL."""
    if value is None or value == "":
        return None
    if re.match(r"^https?://", value, re.IGNORECASE):
        return {"source": value, "sha256": hashlib.sha256(value.encode()).hexdigest()}
    m = re.match(r"^data:.+/(.+);base64,(.*)$", value, re.DOTALL)
    payload = m.group(2) if m else value
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StashError(f"processing {what}: invalid base64 image data") from exc
    if not data:
        raise StashError(f"processing {what}: empty image")
    return {"source": "base64", "sha256": hashlib.sha256(data).hexdigest(), "size": str(len(data))}


def _atoi(value: Any, what: str = "id") -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise StashError(f'converting {what}: strconv.Atoi: parsing "{value}": invalid syntax') from exc


def _dedupe(ids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(str(i), None)
    return list(seen)


def _within(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


# --------------------------------------------------------------------------- filter specs

# kind -> criterion name -> (criterion type, extractor of the row values of a record)
_Extractor = Callable[["StashEmulator", dict], list[Any]]


def _fp_values(kind: str) -> _Extractor:
    return lambda emu, s: [fp["value"] for f in s["files"] for fp in f["fingerprints"] if fp["type"] == kind]


def _col(name: str) -> _Extractor:
    return lambda emu, r: [r.get(name)]


_FILTER_SPECS: dict[str, dict[str, tuple[str, _Extractor]]] = {
    "scenes": {
        "id": ("int", lambda emu, s: [int(s["id"])]),
        "title": ("str", _col("title")),
        "code": ("str", _col("code")),
        "details": ("str", _col("details")),
        "director": ("str", _col("director")),
        "oshash": ("str", _fp_values("oshash")),
        "checksum": ("str", _fp_values("md5")),
        "path": ("path", lambda emu, s: [f["path"] for f in s["files"]]),
        "organized": ("bool", _col("organized")),
    },
    "performers": {
        "name": ("str", _col("name")),
        "disambiguation": ("str", _col("disambiguation")),
        "details": ("str", _col("details")),
        "aliases": ("str", lambda emu, p: list(p["alias_list"])),
    },
    "tags": {
        "name": ("str", _col("name")),
        "aliases": ("str", lambda emu, t: list(t["aliases"])),
    },
    "studios": {
        "name": ("str", _col("name")),
        "details": ("str", _col("details")),
        "aliases": ("str", lambda emu, s: list(s["aliases"])),
    },
    "groups": {
        "name": ("str", _col("name")),
        "director": ("str", _col("director")),
        "synopsis": ("str", _col("synopsis")),
    },
}

# columns searched by FindFilterType.q
_SEARCH_COLUMNS: dict[str, Callable[[dict], list[str | None]]] = {
    "scenes": lambda s: (
        [s.get("title"), s.get("details"), s.get("code")]
        + [f["path"] for f in s["files"]]
        + [fp["value"] for f in s["files"] for fp in f["fingerprints"]]
    ),
    "performers": lambda p: [p["name"], p.get("disambiguation"), *p["alias_list"]],
    "tags": lambda t: [t["name"], *t["aliases"]],
    "studios": lambda s: [s["name"], *s["aliases"]],
    "groups": lambda g: [g["name"], g.get("aliases")],
}

_STRING_MODIFIERS = {
    "EQUALS",
    "NOT_EQUALS",
    "INCLUDES",
    "EXCLUDES",
    "MATCHES_REGEX",
    "NOT_MATCHES_REGEX",
    "IS_NULL",
    "NOT_NULL",
}
_INT_MODIFIERS = {
    "EQUALS",
    "NOT_EQUALS",
    "GREATER_THAN",
    "LESS_THAN",
    "IS_NULL",
    "NOT_NULL",
    "BETWEEN",
    "NOT_BETWEEN",
}


def _string_row_match(v: str | None, modifier: str, value: str, is_path: bool) -> bool:
    if modifier == "EQUALS":
        return v is not None and sql_like(v, value)
    if modifier == "NOT_EQUALS":
        return v is not None and not sql_like(v, value)
    if modifier in ("INCLUDES", "EXCLUDES"):
        words, _phrase = _search_words(value)
        if modifier == "INCLUDES":
            return v is not None and any(sql_like(v, f"%{w}%") for w in words)
        if v is None:
            # path: NULL NOT LIKE -> NULL (false); plain column: same in SQL
            return False
        return all(not sql_like(v, f"%{w}%") for w in words)
    if modifier == "MATCHES_REGEX":
        return v is not None and re.search(value, v) is not None
    if modifier == "NOT_MATCHES_REGEX":
        return v is None or re.search(value, v) is None
    if modifier == "IS_NULL":
        return v is None or v.strip() == ""
    if modifier == "NOT_NULL":
        return v is not None and v.strip() != ""
    raise StashError("unsupported string filter modifier")


def _int_row_match(v: int | None, crit: dict) -> bool:
    modifier, value, value2 = crit["modifier"], crit["value"], crit.get("value2")
    if modifier == "IS_NULL":
        return v is None
    if modifier == "NOT_NULL":
        return v is not None
    if v is None:
        return False
    if modifier == "EQUALS":
        return v == value
    if modifier == "NOT_EQUALS":
        return v != value
    if modifier == "GREATER_THAN":
        return v > value
    if modifier == "LESS_THAN":
        return v < value
    lo, hi = value, value2 if value2 is not None else 0
    if modifier == "BETWEEN":
        return lo <= v <= hi
    if modifier == "NOT_BETWEEN":
        return v < lo or v > hi
    raise StashError(f"unsupported int filter modifier {modifier}")


def _parse_q(q: str) -> tuple[list[list[str]], list[str]]:
    """Stash's search string parsing: words (or "quoted phrases") must all match, `a or b`
    makes an any-set and a leading - excludes a word."""
    tokens = re.findall(r'"[^"]*"|\S+', q)
    any_sets: list[list[str]] = []
    must_not: list[str] = []
    pending_or = False
    for tok in tokens:
        quoted = tok.startswith('"') and tok.endswith('"') and len(tok) >= 2
        word = tok[1:-1] if quoted else tok
        if not quoted and word.lower() == "or" and any_sets:
            pending_or = True
            continue
        if not quoted and word.startswith("-") and len(word) > 1:
            must_not.append(word[1:])
            pending_or = False
            continue
        if not word:
            continue
        if pending_or:
            any_sets[-1].append(word)
        else:
            any_sets.append([word])
        pending_or = False
    return any_sets, must_not


# --------------------------------------------------------------------------- the emulator


class StashEmulator:
    """In-process Stash GraphQL server for tests and demos."""

    def __init__(
        self,
        library_root: Path | str,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        scan_seconds_per_file: float = 0.0,
        state_file: Path | str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.state_file: Path | None = Path(state_file) if state_file is not None else None
        self.library_roots: list[str] = []
        self.add_library_path(library_root)
        self.api_key = api_key or None
        self.host = host
        self.port = port
        self.scan_seconds_per_file = scan_seconds_per_file
        self.scan_mode = "normal"

        self.scenes: dict[str, dict] = {}
        self.performers: dict[str, dict] = {}
        self.tags: dict[str, dict] = {}
        self.studios: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self._folder_by_path: dict[str, str] = {}
        self._next_id: dict[str, int] = {}
        self._graveyard: deque[str] = deque()

        self.request_count = 0
        self.mutation_count = 0
        self.operations: list[tuple[str, str]] = []
        self._fail_http: list[int] = []
        self._fail_http_always: int | None = None
        self._fail_graphql: list[tuple[str, str | None]] = []
        #: called as ``after_mutation(mutation_count, operation_name)`` once a mutation has run and
        #: before it is answered (a test pauses, revokes the key or starts failing there)
        self.after_mutation: Callable[[int, str], None] | None = None

        self.started_at = _now()
        self.schema = self._build_schema()
        self._server: ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._job_queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Condition(self._lock)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/graphql"

    def start(self) -> StashEmulator:
        if self._server is not None:
            return self
        emulator = self

        class Handler(_Handler):
            emu = emulator

        self._stop.clear()
        self._job_queue = queue.Queue()
        with self._lock:
            if self.state_file is not None and self.state_file.exists():
                self._load_state(self.state_file)
            for jid in sorted((j["id"] for j in self.jobs.values() if j["status"] == "READY"), key=int):
                self._job_queue.put(jid)
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, name="stash-emulator-http", daemon=True
        )
        self._server_thread.start()
        self._worker = threading.Thread(target=self._job_worker, name="stash-emulator-jobs", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._job_queue.put(None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
        if self._worker is not None:
            self._worker.join(timeout=5)
        self._server = None
        self._server_thread = None
        self._worker = None
        self.save_state()

    def __enter__(self) -> StashEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_library_path(self, path: Path | str) -> None:
        p = os.path.abspath(os.fspath(path))
        with self._lock:
            if p not in self.library_roots:
                self.library_roots.append(p)

    # ------------------------------------------------------------------ test hooks

    def fail_next_requests(self, status: int = 500, count: int | None = 1) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (every request until
        clear_faults() when ``count`` is None), before authentication or execution."""
        with self._lock:
            if count is None:
                self._fail_http_always = status
            else:
                self._fail_http.extend([status] * count)

    def graphql_error_next(self, message: str = "injected error", count: int = 1,
                           operation: str | None = None) -> None:
        """Answer the next ``count`` requests (of ``operation`` only, when given) with a GraphQL
        error ``message`` (HTTP 200, no data), without executing them."""
        with self._lock:
            self._fail_graphql.extend([(message, operation)] * count)

    def clear_faults(self) -> None:
        """Back to a healthy server: no injected answers, scans run (a hung scan goes on)."""
        with self._lock:
            self._fail_http.clear()
            self._fail_http_always = None
            self._fail_graphql.clear()
            self.after_mutation = None
            self.scan_mode = "normal"

    def snapshot(self) -> dict:
        with self._lock:
            return copy.deepcopy({k: getattr(self, k) for k in _ENTITY_KINDS})

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no job is queued or running (True) or the timeout passes (False)."""
        with self._idle:
            return self._idle.wait_for(
                lambda: not any(j["status"] in ("READY", "RUNNING", "STOPPING") for j in self.jobs.values()),
                timeout=timeout,
            )

    # ------------------------------------------------------------------ persistence

    def save_state(self) -> None:
        """Write the entity state to ``state_file`` atomically (no-op without a state file).

        The snapshot and the write both happen under the lock so that a later save can never be
        overtaken by an earlier one."""
        if self.state_file is None:
            return
        with self._lock:
            state = {
                "format": STATE_FORMAT,
                **{store: getattr(self, store) for store in _PERSISTED_STORES},
                # job ids restart with the server like Stash's do: jobs are not persisted
                "next_id": {k: v for k, v in self._next_id.items() if k != "job"},
            }
            text = json.dumps(state, ensure_ascii=False, indent=1)
            target = self.state_file
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise

    def _save_state_logged(self, when: str) -> None:
        try:
            self.save_state()
        except Exception:
            log.exception("could not save the emulator state to %s after %s", self.state_file, when)

    def _load_state(self, path: Path) -> None:
        """Replace the entity state with the one saved in ``path`` (the caller holds the lock)."""
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the emulator state file {path}: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{path} is not an emulator state file (format {STATE_FORMAT})")
        for store in _PERSISTED_STORES:
            records = state.get(store) or {}
            if not isinstance(records, dict):
                raise ValueError(f"{path}: {store!r} must be an object")
            setattr(self, store, records)
        self._folder_by_path = {f["path"]: fid for fid, f in self.folders.items()}
        # the saved counters, but never below an id in use so that new ids keep increasing
        next_id = {k: int(v) for k, v in (state.get("next_id") or {}).items() if k != "job"}
        in_use = {
            "scene": self.scenes.keys(),
            "performer": self.performers.keys(),
            "tag": self.tags.keys(),
            "studio": self.studios.keys(),
            "group": self.groups.keys(),
            "folder": self.folders.keys(),
            "file": [f["id"] for s in self.scenes.values() for f in s["files"]],
        }
        for kind, ids in in_use.items():
            top = max((int(i) for i in ids), default=0)
            if top or kind in next_id:
                next_id[kind] = max(next_id.get(kind, 0), top)
        if "job" in self._next_id:
            next_id["job"] = self._next_id["job"]
        self._next_id = next_id

    # ------------------------------------------------------------------ ids

    def _new_id(self, kind: str) -> str:
        n = self._next_id.get(kind, 0) + 1
        self._next_id[kind] = n
        return str(n)

    # ------------------------------------------------------------------ HTTP

    def _handle_http(self, h: _Handler, method: str) -> None:
        parts = urlsplit(h.path)
        if parts.path.rstrip("/") != "/graphql":
            h.send_text(404, "404 page not found\n")
            return
        params = parse_qs(parts.query)
        with self._lock:
            self.request_count += 1

        query: Any = None
        variables: Any = None
        op_name: Any = None
        body_error: str | None = None
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"null")
                if not isinstance(body, dict):
                    raise ValueError("request body must be a JSON object")
                query, variables, op_name = (
                    body.get("query"),
                    body.get("variables"),
                    body.get("operationName"),
                )
            except ValueError as exc:
                body_error = f"json request body could not be decoded: {exc}"
        else:
            query = (params.get("query") or [None])[0]
            op_name = (params.get("operationName") or [None])[0]
            raw_vars = (params.get("variables") or [None])[0]
            if raw_vars:
                try:
                    variables = json.loads(raw_vars)
                except ValueError as exc:
                    body_error = f"variables could not be decoded: {exc}"

        document = None
        operation = None
        parse_error: GraphQLError | None = None
        if isinstance(query, str) and query.strip():
            try:
                document = parse(query)
                operation = get_operation_ast(document, op_name if isinstance(op_name, str) else None)
            except GraphQLError as exc:
                parse_error = exc
        op_type = operation.operation.value if operation is not None else ""
        with self._lock:
            self.operations.append(
                (op_type, op_name or (operation.name.value if operation and operation.name else ""))
            )
            injected_status = self._fail_http.pop(0) if self._fail_http else self._fail_http_always

        if injected_status is not None:
            h.send_text(injected_status, f"injected HTTP {injected_status}\n")
            return

        sent_key = h.headers.get("ApiKey") or (params.get("apikey") or [""])[0]
        if (sent_key and sent_key != self.api_key) or (self.api_key and not sent_key):
            h.send_text(401, "Unauthorized\n")
            return

        if body_error is not None:
            h.send_json(400, {"errors": [{"message": body_error}], "data": None})
            return
        with self._lock:
            injected_error = None
            for i, (message, only) in enumerate(self._fail_graphql):
                if only is None or only == op_name:
                    injected_error = message
                    del self._fail_graphql[i]
                    break
        if injected_error is not None:
            path = []
            if operation is not None and operation.selection_set.selections:
                first = operation.selection_set.selections[0]
                if hasattr(first, "name"):
                    path = [(first.alias or first.name).value]
            h.send_json(200, {"errors": [{"message": injected_error, "path": path}], "data": None})
            return

        if document is None:
            if parse_error is not None:
                err = parse_error.formatted
                err["extensions"] = {"code": "GRAPHQL_PARSE_FAILED"}
                h.send_json(422, {"errors": [err], "data": None})
            else:
                h.send_json(422, {"errors": [{"message": "no operation provided"}], "data": None})
            return
        if operation is None:
            msg = f"operation {op_name} not found" if op_name else "an operation name is required"
            h.send_json(422, {"errors": [{"message": msg}], "data": None})
            return
        if method == "GET" and operation.operation != OperationType.QUERY:
            h.send_json(
                406, {"errors": [{"message": "GET requests only allow query operations"}], "data": None}
            )
            return

        status, payload = self.execute_document(document, variables, op_name, operation)
        hook = self.after_mutation
        if hook is not None and operation.operation == OperationType.MUTATION and status == 200:
            hook(self.mutation_count, op_name or "")
        h.send_json(status, payload)

    def execute_document(self, document, variables, op_name, operation) -> tuple[int, dict]:
        errors = validate(self.schema, document)
        if errors:
            out = []
            for e in errors:
                f = e.formatted
                f["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED"}
                out.append(f)
            return 422, {"errors": out, "data": None}
        if variables is not None and not isinstance(variables, dict):
            return 422, {"errors": [{"message": "variables must be an object"}], "data": None}
        with self._lock:
            result = execute(
                self.schema,
                document,
                variable_values=variables,
                operation_name=op_name,
                context_value=self,
            )
            pre_execution = (
                result.data is None and bool(result.errors) and all(e.path is None for e in result.errors)
            )
            if operation.operation == OperationType.MUTATION and not pre_execution:
                self.mutation_count += 1
                self._save_state_logged("a mutation")
        if pre_execution:
            out = []
            for e in result.errors or []:
                f = e.formatted
                f["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED"}
                out.append(f)
            return 422, {"errors": out, "data": None}
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [{"message": e.message, "path": e.path} for e in result.errors]
        payload["data"] = result.data
        return 200, payload

    # ------------------------------------------------------------------ schema

    def _build_schema(self) -> GraphQLSchema:
        schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))

        def bind(type_name: str, field: str, fn: Callable) -> None:
            schema.get_type(type_name).fields[field].resolve = fn  # type: ignore[union-attr]

        q = {
            "findScene": self._q_find_scene,
            "findSceneByHash": self._q_find_scene_by_hash,
            "findScenes": self._q_find_scenes,
            "findPerformer": lambda _r, _i, id: self._get("performers", id),
            "findPerformers": self._finder("performers", "performers", "performer_filter"),
            "findStudio": lambda _r, _i, id: self._get("studios", id),
            "findStudios": self._finder("studios", "studios", "studio_filter"),
            "findGroup": lambda _r, _i, id: self._get("groups", id),
            "findGroups": self._finder("groups", "groups", "group_filter"),
            "findTag": lambda _r, _i, id: self._get("tags", id),
            "findTags": self._finder("tags", "tags", "tag_filter"),
            "configuration": self._q_configuration,
            "jobQueue": self._q_job_queue,
            "findJob": lambda _r, _i, input: self._get("jobs", input["id"]),
            "version": lambda _r, _i: {
                "version": STASH_VERSION,
                "hash": "emulator",
                "build_time": self.started_at,
            },
        }
        for name, fn in q.items():
            bind("Query", name, fn)
        m = {
            "sceneUpdate": self._m_scene_update,
            "bulkSceneUpdate": self._m_bulk_scene_update,
            "sceneDestroy": self._m_scene_destroy,
            "performerCreate": self._m_performer_create,
            "performerUpdate": self._m_performer_update,
            "performerDestroy": self._m_performer_destroy,
            "studioCreate": self._m_studio_create,
            "studioDestroy": self._m_studio_destroy,
            "groupCreate": self._m_group_create,
            "groupUpdate": self._m_group_update,
            "groupDestroy": self._m_group_destroy,
            "tagCreate": self._m_tag_create,
            "tagDestroy": self._m_tag_destroy,
            "metadataScan": self._m_metadata_scan,
        }
        for name, fn in m.items():
            bind("Mutation", name, fn)

        def related(store: str, key: str) -> Callable:
            def resolve(obj, _info, **_kw):
                table = getattr(self, store)
                return [table[i] for i in obj.get(key) or [] if i in table]

            return resolve

        def one(store: str, key: str) -> Callable:
            return lambda obj, _info, **_kw: getattr(self, store).get(obj.get(key)) if obj.get(key) else None

        bind("Scene", "studio", one("studios", "studio_id"))
        bind("Scene", "performers", related("performers", "performer_ids"))
        bind("Scene", "tags", related("tags", "tag_ids"))
        bind(
            "Scene",
            "groups",
            lambda s, _i: [
                {"group": self.groups[g["group_id"]], "scene_index": g.get("scene_index")}
                for g in s["groups"]
                if g["group_id"] in self.groups
            ],
        )
        bind("VideoFile", "parent_folder", lambda f, _i: self.folders[f["parent_folder_id"]])
        bind(
            "VideoFile",
            "fingerprint",
            lambda f, _i, type: next((fp["value"] for fp in f["fingerprints"] if fp["type"] == type), None),
        )
        bind("Folder", "parent_folder", one("folders", "parent_folder_id"))

        def scenes_with(key: str) -> Callable:
            def resolve(obj, _info, **_kw):
                return [s for s in self.scenes.values() if obj["id"] in (s.get(key) or [])]

            return resolve

        def count(fn: Callable) -> Callable:
            return lambda obj, info, **kw: len(fn(obj, info))

        bind("Performer", "tags", related("tags", "tag_ids"))
        bind("Performer", "scenes", scenes_with("performer_ids"))
        bind("Performer", "scene_count", count(scenes_with("performer_ids")))
        bind("Tag", "scene_count", count(scenes_with("tag_ids")))
        bind("Studio", "parent_studio", one("studios", "parent_id"))
        bind(
            "Studio",
            "child_studios",
            lambda st, _i: [s for s in self.studios.values() if s["parent_id"] == st["id"]],
        )
        bind("Studio", "tags", related("tags", "tag_ids"))
        bind(
            "Studio",
            "scene_count",
            lambda st, _i, **_k: sum(1 for s in self.scenes.values() if s["studio_id"] == st["id"]),
        )

        def group_scenes(g, _info, **_kw):
            return [s for s in self.scenes.values() if any(x["group_id"] == g["id"] for x in s["groups"])]

        bind("Group", "studio", one("studios", "studio_id"))
        bind("Group", "tags", related("tags", "tag_ids"))
        bind("Group", "scenes", group_scenes)
        bind("Group", "scene_count", count(group_scenes))
        return schema

    # ------------------------------------------------------------------ queries

    def _q_configuration(self, _root, _info) -> dict:
        return {
            "general": {
                "stashes": [
                    {"path": p, "excludeVideo": False, "excludeImage": False} for p in self.library_roots
                ],
                "databasePath": "/emulator/stash-go.sqlite",
                "generatedPath": "/emulator/generated",
                "videoExtensions": list(VIDEO_EXTENSIONS),
            }
        }

    def _q_job_queue(self, _root, _info) -> list[dict]:
        active = [j for j in self.jobs.values() if j["status"] in ("READY", "RUNNING", "STOPPING")]
        return sorted(active, key=lambda j: int(j["id"]))

    def _q_find_scene(self, _root, _info, id=None, checksum=None) -> dict | None:
        if id is not None:
            return self._get("scenes", id)
        if checksum is not None:
            return self._scene_by_fingerprint("md5", checksum)
        return None

    def _q_find_scene_by_hash(self, _root, _info, input) -> dict | None:
        if input.get("checksum"):
            s = self._scene_by_fingerprint("md5", input["checksum"])
            if s is not None:
                return s
        if input.get("oshash"):
            return self._scene_by_fingerprint("oshash", input["oshash"])
        return None

    def _scene_by_fingerprint(self, fp_type: str, value: str) -> dict | None:
        for s in self.scenes.values():
            for f in s["files"]:
                if any(fp["type"] == fp_type and fp["value"] == value for fp in f["fingerprints"]):
                    return s
        return None

    def _q_find_scenes(self, _root, _info, scene_filter=None, ids=None, filter=None) -> dict:
        all_matches, page = self._query("scenes", scene_filter, filter, ids)
        return {
            "count": len(all_matches),
            "duration": float(sum(s["files"][0]["duration"] for s in all_matches if s["files"])),
            "filesize": float(sum(s["files"][0]["size"] for s in all_matches if s["files"])),
            "scenes": page,
        }

    def _finder(self, kind: str, result_key: str, filter_arg: str) -> Callable:
        def resolve(_root, _info, filter=None, ids=None, **kwargs) -> dict:
            matches, page = self._query(kind, kwargs.get(filter_arg), filter, ids)
            return {"count": len(matches), result_key: page}

        return resolve

    # ------------------------------------------------------------------ filtering

    def _validate_filter(self, kind: str, flt: dict | None) -> None:
        if not flt:
            return
        ops = [k for k in ("AND", "OR", "NOT") if flt.get(k) is not None]
        if len(ops) > 1:
            raise StashError(
                f"cannot have {ops[0]} and {ops[1]} in the same filter: only one of AND, OR, NOT is allowed per filter level"
            )
        spec = _FILTER_SPECS[kind]
        for key, crit in flt.items():
            if key in ("AND", "OR", "NOT"):
                self._validate_filter(kind, crit)
                continue
            if crit is None or key not in spec:
                continue
            ctype = spec[key][0]
            if ctype in ("str", "path"):
                if crit["modifier"] not in _STRING_MODIFIERS:
                    raise StashError("unsupported string filter modifier")
                if crit["modifier"] in ("MATCHES_REGEX", "NOT_MATCHES_REGEX"):
                    try:
                        re.compile(crit["value"])
                    except re.error as exc:
                        raise StashError(f"error parsing regexp: {exc}") from exc
            elif ctype == "int" and crit["modifier"] not in _INT_MODIFIERS:
                raise StashError(f"unsupported int filter modifier {crit['modifier']}")

    def _match(self, kind: str, record: dict, flt: dict | None) -> bool:
        if not flt:
            return True
        spec = _FILTER_SPECS[kind]
        own = True
        has_own = False
        for key, crit in flt.items():
            if key in ("AND", "OR", "NOT") or crit is None or key not in spec:
                continue
            has_own = True
            ctype, extract = spec[key]
            rows = extract(self, record)
            if ctype == "bool":
                ok = rows[0] == crit
            elif ctype == "int":
                ok = any(_int_row_match(v, crit) for v in (rows or [None]))
            else:
                ok = any(
                    _string_row_match(v, crit["modifier"], crit["value"], ctype == "path")
                    for v in (rows or [None])
                )
            if not ok:
                own = False
                break
        for op in ("AND", "OR", "NOT"):
            sub = flt.get(op)
            if sub is None:
                continue
            sub_ok = self._match(kind, record, sub)
            if op == "AND":
                return own and sub_ok
            if op == "OR":
                return (own or sub_ok) if has_own else sub_ok
            return own and not sub_ok
        return own

    def _q_match(self, kind: str, record: dict, q: str) -> bool:
        any_sets, must_not = _parse_q(q)
        cols = [c for c in _SEARCH_COLUMNS[kind](record) if c is not None]
        for words in any_sets:
            if not any(sql_like(c, f"%{w}%") for w in words for c in cols):
                return False
        return all(not any(sql_like(c, f"%{w}%") for c in cols) for w in must_not)

    def _sort_key(self, kind: str, sort: str) -> Callable[[dict], Any]:
        def primary_file(s: dict) -> dict | None:
            return s["files"][0] if s.get("files") else None

        if sort == "id":
            return lambda r: int(r["id"])
        if sort in ("created_at", "updated_at"):
            return lambda r: r[sort]
        if kind == "scenes":
            if sort == "title":
                return lambda s: _natural_key(
                    s.get("title") or (primary_file(s)["basename"] if primary_file(s) else None)
                )
            if sort == "path":
                return lambda s: _natural_key(primary_file(s)["path"] if primary_file(s) else None)
            if sort == "date":
                return lambda s: (s.get("date") is not None, s.get("date") or "")
            if sort == "duration":
                return lambda s: primary_file(s)["duration"] if primary_file(s) else -1.0
            if sort == "filesize":
                return lambda s: primary_file(s)["size"] if primary_file(s) else -1
            if sort == "organized":
                return lambda s: s["organized"]
        elif sort == "name":
            return lambda r: _natural_key(r["name"])
        if kind == "groups" and sort == "date":
            return lambda g: (g.get("date") is not None, g.get("date") or "")
        raise StashError(f"invalid sort: {sort}")

    def _query(
        self, kind: str, flt: dict | None, find: dict | None, ids: list | None
    ) -> tuple[list[dict], list[dict]]:
        """Return (all matches, the requested page)."""
        self._validate_filter(kind, flt)
        find = find or {}
        records = list(getattr(self, kind).values())
        if ids is not None:
            wanted = {str(i) for i in ids}
            records = [r for r in records if r["id"] in wanted]
        q = find.get("q")
        matches = [r for r in records if self._match(kind, r, flt) and (not q or self._q_match(kind, r, q))]
        sort = find.get("sort") or ("title" if kind == "scenes" else "name")
        desc = find.get("direction") == "DESC"
        if sort == "random":
            random.Random(0).shuffle(matches)
        else:
            key = self._sort_key(kind, sort)
            matches.sort(key=lambda r: int(r["id"]))
            matches.sort(key=key, reverse=desc)
        per_page = find.get("per_page")
        if per_page is not None and per_page < 0:
            return matches, matches
        if per_page is None or per_page == 0:
            per_page = 25
        page = max(find.get("page") or 1, 1)
        start = (page - 1) * per_page
        return matches, matches[start : start + per_page]

    # ------------------------------------------------------------------ validation helpers

    def _get(self, store: str, id_value: Any) -> dict | None:
        _atoi(id_value)
        return getattr(self, store).get(str(id_value))

    def _require(self, store: str, id_value: Any, what: str) -> dict:
        _atoi(id_value)
        rec = getattr(self, store).get(str(id_value))
        if rec is None:
            raise StashError(f"{what} with id {id_value} not found")
        return rec

    def _check_ids(self, store: str, ids: Iterable[Any] | None, what: str) -> list[str]:
        out = _dedupe(ids or [])
        for i in out:
            self._require(store, i, what)
        return out

    def _clean_str(self, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    # ------------------------------------------------------------------ scenes

    def _m_scene_update(self, _root, _info, input: dict) -> dict:
        scene = self._require("scenes", input["id"], "scene")
        changes = self._scene_changes(input, bulk=False, scene=scene)
        if "primary_file_id" in input and input["primary_file_id"] is not None:
            fid = str(input["primary_file_id"])
            idx = next((n for n, f in enumerate(scene["files"]) if f["id"] == fid), None)
            if idx is None:
                raise StashError(f"file with id {fid} not associated with scene")
            scene["files"].insert(0, scene["files"].pop(idx))
        scene.update(changes)
        scene["updated_at"] = _now()
        return scene

    def _scene_changes(self, input: dict, *, bulk: bool, scene: dict | None) -> dict:
        changes: dict[str, Any] = {}
        for key in ("title", "code", "details", "director"):
            if key in input:
                changes[key] = input[key]
        if "rating100" in input:
            changes["rating100"] = input["rating100"]
        if "organized" in input and input["organized"] is not None:
            changes["organized"] = bool(input["organized"])
        if "date" in input:
            changes["date"] = _parse_date(input["date"])
        if "studio_id" in input:
            sid = input["studio_id"]
            changes["studio_id"] = (
                None if sid in (None, "") else self._require("studios", sid, "studio")["id"]
            )
        if not bulk:
            if "urls" in input:
                changes["urls"] = list(input["urls"] or [])
            if "performer_ids" in input:
                changes["performer_ids"] = self._check_ids("performers", input["performer_ids"], "performer")
            if "tag_ids" in input:
                changes["tag_ids"] = self._check_ids("tags", input["tag_ids"], "tag")
            if "groups" in input:
                groups = []
                seen: set[str] = set()
                for g in input["groups"] or []:
                    gid = self._require("groups", g["group_id"], "group")["id"]
                    if gid in seen:
                        raise StashError(f"duplicate group id {gid}")
                    seen.add(gid)
                    groups.append({"group_id": gid, "scene_index": g.get("scene_index")})
                changes["groups"] = groups
            if "cover_image" in input:
                cover = _process_image(input["cover_image"], "cover image")
                if cover is not None:
                    changes["cover_image"] = cover
        return changes

    @staticmethod
    def _bulk_apply(old: list, values: list, mode: str) -> list:
        if mode == "SET":
            return _dedupe(values)
        if mode == "ADD":
            return _dedupe([*old, *values])
        return [v for v in old if v not in set(values)]

    def _m_bulk_scene_update(self, _root, _info, input: dict) -> list[dict]:
        scenes = [self._require("scenes", i, "scene") for i in _dedupe(input.get("ids") or [])]
        changes = self._scene_changes(input, bulk=True, scene=None)
        list_updates: list[tuple[str, list, str]] = []
        for key, store, what in (("performer_ids", "performers", "performer"), ("tag_ids", "tags", "tag")):
            upd = input.get(key)
            if upd is not None:
                ids = (
                    self._check_ids(store, upd.get("ids"), what)
                    if upd["mode"] != "REMOVE"
                    else _dedupe(upd.get("ids") or [])
                )
                list_updates.append((key, ids, upd["mode"]))
        group_upd = input.get("group_ids")
        group_ids: list[str] = []
        if group_upd is not None:
            group_ids = (
                self._check_ids("groups", group_upd.get("ids"), "group")
                if group_upd["mode"] != "REMOVE"
                else _dedupe(group_upd.get("ids") or [])
            )
        urls_upd = input.get("urls")
        now = _now()
        for s in scenes:
            s.update(changes)
            for key, ids, mode in list_updates:
                s[key] = self._bulk_apply(s[key], ids, mode)
            if urls_upd is not None:
                values = list(urls_upd.get("values") or [])
                mode = urls_upd["mode"]
                if mode == "SET":
                    s["urls"] = values
                elif mode == "ADD":
                    s["urls"] = s["urls"] + [u for u in values if u not in s["urls"]]
                else:
                    s["urls"] = [u for u in s["urls"] if u not in values]
            if group_upd is not None:
                mode = group_upd["mode"]
                existing = {g["group_id"]: g for g in s["groups"]}
                if mode == "SET":
                    s["groups"] = [existing.get(g, {"group_id": g, "scene_index": None}) for g in group_ids]
                elif mode == "ADD":
                    s["groups"] = s["groups"] + [
                        {"group_id": g, "scene_index": None} for g in group_ids if g not in existing
                    ]
                else:
                    s["groups"] = [g for g in s["groups"] if g["group_id"] not in group_ids]
            s["updated_at"] = now
        return scenes

    def _m_scene_destroy(self, _root, _info, input: dict) -> bool:
        scene = self._require("scenes", input["id"], "scene")
        if input.get("delete_file"):
            for f in scene["files"]:
                try:
                    os.remove(f["path"])
                except OSError as exc:
                    log.warning("could not delete %s: %s", f["path"], exc)
        del self.scenes[scene["id"]]
        return True

    # ------------------------------------------------------------------ performers

    def _performer_check(self, pid: str | None, name: str, disamb: str | None, aliases: list[str]) -> None:
        if not name:
            raise StashError("name must not be blank")
        for p in self.performers.values():
            if p["id"] == pid:
                continue
            if (
                p["name"].lower() == name.lower()
                and (p.get("disambiguation") or "").lower() == (disamb or "").lower()
            ):
                if disamb:
                    raise StashError(
                        f"performer with name '{name}' and disambiguation '{disamb}' already exists"
                    )
                raise StashError(f"performer with name '{name}' already exists")
        seen = set()
        for a in aliases:
            if a.lower() == name.lower():
                raise StashError(f"alias '{a}' cannot be the same as the performer name '{name}'")
            if a.lower() in seen:
                raise StashError(f"performer contains duplicate alias '{a}'")
            seen.add(a.lower())

    @staticmethod
    def _aliases(values: list[str] | None) -> list[str]:
        return [a.strip() for a in values or [] if a.strip()]

    def _m_performer_create(self, _root, _info, input: dict) -> dict:
        name = (input.get("name") or "").strip()
        disamb = self._clean_str(input.get("disambiguation")) or None
        aliases = self._aliases(input.get("alias_list"))
        self._performer_check(None, name, disamb, aliases)
        tag_ids = self._check_ids("tags", input.get("tag_ids"), "tag")
        image = _process_image(input.get("image"), "image")
        now = _now()
        pid = self._new_id("performer")
        p = {
            "id": pid,
            "name": name,
            "disambiguation": disamb,
            "urls": list(input.get("urls") or []),
            "gender": input.get("gender"),
            "alias_list": aliases,
            "favorite": bool(input.get("favorite") or False),
            "tag_ids": tag_ids,
            "details": input.get("details"),
            "image": image,
            "created_at": now,
            "updated_at": now,
        }
        self.performers[pid] = p
        return p

    def _m_performer_update(self, _root, _info, input: dict) -> dict:
        p = self._require("performers", input["id"], "performer")
        name = p["name"]
        if "name" in input:
            name = (input["name"] or "").strip()
        disamb = p.get("disambiguation")
        if "disambiguation" in input:
            disamb = self._clean_str(input["disambiguation"]) or None
        aliases = self._aliases(input["alias_list"]) if "alias_list" in input else p["alias_list"]
        self._performer_check(p["id"], name, disamb, aliases)
        changes: dict[str, Any] = {"name": name, "disambiguation": disamb, "alias_list": list(aliases)}
        if "tag_ids" in input:
            changes["tag_ids"] = self._check_ids("tags", input["tag_ids"], "tag")
        if "urls" in input:
            changes["urls"] = list(input["urls"] or [])
        for key in ("gender", "details"):
            if key in input:
                changes[key] = input[key]
        if "favorite" in input and input["favorite"] is not None:
            changes["favorite"] = bool(input["favorite"])
        if "image" in input:
            changes["image"] = _process_image(input["image"], "image")
        p.update(changes)
        p["updated_at"] = _now()
        return p

    def _m_performer_destroy(self, _root, _info, input: dict) -> bool:
        p = self._require("performers", input["id"], "performer")
        for s in self.scenes.values():
            if p["id"] in s["performer_ids"]:
                s["performer_ids"] = [i for i in s["performer_ids"] if i != p["id"]]
        del self.performers[p["id"]]
        return True

    # ------------------------------------------------------------------ tags

    def _m_tag_create(self, _root, _info, input: dict) -> dict:
        name = (input.get("name") or "").strip()
        if not name:
            raise StashError("name must not be blank")
        aliases = self._aliases(input.get("aliases"))
        for t in self.tags.values():
            if t["name"].lower() == name.lower():
                raise StashError(f"tag with name '{name}' already exists")
            if name.lower() in (a.lower() for a in t["aliases"]):
                raise StashError(f"name '{name}' is used as alias for '{t['name']}'")
        seen = set()
        for a in aliases:
            if a.lower() == name.lower():
                raise StashError(f"alias '{a}' cannot be the same as the tag name")
            if a.lower() in seen:
                raise StashError(f"tag contains duplicate alias '{a}'")
            seen.add(a.lower())
            for t in self.tags.values():
                if t["name"].lower() == a.lower() or a.lower() in (x.lower() for x in t["aliases"]):
                    raise StashError(f"alias '{a}' is already used by tag '{t['name']}'")
        now = _now()
        tid = self._new_id("tag")
        t = {
            "id": tid,
            "name": name,
            "description": input.get("description"),
            "aliases": aliases,
            "created_at": now,
            "updated_at": now,
        }
        self.tags[tid] = t
        return t

    def _m_tag_destroy(self, _root, _info, input: dict) -> bool:
        t = self._require("tags", input["id"], "tag")
        for store in ("scenes", "performers", "studios", "groups"):
            for rec in getattr(self, store).values():
                if t["id"] in rec.get("tag_ids", []):
                    rec["tag_ids"] = [i for i in rec["tag_ids"] if i != t["id"]]
        del self.tags[t["id"]]
        return True

    # ------------------------------------------------------------------ studios

    def _m_studio_create(self, _root, _info, input: dict) -> dict:
        name = (input.get("name") or "").strip()
        if not name:
            raise StashError("name must not be blank")
        for s in self.studios.values():
            if s["name"].lower() == name.lower():
                raise StashError(f"studio with name '{name}' already exists")
        aliases = self._aliases(input.get("aliases"))
        seen = set()
        for a in aliases:
            if a.lower() == name.lower():
                raise StashError(f"alias '{a}' cannot be the same as the studio name")
            if a.lower() in seen:
                raise StashError(f"studio contains duplicate alias '{a}'")
            seen.add(a.lower())
            for s in self.studios.values():
                if s["name"].lower() == a.lower() or a.lower() in (x.lower() for x in s["aliases"]):
                    raise StashError(f"alias '{a}' is already used by studio '{s['name']}'")
        parent = input.get("parent_id")
        parent_id = self._require("studios", parent, "studio")["id"] if parent not in (None, "") else None
        tag_ids = self._check_ids("tags", input.get("tag_ids"), "tag")
        image = _process_image(input.get("image"), "image")
        now = _now()
        sid = self._new_id("studio")
        st = {
            "id": sid,
            "name": name,
            "urls": list(input.get("urls") or []),
            "parent_id": parent_id,
            "aliases": aliases,
            "tag_ids": tag_ids,
            "details": input.get("details"),
            "image": image,
            "created_at": now,
            "updated_at": now,
        }
        self.studios[sid] = st
        return st

    def _m_studio_destroy(self, _root, _info, input: dict) -> bool:
        st = self._require("studios", input["id"], "studio")
        for store in ("scenes", "groups"):
            for rec in getattr(self, store).values():
                if rec.get("studio_id") == st["id"]:
                    rec["studio_id"] = None
        for child in self.studios.values():
            if child["parent_id"] == st["id"]:
                child["parent_id"] = None
        del self.studios[st["id"]]
        return True

    # ------------------------------------------------------------------ groups

    def _group_changes(self, input: dict) -> dict:
        changes: dict[str, Any] = {}
        if "name" in input:
            name = (input["name"] or "").strip()
            if not name:
                raise StashError("name must not be blank")
            changes["name"] = name
        for key in ("aliases", "duration", "rating100", "director", "synopsis"):
            if key in input:
                changes[key] = input[key]
        if "date" in input:
            changes["date"] = _parse_date(input["date"])
        if "studio_id" in input:
            sid = input["studio_id"]
            changes["studio_id"] = (
                None if sid in (None, "") else self._require("studios", sid, "studio")["id"]
            )
        if "urls" in input:
            changes["urls"] = list(input["urls"] or [])
        if "tag_ids" in input:
            changes["tag_ids"] = self._check_ids("tags", input["tag_ids"], "tag")
        for key in ("front_image", "back_image"):
            if key in input:
                changes[key] = _process_image(input[key], key.replace("_", " "))
        return changes

    def _m_group_create(self, _root, _info, input: dict) -> dict:
        changes = self._group_changes(input)
        now = _now()
        gid = self._new_id("group")
        g = {
            "id": gid,
            "name": changes.pop("name"),
            "aliases": None,
            "duration": None,
            "date": None,
            "rating100": None,
            "studio_id": None,
            "director": None,
            "synopsis": None,
            "urls": [],
            "tag_ids": [],
            "front_image": None,
            "back_image": None,
            "created_at": now,
            "updated_at": now,
        }
        g.update(changes)
        self.groups[gid] = g
        return g

    def _m_group_update(self, _root, _info, input: dict) -> dict:
        g = self._require("groups", input["id"], "group")
        g.update(self._group_changes(input))
        g["updated_at"] = _now()
        return g

    def _m_group_destroy(self, _root, _info, input: dict) -> bool:
        g = self._require("groups", input["id"], "group")
        for s in self.scenes.values():
            if any(x["group_id"] == g["id"] for x in s["groups"]):
                s["groups"] = [x for x in s["groups"] if x["group_id"] != g["id"]]
        del self.groups[g["id"]]
        return True

    # ------------------------------------------------------------------ jobs and scanning

    def _m_metadata_scan(self, _root, _info, input: dict) -> str:
        min_mod = None
        if input.get("filter") and input["filter"].get("minModTime"):
            min_mod = _parse_timestamp(str(input["filter"]["minModTime"]))
        jid = self._new_id("job")
        self.jobs[jid] = {
            "id": jid,
            "status": "READY",
            "subTasks": [],
            "description": "Scanning...",
            "progress": None,
            "startTime": None,
            "endTime": None,
            "addTime": _now(),
            "error": None,
            "_paths": list(input.get("paths") or []),
            "_rescan": bool(input.get("rescan")),
            "_min_mod": min_mod,
        }
        self._job_queue.put(jid)
        return jid

    def _job_worker(self) -> None:
        while not self._stop.is_set():
            jid = self._job_queue.get()
            if jid is None or self._stop.is_set():
                return
            with self._lock:
                job = self.jobs.get(jid)
                if job is None:
                    continue
                job["status"] = "RUNNING"
                job["startTime"] = _now()
                job["progress"] = 0.0
                mode = self.scan_mode
            try:
                if mode == "hang":  # stuck until the mode changes (then it goes on) or the server stops
                    while self.scan_mode == "hang" and not self._stop.wait(0.05):
                        pass
                    if self._stop.is_set():
                        return
                    mode = self.scan_mode
                if mode == "fail":
                    raise RuntimeError("scan failed: injected failure")
                self._run_scan(job)
                final: dict[str, Any] = {"status": "FINISHED", "progress": 1.0}
            except Exception as exc:  # a failing job must not kill the worker
                log.warning("scan job %s failed: %s", jid, exc)
                final = {"status": "FAILED", "error": str(exc)}
            with self._lock:
                # save first so that a client that sees the job end also finds its results on disk
                self._save_state_logged(f"scan job {jid}")
                job.update(final)
                job["endTime"] = _now()
                self._graveyard.append(jid)
                while len(self._graveyard) > GRAVEYARD_SIZE:
                    self.jobs.pop(self._graveyard.popleft(), None)
                self._idle.notify_all()

    def _scan_targets(self, paths: list[str]) -> list[str]:
        roots = list(self.library_roots)
        if not paths:
            return roots
        out = []
        for p in paths:
            ap = os.path.abspath(p)
            if any(_within(ap, r) for r in roots):
                out.append(ap)
            else:
                log.warning("%s is not in the configured stash paths", p)
        return out

    def _run_scan(self, job: dict) -> None:
        files: dict[str, None] = {}
        for target in self._scan_targets(job["_paths"]):
            if os.path.isfile(target):
                if target.rsplit(".", 1)[-1].lower() in VIDEO_EXTENSIONS:
                    files.setdefault(target, None)
                continue
            for dirpath, dirnames, filenames in os.walk(target, followlinks=True):
                dirnames.sort()
                for fn in sorted(filenames):
                    if "." in fn and fn.rsplit(".", 1)[-1].lower() in VIDEO_EXTENSIONS:
                        files.setdefault(os.path.join(dirpath, fn), None)
        total = len(files)
        done = 0

        def apply(path: str, found) -> None:
            nonlocal done
            done += 1
            if self._stop.is_set():
                raise RuntimeError("server stopping")
            if self.scan_seconds_per_file:
                self._stop.wait(self.scan_seconds_per_file)
            try:
                scanned = found.result()
                if scanned is not None:
                    self._apply_scanned(path, *scanned)
            except Exception as exc:  # Stash logs per-file errors and carries on
                log.warning("error scanning %s: %s", path, exc)
            with self._lock:
                job["progress"] = done / total

        # Files are fingerprinted and probed on SCAN_THREADS threads (like Stash's parallel scan
        # tasks), a few ahead; what they found is applied one file at a time, in order, so ids
        # follow file order. Leaving the pool on an error drops what has not started.
        with ThreadPoolExecutor(SCAN_THREADS) as pool:
            ahead: deque = deque()
            try:
                for path in files:
                    ahead.append((path, pool.submit(self._examine_file, path, rescan=job["_rescan"],
                                                    min_mod=job["_min_mod"])))
                    if len(ahead) > 2 * SCAN_THREADS:
                        apply(*ahead.popleft())
                while ahead:
                    apply(*ahead.popleft())
            finally:
                for _, found in ahead:
                    found.cancel()

    def _ensure_folder(self, path: str) -> str:
        fid = self._folder_by_path.get(path)
        if fid is not None:
            return fid
        parent = os.path.dirname(path)
        parent_id = None
        if parent != path and any(_within(parent, r) for r in self.library_roots):
            parent_id = self._ensure_folder(parent)
        now = _now()
        try:
            mod = _ts_from_epoch(os.stat(path).st_mtime)
        except OSError:
            mod = now
        fid = self._new_id("folder")
        self.folders[fid] = {
            "id": fid,
            "path": path,
            "parent_folder_id": parent_id,
            "mod_time": mod,
            "created_at": now,
            "updated_at": now,
        }
        self._folder_by_path[path] = fid
        return fid

    def _find_file(self, pred: Callable[[dict], bool]) -> tuple[dict, dict] | None:
        for s in self.scenes.values():
            for f in s["files"]:
                if pred(f):
                    return s, f
        return None

    def _examine_file(self, path: str, *, rescan: bool, min_mod: dt.datetime | None):
        """What a scan learns of a file, or None when it is skipped (older than ``min_mod``, or
        known and unchanged): (stat, mod time, fingerprints, media). Reads the state only."""
        st = os.stat(path)
        mod_dt = dt.datetime.fromtimestamp(st.st_mtime).astimezone()
        if min_mod is not None and mod_dt < min_mod:
            return None
        mod_time = mod_dt.isoformat()
        with self._lock:
            known = self._find_file(lambda f: f["path"] == path)
            if (
                known is not None
                and known[1]["mod_time"] == mod_time
                and known[1]["size"] == st.st_size
                and not rescan
            ):
                return None  # unchanged
        fingerprints = [{"type": "oshash", "value": oshash(path)}, {"type": "md5", "value": md5sum(path)}]
        return st, mod_time, fingerprints, _probe_video(path)

    def _apply_scanned(self, path: str, st: os.stat_result, mod_time: str, fingerprints: list, media: dict) -> None:
        """A scanned file into the state: its file updated, a move or copy recognised, or a new scene."""
        now = _now()
        with self._lock:
            known = self._find_file(lambda f: f["path"] == path)
            if known is not None:
                _scene, f = known
                if f["fingerprints"] != fingerprints or f["size"] != st.st_size or f["mod_time"] != mod_time:
                    f.update(media)
                    f.update(
                        {
                            "fingerprints": fingerprints,
                            "size": st.st_size,
                            "mod_time": mod_time,
                            "updated_at": now,
                        }
                    )
                return
            fp_values = {(fp["type"], fp["value"]) for fp in fingerprints}
            match = self._find_file(
                lambda f: any((fp["type"], fp["value"]) in fp_values for fp in f["fingerprints"])
            )
            folder_id = self._ensure_folder(os.path.dirname(path))
            if match is not None:
                scene, f = match
                if not os.path.exists(f["path"]):
                    # the old file is gone: this is a move/rename, the scene keeps its file
                    f.update(
                        {
                            "path": path,
                            "basename": os.path.basename(path),
                            "parent_folder_id": folder_id,
                            "mod_time": mod_time,
                            "updated_at": now,
                        }
                    )
                    return
                # a copy: Stash adds the new file to the scene that already has the content
                scene["files"].append(
                    self._new_file(path, folder_id, st.st_size, mod_time, fingerprints, media, now)
                )
                return
            sid = self._new_id("scene")
            self.scenes[sid] = {
                "id": sid,
                "title": None,
                "code": None,
                "details": None,
                "director": None,
                "urls": [],
                "date": None,
                "rating100": None,
                "organized": False,
                "studio_id": None,
                "performer_ids": [],
                "tag_ids": [],
                "groups": [],
                "cover_image": None,
                "files": [self._new_file(path, folder_id, st.st_size, mod_time, fingerprints, media, now)],
                "created_at": now,
                "updated_at": now,
            }

    def _new_file(self, path, folder_id, size, mod_time, fingerprints, media, now) -> dict:
        return {
            "id": self._new_id("file"),
            "path": path,
            "basename": os.path.basename(path),
            "parent_folder_id": folder_id,
            "mod_time": mod_time,
            "size": size,
            "fingerprints": fingerprints,
            **media,
            "created_at": now,
            "updated_at": now,
        }


class _Handler(BaseHTTPRequestHandler):
    server_version = "stash-emulator"
    # headers and body go out as two writes: without TCP_NODELAY each answer waits ~40 ms for a delayed ACK
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    emu: StashEmulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self.emu._handle_http(self, "POST")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.emu._handle_http(self, "GET")

    def send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a Stash GraphQL emulator in the foreground.")
    parser.add_argument("--library", action="append", required=True, help="library root (repeatable)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--scan-seconds-per-file", type=float, default=0.0)
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="JSON file that keeps the emulator's state between runs (loaded at start, saved on change)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    emu = StashEmulator(
        args.library[0],
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        scan_seconds_per_file=args.scan_seconds_per_file,
        state_file=args.state_file,
    )
    for extra in args.library[1:]:
        emu.add_library_path(extra)
    done = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emu.start()
    print(emu.url, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
