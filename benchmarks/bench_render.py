"""render: wrapping an audio as a Stash-ready mp4 vs the usual libx264 command and a plain remux."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import BenchResult, best_of, say, temp_dir, timed

FULL_SECONDS = 30 * 60
X264_CUT_SECONDS = 180


def make_audio(path: Path, seconds: float) -> None:
    """A GWA-like AAC .m4a: a tone under pink noise, stereo, 128 kb/s."""
    from audio_assets.ffmpeg_tools import run_ffmpeg

    run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=220:duration={seconds}:sample_rate=44100",
            "-f",
            "lavfi",
            "-i",
            f"anoisesrc=duration={seconds}:color=pink:amplitude=0.05:sample_rate=44100",
            "-filter_complex",
            "amix=inputs=2:duration=shortest,aformat=channel_layouts=stereo",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            str(path),
        ]
    )


def x264_command(image: Path, audio: Path, out: Path) -> list[str]:
    return [
        "-y",
        "-loop",
        "1",
        "-i",
        str(image),
        "-i",
        str(audio),
        "-c:v",
        "libx264",
        "-tune",
        "stillimage",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-pix_fmt",
        "yuv420p",
        "-shortest",
        str(out),
    ]


def run(scale: float, full: bool = False, **_) -> BenchResult:
    from audio_assets import media
    from audio_assets.ffmpeg_tools import probe, run_ffmpeg

    res = BenchResult("render")
    seconds = max(20.0, round(FULL_SECONDS * scale))
    with temp_dir("render") as tmp:
        audio, image = tmp / "audio.m4a", tmp / "art.png"
        say(f"  generating a {seconds / 60:.1f}-minute AAC audio ...")
        gen_s, _ = timed(make_audio, audio, seconds)
        media.title_card(
            image,
            title="Your Sleepy Girlfriend Whispers You To Sleep",
            performers=["Voice_ASMR"],
            audience="F4M",
        )
        info = probe(audio)
        res.details.update(
            audio_seconds=info.duration_s, audio_bytes=audio.stat().st_size, generate_seconds=round(gen_s, 2)
        )

        # The project: cold (empty still cache: the image is encoded once) and warm (cached still).
        colds = []
        for n in range(2):
            cache = tmp / f"cache_cold_{n}"
            t, r = timed(media.render, audio, image, tmp / f"cold_{n}.mp4", cache_dir=cache)
            colds.append(t)
        cold = min(colds)
        warm = best_of(3, media.render, audio, image, tmp / "warm.mp4", cache_dir=tmp / "cache_cold_0")
        out = probe(tmp / "warm.mp4")
        ok = out.has_real_video and abs((out.duration_s or 0) - info.duration_s) <= 0.5
        res.details.update(
            project_cold_s=round(cold, 3),
            project_warm_s=round(warm, 3),
            output=f"{out.video_codec} {out.width}x{out.height} + {out.audio_codec}, "
            f"{out.duration_s:.2f}s vs audio {info.duration_s:.2f}s",
            output_ok=ok,
        )
        say(f"  project render: cold {cold:.3f}s, warm {warm:.3f}s -> {res.details['output']}")
        if not ok:
            res.note("the project's mp4 is NOT Stash-ready (no real video stream or duration off by > 0.5 s)")

        # Baseline 1: a plain remux (-c copy): the floor for anything that writes an mp4.
        remux = best_of(3, run_ffmpeg, ["-y", "-i", str(audio), "-c", "copy", str(tmp / "remux.mp4")])
        say(f"  plain remux: {remux:.3f}s")

        # Baseline 2: the usual still-image command, libx264 over every frame.
        if seconds > X264_CUT_SECONDS and not full:
            cut = tmp / "cut.m4a"
            run_ffmpeg(["-y", "-i", str(audio), "-t", str(X264_CUT_SECONDS), "-c", "copy", str(cut)])
            cut_s = probe(cut).duration_s or X264_CUT_SECONDS
            say(
                f"  libx264 command on a {cut_s:.0f}s cut (scaled linearly to {info.duration_s:.0f}s; --full runs it all) ..."
            )
            t, _ = timed(run_ffmpeg, x264_command(image, cut, tmp / "x264.mp4"))
            x264 = t * info.duration_s / cut_s
            res.note(
                f"libx264 timed on a {cut_s:.0f}s cut ({t:.1f}s) and scaled linearly x{info.duration_s / cut_s:.1f}"
            )
            res.details.update(x264_measured_s=round(t, 2), x264_cut_s=cut_s, x264_scaled=True)
        else:
            say(f"  libx264 command on the whole {info.duration_s:.0f}s ...")
            x264, _ = timed(run_ffmpeg, x264_command(image, audio, tmp / "x264.mp4"))
            res.details.update(x264_scaled=False)
        res.details.update(x264_s=round(x264, 2), remux_s=round(remux, 4))
        say(f"  libx264 command: {x264:.1f}s")

        minutes = f"{info.duration_s / 60:.1f} min"
        res.row(
            f"cold render vs libx264 ({minutes})",
            cold,
            x264,
            "s",
            x264 / cold,
            "x faster",
            ">= 100x faster",
            ok and x264 / cold >= 100,
        )
        res.row(
            f"cold render vs remux ({minutes})",
            cold,
            remux,
            "s",
            cold / remux,
            "x remux",
            "<= 3x remux",
            ok and cold / remux <= 3,
        )
        res.row(
            f"warm render vs remux ({minutes})",
            warm,
            remux,
            "s",
            warm / remux,
            "x remux",
            "<= 3x remux",
            ok and warm / remux <= 3,
        )
    return res
