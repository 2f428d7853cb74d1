"""A resumed download only appends bytes that follow its own: a host answering a Range request
with another range (or the whole file) never leaves a file of the right size and wrong content."""

from __future__ import annotations

import hashlib
from http.server import BaseHTTPRequestHandler

import pytest

from audio_assets.downloads import download
from audio_assets.http_client import PoliteClient
from audio_assets.settings import load_settings

from .conftest import local_http_server

BODY = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(8192))  # 256 KiB, no repeats
HELD = 100_000  # bytes of the part file already on disk
URL = "https://media.soundgasm.net/sounds/" + "b" * 40 + ".m4a"


class _OddRangeHandler(BaseHTTPRequestHandler):
    """Answers the first Range request with ``first_start`` (not what was asked), then properly."""

    first_start: int = 0
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = 0
        if rng:
            asked = int(rng.split("=")[1].split("-")[0])
            start = type(self).first_start if sum(1 for r in type(self).requests if r) == 1 else asked
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "audio/mp4")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        self.wfile.write(BODY[start:])


@pytest.fixture
def odd_server():
    _OddRangeHandler.requests = []
    with local_http_server(_OddRangeHandler) as url:
        yield url


@pytest.mark.parametrize("first_start", [HELD + 4096, 0, HELD])
def test_a_resume_keeps_only_bytes_that_follow(tmp_path, odd_server, first_start):
    _OddRangeHandler.first_start = first_start
    dest = tmp_path / "a.m4a"
    (tmp_path / "a.m4a.part").write_bytes(BODY[:HELD])
    settings = load_settings({"AUDIO_ASSETS_HOST_MAP": f"media.soundgasm.net={odd_server}"})
    with PoliteClient(settings) as client:
        got = download(client, URL, dest)
    assert dest.read_bytes() == BODY
    assert got.sha256 == hashlib.sha256(BODY).hexdigest() and got.bytes == len(BODY)
    assert _OddRangeHandler.requests[0] == f"bytes={HELD}-"  # it asked to resume
    if first_start == HELD + 4096:  # another range: thrown away, and the file fetched whole
        assert _OddRangeHandler.requests[1:] == [None]
