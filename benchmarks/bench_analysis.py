"""analysis: posts per second through `analysis.analyse_posts` (the batch API: the calling process
and worker processes) over the whole corpus, and through `analysis.analyse_post` in one process,
vs a trivial pass."""

from __future__ import annotations

import marshal
import os
import random
import subprocess
import sys
import time

from benchmarks.common import ROOT, BenchResult, run_child, say, temp_dir

FULL_POSTS = 1_000_000
TARGET_POSTS_PER_S = 50_000
#: the single-process loop stops after this long (its rate is what is measured); --full lifts it
TIME_CAP_S = 60.0

VOICES = [
    f"{a}{b}"
    for a in ("Sleepy", "Velvet", "Honey", "Mochi", "Briar", "Aurora", "Lunar", "Kitty", "Rowan", "Dusk")
    for b in ("_Whispers", "VA", "Audio", "_ASMR", "Voice", "Rose", "Murmurs", "Moth")
]
WRITERS = [
    f"{a}{b}"
    for a in ("Quill", "Ink", "Lady_", "Enno_", "Writing", "Script", "Page", "Story")
    for b in ("Lexicon", "Smith", "Zalenno2", "Jedi", "Witch", "Monster", "Turner", "Weaver")
]
AUDIENCES = ["[F4M]", "[M4F]", "[F4F]", "[F4A]", "[FF4M]", "[M4M]", "[F4TM]", "[MF4F]", "[F4M] [F4F]"]
KINDS = ["[Script Fill]", "[OC]", "[Improv]", "[Script Offer]", "[Ramblefap]", ""]
FLAIR_OF = {
    "[Script Fill]": "Script Fill",
    "[OC]": "OC",
    "[Improv]": "OC",
    "[Script Offer]": "Script Offer",
    "[Ramblefap]": "Ramblefap",
    "": "",
}
TAGS = [
    "[Sleep aid]",
    "[Kissing]",
    "[Cuddles]",
    "[Wholesome]",
    "[Teasing]",
    "[Romance]",
    "[Comfort]",
    "[Whispers]",
    "[Girlfriend Experience]",
    "[Binaural]",
    "[SFX]",
    "[Fantasy]",
    "[Monster Girl]",
    "[Slow Burn]",
    "{Soft}",
    "[Praise]",
    "[Friends to Lovers]",
    "[Rain sounds]",
    "[Ear Licking]",
    "[Established Relationship]",
]
PHRASES = (
    "your girlfriend comes home after a long day and finds you asleep on the couch so she wakes you gently "
    "with whispers and kisses before a cozy night in under the blankets while the rain keeps falling"
).split()


def slug(rnd: random.Random, sep: str = "-") -> str:
    return sep.join(rnd.choices(PHRASES, k=rnd.randint(3, 7)))


