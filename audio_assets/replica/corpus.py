"""Deterministic sample corpus of r/gonewildaudio releases for the local replica.

`build_corpus(seed)` describes a small but realistic slice of GWA (posts, GWASI index
entries, scriptbin scripts, soundgasm / whyp.it / hotaudio uploads, artwork) together
with the ground truth a correct pipeline must recover (`Corpus.releases`).
`render_media(corpus, out_dir)` writes every media file the replica serves.

Everything is pure and seeded: the same seed gives identical objects. Nothing reads the
clock or the global random generator.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import html
import json
import os
import random
import re
import string
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "VariantTruth",
    "ReleaseTruth",
    "Corpus",
    "build_corpus",
    "render_media",
    "media_durations",
    "synth_params",
    "reddit_slug",
    "markdown_to_html",
]

DEFAULT_SEED = 20250801
FIRST_DAY = dt.date(2025, 7, 20)
LAST_DAY = dt.date(2025, 8, 5)
SUBREDDIT = "gonewildaudio"
SUBREDDIT_ID = "t5_2u463"
RENDER_VERSION = 3


# ---------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------


@dataclass
class VariantTruth:
    label: str  # "" for a single-audio release, else e.g. "F4M", "F4F", "SFX", "No SFX"
    audio_id: str  # the recording
    urls: list[str]  # every audio PAGE url of this recording linked from the release's post(s)
    downloadable: bool  # False when only hotaudio / removed


@dataclass
class ReleaseTruth:
    key: str
    title: str
    post_ids: list[str]
    day: str
    performers: list[str]
    scribe: str | None
    script_url: str | None
    script_offer_post_id: str | None
    private_fill: bool
    kind: str
    audiences: list[str]
    variants: list[VariantTruth]
    status: str  # "ok" | "hotaudio_only" | "deleted" | "audio_removed" | "reddit_missing"
    artwork_url: str | None


@dataclass
class Corpus:
    seed: int
    days: list[str]
    releases: list[ReleaseTruth]
    reddit_posts: dict[str, dict]
    gwasi_entries: list[list]
    gwasi_base_version: str
    gwasi_delta_days: int
    scripts: dict[str, dict]
    soundgasm: dict[str, dict]
    whypit: dict[int, dict]
    hotaudio: dict[str, dict]
    images: dict[str, str]
    # --- extras (not part of the minimal spec, handy for tests and the server) ---
    gwasi_fills: dict[str, list[str]] = field(default_factory=dict)  # script offer id -> fill ids
    script_offer_post_ids: list[str] = field(default_factory=list)
    special_cases: dict[str, list[str]] = field(default_factory=dict)  # case -> release keys / ids
    extra_links: dict[str, list[str]] = field(default_factory=dict)  # release key -> unserved links
    # Patreon posts (post id -> record). Linked from no Reddit post, so the pipeline's outputs
    # over the Reddit corpus do not depend on them; tests fetch them by their URL.
    patreon: dict[str, dict] = field(default_factory=dict)
    # The test user's own patreon.com `session_id` cookie: a patron of every paid post above.
    patreon_session_id: str = ""

    def audio_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for rel in self.releases:
            for v in rel.variants:
                seen.setdefault(v.audio_id, None)
        for table in (self.soundgasm, self.whypit, self.hotaudio):
            for rec in table.values():
                seen.setdefault(rec["audio_id"], None)
        return list(seen)

    def release(self, key: str) -> ReleaseTruth:
        for rel in self.releases:
            if rel.key == key:
                return rel
        raise KeyError(key)

    def day_of(self, post_id: str) -> str:
        for e in self.gwasi_entries:
            if e[0] == post_id:
                return _day_str(e[5])
        raise KeyError(post_id)

    def spec_hash(self) -> str:
        """Content hash of the media the corpus needs (what render_media produces)."""
        return hashlib.sha256(json.dumps(_media_spec(self), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

# (reddit name, soundgasm name, gender)
PERFORMERS: list[tuple[str, str, str]] = [
    ("SnakeySmut", "SnakeySmut", "F"),
    ("alekirser", "alekirser", "F"),
    ("Lurkydip", "LurkyDip", "F"),
    ("VelvetVixenVA", "velvetvixenva", "F"),
    ("sleepy_sirena", "Sleepy_Sirena", "F"),
    ("HoneyHollowAudio", "HoneyHollowAudio", "F"),
    ("MochiMurmurs", "MochiMurmurs", "F"),
    ("BriarRoseVA", "BriarRoseVA", "F"),
    ("Aurora_Whispers", "Aurora_Whispers", "F"),
    ("CrimsonCadence", "CrimsonCadence", "F"),
    ("DeepwoodDan", "DeepwoodDan", "M"),
    ("GentleGiantVA", "GentleGiantVA", "M"),
    ("Oaken_Baritone", "Oaken_Baritone", "M"),
    ("starlit_nb", "Starlit_NB", "NB"),
]
SG_NAME = {r: s for r, s, _ in PERFORMERS}
GENDER = {r: g for r, _, g in PERFORMERS}
SCRIBES = [
    "Enno_Zalenno2",
    "TheWritingJedi",
    "inkwell_iris",
    "PenAndPillowTalk",
    "ScribbleSmith",
    "Lady_Lexicon",
    "quillfeather_scripts",
]
SOUND_DESIGNERS = ["EchoForge", "RainOnTin Studio"]
ARTISTS = ["pixel_peach", "MoonlitSketches"]

TITLES = [
    "Your Roommate Finally Admits She Likes You",
    "The Librarian Who Shushes You For A Reason",
    "Cozy Cabin Night During The Snowstorm",
    "Your Rival Wants A Truce Tonight",
    "Falling Asleep On A Long Train Ride",
    "The Witch Next Door Needs A Taste Tester",
    "Comforting You After A Terrible Day",
    "A Mermaid Pulls You Under The Waves",
    "Your Best Friend's Confession At The Party",
    "The Barista Remembers Your Order",
    "Lazy Sunday Morning In Bed",
    "Vampire Queen Claims Her New Pet",
    "Stargazing On The Roof",
    "The Tutor Who Is Too Distracting",
    "Your Girlfriend Helps You Sleep",
    "The Haunted Lighthouse Keeper",
    "Rainy Day Cuddles And Whispers",
    "A Succubus With Terrible Timing",
    "Your Boss Stays Late With You",
    "Picnic In The Sunflower Field",
    "The Dragon Who Hoards Compliments",
    "Nurse Checks Up On You",
    "Welcome Home, I Missed You",
    "Bratty Princess Learns Her Lesson",
    "The Fox Spirit At The Shrine",
    "Your Ex Shows Up At Midnight",
    "Slow Dance In The Kitchen",
    "Tsundere Classmate Walks You Home",
    "Massage After The Marathon",
    "The Siren's Lullaby",
    "Camping Under The Meteor Shower",
    "Your Wife Wants A Date Night In",
    "A Knight Returns From Battle",
    "Gamer Girl Loses A Bet",
    "The Bakery Closes Early Tonight",
    "Elf Ranger Patches You Up",
    "Hotel Room With Only One Bed",
    "Sleepy Boyfriend Holds You Close",
    "Your Husband Missed You On The Trip",
    "The Prince Who Hates Balls",
    "A Gentle Giant's Bedtime Story",
    "Catgirl Demands Head Pats",
    "The Mad Scientist's Willing Subject",
    "Morning After The Wedding",
    "A Ghostwriter Writes You In",
    "Road Trip Motel Confessions",
    "The Yandere Who Just Wants You Safe",
    "Soft Spoken Study Session",
    "A Demon Summoned By Mistake",
    "Lighthouse Storm Shelter",
    "Your Neighbor Borrows More Than Sugar",
    "Warm Bath After A Cold Walk",
    "The Queen's Personal Guard",
    "Lost In The Enchanted Forest",
    "Teasing You Through The Movie",
    "Midnight Snack Raid",
    "Pillow Fort For Two",
    "Your Partner Reads You Poetry",
    "The Android Learns To Feel",
    "Sunset On The Pier",
    "Hiking Buddy Gets Flirty",
    "Late Night Radio Host",
    "Ice Skating Lesson Gone Sweet",
    "The Innkeeper's Warmest Room",
    "Spa Day With Your Girlfriend",
    "Your Shy Coworker's Secret Crush",
    "The Sorceress Trades A Kiss For A Spell",
    "Wrapped In Blankets During A Blackout",
    "Heartbeat Against Your Ear",
    "Dinner Date That Never Ends",
    "The Pirate Captain's Treasure",
    "Goodnight Kisses From Your Wife",
    "A Forest Nymph Finds You Resting",
    "The Last Dance Of Summer",
    "Back Scratches And Bad Jokes",
    "Cottagecore Girlfriend Bakes For You",
    "Moonlit Swim At The Lake",
    "A Very Long Hug",
    "Your Favorite Streamer Calls You",
    "Bookstore Closing Time",
]

CONTENT_TAGS = [
    "SFX",
    "ASMR",
    "Sleep aid",
    "Kissing",
    "Cuddles",
    "Wholesome",
    "Fdom",
    "Praise",
    "Slow burn",
    "Comfort",
    "Girlfriend Experience",
    "Fantasy",
    "Monster Girl",
    "Soft Spoken",
    "Teasing",
    "Romance",
    "Confession",
    "Friends to Lovers",
    "Whispers",
    "Binaural",
    "Heartbeat",
    "Rain sounds",
]

INTROS = [
    "Hey GWA!",
    "Hi everyone! I'm so excited to finally share this one.",
    "Hello lovelies ♡",
    "Back again with something a little different!",
    "This one took me ages to edit but I'm really proud of it.",
    "Happy weekend, friends!",
    "Okay so I've been sitting on this one for a while...",
    "Hiya! Another one for you tonight.",
    "",
]
OUTROS = [
    "Thank you for listening ♡",
    "Hope you enjoy! Let me know what you think in the comments.",
    "Stay hydrated & take care of yourselves!",
    "As always, feedback is very welcome :)",
    "Sweet dreams!",
    "Thanks for all the love on my last post!!",
    "",
]
SCRIPT_LINES = [
    "Oh, you're finally here. I was starting to think you'd forgotten about me.",
    "Come in, come in, it's freezing out there. Let me take your coat.",
    "No, don't look at me like that. I can feel my face turning red already.",
    "I made tea. Well, I tried to make tea. It's mostly just hot water with ambition.",
    "Shh. Just listen for a second. Can you hear the rain on the window?",
    "You always do this, you know. You act all tough and then you melt the second I touch you.",
    "Tell me about your day. All of it. Even the boring parts.",
    "I've wanted to say this for a really long time, so please don't laugh.",
    "There. Isn't that better? Just breathe with me. In... and out.",
    "Do you remember the first time we met? You spilled coffee all over my notes.",
    "I'm not going anywhere. I promise. I'll be right here when you wake up.",
    "You're warm. Has anyone ever told you that you're really, really warm?",
    "Okay, okay, I admit it. I might have planned this whole evening.",
    "Lay your head here. Right on my chest. Can you hear how fast my heart is going?",
    "Mm, you smell like the ocean. Did you walk home along the beach again?",
    "Hey. Look at me. You did so well today. I'm proud of you.",
    "If you keep smiling like that I'm never going to finish this sentence.",
    "We have all night. There's no rush, so let's take our time.",
    "Close your eyes. I want you to imagine we're somewhere far away from everything.",
    "You're teasing me again. Two can play at that game, you know.",
]
STAGE_DIRECTIONS = [
    "[SFX: door creaks open]",
    "[SFX: rain against the window]",
    "(giggles)",
    "(soft sigh)",
    "[whispering]",
    "(kiss)",
    "[pause]",
    "[SFX: fireplace crackling]",
    "(laughs softly)",
    "[moving closer to the mic]",
    "[yawns]",
]
SCRIPT_NOTES = [
    "Feel free to change pet names and small details to suit your style.",
    "Improv is welcome! Add SFX if you like, but they're not required.",
    "Gender-flips are fine, just tag them appropriately.",
    "Please credit me and link back to this post when you post your fill.",
    "Monetisation is fine for this one, just let me know so I can listen!",
]


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC).timestamp()


def _day_str(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def base36(n: int) -> str:
    """A Reddit-style base-36 id."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _alnum(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def reddit_slug(title: str, limit: int = 50, sep: str = "_") -> str:
    """Reddit's permalink slug: lower-case words joined by `_`, cut at a word under `limit`."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    out = ""
    for w in words:
        cand = f"{out}{sep}{w}" if out else w
        if len(cand) > limit:
            break
        out = cand
    return out or "untitled"


def _sg_slug(title: str) -> str:
    return "-".join(re.findall(r"[A-Za-z0-9]+", title))


def _whyp_slug(title: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", title.lower()))


def _u(name: str, escape: bool) -> str:
    return "u/" + (name.replace("_", "\\_") if escape else name)


def _length_text(seconds: int) -> str:
    m, s = divmod(seconds, 60)
    if m >= 60:
        h, m = divmod(m, 60)
        return f"{h}h {m}m {s}s"
    return f"{m}m {s}s"


_PLATFORM_LABEL = {"soundgasm": "Soundgasm", "whypit": "Whyp", "hotaudio": "HotAudio"}
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BARE_URL = re.compile(r"https?://[^\s<>\"]+")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _md_unescape(text: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!~^>])", r"\1", text)


def _inline(text: str) -> str:
    text = html.escape(_md_unescape(text), quote=False)

    def bare(m: re.Match) -> str:
        url = m.group(0)
        trail = ""
        while url and url[-1] in ".,!?:;)":
            trail = url[-1] + trail
            url = url[:-1]
        return f'<a href="{url}">{url}</a>{trail}'

    text = _BARE_URL.sub(bare, text)
    return _BOLD.sub(r"<strong>\1</strong>", text)


def markdown_to_html(md: str) -> str:
    """A small subset of Reddit markdown rendered the way Reddit's selftext_html looks."""
    paras = [p.strip("\n") for p in md.split("\n\n") if p.strip()]
    out = []
    for p in paras:
        pieces = []
        pos = 0
        for m in _MD_LINK.finditer(p):
            pieces.append(_inline(p[pos : m.start()]))
            href = html.escape(_md_unescape(m.group(2)), quote=True)
            label = _BOLD.sub(r"<strong>\1</strong>", html.escape(_md_unescape(m.group(1)), quote=False))
            pieces.append(f'<a href="{href}">{label}</a>')
            pos = m.end()
        pieces.append(_inline(p[pos:]))
        out.append("<p>" + "".join(pieces) + "</p>")
    return '<!-- SC_OFF --><div class="md">' + "\n\n".join(out) + "\n</div><!-- SC_ON -->"


