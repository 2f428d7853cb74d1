"""Downloads that survive interruptions and never leave a partial file in place.

A file streams to ``<name>.part``; an interrupted download resumes with HTTP Range;
only after its size (and, by the caller, its decode) checks does it get its real name.
A file already held is never fetched again."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from audio_assets.http_client import FetchError, PoliteClient
from audio_assets.media import sha256_file, sha256_of

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DownloadError(RuntimeError):
    pass


def safe_name(name: str | None, *, max_len: int = 80, fallback: str = "unnamed") -> str:
    """A file or folder name from outside text: no separators, no '..', no NUL, capped length."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("-", text).strip("-._")
    text = re.sub(r"-{2,}", "-", text)[:max_len].strip("-._")
    return text or fallback


def within(root: Path, path: Path) -> Path:
    """Refuse any path outside root."""
    root_r, path_r = root.resolve(), path.resolve()
    if root_r != path_r and root_r not in path_r.parents:
        raise DownloadError(f"refusing to write outside the data root: {path}")
    return path


#: how long a folder's free-space reading stands: a batch of downloads into one folder reads it
#: (and makes the folder) once a second, not once a file
FREE_SPACE_READING_SECONDS = 1.0
_free_space_readings: dict[Path, tuple[float, int]] = {}


def ensure_room(folder: Path, min_free_bytes: int) -> None:
    """Make ``folder`` and make sure its disk has ``min_free_bytes`` free; raise DownloadError if not.

    The free space read for a folder stands for FREE_SPACE_READING_SECONDS."""
    now = time.monotonic()
    read_at, free = _free_space_readings.get(folder, (-FREE_SPACE_READING_SECONDS, 0))
    if now - read_at >= FREE_SPACE_READING_SECONDS:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if len(_free_space_readings) > 4096:
            _free_space_readings.clear()
        _free_space_readings[folder] = (now, free)
    if free < min_free_bytes:
        raise DownloadError(f"less than {min_free_bytes // 1024**2} MiB free in {folder}; free some space and re-run")


class _PartWriter:
    """The partial file of a download, written through a bare file descriptor and hashed as the
    bytes arrive (each chunk is on disk before the next is read: a cut or a kill keeps what came,
    and the next run resumes from it).

    Opening it creates the file or, when one is there, opens it to append: ``held`` is its size.
    Each system call lets go of the interpreter lock, and getting it back is what costs a thread
    most when several download at once: so the part file is not looked up before it is opened,
    and a Python file object's own calls (fstat, isatty, seek) are not made. Leaving the block
    removes a part file left empty. The folder is made again if it went since ensure_room saw it."""

    def __init__(self, part: Path) -> None:
        self.part = part
        self.hasher = hashlib.sha256()
        self.held = 0
        self.discard = False  # remove the part file on leaving (bytes that can't be resumed from)
        try:
            self.fd = self._open(os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            self.fd = self._open(0)
            try:
                self.held = os.fstat(self.fd).st_size
            except BaseException:
                os.close(self.fd)
                raise
        self.size = self.held

    def _open(self, flags: int) -> int:
        flags |= os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows, else no \r\n
        try:
            return os.open(self.part, flags, 0o666)
        except FileNotFoundError:
            self.part.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.part, flags, 0o666)

    def begin(self, *, resume: bool) -> None:
        """Before the body: keep what the part file holds (hashed first, so the whole file's hash
        is made as the rest arrives) or empty it."""
        if resume:
            self.hasher = sha256_of(self.part)
        elif self.size:
            os.ftruncate(self.fd, 0)
            self.size = 0

    def add(self, chunk: bytes) -> None:
        left = memoryview(chunk)
        while left:
            n = os.write(self.fd, left)
            if n <= 0:  # a file system that takes nothing would loop for ever
                raise OSError(f"writing {self.part} stored no bytes")
            left = left[n:]
        self.size += len(chunk)
        self.hasher.update(chunk)

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)
        if self.discard or not self.size:
            self.part.unlink(missing_ok=True)


@dataclass
class Downloaded:
    path: Path
    bytes: int
    sha256: str
    fetched: bool  # False when the file was already held
    content_type: str | None = None