def make_post(n: int, rnd: random.Random) -> tuple:
    voice, writer = rnd.choice(VOICES), rnd.choice(WRITERS)
    kind = rnd.choice(KINDS)
    tags = rnd.sample(TAGS, rnd.randint(1, 5))
    title_words = " ".join(rnd.choices(PHRASES, k=rnd.randint(4, 12))).capitalize()
    title = " ".join(filter(None, [rnd.choice(AUDIENCES), kind, *tags[:2], title_words, *tags[2:]]))
    lines = []
    if kind == "[Script Offer]":
        lines.append(
            f"Hello writers! A {rnd.randint(800, 4000)} word script. "
            f"[Script on scriptbin](https://scriptbin.works/u/{writer}/{slug(rnd)})"
        )
        lines.append(f"Please credit me (u/{writer}) and link this post when you fill it.")
    else:
        sg = f"https://soundgasm.net/u/{voice}/{slug(rnd)}"
        style = rnd.random()
        if style < 0.45:
            lines.append(f"[Soundgasm]({sg})")
        elif style < 0.7:
            lines.append(f"**[LISTEN HERE]({sg})**")
        else:
            lines.append(sg)
        if rnd.random() < 0.35:
            lines.append(f"[Whyp.it](https://whyp.it/tracks/{rnd.randint(100000, 999999)}/{slug(rnd)})")
        if rnd.random() < 0.2:
            lines.append(f"[No SFX version](https://soundgasm.net/u/{voice}/{slug(rnd)}-no-sfx)")
        if rnd.random() < 0.1:
            lines.append(f"[HotAudio](https://hotaudio.net/u/{voice}/{slug(rnd)})")
        if kind == "[Script Fill]":
            how = rnd.random()
            if how < 0.4:
                lines.append(f"[Script](https://scriptbin.works/u/{writer}/{slug(rnd)}) by u/{writer}")
            elif how < 0.7:
                lines.append(
                    f"Script written by the amazing u/{writer}! "
                    f"[Original offer](https://www.reddit.com/r/gonewildaudio/comments/{rnd.randint(10**9, 10**10):x}/{slug(rnd, '_')}/)"
                )
            elif how < 0.85:
                lines.append(f"Thank you to u/{writer} for this wonderful script (private fill)")
            else:
                lines.append(f"Privately written by u/{writer} <3")
        if rnd.random() < 0.25:
            lines.append(f"Collab with u/{rnd.choice(VOICES)}, go follow her!")
        if rnd.random() < 0.15:
            lines.append(f"SFX by u/{rnd.choice(VOICES)} and art by u/{rnd.choice(WRITERS)}")
        if rnd.random() < 0.2:
            lines.append(f"![cover](https://i.imgur.com/{rnd.randint(10**6, 10**7):x}.png)")
    lines.append(" ".join(rnd.choices(PHRASES, k=rnd.randint(15, 80))).capitalize() + ".")
    if rnd.random() < 0.5:
        lines.append(
            f"Find all my audios on [my soundgasm](https://soundgasm.net/u/{voice}) and "
            f"[my linktree](https://linktr.ee/{voice}) <3"
        )
    body = "\n\n".join(lines)
    extra = f"u/{writer} " + " ".join(rnd.choices(PHRASES, k=20)) if rnd.random() < 0.3 else None
    return (f"z{n:07x}", title, body, voice, FLAIR_OF[kind] or None, extra)


def make_posts(count: int, seed: int = 11) -> list[tuple]:
    rnd = random.Random(seed)
    return [make_post(n, rnd) for n in range(count)]


#: the system's own CPython, if it is another build than the one running the benchmarks: analysis
#: is pure Python, so the interpreter's build (a distribution's optimised build; a pyenv build
#: without --enable-optimizations is not) is part of its speed
SYSTEM_PYTHON = "/usr/bin/python3"

CHILD = r"""
import marshal, sys, time
from audio_assets.analysis import analyse_posts
if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        posts = marshal.load(f)
    t0 = time.perf_counter()
    n = sum(1 for _ in analyse_posts(posts))
    print(n, time.perf_counter() - t0)
"""


def _system_python() -> tuple[str, str] | None:
    """(path, version) of the system's CPython when it is 3.11+ and not the interpreter running this."""
    if not os.path.exists(SYSTEM_PYTHON) or os.path.realpath(SYSTEM_PYTHON) == os.path.realpath(sys._base_executable):
        return None
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 11), sys.version.split()[0])"],
                             capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (SYSTEM_PYTHON, out[1]) if out and out[0] == "True" else None


def _time_under_system_python(res: BenchResult, posts: list[tuple], base_rate: float) -> None:
    """The same batch under the system's interpreter, in the same run, as an INFO row (an
    interpreter's build is a large part of pure-Python speed)."""
    system = _system_python()
    if system is None:
        return
    path, version = system
    with temp_dir("analysis") as tmp:
        with open(tmp / "posts.marshal", "wb") as f:
            marshal.dump(posts, f)
        child = run_child([path, "-c", CHILD, str(tmp / "posts.marshal")], cwd=ROOT,
                          env_vars={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)})
    if child.returncode != 0:
        res.note(f"analyse_posts under {path} failed: {child.stderr[-500:]}")
        return
    n, seconds = child.stdout.split()
    rate = int(n) / float(seconds)
    say(f"  analyse_posts under {path} (Python {version}): {rate:,.0f} posts/s")
    res.details.update(system_python=f"{path} {version}", system_python_seconds=round(float(seconds), 2))
    res.row(f"posts/s, the same batch under {path} (Python {version}, the system's build)", rate, base_rate,
            "posts/s", rate / base_rate, "x baseline", "(info)", None)


