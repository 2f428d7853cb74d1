"""Audio checks, fingerprints and the still-image wrap."""

from pathlib import Path

import polars as pl
import pytest

from audio_assets import media
from audio_assets.ffmpeg_tools import probe, run_ffmpeg


def _tone(path: Path, seed: int, seconds: float, codec: list[str]) -> Path:
    """A seeded random melody (chromaprint needs audio that changes over time)."""
    import array
    import math
    import random
    import wave

    rnd, rate = random.Random(seed), 11025
    samples = array.array("h")
    t = 0
    while t < seconds * rate:
        freq, length = rnd.choice([220, 262, 294, 330, 392, 440, 523, 587, 659, 784]), rnd.randint(rate // 8, rate // 3)
        samples.extend(int(12000 * math.sin(2 * math.pi * freq * i / rate) * (1 - i / length)) for i in range(length))
        t += length
    raw = path.with_suffix(".raw.wav")
    with wave.open(str(raw), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples[: int(seconds * rate)].tobytes())
    run_ffmpeg(["-y", "-i", str(raw), "-ar", "44100", *codec, str(path)])
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "m4a": _tone(d / "a.m4a", 1, 6, ["-c:a", "aac"]),
        "mp3": _tone(d / "a.mp3", 1, 6, ["-c:a", "libmp3lame"]),
        "other": _tone(d / "b.m4a", 2, 6, ["-c:a", "aac"]),
        "wav": _tone(d / "c.wav", 3, 3, ["-c:a", "pcm_s16le"]),
        "dir": d,
    }


def test_check_audio(audio, tmp_path):
    ok = media.check_audio(audio["m4a"])
    assert ok.ok and ok.codec == "aac" and ok.duration_s == pytest.approx(6, abs=0.1)
    html = tmp_path / "page.m4a"
    html.write_text("<html>not audio</html>")
    assert not media.check_audio(html).ok
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(audio["mp3"].read_bytes()[:200])
    assert not media.check_audio(cut, expected_duration_s=6).ok
    assert "differs" in media.check_audio(audio["m4a"], expected_duration_s=60).error


def test_fingerprint_tells_mirrors_from_other_recordings(audio):
    fa, fb, fo = (media.fingerprint(audio[k]) for k in ("m4a", "mp3", "other"))
    assert media.fingerprint_similarity(fa, fb) > 0.85  # m4a and mp3 of one recording
    assert media.fingerprint_similarity(fa, fo) < 0.8


def test_render_wraps_with_real_video_and_copied_audio(audio, tmp_path):
    card = media.title_card(tmp_path / "card.png", title="A Title", performers=["Someone"], audience="F4M")
    r = media.render(audio["m4a"], card, tmp_path / "out.mp4", cache_dir=tmp_path / "cache", metadata={"title": "A Title"})
    info = probe(r.path)
    assert info.has_real_video and info.video_codec == "h264" and info.audio_codec == "aac"
    assert abs(info.duration_s - 6) <= 0.5 and r.audio_copied
    r2 = media.render(audio["wav"], card, tmp_path / "wav.mp4", cache_dir=tmp_path / "cache")
    assert not r2.audio_copied and probe(r2.path).audio_codec == "aac"
    assert len(list((tmp_path / "cache").glob("still-*.mp4"))) == 1  # one encoded still per image


def test_the_wrap_is_swappable_for_a_stash_with_native_audio(audio, tmp_path, monkeypatch):
    import json

    from audio_assets.layers import rendering
    from audio_assets.layers.releases import RELEASE_SCHEMA, VARIANT_SCHEMA
    from audio_assets.layers.sources import frame
    from audio_assets.settings import load_settings

    settings = load_settings({"AUDIO_ASSETS_DATA": str(tmp_path / "data")})
    (settings.data_root / "audio").mkdir(parents=True)
    src = settings.data_root / "audio" / "a.m4a"
    src.write_bytes(audio["m4a"].read_bytes())
    rel = frame([{"release_id": "rel_x", "title": "T", "performers": json.dumps(["P"]), "post_urls": "[]",
                  "release_date": "2025-08-01", "artwork_path": None}], RELEASE_SCHEMA)
    var = frame([{"release_id": "rel_x", "variant_id": "rel_x_1", "release_date": "2025-08-01", "variant_index": 0,
                  "label": "", "audio_path": "audio/a.m4a", "audio_sha256": "s", "status": "ok"}], VARIANT_SCHEMA)
    monkeypatch.setenv("AUDIO_ASSETS_STASH_MEDIA", "audio")
    [row] = rendering.build_rendered_videos(settings, rel, var, None).to_dicts()
    assert row["status"] == "ok" and row["video_path"].endswith(".m4a") and not row["rendered"]
    monkeypatch.setenv("AUDIO_ASSETS_STASH_MEDIA", "mp4")
    [row] = rendering.build_rendered_videos(settings, rel, var, None).to_dicts()
    assert row["video_path"].endswith(".mp4") and row["rendered"] and row["video_codec"] == "h264"
    monkeypatch.setenv("AUDIO_ASSETS_STASH_MEDIA", "flac-please")
    with pytest.raises(ValueError):
        rendering.render_mode()



def test_a_video_made_by_a_killed_run_is_not_made_again(audio, tmp_path):
    """A run killed after an mp4 was finished but before its row was saved: the next run finds
    the render's manifest (same inputs, same file) and keeps the video instead of making it again."""
    import json

    from audio_assets.layers import rendering
    from audio_assets.layers.releases import RELEASE_SCHEMA, VARIANT_SCHEMA
    from audio_assets.layers.sources import frame
    from audio_assets.settings import load_settings

    settings = load_settings({"AUDIO_ASSETS_DATA": str(tmp_path / "data")})
    (settings.data_root / "audio").mkdir(parents=True)
    (settings.data_root / "audio" / "a.m4a").write_bytes(audio["m4a"].read_bytes())
    rel = frame([{"release_id": "rel_k", "title": "Kept", "performers": json.dumps(["P"]), "post_urls": "[]",
                  "release_date": "2025-08-01", "artwork_path": None}], RELEASE_SCHEMA)
    var = frame([{"release_id": "rel_k", "variant_id": "rel_k_1", "release_date": "2025-08-01", "variant_index": 0,
                  "label": "", "audio_path": "audio/a.m4a", "audio_sha256": "s1", "status": "ok"}], VARIANT_SCHEMA)
    [first] = rendering.build_rendered_videos(settings, rel, var, None).to_dicts()
    assert first["rendered"]
    video = settings.data_root / first["video_path"]
    made = video.stat().st_mtime_ns
    [again] = rendering.build_rendered_videos(settings, rel, var, None).to_dicts()  # no saved rows
    assert not again["rendered"] and video.stat().st_mtime_ns == made
    assert {k: v for k, v in again.items() if k != "rendered"} == {k: v for k, v in first.items() if k != "rendered"}
    # other inputs (a new audio) are rendered again
    var2 = var.with_columns(audio_sha256=pl.lit("s2"))
    [third] = rendering.build_rendered_videos(settings, rel, var2, None).to_dicts()
    assert third["rendered"]