def download(
    client: PoliteClient,
    url: str,
    dest: Path,
    *,
    headers: dict | None = None,
    max_bytes: int = 2 * 1024**3,
    refresh_url: Callable[[], str] | None = None,
    verify: Callable[[Path], str | None] | None = None,
    min_free_bytes: int = 512 * 1024**2,
    attempts: int = 4,
    cap_setting: str | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``dest``. ``verify(part_path)`` returns an error text or None.

    ``refresh_url`` gives a fresh signed URL when the host answers 403 (whyp.it's CDN);
    ``cap_setting`` names the setting behind ``max_bytes`` (the size-cap error says to raise it)."""
    raise_it = f"; raise {cap_setting} to fetch it" if cap_setting else ""
    if dest.exists():
        return Downloaded(dest, dest.stat().st_size, sha256_file(dest), fetched=False)
    ensure_room(dest.parent, min_free_bytes)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    content_type = None
    for _attempt in range(attempts):
        try:
            with _PartWriter(part) as writer:
                have = writer.held
                # the bytes as stored: Range, Content-Length and the part file count the same bytes
                # (a body decoded from gzip on the way would put a resume at the wrong place)
                req_headers = {"Accept-Encoding": "identity", **(headers or {})}
                if have:
                    req_headers["Range"] = f"bytes={have}-"
                with client.stream("GET", url, headers=req_headers) as response:
                    content_type = response.headers.get("content-type")
                    if content_type and content_type.split(";")[0].strip() in ("text/html", "application/xhtml+xml"):
                        raise DownloadError(f"{url} served a web page ({content_type}), not audio")
                    if have and response.status_code != 206:
                        have = 0  # the server ignored Range: start over
                    total = None
                    if response.status_code == 206:
                        content_range = response.headers.get("content-range", "")
                        m = re.match(r"bytes (\d+)-\d+/(\d+)", content_range)
                        start = int(m.group(1)) if m else None
                        if m:
                            total = int(m.group(2))
                        if start == 0:
                            have = 0  # the whole file again: written from its start
                        elif start != have:
                            # another range than the one asked for: its bytes can't follow ours
                            writer.discard = True
                            last_error = DownloadError(
                                f"{url}: asked for bytes from {have}, the host sent {content_range or 'no Content-Range'}")
                            continue
                    elif response.headers.get("content-length"):
                        total = int(response.headers["content-length"])
                    if total is not None and total > max_bytes:
                        raise DownloadError(f"{url} is {total} bytes, over the size cap of {max_bytes} bytes{raise_it}")
                    writer.begin(resume=bool(have))
                    for chunk in response.iter_bytes():  # as it arrives: a cut keeps what came
                        if writer.size + len(chunk) > max_bytes:
                            raise DownloadError(f"{url} grew past the size cap of {max_bytes} bytes{raise_it}")
                        writer.add(chunk)
                if total is not None and writer.size != total:
                    last_error = DownloadError(f"{url}: got {writer.size} of {total} bytes")
                    continue  # resume from what we have
            if not writer.size:  # the part file went with the writer
                raise DownloadError(f"{url} served an empty (zero-byte) file")
            break
        except FetchError as exc:
            last_error = exc
            if exc.status == 403 and refresh_url is not None:
                url = refresh_url()
                continue
            if exc.status == 416 and part.exists():
                part.unlink()
                continue
            # The client has already retried dead hosts, 429 and 5xx with backoff: trying its
            # whole round again here would multiply the attempts (and the wait) for nothing.
            raise
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        except (OSError, httpx.TransportError) as exc:  # truncated body, reset connection
            last_error = exc
    else:
        if isinstance(last_error, httpx.TimeoutException):
            timeout = getattr(client, "timeout", None)
            last_error = (f"timed out: no data for {timeout:g} s (AUDIO_ASSETS_HTTP_TIMEOUT sets the limit)"
                          if timeout else f"timed out: {last_error}")
        raise DownloadError(f"{url}: download did not complete after {attempts} attempts: {last_error}")
    if verify is not None:
        problem = verify(part)
        if problem:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: downloaded file failed its check: {problem}")
    digest = writer.hasher.hexdigest()
    os.replace(part, dest)
    return Downloaded(dest, writer.size, digest, fetched=True, content_type=content_type)
