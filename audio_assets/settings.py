"""Project settings: the data root, the host map and the Stash connection.

Everything that differs between a user's machine and the local replica is a
setting read from the environment, so the same code runs against the real sites:

- ``AUDIO_ASSETS_DATA``: the data root (default ``./data``).
- ``AUDIO_ASSETS_HOST_MAP``: ``host=base_url`` pairs separated by commas; each real
  host is fetched from its base URL instead (default: itself over https).
- ``AUDIO_ASSETS_CONFIG``: optional JSON file with ``host_map`` and other settings; the
  environment wins over it.
- ``STASH_URL`` (default ``http://localhost:9999/graphql``), ``STASH_API_KEY`` (secret),
  ``STASH_LIBRARY_PATH`` (the videos folder as Stash sees it; default: the same path).
- ``REDDIT_CLIENT_ID``, ``REDDIT_CLIENT_SECRET``, ``REDDIT_USER_AGENT`` (secrets: PRAW).
- ``PATREON_SESSION_ID`` (secret: the user's own Patreon session), ``AUDIO_ASSETS_YTDLP=1`` (opt in
  to yt-dlp for other hosts); both read where they are used (platforms/patreon.py, other_hosts.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Hosts the pipeline is allowed to fetch. Anything else found in a post is recorded, never fetched.
KNOWN_HOSTS: frozenset[str] = frozenset(
    {
        "gwasi.com",
        "www.gwasi.com",
        "reddit.com",
        "www.reddit.com",
        "old.reddit.com",
        "oauth.reddit.com",
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
        "i.imgur.com",
        "i.redd.it",
        "patreon.com",
        "www.patreon.com",
        "c10.patreonusercontent.com",
    }
)

USER_AGENT = "python:audio_assets:0.1.0 (personal GWA archive; https://github.com/audio-assets/audio_assets)"


def parse_host_map(text: str | None) -> dict[str, str]:
    """Parse ``host=base_url,host=base_url`` into a dict; blank entries are ignored."""
    result: dict[str, str] = {}
    if not text:
        return result
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(
                f"AUDIO_ASSETS_HOST_MAP entry {part!r} is not host=base_url "
                "(example: soundgasm.net=http://127.0.0.1:8101)"
            )
        host, base = part.split("=", 1)
        result[host.strip().lower()] = base.strip().rstrip("/")
    return result


@dataclass(frozen=True)
class Settings:
    data_root: Path
    host_map: dict[str, str] = field(default_factory=dict)
    stash_url: str = "http://localhost:9999/graphql"
    stash_library_path: str | None = None
    gwasi_base_url: str = "https://gwasi.com"
    max_audio_bytes: int = 2 * 1024**3
    requests_per_second_per_host: float = 4.0
    concurrency_per_host: int = 4
    #: seconds a request may wait for the connection or between bytes before it counts as a timeout
    http_timeout_s: float = 30.0

    @property
    def warehouse_path(self) -> Path:
        return self.data_root / "warehouse.duckdb"

    @property
    def parquet_root(self) -> Path:
        return self.data_root / "parquet"

    @property
    def videos_dir(self) -> Path:
        return self.data_root / "videos"

    def audio_dir(self, platform: str) -> Path:
        return self.data_root / "audio" / platform

    @property
    def scripts_dir(self) -> Path:
        return self.data_root / "scripts" / "scriptbin"

    @property
    def artwork_dir(self) -> Path:
        return self.data_root / "artwork"

    @property
    def gwasi_dir(self) -> Path:
        return self.data_root / "enrichment" / "reddit" / "gwasi"

    @property
    def reddit_dir(self) -> Path:
        return self.data_root / "enrichment" / "reddit"

    @property
    def release_db_path(self) -> Path:
        return self.data_root / "releases" / "release_db.json"

    @property
    def state_dir(self) -> Path:
        return self.data_root / "state"

    def stash_path_for(self, local_path: Path | str) -> str:
        """The path under which Stash sees a file the pipeline wrote to videos/."""
        local = Path(local_path).resolve()
        if not self.stash_library_path:
            return str(local)
        rel = local.relative_to(self.videos_dir.resolve())
        return self.stash_library_path.rstrip("/") + "/" + rel.as_posix()


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    config: dict = {}
    cfg_path = env.get("AUDIO_ASSETS_CONFIG")
    if cfg_path:
        config = json.loads(Path(cfg_path).read_text())
    host_map = {k.lower(): v.rstrip("/") for k, v in (config.get("host_map") or {}).items()}
    host_map.update(parse_host_map(env.get("AUDIO_ASSETS_HOST_MAP")))
    data_root = Path(env.get("AUDIO_ASSETS_DATA") or config.get("data_root") or "data").resolve()
    return Settings(
        data_root=data_root,
        host_map=host_map,
        stash_url=env.get("STASH_URL") or config.get("stash_url") or "http://localhost:9999/graphql",
        stash_library_path=env.get("STASH_LIBRARY_PATH") or config.get("stash_library_path"),
        max_audio_bytes=int(env.get("AUDIO_ASSETS_MAX_AUDIO_BYTES") or config.get("max_audio_bytes") or 2 * 1024**3),
        requests_per_second_per_host=float(
            env.get("AUDIO_ASSETS_RATE_PER_HOST") or config.get("requests_per_second_per_host") or 4.0
        ),
        http_timeout_s=float(env.get("AUDIO_ASSETS_HTTP_TIMEOUT") or config.get("http_timeout_s") or 30.0),
    )


@contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for a block; restore them afterwards."""
    def put(settings: dict[str, str | None]) -> None:
        for k, v in settings.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    old = {k: os.environ.get(k) for k in values}
    try:
        put(values)
        yield
    finally:
        put(old)
