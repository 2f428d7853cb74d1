"""stash_resync: re-syncing an unchanged library to Stash (the emulator) with StashSync vs a naive
per-scene re-sync (find the scene by path, then update it)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

from benchmarks.common import BenchResult, say, temp_dir

FULL_SCENES = 5000
#: the naive baseline is timed on this many scenes at most (its requests are exactly 2 a scene)
BASELINE_SAMPLE = 300
PERFORMERS = [f"BenchVoice{n:02d}" for n in range(24)]
TAGS = [
    "F4M",
    "M4F",
    "F4F",
    "Script Fill",
    "OC",
    "Improv",
    "Sleep aid",
    "Kissing",
    "Cuddles",
    "Wholesome",
    "Teasing",
    "Romance",
    "Comfort",
    "Whispers",
    "Binaural",
    "SFX",
    "Fantasy",
    "Praise",
    "Private Fill",
    "Rain",
]


def tiny_mp4(path: Path) -> bytes:
    """One small h264 + aac mp4 (1 s), moov first so appended boxes sit at the end."""
    from audio_assets.ffmpeg_tools import run_ffmpeg

    run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=0x30204a:s=64x64:r=5:d=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-shortest",
            "-movflags",
            "+faststart",
            str(path),
        ]
    )
    return path.read_bytes()


def unique_copy(base: bytes, n: int) -> bytes:
    """The mp4 plus a trailing `free` box with a unique payload: distinct oshash and md5, same media."""
    payload = f"audio_assets benchmark copy {n:08d}".encode()
    return base + struct.pack(">I", 8 + len(payload)) + b"free" + payload


def make_wants(library: Path, count: int) -> list:
    from audio_assets.stash.sync import SceneWant

    wants = []
    for n in range(count):
        day = f"2025-{1 + (n // 300) % 12:02d}-{1 + (n // 10) % 28:02d}"
        release = f"r{n // 2:06d}"  # two variants a release
        path = library / day / f"{release}-v{n % 2}.mp4"
        perf = [PERFORMERS[n % len(PERFORMERS)]] + (
            [PERFORMERS[(n * 7 + 3) % len(PERFORMERS)]] if n % 5 == 0 else []
        )
        post = f"https://www.reddit.com/r/gonewildaudio/comments/zb{n // 2:05d}/bench_release/"
        multi = n % 8 < 4  # half the releases have a group
        wants.append(
            SceneWant(
                release_id=release,
                variant_id=f"{release}-v{n % 2}",
                release_date=day,
                video_path=str(path.relative_to(library.parent)),
                stash_path=str(path),
                title=f"Bench release {n // 2}" + (f" [variant {n % 2}]" if n % 2 else ""),
                code=f"{release}-v{n % 2}",
                date=day,
                details=f"Bench release {n // 2}\nVoices: {', '.join(perf)}\nPost: {post}",
                urls=[post, f"https://soundgasm.net/u/{perf[0]}/bench-{n}"],
                performers=[
                    {"name": p, "aliases": [p.lower()], "urls": [f"https://soundgasm.net/u/{p}"]}
                    for p in perf
                ],
                tags=[TAGS[n % 3], TAGS[3 + n % 3], TAGS[6 + n % 14]],
                studio=perf[0],
                group={
                    "name": f"Bench release {n // 2}",
                    "urls": [post],
                    "date": day,
                    "synopsis": f"Bench release {n // 2}: 2 variants",
                }
                if multi
                else None,
                scene_index=(n % 2 + 1) if multi else None,
            )
        )
    return wants


def run(scale: float, **_) -> BenchResult:
    from audio_assets.ffmpeg_tools import probe
    from audio_assets.replica.stash_emulator import StashEmulator
    from audio_assets.stash.client import StashClient
    from audio_assets.stash.sync import StashSync

    res = BenchResult("stash_resync")
    count = max(20, round(FULL_SCENES * scale))
    with temp_dir("stash") as tmp:
        library = tmp / "videos"
        library.mkdir()
        base = tiny_mp4(tmp / "tiny.mp4")
        wants = make_wants(library, count)
        t0 = time.perf_counter()
        for n, w in enumerate(wants):
            p = Path(w.stash_path)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(unique_copy(base, n))
        say(
            f"  {count:,} distinct mp4s ({len(base) + 40} bytes each) written in {time.perf_counter() - t0:.1f}s"
        )
        check = probe(wants[-1].stash_path)
        if not (check.video_codec == "h264" and check.audio_codec == "aac"):
            raise RuntimeError(f"a copy does not probe as h264+aac: {check}")

        emu = StashEmulator(library).start()
        try:
            # 1. The initial sync: scan (fingerprint + probe every file), create performers/tags/..., write scenes.
            with StashClient(emu.url) as client:
                t0 = time.perf_counter()
                rows = StashSync(client, library_root=str(library)).run(wants)
                first_s = time.perf_counter() - t0
                first = (client.requests, client.mutations)
            bad = [r for r in rows if r["status"] != "ok"]
            say(
                f"  initial sync: {first_s:.1f}s, {first[0]:,} requests, {first[1]:,} mutations, {len(bad)} not ok"
            )
            if bad:
                raise RuntimeError(f"initial sync left {len(bad)} scenes not ok, e.g. {bad[0]}")
            res.details.update(
                scenes=count,
                initial_seconds=round(first_s, 1),
                initial_requests=first[0],
                initial_mutations=first[1],
                emulator_scenes=len(emu.scenes),
            )

            # 2. The re-sync of the unchanged library: what is measured.
            req0, mut0 = emu.request_count, emu.mutation_count
            with StashClient(emu.url) as client:
                t0 = time.perf_counter()
                rows = StashSync(client, library_root=str(library)).run(wants)
                proj_s = time.perf_counter() - t0
                proj_req, proj_mut = client.requests, client.mutations
            emu_req, emu_mut = emu.request_count - req0, emu.mutation_count - mut0
            actions = {}
            for r in rows:
                actions[r["action"]] = actions.get(r["action"], 0) + 1
            say(
                f"  re-sync: {proj_s:.2f}s, {proj_req} requests ({emu_req} at the emulator), {proj_mut} mutations "
                f"({emu_mut} at the emulator), actions {actions}"
            )

            # 3. Baseline: per scene, findScenes by exact path + sceneUpdate with what the scene should hold.
            sample = rows[: min(len(rows), BASELINE_SAMPLE)]
            by_variant = {w.variant_id: w for w in wants}
            req0, mut0 = emu.request_count, emu.mutation_count
            with StashClient(emu.url) as client:
                t0 = time.perf_counter()
                for r in sample:
                    w = by_variant[r["variant_id"]]
                    found = client.execute(
                        "FindScenes",
                        {
                            "scene_filter": {"path": {"value": w.stash_path, "modifier": "EQUALS"}},
                            "filter": {"per_page": 1},
                        },
                    )["findScenes"]["scenes"]
                    client.execute(
                        "SceneUpdate",
                        {
                            "input": {
                                "id": found[0]["id"],
                                "title": w.title,
                                "code": w.code,
                                "date": w.date,
                                "details": w.details,
                                "urls": w.urls,
                                "performer_ids": json.loads(r["performer_ids"]),
                                "tag_ids": json.loads(r["tag_ids"]),
                                "studio_id": r["studio_id"],
                            }
                        },
                    )
                base_s = (time.perf_counter() - t0) * len(rows) / len(sample)
                base_req_per_scene = client.requests / len(sample)
                base_mut_per_scene = client.mutations / len(sample)
            if len(sample) < len(rows):
                res.note(
                    f"naive baseline run on {len(sample)} of {len(rows):,} scenes; its time is scaled linearly"
                )
            say(
                f"  naive re-sync: {base_req_per_scene:.2f} requests and {base_mut_per_scene:.2f} mutations a scene, "
                f"~{base_s:.1f}s for {len(rows):,} scenes"
            )
        finally:
            emu.stop()
        per_scene = proj_req / count
        res.details.update(
            project_requests=proj_req,
            project_mutations=proj_mut,
            emulator_requests=emu_req,
            emulator_mutations=emu_mut,
            project_seconds=round(proj_s, 3),
            actions=actions,
            baseline_requests_per_scene=base_req_per_scene,
            baseline_seconds=round(base_s, 2),
        )
        res.row(
            f"re-sync requests/scene ({count:,} scenes, {proj_req} requests)",
            per_scene,
            base_req_per_scene,
            "req/scene",
            per_scene / base_req_per_scene,
            "x baseline",
            "<= 0.05 req/scene",
            per_scene <= 0.05,
        )
        res.row(
            "re-sync mutations",
            proj_mut,
            base_mut_per_scene * count,
            "",
            None,
            "",
            "0 mutations",
            proj_mut == 0,
        )
        res.row("re-sync wall time", proj_s, base_s, "s", base_s / proj_s, "x faster", "(info)", None)
    return res