def synth_params(seed: int, audio_id: str) -> dict:
    """The synthetic recording behind an audio id: a random melody plus seeded noise."""
    rng = random.Random(f"{seed}:audio:{audio_id}")
    duration = round(rng.uniform(3.2, 5.8), 2)
    notes = []
    t = 0.0
    prev = None
    while t < duration - 0.05:
        length = round(rng.uniform(0.18, 0.5), 3)
        midi = rng.randint(52, 84)
        while midi == prev:
            midi = rng.randint(52, 84)
        prev = midi
        freq = round(440.0 * 2 ** ((midi - 69) / 12), 3)
        notes.append([round(t, 3), round(min(duration, t + length), 3), freq])
        t += length
    return {
        "duration": duration,
        "notes": notes,
        "noise_seed": rng.randint(1, 2**31 - 1),
        "noise_amp": round(rng.uniform(0.01, 0.03), 4),
        "harmonic": round(rng.uniform(0.1, 0.3), 3),
    }


# ---------------------------------------------------------------------------
# Corpus construction
# ---------------------------------------------------------------------------

# Anchors: the real posts and tracks of the two example releases.
T_OFFER_SHY = _utc(2025, 7, 31, 14, 2, 41)  # 1me43oy
T_MILK = _utc(2025, 8, 1, 20, 41, 17)  # 1mf0zav
T_SHY = _utc(2025, 8, 1, 21, 20, 41)  # 1mf1onp
ID_OFFER_SHY, ID_MILK, ID_SHY = "1me43oy", "1mf0zav", "1mf1onp"
REDDIT_RATE = (int(ID_MILK, 36) - int(ID_OFFER_SHY, 36)) / (T_MILK - T_OFFER_SHY)  # ids per second
WHYP_MILK, WHYP_SHY = 299338, 299350
WHYP_RATE = (WHYP_SHY - WHYP_MILK) / (T_SHY - T_MILK)