def run(scale: float, full: bool = False, **_) -> BenchResult:
    from audio_assets.analysis import POOL_MIN_POSTS, analyse_post, analyse_posts

    res = BenchResult("analysis")
    count = max(2000, round(FULL_POSTS * scale))
    say(f"  generating {count:,} posts ...")
    t0 = time.perf_counter()
    posts = make_posts(count)
    res.details.update(
        posts=count,
        generate_seconds=round(time.perf_counter() - t0, 1),
        mean_body_chars=round(sum(len(p[2]) for p in posts) / count),
        cpus=os.cpu_count(),
    )

    # A sanity check that the templates are read as GWA posts (links found, credits found).
    sample = [
        analyse_post(post_id=p[0], title=p[1], body=p[2], author=p[3], flair=p[4], extra=p[5])
        for p in posts[:2000]
    ]
    res.details.update(
        sample_with_audio_links=sum(bool(a.audio_links) for a in sample),
        sample_with_scribe=sum(bool(a.scribe) for a in sample),
        sample_size=len(sample),
    )

    def baseline() -> int:
        n = 0
        for _pid, title, body, _a, _f, _e in posts:
            title.lower()
            n += body.count("http")
        return n

    def single() -> int:
        """analyse_post in a loop; stop at the time cap (unless --full) and return how many were done."""
        done = 0
        start = time.perf_counter()
        for lo in range(0, count, 1000):
            for pid, title, body, author, flair, extra in posts[lo : lo + 1000]:
                analyse_post(post_id=pid, title=title, body=body, author=author, flair=flair, extra=extra)
            done = min(count, lo + 1000)
            if not full and time.perf_counter() - start > TIME_CAP_S:
                break
        return done

    def batch() -> int:
        """analyse_posts over every post (worker processes started and stopped inside); each result
        is taken as it comes, as the pipeline does; the first ones are checked against analyse_post's."""
        done = 0
        for a in analyse_posts(posts):
            if done < len(sample) and a != sample[done]:
                raise AssertionError(f"analyse_posts differs from analyse_post at post {done}")
            done += 1
        return done

    t0 = time.perf_counter()
    baseline()
    base_s = time.perf_counter() - t0
    base_rate = count / base_s
    say(f"  trivial pass: {base_s:.2f}s")

    t0 = time.perf_counter()
    done = batch()
    batch_s = time.perf_counter() - t0
    if done != count:
        raise AssertionError(f"analyse_posts gave {done:,} results for {count:,} posts")
    batch_rate = count / batch_s
    mode = (
        f"{os.cpu_count()} processes"
        if count >= POOL_MIN_POSTS and (os.cpu_count() or 1) > 1
        else "1 process"
    )
    say(f"  analyse_posts ({mode}): {batch_s:.2f}s, {batch_rate:,.0f} posts/s")

    t0 = time.perf_counter()
    single_done = single()
    single_s = time.perf_counter() - t0
    single_rate = single_done / single_s
    if single_done < count:
        res.note(
            f"analyse_post timed on the first {single_done:,} of {count:,} posts: stopped at the {TIME_CAP_S:.0f}s cap "
            f"(--full runs them all); the rate is per post, so it does not depend on the count"
        )
    say(f"  analyse_post: {single_s:.2f}s, {single_rate:,.0f} posts/s ({1e6 / single_rate:.1f} us a post)")
    res.details.update(
        batch_seconds=round(batch_s, 2),
        batch_mode=mode,
        single_seconds=round(single_s, 2),
        single_posts=single_done,
        baseline_seconds=round(base_s, 3),
    )
    res.row(
        f"posts/s ({count:,} posts, analyse_posts, {mode})",
        batch_rate,
        base_rate,
        "posts/s",
        batch_rate / base_rate,
        "x baseline",
        f">= {TARGET_POSTS_PER_S:,} posts/s",
        batch_rate >= TARGET_POSTS_PER_S,
        "worker start-up included",
    )
    _time_under_system_python(res, posts, base_rate)
    res.row(
        "posts/s (analyse_post, 1 process)",
        single_rate,
        base_rate,
        "posts/s",
        single_rate / base_rate,
        "x baseline",
        "-",
        None,
    )
    return res
