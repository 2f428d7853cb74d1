"""A resumed download only appends bytes that follow its own: a host answering a Range request
with another range (or the whole file) never leaves a file of the right size and wrong content.
Below, the checks around a download: room on the disk, its folder, the blocks it is written in."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from audio_assets import downloads
from audio_assets.downloads import DownloadError, download
from audio_assets.http_client import FetchError, PoliteClient
from audio_assets.settings import load_settings

from .conftest import local_http_server

BODY = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(8192))  # 256 KiB, no repeats
HELD = 100_000  # bytes of the part file already on disk
URL = "https://media.soundgasm.net/sounds/" + "b" * 40 + ".m4a"


class _OddRangeHandler(BaseHTTPRequestHandler):
    """Answers the first Range request with ``first_start`` (not what was asked), then properly."""

    first_start: int = 0
    requests: list = []
    encodings: list = []  # each request's Accept-Encoding
    ignore_range = False  # answer every request with the whole file (200)
    status = 200  # another status: answered with no body
    unknown_total = False  # Content-Range: bytes a-b/* (the whole length not known: RFC 9110 14.4)

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        type(self).encodings.append(self.headers.get("Accept-Encoding"))
        if type(self).status != 200:
            self.send_response(type(self).status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if rng and not type(self).ignore_range:
            asked = int(rng.split("=")[1].split("-")[0])
            start = type(self).first_start if sum(1 for r in type(self).requests if r) == 1 else asked
            self.send_response(206)
            whole = "*" if type(self).unknown_total else len(BODY)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{whole}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "audio/mp4")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        self.wfile.write(BODY[start:])


def _served_handler():
    """The handler served with its class-held state as it starts: nothing asked yet, every answer proper."""
    _OddRangeHandler.requests, _OddRangeHandler.encodings = [], []
    _OddRangeHandler.first_start, _OddRangeHandler.unknown_total = 0, False
    _OddRangeHandler.ignore_range, _OddRangeHandler.status = False, 200
    with local_http_server(_OddRangeHandler) as url:
        yield url


@pytest.fixture
def odd_server():
    yield from _served_handler()


@pytest.mark.parametrize(("first_start", "unknown_total"), [(HELD + 4096, False), (0, False), (HELD, False),
                                                            (HELD, True)])
def test_a_resume_keeps_only_bytes_that_follow(tmp_path, odd_server, first_start, unknown_total):
    """Another range is thrown away and the file fetched whole; so is the right range when the
    whole length is not known (``bytes 100000-262143/*``): a resumed file could not be told
    complete from cut short."""
    _OddRangeHandler.first_start = first_start
    _OddRangeHandler.unknown_total = unknown_total
    dest = tmp_path / "a.m4a"
    (tmp_path / "a.m4a.part").write_bytes(BODY[:HELD])
    with PoliteClient(_settings(odd_server)) as client:
        got = download(client, URL, dest)
    assert dest.read_bytes() == BODY
    assert got.sha256 == hashlib.sha256(BODY).hexdigest() and got.bytes == len(BODY)
    assert _OddRangeHandler.requests[0] == f"bytes={HELD}-"  # it asked to resume
    if first_start == HELD + 4096 or unknown_total:  # thrown away, and the file fetched whole
        assert _OddRangeHandler.requests[1:] == [None]


def test_a_download_asks_for_the_bytes_as_stored(tmp_path, odd_server):
    """Accept-Encoding: identity. Ranges, Content-Length and the part file all count the bytes as
    stored; a body the client decoded (gzip) would make them disagree, and a resume append at
    the wrong place."""
    (tmp_path / "a.m4a.part").write_bytes(BODY[:HELD])
    _OddRangeHandler.first_start = HELD
    with PoliteClient(_settings(odd_server)) as client:
        download(client, URL, tmp_path / "a.m4a")
        download(client, URL, tmp_path / "b.m4a")
    assert _OddRangeHandler.encodings == ["identity", "identity"]


# -- room on the disk, the folder, and the blocks a download is written in -----------------------


@pytest.fixture
def whole_server():
    yield from _served_handler()


def test_a_host_that_ignores_range_has_the_file_written_from_its_start(tmp_path, whole_server):
    _OddRangeHandler.ignore_range = True
    dest = tmp_path / "a.m4a"
    (tmp_path / "a.m4a.part").write_bytes(b"\xff" * (len(BODY) + 5000))  # longer than the file, and not its bytes
    with PoliteClient(_settings(whole_server)) as client:
        got = download(client, URL, dest)
    assert _OddRangeHandler.requests == [f"bytes={len(BODY) + 5000}-"]
    assert dest.read_bytes() == BODY and got.sha256 == hashlib.sha256(BODY).hexdigest()


def test_a_download_that_fails_before_its_first_byte_leaves_no_part_file(tmp_path, whole_server):
    _OddRangeHandler.status = 404
    dest = tmp_path / "a.m4a"
    with PoliteClient(_settings(whole_server)) as client, pytest.raises(FetchError):
        download(client, URL, dest)
    assert list(tmp_path.iterdir()) == []


def _settings(url: str):
    return load_settings({"AUDIO_ASSETS_HOST_MAP": f"media.soundgasm.net={url}"})


def test_a_disk_short_of_room_stops_the_download_before_any_request(tmp_path, whole_server, monkeypatch):
    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12, 100 * 1024**2))
    dest = tmp_path / "short" / "a.m4a"
    with PoliteClient(_settings(whole_server)) as client, pytest.raises(DownloadError) as caught:
        download(client, URL, dest, min_free_bytes=512 * 1024**2)
    assert str(caught.value) == f"less than 512 MiB free in {dest.parent}; free some space and re-run"
    assert _OddRangeHandler.requests == [] and not list(dest.parent.iterdir())


def test_a_folder_s_free_space_is_read_once_a_second(tmp_path, monkeypatch):
    reads, clock = [], [1000.0]
    monkeypatch.setattr(downloads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(downloads.shutil, "disk_usage",
                        lambda p: reads.append(p) or shutil._ntuple_diskusage(10**12, 10**12, 600 * 1024**2))
    folder = tmp_path / "made" / "here"
    for _ in range(3):
        downloads.ensure_room(folder, 512 * 1024**2)
    assert folder.is_dir() and reads == [folder]
    with pytest.raises(DownloadError, match="less than 700 MiB free"):  # a higher floor: judged on the reading
        downloads.ensure_room(folder, 700 * 1024**2)
    assert reads == [folder]
    clock[0] += downloads.FREE_SPACE_READING_SECONDS
    downloads.ensure_room(folder, 512 * 1024**2)
    assert reads == [folder, folder]


def test_a_folder_removed_after_its_check_is_made_again(tmp_path, whole_server):
    dest = tmp_path / "gone" / "a.m4a"
    with PoliteClient(_settings(whole_server)) as client:
        downloads.ensure_room(dest.parent, 0)
        dest.parent.rmdir()
        got = download(client, URL, dest, min_free_bytes=0)
    assert dest.read_bytes() == BODY and got.sha256 == hashlib.sha256(BODY).hexdigest()


def test_a_body_in_many_chunks_is_written_and_hashed_in_order(tmp_path, whole_server):
    dest = tmp_path / "a.m4a"
    with PoliteClient(_settings(whole_server)) as client:
        got = download(client, URL, dest)
    assert dest.read_bytes() == BODY
    assert got.sha256 == hashlib.sha256(BODY).hexdigest() and got.bytes == len(BODY)


class _StallingHandler(BaseHTTPRequestHandler):
    """The first answer sends half the body, then stalls until ``release`` is set and drops the
    connection; later answers honour Range."""

    release = threading.Event()
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("Content-Type", "audio/mp4")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        if len(type(self).requests) == 1:
            self.wfile.write(BODY[:HELD])
            self.wfile.flush()
            type(self).release.wait(20)
            self.close_connection = True
            return
        self.wfile.write(BODY[start:])


def test_what_came_before_a_stall_is_on_disk_while_it_stalls(tmp_path):
    """A kill during the stall would keep those bytes: the next run resumes from them."""
    _StallingHandler.release, _StallingHandler.requests = threading.Event(), []
    dest = tmp_path / "a.m4a"
    part = dest.with_name(dest.name + ".part")
    with local_http_server(_StallingHandler) as url, PoliteClient(_settings(url)) as client:
        done: dict = {}
        worker = threading.Thread(target=lambda: done.update(got=download(client, URL, dest)))
        worker.start()
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not (part.exists() and part.stat().st_size == HELD):
                time.sleep(0.01)
            assert part.stat().st_size == HELD  # while the host still holds the connection open
        finally:
            _StallingHandler.release.set()
            worker.join(30)
    assert dest.read_bytes() == BODY and done["got"].sha256 == hashlib.sha256(BODY).hexdigest()
    assert _StallingHandler.requests == [None, f"bytes={HELD}-"]