@dataclass
class _Offer:
    key: str  # scriptbin key USER/slug
    scribe: str
    title: str
    audience: str
    tags: list[str]
    ts: float
    post_id: str = ""
    fixed_id: str | None = None
    short_link: bool = False
    fills: list[str] = field(default_factory=list)  # release keys


@dataclass
class _Plan:
    key: str
    title: str
    ts: float
    poster: str
    partners: list[str]
    scribe: str | None
    kind: str
    private_fill: bool
    script_key: str | None
    offer: _Offer | None
    audiences: list[str]
    labels: list[str]  # variant labels ([""] for a single audio)
    platforms: list[str]  # soundgasm / whypit / hotaudio, in link order
    whyp_public: bool
    tags: list[str]
    artwork: bool
    minutes_s: int  # nominal length in seconds (what titles, GWASI and hotaudio report)
    special: str | None = None
    post_id: str = ""
    fixed_id: str | None = None


class _Builder:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.days = []
        d = FIRST_DAY
        while d <= LAST_DAY:
            self.days.append(d)
            d += dt.timedelta(days=1)
        self.scripts: dict[str, dict] = {}
        self.soundgasm: dict[str, dict] = {}
        self.whypit: dict[int, dict] = {}
        self.hotaudio: dict[str, dict] = {}
        self.images: dict[str, str] = {}
        self.reddit_posts: dict[str, dict] = {}
        self.gwasi_entries: list[list] = []
        self.releases: list[ReleaseTruth] = []
        self.special: dict[str, list[str]] = {}
        self.extra_links: dict[str, list[str]] = {}
        self.used_titles: set[str] = set()
        self.used_ids: set[str] = {ID_OFFER_SHY, ID_MILK, ID_SHY}
        self.used_whyp: set[int] = {WHYP_MILK, WHYP_SHY}
        self.whyp_users: dict[str, dict] = {}
        self.image_counter = 0
        self.short_codes: set[str] = set()

    # -- random pieces -------------------------------------------------------
    def title(self) -> str:
        choices = [t for t in TITLES if t not in self.used_titles]
        t = self.rng.choice(choices)
        self.used_titles.add(t)
        return t

    def ts_on(self, day: dt.date, lo_h: float = 0.5, hi_h: float = 23.5) -> float:
        base = _utc(day.year, day.month, day.day)
        return float(int(base + self.rng.uniform(lo_h, hi_h) * 3600))

    def tags(self, n_lo: int = 1, n_hi: int = 4, exclude: tuple[str, ...] = ()) -> list[str]:
        pool = [t for t in CONTENT_TAGS if t not in exclude]
        return self.rng.sample(pool, self.rng.randint(n_lo, n_hi))

    def audience_for(self, performers: list[str]) -> str:
        genders = [GENDER[p] for p in performers]
        if len(performers) == 1:
            g = genders[0]
            if g == "NB":
                return self.rng.choice(["NB4M", "NB4A"])
            if g == "F":
                return self.rng.choices(["F4M", "F4F", "F4A"], weights=[6, 1, 2])[0]
            return self.rng.choices(["M4F", "M4A", "M4M"], weights=[6, 2, 1])[0]
        listener = "A" if ("M" in genders and "F" in genders) else ("F" if "M" in genders else "M")
        return "".join(genders) + "4" + listener

    def reddit_id(self, ts: float) -> str:
        n = int(int(ID_MILK, 36) + (ts - T_MILK) * REDDIT_RATE) + self.rng.randint(-400, 400)
        while base36(n) in self.used_ids:
            n += 1
        pid = base36(n)
        self.used_ids.add(pid)
        return pid

    def whyp_id(self, ts: float) -> int:
        n = int(WHYP_MILK + (ts - T_MILK) * WHYP_RATE) + self.rng.randint(-2, 2)
        while n in self.used_whyp:
            n += 1
        self.used_whyp.add(n)
        return n

    def image(self, host: str) -> str:
        self.image_counter += 1
        if host == "i.imgur.com":
            url = f"https://i.imgur.com/{_alnum(self.rng, 7)}.{self.rng.choice(['png', 'jpg'])}"
        elif host == "i.redd.it":
            url = f"https://i.redd.it/{_alnum(self.rng, 13, string.ascii_lowercase + string.digits)}.{self.rng.choice(['png', 'jpg'])}"
        else:
            raise ValueError(host)
        self.images[url] = f"img{self.image_counter:03d}"
        return url

    def whyp_user(self, name: str) -> dict:
        if name not in self.whyp_users:
            self.whyp_users[name] = {
                "id": 4000 + len(self.whyp_users) * 97 + self.rng.randint(0, 90),
                "username": name,
                "slug": name.lower().replace("_", "-"),
            }
        return dict(self.whyp_users[name])

    # -- scripts -------------------------------------------------------------
    def make_script(
        self, scribe: str, title: str, audience: str, tags: list[str], public: bool = True
    ) -> str:
        slug = reddit_slug(f"[{audience}] {title}", sep="-")
        key = f"{scribe}/{slug}"
        r = random.Random(f"{self.seed}:script:{key}")
        target = r.randint(300, 2000)
        lines: list[str] = []
        words = 0
        block = 0
        while words < target:
            n = r.randint(1, 4)
            for _ in range(n):
                if r.random() < 0.25:
                    line = r.choice(STAGE_DIRECTIONS)
                else:
                    line = " ".join(r.sample(SCRIPT_LINES, r.randint(1, 3)))
                lines.append(line)
                words += len(line.split())
            lines.append("")
            block += 1
        while lines and lines[-1] == "":
            lines.pop()
        header = [f"[{audience}] {title}", "", r.choice(SCRIPT_NOTES), ""]
        text = "\n".join(header + lines)
        perf, listen = audience.split("4", 1)
        code = _alnum(self.rng, 6)
        while code in self.short_codes:
            code = _alnum(self.rng, 6)
        self.short_codes.add(code)
        self.scripts[key] = {
            "username": scribe,
            "slug": slug,
            "title": title,
            "tags": list(tags),
            "audience": audience,
            "performers_text": ", ".join(perf) if len(perf) > 1 and perf != "NB" else perf,
            "listeners_text": "Anyone" if listen == "A" else listen,
            "text": text,
            "short_code": code,
            "public_listed": public,
        }
        return key

    @staticmethod
    def script_url(key: str) -> str:
        return f"https://scriptbin.works/u/{key}"

    # -- build ---------------------------------------------------------------
    def build(self) -> Corpus:
        rng = self.rng
        days = self.days
        self.used_titles.update(
            {"Threesome At The Milk Maid Cafe!", "Shy Ghost Girl Possesses You To Feel Pleasure Again"}
        )

        # Script offers ---------------------------------------------------------
        shy_tags = ["Shy", "Ghost Girl", "Possession", "Wholesome", "Comfort"]
        self.scripts_key_shy = self.make_script(
            "TheWritingJedi", "Shy Ghost Girl Possesses You To Feel Pleasure Again", "F4M", shy_tags
        )
        offers = [
            _Offer(
                self.scripts_key_shy,
                "TheWritingJedi",
                "Shy Ghost Girl Possesses You To Feel Pleasure Again",
                "F4M",
                shy_tags,
                T_OFFER_SHY,
                fixed_id=ID_OFFER_SHY,
            )
        ]
        offer_days = [2, 4, 6, 8, 13, 15]  # indices into days
        offer_scribes = [
            "inkwell_iris",
            "PenAndPillowTalk",
            "ScribbleSmith",
            "Lady_Lexicon",
            "quillfeather_scripts",
            "TheWritingJedi",
        ]
        for i, (di, scribe) in enumerate(zip(offer_days, offer_scribes, strict=True)):
            title = self.title()
            aud = "F4M" if i != 3 else "F4A"
            tags = self.tags(2, 4, exclude=("SFX",))
            key = self.make_script(scribe, title, aud, tags, public=(i != 4))
            offers.append(
                _Offer(key, scribe, title, aud, tags, self.ts_on(days[di], 1, 12), short_link=(i == 5))
            )
        double_offer = offers[1]
        single_offers = offers[2:5]
        # offers[5], offers[6] stay unfilled

        plans: list[_Plan] = []

        def new_plan(
            key: str,
            day_idx: int | None = None,
            *,
            poster: str | None = None,
            partners: list[str] | None = None,
            kind: str | None = None,
            labels: list[str] | None = None,
            offer: _Offer | None = None,
            special: str | None = None,
            platforms: list[str] | None = None,
            after: float | None = None,
        ) -> _Plan:
            if poster is None:
                poster = rng.choice(
                    [p for p, _, _ in PERFORMERS if p not in ("SnakeySmut", "alekirser", "Lurkydip")]
                    + ["Lurkydip", "SnakeySmut"]
                )
            partners = partners or []
            if kind is None:
                kind = rng.choices(["script_fill", "oc", "improv"], weights=[6, 2, 1.2])[0]
            if offer is not None:
                kind = "script_fill"
            scribe = None
            script_key = None
            private = False
            title = offer.title if offer else self.title()
            if kind == "script_fill":
                if offer is not None:
                    scribe, script_key = offer.scribe, offer.key
                elif rng.random() < 0.3:
                    scribe, private = rng.choice(SCRIBES), True
                else:
                    scribe = rng.choice(SCRIBES)
            if offer is not None:
                audiences = [offer.audience]
            else:
                audiences = [self.audience_for([poster, *partners])]
            if kind == "script_fill" and offer is None and not private:
                script_key = self.make_script(scribe, title, audiences[0], self.tags(2, 4, exclude=("SFX",)))
            labels = labels or [""]
            if labels == ["F4M", "F4F"]:
                audiences = ["F4M", "F4F"]
            if platforms is None:
                platforms = rng.choices(
                    [
                        ["soundgasm"],
                        ["soundgasm", "whypit"],
                        ["whypit"],
                        ["hotaudio", "soundgasm"],
                        ["hotaudio", "soundgasm", "whypit"],
                        ["whypit", "soundgasm"],
                    ],
                    weights=[40, 22, 10, 10, 8, 6],
                )[0]
            if after is not None:
                base_day = dt.datetime.fromtimestamp(after, tz=dt.UTC).date()
                ts = self.ts_on(base_day + dt.timedelta(days=day_idx or 1))
            else:
                if day_idx is None:
                    day_idx = rng.randrange(len(days))
                ts = self.ts_on(days[day_idx])
            tags = self.tags(1, 4, exclude=("SFX",) if "SFX" in labels else ())
            if "SFX" in labels and "SFX" not in tags:
                tags.insert(0, "SFX")
            p = _Plan(
                key=key,
                title=title,
                ts=ts,
                poster=poster,
                partners=partners,
                scribe=scribe,
                kind=kind,
                private_fill=private,
                script_key=script_key,
                offer=offer,
                audiences=audiences,
                labels=labels,
                platforms=platforms,
                whyp_public=rng.random() < 0.6,
                tags=tags,
                artwork=rng.random() < 0.5,
                minutes_s=rng.randint(7 * 60, 38 * 60),
                special=special,
            )
            if offer is not None:
                offer.fills.append(key)
            plans.append(p)
            return p

        # The two real examples ------------------------------------------------
        milk = _Plan(
            key="milk-maid-cafe",
            title="Threesome At The Milk Maid Cafe!",
            ts=T_MILK,
            poster="SnakeySmut",
            partners=["alekirser"],
            scribe="Enno_Zalenno2",
            kind="script_fill",
            private_fill=True,
            script_key=None,
            offer=None,
            audiences=["FF4M"],
            labels=[""],
            platforms=["soundgasm", "whypit"],
            whyp_public=False,
            tags=["Collab", "Maids", "Cafe", "Two Girls", "Teasing"],
            artwork=True,
            minutes_s=24 * 60 + 51,
            special="milk",
            fixed_id=ID_MILK,
        )
        shy = _Plan(
            key="shy-ghost-girl",
            title="Shy Ghost Girl Possesses You To Feel Pleasure Again",
            ts=T_SHY,
            poster="Lurkydip",
            partners=[],
            scribe="TheWritingJedi",
            kind="script_fill",
            private_fill=False,
            script_key=self.scripts_key_shy,
            offer=offers[0],
            audiences=["F4M"],
            labels=[""],
            platforms=["hotaudio", "soundgasm", "whypit"],
            whyp_public=True,
            tags=["Ghost Girl", "Shy", "Possession", "Wholesome"],
            artwork=False,
            minutes_s=18 * 60 + 7,
            special="shy",
            fixed_id=ID_SHY,
        )
        offers[0].fills.append("shy-ghost-girl")
        plans += [milk, shy]

        # Special cases ------------------------------------------------------------
        counter = iter(range(1, 1000))

        def k() -> str:
            return f"r{next(counter):03d}"

        collab_pairs = [
            ("VelvetVixenVA", ["DeepwoodDan"]),
            ("BriarRoseVA", ["MochiMurmurs", "GentleGiantVA"]),
            ("Oaken_Baritone", ["Aurora_Whispers"]),
        ]
        for i, (poster, partners) in enumerate(collab_pairs):
            p = new_plan(
                k(),
                [3, 9, 14][i],
                poster=poster,
                partners=partners,
                kind=["script_fill", "oc", "script_fill"][i],
                platforms=[["soundgasm", "whypit"], ["hotaudio", "soundgasm"], ["soundgasm"]][i],
            )
            if not p.tags or "Collab" not in p.tags:
                p.tags.insert(0, "Collab")
            self.special.setdefault("collab", []).append(p.key)
        for i, poster in enumerate(["HoneyHollowAudio", "CrimsonCadence"]):
            p = new_plan(
                k(),
                [5, 11][i],
                poster=poster,
                labels=["F4M", "F4F"],
                kind=["script_fill", "oc"][i],
                platforms=[["soundgasm"], ["soundgasm", "whypit"]][i],
            )
            self.special.setdefault("audience_variants", []).append(p.key)
        for i, poster in enumerate(["Aurora_Whispers", "GentleGiantVA"]):
            p = new_plan(
                k(),
                [7, 12][i],
                poster=poster,
                labels=["SFX", "No SFX"],
                kind=["improv", "script_fill"][i],
                platforms=[["soundgasm", "whypit"], ["soundgasm"]][i],
            )
            self.special.setdefault("sfx_variants", []).append(p.key)
        # one script offer filled by two performers on different days
        p1 = new_plan(
            k(),
            2,
            poster="MochiMurmurs",
            offer=double_offer,
            after=double_offer.ts,
            platforms=["soundgasm", "whypit"],
        )
        p2 = new_plan(
            k(), 6, poster="sleepy_sirena", offer=double_offer, after=double_offer.ts, platforms=["soundgasm"]
        )
        self.special["double_fill"] = [p1.key, p2.key]
        for i, off in enumerate(single_offers):
            poster = ["CrimsonCadence", "BriarRoseVA", "starlit_nb"][i]
            p = new_plan(k(), i + 1, poster=poster, offer=off, after=off.ts)
            self.special.setdefault("offer_fill", []).append(p.key)
        p = new_plan(k(), 10, poster="VelvetVixenVA", platforms=["hotaudio"], kind="oc")
        self.special["hotaudio_only"] = [p.key]
        p = new_plan(k(), 8, poster="DeepwoodDan", special="deleted")
        self.special["deleted"] = [p.key]
        p = new_plan(
            k(), 4, poster="HoneyHollowAudio", special="reddit_missing", partners=["MochiMurmurs"], kind="oc"
        )
        self.special["reddit_missing"] = [p.key]
        p = new_plan(k(), 13, poster="Aurora_Whispers", special="removed_only", platforms=["soundgasm"])
        self.special["audio_removed"] = [p.key]
        p = new_plan(
            k(), 1, poster="BriarRoseVA", special="removed_mirror", platforms=["soundgasm", "whypit"]
        )
        self.special["removed_mirror"] = [p.key]

        # Ordinary releases: make sure every day has one, then fill up to 64.
        for di in range(len(days)):
            new_plan(k(), di)
        while len(plans) < 64:
            new_plan(k())

        # Timestamps -> reddit ids -----------------------------------------------
        posts: list[tuple[float, str, object]] = [(o.ts, "offer", o) for o in offers] + [
            (p.ts, "plan", p) for p in plans
        ]
        posts.sort(key=lambda x: x[0])
        for ts, _, obj in posts:
            fixed = obj.fixed_id
            obj.post_id = fixed if fixed else self.reddit_id(ts)

        for o in offers:
            self.emit_offer(o)
        for p in sorted(plans, key=lambda p: p.ts):
            self.emit_plan(p)

        # Order ground truth by key order of creation (seed releases first).
        order = {p.key: i for i, p in enumerate(plans)}
        self.releases.sort(key=lambda r: order[r.key])
        self.gwasi_entries.sort(key=lambda e: (e[5], e[0]))
        fills: dict[str, list[str]] = {}
        key_to_post = {p.key: p.post_id for p in plans}
        for o in offers:
            if o.fills:
                fills[o.post_id] = [key_to_post[f] for f in o.fills]
        self.special["script_offer_filled_twice"] = [double_offer.post_id]
        self.special["seed"] = ["milk-maid-cafe", "shy-ghost-girl"]
        version = hashlib.sha1(f"gwasi-base:{self.seed}".encode()).hexdigest()[:10]
        patreon, patreon_session_id = self.patreon_posts()
        return Corpus(
            seed=self.seed,
            days=[d.isoformat() for d in days],
            releases=self.releases,
            reddit_posts=self.reddit_posts,
            gwasi_entries=self.gwasi_entries,
            gwasi_base_version=version,
            gwasi_delta_days=2,
            scripts=self.scripts,
            soundgasm=self.soundgasm,
            whypit=self.whypit,
            hotaudio=self.hotaudio,
            images=self.images,
            gwasi_fills=fills,
            script_offer_post_ids=[o.post_id for o in sorted(offers, key=lambda o: o.ts)],
            special_cases=self.special,
            extra_links=self.extra_links,
            patreon=patreon,
            patreon_session_id=patreon_session_id,
        )

    # -- Patreon ---------------------------------------------------------------
    def patreon_posts(self) -> tuple[dict[str, dict], str]:
        """Patreon posts of two performers: an early-access copy of an existing recording,
        public (free) for one and for paying patrons for the other, plus a text-only post.

        Built last, from its own seeded generator, so nothing else in the corpus changes.
        The audio is the recording's soundgasm upload (same bytes: the early-access file)."""
        rng = random.Random(f"{self.seed}:patreon")
        session_id = _alnum(rng, 43, string.ascii_letters + string.digits + "-_")
        live = {rec["audio_id"]: rec for rec in self.soundgasm.values() if not rec["removed"]}
        picks: list[tuple[ReleaseTruth, dict]] = []
        for rel in self.releases:
            if rel.status != "ok" or len(rel.variants) != 1 or rel.key in self.special.get("seed", []):
                continue
            if rel.variants[0].audio_id in live and rel.performers[0] not in {
                r.performers[0] for r, _ in picks
            }:
                picks.append((rel, live[rel.variants[0].audio_id]))
            if len(picks) == 2:
                break
        posts: dict[str, dict] = {}
        next_id = 135_200_000 + rng.randint(0, 90_000)
        last_ts = 0.0

        def creator(name: str) -> dict:
            n = int(hashlib.sha1(f"{self.seed}:patreon-creator:{name}".encode()).hexdigest()[:8], 16)
            return {
                "campaign_id": str(4_000_000 + n % 5_000_000),
                "user_id": str(60_000_000 + n % 30_000_000),
                "name": name,
                "vanity": name,
            }

        for i, (rel, sg) in enumerate(picks):
            paid = i == 1
            post = self.reddit_posts[rel.post_ids[0]]
            ts = post["created_utc"] - 3 * 86400 - rng.randint(600, 7200)  # early access: days before Reddit
            last_ts = max(last_ts, ts)
            title = f"[{rel.audiences[0]}] {rel.title} (early access)"
            pid = str(next_id)
            next_id += rng.randint(1_500, 40_000)
            lines = [
                "Early access for my lovely patrons before it goes up on GWA ♡",
                f"Script by u/{rel.scribe}" if rel.scribe else "An original one this time!",
                "Headphones recommended. Thank you for supporting me!",
            ]
            posts[pid] = {
                "id": pid,
                "slug": reddit_slug(title, limit=60, sep="-"),
                "title": title,
                "content_html": "".join(f"<p>{html.escape(line)}</p>" for line in lines),
                "teaser_text": lines[0],
                "published_at": _iso(ts).replace(".000000Z", ".000+00:00"),
                "post_type": "audio_file",
                "is_public": not paid,
                "min_cents_pledged_to_view": 500 if paid else 0,
                "creator": creator(rel.performers[0]),
                "release_key": rel.key,
                "audio_id": sg["audio_id"],
                "media": ["soundgasm", sg["sha1"], "m4a"],
                "file_name": f"{_sg_slug(rel.title)}.m4a",
                "file_key": hashlib.md5(f"{self.seed}:patreon-file:{pid}".encode()).hexdigest(),
                "like_count": rng.randint(5, 300),
                "comment_count": rng.randint(0, 40),
            }
        if picks:
            rel = picks[0][0]
            pid = str(next_id)
            title = "Schedule update: two new audios this month"
            posts[pid] = {
                "id": pid,
                "slug": reddit_slug(title, limit=60, sep="-"),
                "title": title,
                "content_html": "<p>Hi loves! Two new audios are coming this month.</p><p>Thank you for being here ♡</p>",
                "teaser_text": "Hi loves! Two new audios are coming this month.",
                "published_at": _iso(last_ts + 86400 + rng.randint(600, 7200)).replace(
                    ".000000Z", ".000+00:00"
                ),
                "post_type": "text_only",
                "is_public": True,
                "min_cents_pledged_to_view": 0,
                "creator": creator(rel.performers[0]),
                "release_key": None,
                "audio_id": None,
                "media": None,
                "file_name": None,
                "file_key": None,
                "like_count": rng.randint(5, 300),
                "comment_count": rng.randint(0, 40),
            }
        return posts, session_id

    # -- emitters --------------------------------------------------------------
    def reddit_post(
        self,
        post_id: str,
        ts: float,
        author: str,
        title: str,
        selftext: str,
        flair: str,
        *,
        deleted: bool = False,
    ) -> dict:
        rng = random.Random(f"{self.seed}:post:{post_id}")
        slug = reddit_slug(title)
        permalink = f"/r/{SUBREDDIT}/comments/{post_id}/{slug}/"
        css = {"Script Fill": "scriptfill", "OC": "oc", "Script Offer": "scriptoffer"}.get(flair)
        score = rng.randint(8, 420)
        data = {
            "id": post_id,
            "name": f"t3_{post_id}",
            "subreddit": SUBREDDIT,
            "subreddit_id": SUBREDDIT_ID,
            "subreddit_name_prefixed": f"r/{SUBREDDIT}",
            "author": author,
            "author_fullname": "t2_" + base36(int(hashlib.sha1(author.encode()).hexdigest()[:10], 16))[:8],
            "title": title,
            "selftext": selftext,
            "selftext_html": markdown_to_html(selftext) if selftext else None,
            "link_flair_text": flair or None,
            "link_flair_css_class": css,
            "link_flair_type": "text",
            "created_utc": float(ts),
            "created": float(ts),
            "edited": False,
            "permalink": permalink,
            "url": f"https://www.reddit.com{permalink}",
            "is_self": True,
            "is_video": False,
            "over_18": True,
            "spoiler": False,
            "stickied": False,
            "locked": False,
            "archived": False,
            "score": score,
            "ups": score,
            "downs": 0,
            "num_comments": rng.randint(0, 60),
            "upvote_ratio": round(rng.uniform(0.82, 1.0), 2),
            "domain": f"self.{SUBREDDIT}",
            "removed_by_category": None,
            "thumbnail": "nsfw",
            "media": None,
            "total_awards_received": 0,
        }
        if deleted:
            data.update(
                author="[deleted]",
                selftext="[deleted]",
                selftext_html=markdown_to_html("[deleted]"),
                removed_by_category="deleted",
                link_flair_css_class=css,
            )
            data.pop("author_fullname")
        return data

    def gwasi(
        self,
        post_id: str,
        author: str,
        flair: str,
        title: str,
        ts: float,
        score: int,
        length: float,
        extra: str | None,
    ) -> None:
        entry: list = [post_id, SUBREDDIT, author, flair, title, int(ts), score, length]
        if extra:
            entry.append(extra)
        self.gwasi_entries.append(entry)

    def emit_offer(self, o: _Offer) -> None:
        rng = random.Random(f"{self.seed}:offer:{o.post_id}")
        script = self.scripts[o.key]
        tags = " ".join(f"[{t}]" for t in o.tags)
        title = f"[{o.audience}] {o.title} [Script Offer] {tags}"
        if o.fixed_id is None and rng.random() < 0.5:
            title = f"[{o.audience}] [Script Offer] {tags} {o.title}"
        link = f"https://scriptbin.works/s/{script['short_code']}" if o.short_link else self.script_url(o.key)
        words = len(script["text"].split())
        lines = [
            rng.choice(
                ["Hi everyone!", "Hello GWA writers and performers!", "New script time!", "Hey all ♡"]
            ),
            f"This is a {o.audience} script of about {words} words. {rng.choice(SCRIPT_NOTES)}",
            f"[Script on scriptbin]({link})" if rng.random() < 0.6 or o.fixed_id else f"Script: {link}",
            "Please credit me ("
            + _u(o.scribe, "_" in o.scribe and rng.random() < 0.6)
            + ") and link this post when you fill it. I'd love to hear your fills!",
        ]
        body = "\n\n".join(lines)
        data = self.reddit_post(o.post_id, o.ts, o.scribe, title, body, "Script Offer")
        self.reddit_posts[o.post_id] = data
        self.gwasi(
            o.post_id, o.scribe, "Script Offer", title, o.ts, data["score"], -round(words / 100, 1), None
        )

    def emit_plan(self, p: _Plan) -> None:
        rng = random.Random(f"{self.seed}:plan:{p.key}")
        performers = [p.poster, *p.partners]
        aud_tags = " ".join(f"[{a}]" for a in p.audiences)
        kind_tag = {"script_fill": "[Script Fill]", "oc": "[OC]", "improv": "[Improv]"}[p.kind]
        content = " ".join(f"[{t}]" for t in p.tags)
        length_tag = f" [{p.minutes_s // 60}m{p.minutes_s % 60:02d}s]" if rng.random() < 0.2 else ""
        escape = rng.random() < 0.6
        if p.special == "milk":
            title = f"[FF4M] {p.title} [Script Fill] {content}"
        elif p.special == "shy":
            title = f"[F4M] {p.title} [Script Fill] {content}"
        elif rng.random() < 0.8:
            title = f"{aud_tags} {kind_tag} {content} {p.title}{length_tag}"
        else:
            title = f"{aud_tags} {p.title} {kind_tag} {content}{length_tag}"
        if p.partners and rng.random() < 0.5 and p.special is None:
            title += " [Collab w/ " + " & ".join(f"u/{x}" for x in p.partners) + "]"
        title = re.sub(r"\s+", " ", title).strip()

        # -- audio uploads -------------------------------------------------------
        variants: list[VariantTruth] = []
        link_groups: list[tuple[str, list[tuple[str, str]]]] = []
        audio_ts = p.ts - rng.randint(120, 3600)
        for vi, label in enumerate(p.labels):
            audio_id = f"{p.key}-a{vi + 1}"
            links: list[tuple[str, str]] = []
            downloadable = False
            suffix_title = f" ({label} version)" if label else ""
            suffix_slug = ("-" + _sg_slug(label) + "-Version") if label else ""
            for plat in p.platforms:
                if plat == "soundgasm":
                    sg_user = SG_NAME[p.poster]
                    slug = _sg_slug(p.title) + suffix_slug
                    removed = p.special == "removed_only" or (p.special == "removed_mirror")
                    rec_title = f"[{label or p.audiences[0]}] {p.title}{suffix_title}"
                    desc_lines = [title]
                    if p.scribe:
                        desc_lines.append(
                            f"Script by u/{p.scribe}" + (" (private fill)" if p.private_fill else "")
                        )
                    if p.partners:
                        desc_lines.append("With " + ", ".join(f"u/{x}" for x in p.partners))
                    desc_lines.append("Posted on r/gonewildaudio <3 & thank you for listening!")
                    self.soundgasm[f"{sg_user}/{slug}"] = {
                        "user": sg_user,
                        "slug": slug,
                        "title": rec_title,
                        "description": "\n".join(desc_lines),
                        "sha1": hashlib.sha1(f"{self.seed}:soundgasm:{audio_id}".encode()).hexdigest(),
                        "audio_id": audio_id,
                        "play_count": rng.randint(40, 9000),
                        "removed": removed,
                    }
                    link_user = sg_user
                    if p.poster == "VelvetVixenVA":
                        link_user = "VelvetVixenVA"  # links use the Reddit casing; soundgasm's is lower
                    links.append(("soundgasm", f"https://soundgasm.net/u/{link_user}/{slug}"))
                    downloadable = downloadable or not removed
                elif plat == "whypit":
                    if p.special == "milk":
                        tid, public, token = WHYP_MILK, False, "xOYMf"
                        wslug = "threesome-at-the-milk-maid-cafe"
                    elif p.special == "shy":
                        tid, public = WHYP_SHY, True
                        token = _alnum(rng, 5)
                        wslug = "shy-ghost-girl-possesses-you-to-feel-pleasure-again"
                    else:
                        tid = self.whyp_id(audio_ts + vi)
                        public = p.whyp_public
                        token = _alnum(rng, 5)
                        wslug = _whyp_slug(p.title + (f" {label} version" if label else ""))
                    art_uuid = None
                    if p.artwork and rng.random() < 0.6:
                        art_uuid = _uuid(rng)
                        self.image_counter += 1
                        self.images[f"https://cdn.whyp.it/artwork/{art_uuid}.jpg"] = (
                            f"img{self.image_counter:03d}"
                        )
                    self.whypit[tid] = {
                        "id": tid,
                        "slug": wslug,
                        "title": p.title + suffix_title,
                        "description": (f"Script by {p.scribe}\n" if p.scribe else "")
                        + "Originally posted on r/gonewildaudio",
                        "duration": synth_params(self.seed, audio_id)["duration"],
                        "created_at": _iso(audio_ts + vi),
                        "public": public,
                        "token": token,
                        "allow_downloads": rng.random() < 0.4,
                        "audio_id": audio_id,
                        "lossy_uuid": _uuid(rng),
                        "lossless_uuid": _uuid(rng) if rng.random() < 0.35 else None,
                        "artwork_uuid": art_uuid,
                        "user": self.whyp_user(p.poster),
                    }
                    url = f"https://whyp.it/tracks/{tid}/{wslug}"
                    if not public:
                        url += f"?token={token}"
                    links.append(("whypit", url))
                    downloadable = True
                elif plat == "hotaudio":
                    slug = _sg_slug(p.title) + suffix_slug
                    self.hotaudio[f"{p.poster}/{slug}"] = {
                        "user": p.poster,
                        "slug": slug,
                        "title": p.title + suffix_title,
                        "description": f"{title}\n\nThank you so much for listening!",
                        "tags": [a for a in p.audiences] + list(p.tags),
                        "script_writer": p.scribe if not p.private_fill else None,
                        "length_text": _length_text(p.minutes_s),
                        "audio_id": audio_id,
                        "cast": list(p.partners),
                    }
                    links.append(("hotaudio", f"https://hotaudio.net/u/{p.poster}/{slug}"))
            variants.append(VariantTruth(label, audio_id, [u for _, u in links], downloadable))
            link_groups.append((label, links))

        # -- body --------------------------------------------------------------------
        parts: list[str] = []
        intro = rng.choice(INTROS)
        if p.special == "milk":
            parts.append(
                "Hi GWA!! My first collab with the amazing "
                + _u("alekirser", False)
                + " and it was SO much fun to record ♡"
            )
            parts.append(
                "Script by the wonderful "
                + _u("Enno_Zalenno2", True)
                + " (private fill, thank you for trusting us with it!)"
            )
        elif p.special == "shy":
            offer_url = "https://www.reddit.com/r/gonewildaudio/comments/1me43oy/f4m_shy_ghost_girl_possesses_you_to_feel_pleasure/"
            parts.append("A gentle little ghost story for you tonight.")
            parts.append(
                f"[Script]({offer_url}) by u/TheWritingJedi ([scriptbin]({self.script_url(p.script_key)})) - thank you for writing this, it made me cry a little!"
            )
        else:
            if intro:
                parts.append(intro)
            if p.partners:
                names = " and ".join(_u(x, escape) for x in p.partners)
                parts.append(
                    rng.choice(
                        [
                            "Collab with {n}!",
                            "This was recorded with {n} ♡",
                            "A collab w/ {n} - go follow them!",
                            "Recorded with the lovely {n}.",
                        ]
                    ).format(n=names)
                )
            if p.kind == "script_fill" and p.scribe:
                su = _u(p.scribe, escape)
                if p.private_fill:
                    parts.append(
                        rng.choice(
                            [
                                f"Script by {su} (private fill)",
                                f"Written by {su} - this was a private fill, thank you so much!",
                                f"Private fill written by {su} ♡",
                            ]
                        )
                    )
                elif p.offer is not None and rng.random() < 0.5:
                    offer_data = self.reddit_posts[p.offer.post_id]
                    parts.append(f"[Script](https://www.reddit.com{offer_data['permalink']}) by {su}")
                else:
                    url = self.script_url(p.script_key)
                    parts.append(
                        rng.choice(
                            [
                                f"[script]({url}) by {su}",
                                f"Script by {su}: {url}",
                                f"Written by {su} - [script here]({url})",
                            ]
                        )
                    )
            if rng.random() < 0.15:
                parts.append(f"Sound design by {rng.choice(SOUND_DESIGNERS)}")
        # links
        if len(link_groups) == 1:
            _, links = link_groups[0]
            labels_ = {
                "soundgasm": "Soundgasm",
                "whypit": rng.choice(["Whyp", "Whyp.it"]),
                "hotaudio": "HotAudio",
            }
            style = rng.random()
            if "escaped_url" not in self.special and any(pl == "soundgasm" and "_" in u for pl, u in links):
                style = 0.6
            if p.special in ("milk", "shy") or style < 0.55:
                parts.append(" | ".join(f"[{labels_[pl]}]({u})" for pl, u in links))
            elif style < 0.8:
                lines = []
                for pl, u in links:
                    if pl == "soundgasm" and "_" in u and "escaped_url" not in self.special:
                        self.special["escaped_url"] = [p.key]
                        u = u.replace("_", "\\_")
                    lines.append(f"{labels_[pl]}: {u}")
                parts.append("\n\n".join(lines) + rng.choice(["", "!", "."]))
            else:
                parts.append(
                    "Listen here: " + " or ".join(u for _, u in links) + rng.choice(["!", " :)", "."])
                )
        else:
            if rng.random() < 0.5:
                for label, links in link_groups:
                    parts.append(
                        f"**{label} version:** "
                        + " | ".join(f"[{_PLATFORM_LABEL[pl]}]({u})" for pl, u in links)
                    )
            else:
                by_plat: dict[str, list[tuple[str, str]]] = {}
                for label, links in link_groups:
                    for pl, u in links:
                        by_plat.setdefault(pl, []).append((label, u))
                for pl, items in by_plat.items():
                    name = {"soundgasm": "Soundgasm", "whypit": "Also on whyp.it", "hotaudio": "HotAudio"}[pl]
                    parts.append(f"{name}: " + " / ".join(f"[{lab} version]({u})" for lab, u in items))
        if p.special == "milk":
            ph = "https://www.pornhub.com/view_video.php?viewkey=688a9b1ce032c"
            parts.append(f"Also up on [Pornhub]({ph}) if that's more your thing!")
            self.extra_links[p.key] = [ph]
        artwork_url = None
        if p.artwork:
            artwork_url = self.image(rng.choice(["i.imgur.com", "i.redd.it"]))
            if rng.random() < 0.5:
                parts.append(f"[art]({artwork_url}) by {_u(rng.choice(ARTISTS), escape)}")
            else:
                parts.append(f"[Cover art]({artwork_url})")
        if rng.random() < 0.4:
            parts.append("Tags: " + ", ".join(p.tags))
        outro = rng.choice(OUTROS)
        if outro:
            parts.append(outro)
        body = "\n\n".join(parts)

        flair = "Script Fill" if p.kind == "script_fill" else "OC"
        author = p.poster
        status = "ok"
        if p.special == "deleted":
            data = self.reddit_post(p.post_id, p.ts, author, title, body, flair, deleted=True)
            self.reddit_posts[p.post_id] = data
            status = "deleted"
            # nothing is recoverable: the post body (and its links) is gone
            for v in variants:
                for table in (self.soundgasm, self.hotaudio):
                    for key in [kk for kk, rec in table.items() if rec["audio_id"] == v.audio_id]:
                        del table[key]
                for key in [kk for kk, rec in self.whypit.items() if rec["audio_id"] == v.audio_id]:
                    del self.whypit[key]
            variants = []
            artwork_url = None
            for url in [u for u in self.images if u in body]:
                del self.images[url]
        elif p.special == "reddit_missing":
            status = "reddit_missing"
            for v in variants:
                for key in [kk for kk, rec in self.soundgasm.items() if rec["audio_id"] == v.audio_id]:
                    del self.soundgasm[key]
                for key in [kk for kk, rec in self.whypit.items() if rec["audio_id"] == v.audio_id]:
                    del self.whypit[key]
                for key in [kk for kk, rec in self.hotaudio.items() if rec["audio_id"] == v.audio_id]:
                    del self.hotaudio[key]
            for url in [u for u in self.images if u in body]:
                del self.images[url]
            variants = []
            artwork_url = None
            data = self.reddit_post(p.post_id, p.ts, author, title, body, flair)
        else:
            data = self.reddit_post(p.post_id, p.ts, author, title, body, flair)
            self.reddit_posts[p.post_id] = data
            if variants and not any(v.downloadable for v in variants):
                only_hot = all(all("hotaudio.net" in u for u in v.urls) for v in variants)
                status = "hotaudio_only" if only_hot else "audio_removed"

        extra = None
        mentions = [x for x in [*p.partners, p.scribe] if x and f"u/{x}" not in title]
        if mentions and rng.random() < 0.7:
            extra = " ".join(f"u/{x}" for x in mentions)
        self.gwasi(p.post_id, author, flair, title, p.ts, data["score"], round(p.minutes_s / 6), extra)

        self.releases.append(
            ReleaseTruth(
                key=p.key,
                title=p.title,
                post_ids=[p.post_id],
                day=_day_str(p.ts),
                performers=performers,
                scribe=p.scribe,
                script_url=self.script_url(p.script_key) if p.script_key else None,
                script_offer_post_id=p.offer.post_id if p.offer else None,
                private_fill=p.private_fill,
                kind=p.kind,
                audiences=list(p.audiences),
                variants=variants,
                status=status,
                artwork_url=artwork_url,
            )
        )


