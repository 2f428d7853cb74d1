"""Other audio hosts (Pornhub, Erocast): links are recorded; with the user's opt-in, their
audio is fetched through yt-dlp.

Opt-in takes both the setting ``AUDIO_ASSETS_YTDLP=1`` (environment) and the ``yt_dlp``
package (``pip install yt-dlp``; it is deliberately not a dependency). Without either the
link is only recorded (status ``link_only``) and the status text says how to opt in.

yt-dlp fetches the real site itself (not through the host map or the polite client), so:
- only the hosts in ``YTDLP_HOSTS`` are handed to it; anything else stays a recorded link;
- one download at a time per host, across threads and processes (a lock per host), with
  yt-dlp sleeping between its requests and fetching one fragment at a time;
- audio only: the best audio-only format, else the audio track is extracted and the video
  dropped (no re-encode where the codec allows);
- no cookies or credentials are given to it, and nothing is uploaded anywhere;
- it writes into a staging folder; the file gets its real name only after its check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from audio_assets.downloads import Downloaded, DownloadError, safe_name

YTDLP_SETTING = "AUDIO_ASSETS_YTDLP"
#: site -> platform name of the hosts whose audio yt-dlp may fetch (subdomains included)
YTDLP_HOSTS: dict[str, str] = {"pornhub.com": "pornhub", "erocast.me": "erocast"}
INSTALL_HINT = "pip install yt-dlp"
_LEFTOVER_SUFFIXES = (".part", ".ytdl", ".temp", ".tmp")

_guard = threading.Lock()
_host_locks: dict[str, threading.Lock] = {}


class YtdlpUnavailable(RuntimeError):
    """yt-dlp is not enabled or not installed: the link stays a recorded link."""


def ytdlp_enabled(env: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(YTDLP_SETTING, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def load_ytdlp():
    """The ``yt_dlp`` module, or None when it is not installed."""
    try:
        import yt_dlp
    except ImportError:
        return None
    return yt_dlp


def ytdlp_site(url: str) -> str | None:
    """The site (a key of YTDLP_HOSTS) of a URL yt-dlp may fetch, else None."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    for site in YTDLP_HOSTS:
        if host == site or host.endswith("." + site):
            return site
    return None


def will_fetch(url: str, env: Mapping[str, str] | None = None) -> bool:
    """True when this link's audio is fetched with yt-dlp (enabled, installed, allowed host)."""
    return ytdlp_site(url) is not None and ytdlp_enabled(env) and load_ytdlp() is not None


def link_only_reason(platform: str, url: str, env: Mapping[str, str] | None = None) -> str:
    base = f"{platform} links are recorded, not downloaded"
    if ytdlp_site(url) is None:
        return base
    if not ytdlp_enabled(env):
        return f"{base} (to fetch their audio with yt-dlp: {INSTALL_HINT} and set {YTDLP_SETTING}=1)"
    if load_ytdlp() is None:
        return f"{base}: {YTDLP_SETTING}=1 is set but the yt_dlp package is not installed ({INSTALL_HINT})"
    return base


def link_key(url: str) -> str:
    """A stable, path-safe name for a link's audio (Pornhub: its viewkey)."""
    parts = urlsplit(url)
    viewkey = (parse_qs(parts.query).get("viewkey") or [""])[0]
    if viewkey:
        return safe_name(viewkey, max_len=40)
    last = next((seg for seg in reversed(parts.path.split("/")) if seg), "")
    digest = hashlib.sha1(url.encode()).hexdigest()[:10]
    return f"{safe_name(last, max_len=40, fallback='audio')}-{digest}"


def _finished(folder: Path, key: str) -> Path | None:
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob(f"{key}.*")):
        if path.is_file() and not path.name.endswith(_LEFTOVER_SUFFIXES):
            return path
    return None


@contextmanager
def _one_at_a_time(site: str, lock_dir: Path | None) -> Iterator[None]:
    with _guard:
        lock = _host_locks.setdefault(site, threading.Lock())
    with lock:
        if lock_dir is None:
            yield
            return
        from filelock import FileLock

        lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_dir / f"ytdlp-{safe_name(site)}.lock")):
            yield


