"""Audio checks, acoustic fingerprints and the audio-to-mp4 wrap Stash needs.

The wrap is fast: the still image is encoded once into a short h264 segment (cached
per image and size), then looped under the audio with stream copy. No frame of the
30-minute video is encoded, and the audio is copied, not re-encoded, where mp4 allows."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import textwrap
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from audio_assets.ffmpeg_tools import FfmpegError, ffmpeg_exe, probe, run_ffmpeg

#: audio codecs mp4 holds as they are; anything else is encoded to AAC
MP4_COPYABLE_AUDIO = {"aac", "mp3", "alac", "flac", "opus", "ac3", "eac3"}
#: 5 fps keeps the cut at the audio's end within 0.2 s; one keyframe per looped segment
STILL_FPS = 5
STILL_SEGMENT_S = 4
VIDEO_SIZE = 720


@dataclass
class AudioCheck:
    ok: bool
    duration_s: float | None
    codec: str | None
    bit_rate_kbps: int | None
    error: str | None


def check_audio(path: Path, *, expected_duration_s: float | None = None, tolerance_s: float = 2.0) -> AudioCheck:
    """Decode the whole file; report its duration and codec, or why it is not audio."""
    try:
        info = probe(path)
    except FfmpegError as exc:  # named by its file, not its temporary path
        return AudioCheck(False, None, None, None, f"not audio: {str(exc).replace(str(path), path.name)}")
    if info.audio_codec is None:
        return AudioCheck(False, info.duration_s, None, None, "file has no audio stream")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "null", "-"],
        capture_output=True,
    )
    errors = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        return AudioCheck(False, info.duration_s, info.audio_codec, info.bit_rate_kbps,
                          f"audio does not decode: {errors.splitlines()[-1] if errors else proc.returncode}")
    if expected_duration_s and info.duration_s and abs(info.duration_s - expected_duration_s) > max(tolerance_s, 0.02 * expected_duration_s):
        return AudioCheck(False, info.duration_s, info.audio_codec, info.bit_rate_kbps,
                          f"duration {info.duration_s:.1f}s differs from the platform's {expected_duration_s:.1f}s")
    return AudioCheck(True, info.duration_s, info.audio_codec, info.bit_rate_kbps, None)


def fingerprint(path: Path, *, seconds: int = 120) -> str:
    """Chromaprint fingerprint (raw 32-bit sub-fingerprints, base64) of the first minutes."""
    proc = run_ffmpeg(["-v", "error", "-i", str(path), "-t", str(seconds), "-map", "0:a:0", "-ac", "1",
                       "-f", "chromaprint", "-fp_format", "raw", "-"])
    return base64.b64encode(proc.stdout).decode("ascii")


def fingerprint_similarity(a: str | None, b: str | None, *, max_offset: int = 8) -> float:
    """1 - bit error rate of the best alignment (1.0 identical; ~0.5 unrelated audio).

    Compares the raw 32-bit sub-fingerprints at offsets up to ``max_offset`` with whole-buffer
    XOR and popcount on Python integers (C speed, no per-item loop)."""
    if not a or not b:
        return 0.0
    ra, rb = base64.b64decode(a), base64.b64decode(b)
    na, nb = len(ra) // 4, len(rb) // 4
    if not na or not nb:
        return 0.0
    best = 0.0
    for off in range(-max_offset, max_offset + 1):
        start_a, start_b = max(0, -off), max(0, off)
        n = min(na - start_a, nb - start_b)
        if n < max(4, min(na, nb) // 2):
            continue
        xa = int.from_bytes(ra[start_a * 4:(start_a + n) * 4], "little")
        xb = int.from_bytes(rb[start_b * 4:(start_b + n) * 4], "little")
        best = max(best, 1.0 - (xa ^ xb).bit_count() / (32.0 * n))
    return best


def sha256_of(path: Path):
    """A sha256 hasher fed with the file's bytes (more can be added to it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def sha256_file(path: Path) -> str:
    return sha256_of(path).hexdigest()


# -- title cards and the wrap ------------------------------------------------------------