def build_corpus(seed: int = DEFAULT_SEED) -> Corpus:
    """The replica's sample corpus for `seed` (pure and deterministic)."""
    return _Builder(seed).build()


# ---------------------------------------------------------------------------
# Media rendering
# ---------------------------------------------------------------------------


def _media_spec(corpus: Corpus) -> dict:
    audio: dict[str, dict] = {}
    for rec in corpus.soundgasm.values():
        if not rec["removed"]:
            audio.setdefault(rec["audio_id"], {"outputs": []})["outputs"].append(
                ["soundgasm", rec["sha1"], "m4a"]
            )
    for rec in corpus.whypit.values():
        entry = audio.setdefault(rec["audio_id"], {"outputs": []})
        entry["outputs"].append(["whypit_lossy", rec["lossy_uuid"], "mp3"])
        if rec["lossless_uuid"]:
            entry["outputs"].append(["whypit_lossless", rec["lossless_uuid"], "flac"])
    for aid, entry in audio.items():
        entry["outputs"].sort()
        entry["synth"] = synth_params(corpus.seed, aid)
    images = {}
    for url, image_id in corpus.images.items():
        images[image_id] = {"ext": url.rsplit(".", 1)[-1], "size": 500 if "whyp.it" in url else 640}
    return {"version": RENDER_VERSION, "seed": corpus.seed, "audio": audio, "images": images}


