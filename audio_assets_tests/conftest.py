"""Shared fixtures: the replica of the outside world and the Stash emulator, started by the
tests themselves on free loopback ports and stopped afterwards."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*is currently in beta.*")

MEDIA_CACHE = Path(os.environ.get("AUDIO_ASSETS_TEST_MEDIA", "/tmp/audio_assets_test_media"))


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A one-off HTTP server with ``handler`` on a free loopback port; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def corpus():
    from audio_assets.replica.corpus import build_corpus

    return build_corpus()


@pytest.fixture(scope="session")
def replica(corpus):
    from audio_assets.replica.server import ReplicaServer

    with ReplicaServer(corpus, MEDIA_CACHE) as server:
        yield server


class World:
    """Environment for one pipeline: data root, replica host map, a Stash emulator."""

    def __init__(self, data_root: Path, replica, stash):
        self.data_root, self.replica, self.stash = data_root, replica, stash
        self.env = {
            "AUDIO_ASSETS_DATA": str(data_root),
            "AUDIO_ASSETS_HOST_MAP": replica.host_map_env(),
            "STASH_URL": stash.url,
            "AUDIO_ASSETS_RATE_PER_HOST": "200",
        }


@pytest.fixture
def world_factory(replica, monkeypatch):
    from audio_assets.replica.stash_emulator import StashEmulator

    started = []

    def make(data_root: Path) -> World:
        (data_root / "videos").mkdir(parents=True, exist_ok=True)
        stash = StashEmulator(data_root / "videos").start()
        started.append(stash)
        w = World(data_root, replica, stash)
        for k, v in w.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("STASH_API_KEY", raising=False)
        monkeypatch.delenv("REDDIT_CLIENT_ID", raising=False)
        return w

    yield make
    for s in started:
        s.stop()
