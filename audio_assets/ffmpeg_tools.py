"""Locating and running the ffmpeg binary shipped by the imageio-ffmpeg package.

No system ffmpeg is needed: imageio-ffmpeg bundles a static build (with libx264,
aac, libmp3lame, flac, drawtext and the chromaprint muxer)."""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


@functools.cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class FfmpegError(RuntimeError):
    """ffmpeg failed; the message carries the command's last stderr lines."""


def run_ffmpeg(args: list[str], *, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg with -hide_banner -nostdin and raise FfmpegError on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:])
        raise FfmpegError(f"ffmpeg exited {proc.returncode}: {tail}")
    return proc


@dataclass(frozen=True)
class MediaProbe:
    """What `ffmpeg -i` says about a media file (imageio-ffmpeg ships no ffprobe)."""

    duration_s: float | None
    audio_codec: str | None
    video_codec: str | None
    width: int | None
    height: int | None
    video_is_attached_pic: bool
    bit_rate_kbps: int | None

    @property
    def has_real_video(self) -> bool:
        return self.video_codec is not None and not self.video_is_attached_pic


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_BITRATE = re.compile(r"Duration:.*?bitrate:\s*(\d+)\s*kb/s")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: ([A-Za-z0-9_]+)")
_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: ([A-Za-z0-9_]+)(.*)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")


def parse_ffmpeg_info(stderr: str) -> MediaProbe:
    """Parse the stream summary ffmpeg prints to stderr for `ffmpeg -i FILE`."""
    duration = None
    m = _DURATION.search(stderr)
    if m:
        h, mi, s = m.groups()
        duration = int(h) * 3600 + int(mi) * 60 + float(s)
    b = _BITRATE.search(stderr)
    a = _AUDIO.search(stderr)
    video_codec = width = height = None
    attached = False
    for vm in _VIDEO.finditer(stderr):
        rest = vm.group(2)
        is_pic = "attached pic" in rest
        if video_codec is not None and is_pic:
            continue
        video_codec = vm.group(1)
        attached = is_pic
        sm = _SIZE.search(rest)
        if sm:
            width, height = int(sm.group(1)), int(sm.group(2))
        if not is_pic:
            break
    return MediaProbe(
        duration_s=duration,
        audio_codec=a.group(1) if a else None,
        video_codec=video_codec,
        width=width,
        height=height,
        video_is_attached_pic=attached,
        bit_rate_kbps=int(b.group(1)) if b else None,
    )


def probe(path: str | Path, *, timeout: float = 60) -> MediaProbe:
    """Probe a media file. Raises FfmpegError when ffmpeg cannot read it at all."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        timeout=timeout,
    )
    text = proc.stderr.decode("utf-8", "replace")
    info = parse_ffmpeg_info(text)
    if info.duration_s is None and info.audio_codec is None and info.video_codec is None:
        tail = "\n".join(text.strip().splitlines()[-3:])
        raise FfmpegError(f"not a readable media file: {path}: {tail}")
    return info