def _aevalsrc_expr(params: dict) -> str:
    h = params["harmonic"]
    terms = []
    for start, end, freq in params["notes"]:
        terms.append(f"between(t,{start},{end})*(0.45*sin(2*PI*{freq}*t)+{h}*sin(4*PI*{freq}*t))")
    return "+".join(terms) or "0"


def _render_audio(audio_id: str, entry: dict, out_dir: Path) -> dict[tuple[str, str], tuple[str, float]]:
    from audio_assets.ffmpeg_tools import probe, run_ffmpeg

    params = entry["synth"]
    outputs = entry["outputs"]
    d = params["duration"]
    n = len(outputs)
    graph = (
        f"aevalsrc='{_aevalsrc_expr(params)}':s=44100:d={d}[tone];"
        f"anoisesrc=d={d}:c=pink:r=44100:a={params['noise_amp']}:seed={params['noise_seed']}[noise];"
        f"[tone][noise]amix=inputs=2:duration=first:normalize=0,volume=0.8,asplit={n}"
        + "".join(f"[o{i}]" for i in range(n))
    )
    args = ["-y", "-filter_complex", graph]
    finals: list[tuple[tuple[str, str], Path, Path]] = []
    codec = {
        "m4a": ["-c:a", "aac", "-b:a", "96k", "-f", "mp4"],
        "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
        "flac": ["-c:a", "flac", "-f", "flac"],
    }
    for i, (kind, key, ext) in enumerate(outputs):
        sub = {"soundgasm": "soundgasm", "whypit_lossy": "whypit", "whypit_lossless": "whypit"}[kind]
        final = out_dir / sub / f"{key}.{ext}"
        tmp = final.with_name(f".{final.name}.tmp")
        final.parent.mkdir(parents=True, exist_ok=True)
        args += [
            "-map",
            f"[o{i}]",
            "-ac",
            "1",
            *codec[ext],
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            str(tmp),
        ]
        finals.append(((kind, key), tmp, final))
    run_ffmpeg(args, timeout=120)
    result = {}
    for mkey, tmp, final in finals:
        os.replace(tmp, final)
        info = probe(final)
        result[mkey] = (str(final.relative_to(out_dir)), float(info.duration_s or params["duration"]))
    return result