def _ytdlp_options(staging: Path, key: str, max_bytes: int) -> dict:
    opts = {
        "format": "bestaudio/best",
        "outtmpl": str(staging / f"{key}.%(ext)s"),
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "restrictfilenames": True,
        "max_filesize": max_bytes,
        "concurrent_fragment_downloads": 1,
        "sleep_interval_requests": 1.0,
        "sleep_interval": 1.0,
        "retries": 5,
        "fragment_retries": 5,
        "socket_timeout": 30,
        "continuedl": True,
        "overwrites": False,
        "writeinfojson": False,
        "writethumbnail": False,
        "writesubtitles": False,
        "postprocessors": [{"key": "FFmpegExtractAudio", "preferredcodec": "best"}],
    }
    try:
        from audio_assets.ffmpeg_tools import ffmpeg_exe

        opts["ffmpeg_location"] = ffmpeg_exe()
    except Exception:  # noqa: BLE001 - yt-dlp then looks for ffmpeg on PATH
        pass
    return opts


def _written_file(info: object, staging: Path, key: str) -> Path | None:
    candidates: list[str] = []
    if isinstance(info, dict):
        for item in info.get("requested_downloads") or []:
            if isinstance(item, dict) and item.get("filepath"):
                candidates.append(item["filepath"])
        if info.get("filepath"):
            candidates.append(info["filepath"])
    staging_r = staging.resolve()
    for candidate in reversed(candidates):
        path = Path(candidate)
        if path.is_file() and path.resolve().parent == staging_r:
            return path
    return _finished(staging, key)


def fetch_with_ytdlp(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int = 2 * 1024**3,
    lock_dir: Path | None = None,
    verify: Callable[[Path], str | None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Download a link's audio into ``dest_dir`` with yt-dlp's Python API; returns its path.

    A file already held for the link is returned without fetching. Raises YtdlpUnavailable
    when yt-dlp is not enabled or not installed, DownloadError when the fetch fails."""
    if not ytdlp_enabled(env):
        raise YtdlpUnavailable(f"yt-dlp is not enabled: set {YTDLP_SETTING}=1 (and {INSTALL_HINT})")
    yt_dlp = load_ytdlp()
    if yt_dlp is None:
        raise YtdlpUnavailable(
            f"{YTDLP_SETTING}=1 is set but the yt_dlp package is not installed ({INSTALL_HINT})"
        )
    site = ytdlp_site(url)
    if site is None:
        raise DownloadError(f"{url}: not a host handed to yt-dlp ({', '.join(sorted(YTDLP_HOSTS))})")
    key = link_key(url)
    dest_dir = Path(dest_dir)
    held = _finished(dest_dir, key)
    if held is not None:
        return held
    with _one_at_a_time(site, lock_dir):
        held = _finished(dest_dir, key)  # another worker may have fetched it meanwhile
        if held is not None:
            return held
        staging = dest_dir / f".{key}.ytdlp"
        staging.mkdir(parents=True, exist_ok=True)
        try:
            with yt_dlp.YoutubeDL(_ytdlp_options(staging, key, max_bytes)) as ydl:
                info = ydl.extract_info(url, download=True)
        except Exception as exc:  # noqa: BLE001 - yt-dlp raises its own error types
            raise DownloadError(f"yt-dlp could not fetch {url}: {type(exc).__name__}: {exc}") from None
        path = _written_file(info, staging, key)
        if path is None:
            raise DownloadError(f"yt-dlp reported no file for {url}")
        size = path.stat().st_size
        if size == 0 or size > max_bytes:
            shutil.rmtree(staging, ignore_errors=True)
            raise DownloadError(
                f"yt-dlp wrote {size} bytes for {url} (empty or over the cap of {max_bytes} bytes)"
            )
        if verify is not None:
            problem = verify(path)
            if problem:
                shutil.rmtree(staging, ignore_errors=True)
                raise DownloadError(f"{url}: the file yt-dlp wrote failed its check: {problem}")
        final = dest_dir / f"{key}{path.suffix.lower()}"
        os.replace(path, final)
        shutil.rmtree(staging, ignore_errors=True)
        return final


def as_downloaded(path: Path, *, fetched: bool = True) -> Downloaded:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return Downloaded(path, path.stat().st_size, h.hexdigest(), fetched=fetched)