def title_card(path: Path, *, title: str, performers: list[str], audience: str | None, size: int = VIDEO_SIZE) -> Path:
    """A generated still image for releases without artwork."""
    from PIL import Image, ImageDraw, ImageFont

    seed = int(hashlib.sha1(title.encode()).hexdigest()[:6], 16)
    bg = (30 + seed % 60, 20 + (seed >> 8) % 50, 50 + (seed >> 16) % 80)
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    try:
        big = ImageFont.load_default(size=size // 14)
        small = ImageFont.load_default(size=size // 24)
    except TypeError:  # Pillow < 10.1
        big = small = ImageFont.load_default()
    y = size // 6
    for line in textwrap.wrap(title, width=22)[:6]:
        draw.text((size // 12, y), line, fill=(245, 240, 235), font=big)
        y += size // 11
    y += size // 20
    if audience:
        draw.text((size // 12, y), audience, fill=(255, 200, 120), font=small)
        y += size // 18
    if performers:
        draw.text((size // 12, y), ", ".join(performers)[:60], fill=(200, 220, 255), font=small)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(out: Path) -> int:
    """Remove the temp files (``.<name>.<pid>.part``) that processes which died mid-write (killed,
    crashed) left beside ``out``; a live process's temp file is left alone. Returns how many."""
    removed, head = 0, f".{out.name}."  # names are compared, not globbed: titles hold [ and ]
    for tmp in out.parent.iterdir() if out.parent.is_dir() else []:
        pid = tmp.name[len(head):-len(".part")]
        if tmp.name.startswith(head) and tmp.name.endswith(".part") and pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def still_segment(image: Path, cache_dir: Path, *, size: int = VIDEO_SIZE) -> Path:
    """Encode the image once as a short h264 segment, one keyframe at its start (cached by content)."""
    digest = hashlib.sha256(image.read_bytes()).hexdigest()[:24]
    out = cache_dir / f"still-{digest}-{size}-{STILL_FPS}fps.mp4"
    if out.exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    # not a video extension: a library scan (Stash) must never pick up a half-written file
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    run_ffmpeg([
        "-y", "-loop", "1", "-framerate", str(STILL_FPS), "-i", str(image), "-t", str(STILL_SEGMENT_S),
        "-vf", f"scale={size}:{size}:force_original_aspect_ratio=decrease,pad={size}:{size}:(ow-iw)/2:(oh-ih)/2,format=yuv420p",
        "-c:v", "libx264", "-tune", "stillimage", "-preset", "veryfast", "-crf", "23",
        "-bf", "0", "-g", str(STILL_FPS * STILL_SEGMENT_S), "-keyint_min", str(STILL_FPS * STILL_SEGMENT_S), "-sc_threshold", "0",
        "-r", str(STILL_FPS), "-an", "-movflags", "+faststart", "-f", "mp4", str(tmp),
    ])
    os.replace(tmp, out)
    return out


def metadata_text(value: str | None) -> str:
    """Text from outside as a tag value: no control characters (a NUL cannot even be passed to
    ffmpeg), line breaks as spaces."""
    return "".join(" " if c in "\r\n\t" else c for c in (value or "")
                   if c in "\r\n\t" or unicodedata.category(c) != "Cc").strip()


@dataclass
class RenderResult:
    path: Path
    duration_s: float
    audio_duration_s: float
    video_codec: str | None
    audio_codec: str | None
    audio_copied: bool
    seconds: float
    settings: str


def render(audio: Path, image: Path, out: Path, *, cache_dir: Path, metadata: dict[str, str] | None = None,
           size: int = VIDEO_SIZE) -> RenderResult:
    """Wrap an audio file as an mp4 with a real h264 still-image video stream."""
    started = time.perf_counter()
    info = probe(audio)
    if info.audio_codec is None or not info.duration_s:
        raise FfmpegError(f"{audio}: no audio stream to wrap")
    segment = still_segment(image, cache_dir, size=size)
    copy_audio = info.audio_codec in MP4_COPYABLE_AUDIO
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)  # a render killed earlier left its temp file: it goes now
    # not a video extension: a library scan (Stash) must never pick up a half-written file
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    meta_args: list[str] = []
    for key, value in (metadata or {}).items():
        value = metadata_text(value)
        if value:
            meta_args += ["-metadata", f"{key}={value}"]
    audio_args = ["-c:a", "copy"] if copy_audio else ["-c:a", "aac", "-b:a", "192k"]
    run_ffmpeg([
        "-y", "-stream_loop", "-1", "-i", str(segment), "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *audio_args,
        "-t", f"{info.duration_s:.3f}", "-map_metadata", "-1", *meta_args,
        "-movflags", "+faststart", "-f", "mp4", str(tmp),
    ])
    result = probe(tmp)
    if not result.has_real_video or result.duration_s is None or abs(result.duration_s - info.duration_s) > 0.5:
        tmp.unlink(missing_ok=True)
        raise FfmpegError(
            f"wrapped {audio.name} is off: duration {result.duration_s} vs audio {info.duration_s}, video {result.video_codec}"
        )
    os.replace(tmp, out)
    return RenderResult(
        path=out, duration_s=result.duration_s, audio_duration_s=info.duration_s, video_codec=result.video_codec,
        audio_codec=result.audio_codec, audio_copied=copy_audio, seconds=time.perf_counter() - started,
        settings=f"still {size}x{size} h264 {STILL_FPS}fps looped, audio {'copy' if copy_audio else 'aac 192k'}",
    )