def _render_image(image_id: str, spec: dict, seed: int, out_dir: Path) -> tuple[str, str]:
    from PIL import Image, ImageDraw

    rng = random.Random(f"{seed}:image:{image_id}")
    size = spec["size"]
    c1 = tuple(rng.randint(0, 255) for _ in range(3))
    c2 = tuple(rng.randint(0, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), c1)
    draw = ImageDraw.Draw(img)
    for y in range(0, size, 4):
        f = y / size
        col = tuple(int(a * (1 - f) + b * f) for a, b in zip(c1, c2, strict=True))
        draw.rectangle([0, y, size, y + 4], fill=col)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randint(0, size), rng.randint(0, size)
        r = rng.randint(size // 20, size // 4)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=col)
        else:
            draw.rectangle([x0 - r, y0 - r, x0 + r, y0 + r // 2], fill=col)
    draw.text((20, size - 40), image_id, fill=(255, 255, 255))
    ext = spec["ext"]
    final = out_dir / "images" / f"{image_id}.{ext}"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    if ext == "png":
        img.save(tmp, format="PNG", optimize=False)
    else:
        img.save(tmp, format="JPEG", quality=85)
    os.replace(tmp, final)
    return image_id, str(final.relative_to(out_dir))


def _load_manifest(out_dir: Path, corpus: Corpus) -> dict | None:
    mpath = out_dir / "manifest.json"
    try:
        data = json.loads(mpath.read_text())
    except (OSError, ValueError):
        return None
    if data.get("seed") != corpus.seed or data.get("spec_hash") != corpus.spec_hash():
        return None
    for _kind, _key, rel in data.get("files", []):
        if not (out_dir / rel).is_file():
            return None
    return data


def _manifest_map(out_dir: Path, data: dict) -> dict[tuple[str, str], Path]:
    return {(kind, key): out_dir / rel for kind, key, rel in data["files"]}


def render_media(corpus: Corpus, out_dir: Path, *, workers: int | None = None) -> dict[tuple[str, str], Path]:
    """Write every media file the replica serves; returns (kind, key) -> path.

    kinds: ("soundgasm", sha1) .m4a, ("whypit_lossy", uuid) .mp3,
    ("whypit_lossless", uuid) .flac, ("image", image_id) .png/.jpg.
    A complete set for the same seed and corpus spec is reused as is.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _load_manifest(out_dir, corpus)
    if data is not None:
        return _manifest_map(out_dir, data)
    with open(out_dir / ".render.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = _load_manifest(out_dir, corpus)  # another process may have finished
            if data is not None:
                return _manifest_map(out_dir, data)
            spec = _media_spec(corpus)
            files: list[list[str]] = []
            durations: dict[str, float] = {}
            n = workers or max(2, min(4, os.cpu_count() or 2))
            with ThreadPoolExecutor(max_workers=n) as pool:
                audio_futs = [
                    pool.submit(_render_audio, aid, entry, out_dir)
                    for aid, entry in sorted(spec["audio"].items())
                ]
                image_futs = [
                    pool.submit(_render_image, iid, ispec, corpus.seed, out_dir)
                    for iid, ispec in sorted(spec["images"].items())
                ]
                for fut in audio_futs:
                    for (kind, key), (rel, dur) in fut.result().items():
                        files.append([kind, key, rel])
                        durations[f"{kind}:{key}"] = round(dur, 3)
                for fut in image_futs:
                    iid, rel = fut.result()
                    files.append(["image", iid, rel])
            files.sort()
            manifest = {
                "seed": corpus.seed,
                "spec_hash": corpus.spec_hash(),
                "files": files,
                "durations": durations,
            }
            tmp = out_dir / ".manifest.json.tmp"
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            os.replace(tmp, out_dir / "manifest.json")
            return _manifest_map(out_dir, manifest)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)


def media_durations(out_dir: Path) -> dict[str, float]:
    """Probed durations of rendered files, keyed "kind:key" (from manifest.json)."""
    try:
        return dict(json.loads((Path(out_dir) / "manifest.json").read_text()).get("durations", {}))
    except (OSError, ValueError):
        return {}


def corpus_summary(corpus: Corpus) -> dict:
    """A JSON-able dump of the ground truth (handy for debugging and the demo)."""
    return {
        "seed": corpus.seed,
        "days": corpus.days,
        "releases": [asdict(r) for r in corpus.releases],
        "special_cases": corpus.special_cases,
    }
