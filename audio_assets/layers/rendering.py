"""rendered_videos: every audio variant wrapped as an mp4 Stash can scan.

The wrap step is swappable (``RENDER_MODES``): ``still`` (default) wraps the audio with
a still-image h264 stream; Stash may one day take audio natively, and then a mode that
hands Stash the audio file itself is a setting, not a rewrite."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import polars as pl

from audio_assets import media
from audio_assets.downloads import safe_name, within
from audio_assets.layers.sources import B, F, I, S, frame, rel
from audio_assets.settings import Settings

RENDER_VERSION = "still-v1"
#: what Stash is handed: "mp4" (audio wrapped with a still image, works with stock Stash) or
#: "audio" (the audio file itself, for a Stash with native audio or an audio plugin)
RENDER_MODES = ("mp4", "audio")


def render_mode(env: dict | None = None) -> str:
    mode = ((os.environ if env is None else env).get("AUDIO_ASSETS_STASH_MEDIA") or "mp4").strip().lower()
    if mode not in RENDER_MODES:
        raise ValueError(f"AUDIO_ASSETS_STASH_MEDIA={mode!r}: use one of {', '.join(RENDER_MODES)}")
    return mode
VIDEO_SCHEMA = {
    "release_id": S, "variant_id": S, "release_date": S, "video_path": S, "audio_path": S, "image_path": S,
    "image_kind": S, "duration_s": F, "audio_duration_s": F, "video_codec": S, "audio_codec": S, "audio_copied": B,
    "render_settings": S, "render_key": S, "render_seconds": F, "rendered": B, "bytes": I, "status": S, "error": S,
}


def video_name(release: dict, variant: dict) -> str:
    performers = json.loads(release["performers"] or "[]")
    who = safe_name(performers[0] if performers else "unknown", max_len=40)
    title = safe_name(release["title"], max_len=90)
    label = f" [{safe_name(variant['label'], max_len=20)}]" if variant["label"] else ""
    return f"{who}/{title}{label} - {variant['variant_id']}.mp4"


def build_rendered_videos(settings: Settings, releases: pl.DataFrame, variants: pl.DataFrame,
                          previous: pl.DataFrame | None) -> pl.DataFrame:
    prev = {r["variant_id"]: r for r in previous.iter_rows(named=True)} if previous is not None else {}
    rel_by_id = {r["release_id"]: r for r in releases.iter_rows(named=True)}
    cache_dir = settings.data_root / "cache" / "stills"
    rows = []
    for v in variants.iter_rows(named=True):
        release = rel_by_id[v["release_id"]]
        base = {"release_id": v["release_id"], "variant_id": v["variant_id"], "release_date": v["release_date"]}
        if v["status"] != "ok" or not v["audio_path"]:
            rows.append({**base, "status": "no_audio", "error": release["status_reason"] or "variant has no downloaded audio"})
            continue
        try:
            audio = settings.data_root / v["audio_path"]
            performers = json.loads(release["performers"] or "[]")
            if release["artwork_path"]:
                image, image_kind = settings.data_root / release["artwork_path"], "artwork"
            else:
                image_kind = "title_card"
                image = settings.data_root / "cache" / "title_cards" / f"{release['release_id']}.png"
                if not image.exists():
                    media.title_card(image, title=release["title"] or release["release_id"], performers=performers,
                                     audience=v["audience"])
            if render_mode() == "audio":
                rows.append(_hand_over_audio(settings, release, v, base, audio))
                continue
            out = within(settings.data_root, settings.videos_dir / video_name(release, v))
            post_urls = json.loads(release["post_urls"] or "[]")
            metadata = {"title": f"{release['title']}{' [' + v['label'] + ']' if v['label'] else ''}",
                        "artist": ", ".join(performers), "date": release["release_date"],
                        "comment": post_urls[0] if post_urls else ""}
            key = hashlib.sha256(json.dumps([RENDER_VERSION, v["audio_sha256"], hashlib.sha256(image.read_bytes()).hexdigest(),
                                             metadata], sort_keys=True).encode()).hexdigest()[:20]
            old = prev.get(v["variant_id"])
            if old and old["render_key"] == key and old["status"] == "ok" and (settings.data_root / old["video_path"]).exists():
                rows.append({**old, "rendered": False})
                continue
            # a run killed after this video was made (before its row was saved) left its manifest
            manifest = settings.data_root / "cache" / "renders" / f"{out.name}.json"
            done = _read_manifest(manifest)
            if done and done.get("render_key") == key and out.exists() and out.stat().st_size == done.get("bytes"):
                rows.append({**done, **base, "rendered": False})
                continue
            result = media.render(audio, image, out, cache_dir=cache_dir, metadata=metadata)
            if old and old["video_path"] and old["video_path"] != rel(settings, out):
                (settings.data_root / old["video_path"]).unlink(missing_ok=True)
            row = {**base, "video_path": rel(settings, out), "audio_path": v["audio_path"], "image_path": rel(settings, image),
                   "image_kind": image_kind, "duration_s": result.duration_s, "audio_duration_s": result.audio_duration_s,
                   "video_codec": result.video_codec, "audio_codec": result.audio_codec, "audio_copied": result.audio_copied,
                   "render_settings": result.settings, "render_key": key, "render_seconds": result.seconds,
                   "rendered": True, "bytes": out.stat().st_size, "status": "ok"}
            _write_manifest(manifest, row)
            rows.append(row)
        except Exception as exc:  # noqa: BLE001 - one bad variant never takes the day down
            rows.append({**base, "audio_path": v["audio_path"], "status": "error",
                         "error": f"render of {v['variant_id']} failed: {type(exc).__name__}: {exc}"[:2000]})
    return frame(rows, VIDEO_SCHEMA)


def _read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_manifest(path: Path, row: dict) -> None:
    """What a finished render made (its row), written atomically beside nothing Stash scans."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(row, sort_keys=True))
    os.replace(tmp, path)


def _hand_over_audio(settings: Settings, release: dict, variant: dict, base: dict, audio) -> dict:
    """The "audio" mode: the library gets the audio file itself (linked, not copied), no render."""
    from audio_assets.ffmpeg_tools import probe

    out = within(settings.data_root, settings.videos_dir / video_name(release, variant)).with_suffix(audio.suffix)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(audio, out)
        except OSError:
            shutil.copy2(audio, out)
    info = probe(out)
    return {**base, "video_path": rel(settings, out), "audio_path": variant["audio_path"], "image_kind": "none",
            "duration_s": info.duration_s, "audio_duration_s": info.duration_s, "audio_codec": info.audio_codec,
            "audio_copied": True, "render_settings": "audio handed to Stash as it is (AUDIO_ASSETS_STASH_MEDIA=audio)",
            "render_key": f"audio:{variant['audio_sha256']}", "render_seconds": 0.0, "rendered": False,
            "bytes": out.stat().st_size, "status": "ok"}
