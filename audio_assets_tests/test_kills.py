"""SIGKILL in the middle of a download or a render leaves nothing half-written in place, and
the next run finishes the job (a download resumes where it stopped)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from http.server import BaseHTTPRequestHandler

import pytest

from .conftest import local_http_server

BODY = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)  # 3 MiB


class _SlowHandler(BaseHTTPRequestHandler):
    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        start = 0
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "audio/mp4")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        try:
            for i in range(start, len(BODY), 64 * 1024):
                self.wfile.write(BODY[i:i + 64 * 1024])
                self.wfile.flush()
                if not rng:
                    time.sleep(0.05)  # the first attempt is slow enough to be killed half-way
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def slow_server():
    _SlowHandler.ranges = []
    with local_http_server(_SlowHandler) as url:
        yield url


DOWNLOADER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from audio_assets.downloads import download
    from audio_assets.http_client import PoliteClient
    from audio_assets.settings import load_settings
    settings = load_settings({"AUDIO_ASSETS_HOST_MAP": "media.soundgasm.net=" + sys.argv[1]})
    with PoliteClient(settings) as client:
        got = download(client, "https://media.soundgasm.net/sounds/" + "a" * 40 + ".m4a", Path(sys.argv[2]))
    print(got.sha256)
""")


def test_a_killed_download_leaves_no_file_in_place_and_resumes(tmp_path, slow_server):
    dest = tmp_path / "audio" / "x.m4a"
    part = dest.with_name(dest.name + ".part")
    proc = subprocess.Popen([sys.executable, "-c", DOWNLOADER, slow_server, str(dest)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 256 * 1024):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not dest.exists() and 0 < part.stat().st_size < len(BODY)
    had = part.stat().st_size
    out = subprocess.run([sys.executable, "-c", DOWNLOADER, slow_server, str(dest)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert dest.read_bytes() == BODY and not part.exists()
    assert out.stdout.strip() == hashlib.sha256(BODY).hexdigest()
    assert _SlowHandler.ranges[-1] == f"bytes={had}-"  # resumed, not restarted


RENDERER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from audio_assets import media
    media.render(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), cache_dir=Path(sys.argv[4]))
""")


def test_a_killed_render_never_leaves_a_partial_mp4(tmp_path):
    from audio_assets import media
    from audio_assets.ffmpeg_tools import probe, run_ffmpeg

    seconds = 900
    audio = tmp_path / "long.m4a"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:a=0.1", "-ac", "1", "-c:a", "aac", "-b:a", "24k",
                str(audio)])
    image = media.title_card(tmp_path / "card.png", title="Kill me", performers=["Someone"], audience="F4M")
    out = tmp_path / "videos" / "x.mp4"
    proc = subprocess.Popen([sys.executable, "-c", RENDERER, str(audio), str(image), str(out), str(tmp_path / "c")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(out.parent.glob(".x.mp4.*.part")) and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # mid-render: the temp file exists, the real name does not
    proc.wait()
    assert not out.exists() or abs(probe(out).duration_s - seconds) < 0.5
    assert not [p for p in out.parent.iterdir() if p.suffix in (".mp4", ".m4v") and p != out]  # nothing Stash would scan
    result = subprocess.run([sys.executable, "-c", RENDERER, str(audio), str(image), str(out), str(tmp_path / "c")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info.has_real_video and abs(info.duration_s - seconds) < 0.5
