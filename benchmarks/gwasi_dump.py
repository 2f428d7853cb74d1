"""Generate a GWASI dump in the real sharded format: delta.json + base_<v>/N.json."""

from __future__ import annotations

import json
import random
from pathlib import Path

from audio_assets.replica.corpus import base36

AUTHORS = [
    f"Voice{n}_{random.Random(n).choice(['ASMR', 'VA', 'Audio', 'Whispers', 'Dan', 'Rose'])}"
    for n in range(4000)
]
TAGS = [
    "[F4M]",
    "[M4F]",
    "[F4F]",
    "[F4A]",
    "[FF4M]",
    "[Script Fill]",
    "[OC]",
    "[Improv]",
    "[Script Offer]",
    "[SFX]",
    "[ASMR]",
    "[Sleep aid]",
    "[Kissing]",
    "[Cuddles]",
    "[Wholesome]",
    "[Teasing]",
    "[Romance]",
    "[Comfort]",
]
WORDS = (
    "your girlfriend comes home after a long day and finds you asleep on the couch with the lights "
    "still on so she decides to wake you gently with whispers and kisses"
).split()
FLAIRS = ["Script Fill", "OC", "Script Offer", "", "Ramblefap", "Verification"]


def entry(i: int, rnd: random.Random, start: int, span: int) -> list:
    title = (
        " ".join(rnd.sample(TAGS, rnd.randint(2, 5)))
        + " "
        + " ".join(rnd.choices(WORDS, k=rnd.randint(6, 18)))
    )
    length = round(rnd.uniform(30, 600)) if rnd.random() < 0.85 else -round(rnd.uniform(3, 40), 1)
    e = [
        base36(1_000_000_000 + i * 7),
        "gonewildaudio",
        rnd.choice(AUTHORS),
        rnd.choice(FLAIRS),
        title,
        start + rnd.randrange(span),
        rnd.randint(0, 900),
        length,
    ]
    if rnd.random() < 0.7:  # GWASI keeps mentions and text that did not fit the title: ~500 bytes an entry
        e.append(
            " ".join(f"u/{rnd.choice(AUTHORS)}" for _ in range(rnd.randint(1, 3)))
            + " "
            + " ".join(rnd.choices(WORDS, k=rnd.randint(30, 90)))
        )
    return e


def generate(
    root: Path, entries: int = 5_400_000, shards: int = 700, seed: int = 7, version: str = "b3nch0000a"
) -> dict:
    """Write the dump; returns sizes. ~500 bytes an entry, like the user's 2.7 GB for 5.4M."""
    rnd = random.Random(seed)
    start, span = 1_388_534_400, 12 * 365 * 86400  # 2014 .. 2026
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"base_{version}"
    folder.mkdir(exist_ok=True)
    per = -(-entries // shards)
    total_bytes = 0
    for n in range(shards):
        lo, hi = n * per, min(entries, (n + 1) * per)
        body = json.dumps(
            {"entries": [entry(i, rnd, start, span) for i in range(lo, hi)], "off": []}, separators=(",", ":")
        )
        (folder / f"{n + 1}.json").write_text(body)
        total_bytes += len(body)
    delta = {
        "base": version,
        "entries": [entry(entries + i, rnd, start + span - 86400, 86400) for i in range(500)],
        "fills": {},
        "flairs": {},
        "removed": [],
        "scores": [],
    }
    (root / "delta.json").write_text(json.dumps(delta))
    return {"entries": entries, "shards": shards, "bytes": total_bytes}


if __name__ == "__main__":
    import sys

    print(generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5_400_000))
