"""The source layers: gwasi_index, reddit_posts, post_analysis, audio_files, scripts, artwork.

Each builder takes settings, the shared HTTP client and the days to build, and returns
a polars DataFrame for exactly those days. Bad input marks its row; it never raises."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

from audio_assets import analysis, gwasi_import, media
from audio_assets.downloads import DownloadError, download, safe_name, within
from audio_assets.http_client import FetchError, PoliteClient
from audio_assets.platforms import hotaudio, other_hosts, patreon, reddit, scriptbin, soundgasm, whypit
from audio_assets.settings import Settings

S, I, F, B = pl.Utf8, pl.Int64, pl.Float64, pl.Boolean  # noqa: E741
CAP_SETTING = "AUDIO_ASSETS_MAX_AUDIO_BYTES"

GWASI_SCHEMA = {
    "post_id": S, "subreddit": S, "author": S, "flair": S, "title": S, "created_utc": I, "post_date": S,
    "score": I, "length": F, "duration_s": F, "script_words": I, "extra": S, "raw": S, "source": S,
    "fill_of": S, "base_version": S, "status": S, "error": S,
}
REDDIT_SCHEMA = {
    "post_id": S, "post_date": S, "subreddit": S, "author": S, "title": S, "body": S, "body_chars": I, "flair": S,
    "created_utc": F, "permalink": S, "url": S, "score": I, "num_comments": I, "over_18": B, "is_deleted": B,
    "is_removed": B, "removed_by_category": S, "crosspost_parent": S, "source": S, "status": S, "error": S,
}
ANALYSIS_SCHEMA = {
    "post_id": S, "post_date": S, "author": S, "permalink": S, "created_utc": F, "clean_title": S, "tags": S,
    "content_tags": S, "audiences": S, "kind": S, "performers": S, "scribe": S, "credits": S, "private_fill": B,
    "audio_links": S, "script_links": S, "image_links": S, "other_links": S, "variant_hints": S, "status": S, "error": S,
}
AUDIO_SCHEMA = {
    "post_id": S, "post_date": S, "link_index": I, "platform": S, "page_url": S, "link_label": S, "variant_hint": S,
    "platform_id": S, "platform_user": S, "platform_title": S, "platform_description": S, "media_url": S,
    "artwork_url": S, "local_path": S, "bytes": I, "sha256": S, "duration_s": F, "platform_duration_s": F,
    "codec": S, "bit_rate_kbps": I, "fingerprint": S, "status": S, "error": S,
}
SCRIPT_SCHEMA = {
    "post_id": S, "post_date": S, "url": S, "platform": S, "script_user": S, "slug": S, "title": S, "tags": S,
    "audience": S, "author": S, "word_count": I, "text_path": S, "offer_post_id": S, "private_fill": B,
    "status": S, "error": S,
}
ARTWORK_SCHEMA = {
    "post_id": S, "post_date": S, "url": S, "source": S, "local_path": S, "bytes": I, "sha256": S, "width": I,
    "height": I, "status": S, "error": S,
}


def frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    """The rows as a table of ``schema``. A value that does not fit its column (an object where
    text goes, a word count past 64 bits: an outside answer of a shape no parser foresaw) is left
    empty and named in its row's ``error``, so one row's bad value never fails the partition."""
    cells = [{k: r.get(k) for k in schema} for r in rows]
    try:
        return pl.DataFrame(cells, schema=schema, orient="row")
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        for row in cells:
            _fit_row(row, schema)
        return pl.DataFrame(cells, schema=schema, orient="row")


_INT64 = 2**63


def _fit_row(row: dict, schema: dict) -> None:
    """Leave empty each of ``row``'s values its column can't hold, and name them in ``error``."""
    misfits = []
    for column, dtype in schema.items():
        value = row[column]
        if value is None:
            continue
        if dtype == S:
            ok = isinstance(value, str | int | float)  # numbers as text, as the table takes them
            if ok and not isinstance(value, str):
                row[column] = str(value)
        elif dtype == I:
            ok = isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64
        elif dtype == F:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e308
        elif dtype == B:
            ok = isinstance(value, bool)
        else:
            ok = True
        if not ok:
            row[column] = None
            misfits.append(f"{column} {json.dumps(value, default=str)[:40]}")
    if misfits and "error" in row:
        note = "left empty, of a type its column can't hold: " + ", ".join(misfits)
        row["error"] = f"{row['error']}; {note}" if row.get("error") else note


def rel(settings: Settings, path: Path | None) -> str | None:
    return None if path is None else path.resolve().relative_to(settings.data_root.resolve()).as_posix()


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# -- gwasi_index -----------------------------------------------------------------------------

#: GWASI entries no day's partition can hold (no usable timestamp): kept here, with their error
GWASI_REJECT_SCHEMA = {"post_id": S, "source": S, "raw": S, "base_version": S, "status": S, "error": S}


def prepare_gwasi(client: PoliteClient, gwasi_dir: Path, base_url: str, *,
                  walks: int = 3) -> tuple[Path, dict, dict, list[str]]:
    """The staged GWASI base, the delta and the base's fills (gwasi_import.prepare_snapshot), plus
    notes: a base GWASI replaced during the walk is walked again on its new version, never staged
    half read."""
    from audio_assets.platforms.gwasi import BaseReplaced

    notes: list[str] = []
    for _ in range(walks):
        try:
            snapshot, delta, fills = gwasi_import.prepare_snapshot(client, gwasi_dir, base_url)
            return snapshot, delta, fills, notes
        except BaseReplaced as exc:
            notes.append(str(exc))
    raise RuntimeError(f"GWASI replaced its base {walks} times during one run ({'; '.join(notes)}); try again later")


def build_gwasi_rejects(snapshot: Path, delta: dict) -> pl.DataFrame:
    """GWASI entries too broken to have a post date, from the staged base and the delta, each with
    its error (an invalid entry with a usable date is a row of its day in gwasi_index instead)."""
    con = gwasi_import.connect()
    try:
        found: list[dict] = []
        undated = snapshot / "undated.parquet"  # written by gwasi_import's staging
        if undated.exists():
            found += con.execute(f"SELECT post_id, source, raw, error FROM read_parquet('{undated}') "
                                 "WHERE status <> 'ok'").pl().to_dicts()
        found += [r for r in gwasi_import.decode_entries(con, delta.get("entries") or [], source="delta")
                  if r["status"] != "ok" and r["post_date"] is None]
    finally:
        con.close()
    version = str(delta.get("base") or "")
    rows = [{"post_id": r["post_id"], "source": r["source"], "raw": r["raw"], "base_version": version,
             "status": "invalid",
             "error": f"GWASI {r['source']} entry skipped, no day can hold it: {r['error']}"} for r in found]
    return frame(rows, GWASI_REJECT_SCHEMA)


def build_gwasi_index(snapshot: Path, delta: dict, days: list[str], base_fills: dict | None = None) -> pl.DataFrame:
    """The days' rows: the staged base overlaid with the delta (see gwasi_import)."""
    con = gwasi_import.connect()
    try:
        gwasi_import.overlay(con, snapshot, delta, days, base_fills=base_fills)
        df = con.execute("SELECT * FROM gwasi_rows WHERE post_date IN (SELECT unnest(?)) "
                         "ORDER BY post_date, created_utc, post_id", [days]).pl()
    finally:
        con.close()
    return frame(df.to_dicts(), GWASI_SCHEMA)


# -- reddit_posts ----------------------------------------------------------------------------

def build_reddit_posts(settings: Settings, client: PoliteClient, gwasi_rows: pl.DataFrame) -> pl.DataFrame:
    ok = gwasi_rows.filter(pl.col("status") == "ok")
    ids = ok.get_column("post_id").to_list()
    by_id = {r["post_id"]: r for r in ok.iter_rows(named=True)}
    creds = reddit.praw_credentials()
    if creds:
        found, source = reddit.fetch_posts_praw(client, ids, creds), "api"
    else:
        found, source = reddit.fetch_posts_json(client, ids), "json"
    rows = []
    for pid in ids:
        data = found.get(pid)
        if data is None:
            rows.append(reddit.missing_post(pid, by_id[pid]).as_row())
            continue
        try:
            post = reddit.parse_post(data, source=source)
            # The partition is GWASI's post date; Reddit's own date is kept when it agrees.
            post.post_date = by_id[pid]["post_date"]
            if post.title is None:
                post.title = by_id[pid]["title"]
            rows.append(post.as_row())
        except (ValueError, TypeError, KeyError) as exc:
            row = reddit.missing_post(pid, by_id[pid]).as_row()
            row.update(status="invalid", error=f"Reddit answer for {pid} could not be read: {_err(exc)}")
            rows.append(row)
    return frame(rows, REDDIT_SCHEMA)


# -- post_analysis ---------------------------------------------------------------------------

def build_post_analysis(reddit_rows: pl.DataFrame, gwasi_rows: pl.DataFrame) -> pl.DataFrame:
    extra = {r["post_id"]: r for r in gwasi_rows.iter_rows(named=True)}
    pending: deque = deque()  # the rows whose posts analysis.analyse_posts has read, in order

    def posts():
        for r in reddit_rows.iter_rows(named=True):
            g = extra.get(r["post_id"]) or {}
            base = {"post_id": r["post_id"], "post_date": r["post_date"], "author": r["author"] or g.get("author"),
                    "permalink": r["permalink"], "created_utc": r["created_utc"]}
            pending.append((r["post_id"], r["status"], base))
            yield (r["post_id"], r["title"] or g.get("title"), r["body"], r["author"] or g.get("author"),
                   r["flair"] or g.get("flair"), g.get("extra"))

    out = []
    # A big batch (a backfill) is shared with worker processes; a post that fails gives its error.
    for a in analysis.analyse_posts(posts(), errors="return"):
        post_id, status, base = pending.popleft()
        try:
            if isinstance(a, Exception):
                raise a
            d = a.as_dict()
            row = {**base, **{k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in d.items() if k != "post_id"}}
            row["status"] = "ok" if status in ("ok", "missing") else status
            row["error"] = None
        except Exception as exc:  # noqa: BLE001 - bad input marks its row
            row = {**base, "status": "invalid", "error": f"analysis failed for post {post_id}: {_err(exc)}"}
        out.append(row)
    return frame(out, ANALYSIS_SCHEMA)


# -- patreon_posts (creators the user follows) ------------------------------------------------

def _is_day(text: str) -> bool:
    """``text`` is a real calendar day written YYYY-MM-DD."""
    try:
        return len(text) == 10 and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


EARLY_ACCESS_RE = re.compile(r"[\(\[]?\s*\b(?:early[\s-]*access|patreon[\s-]*(?:exclusive|early))\b\s*[\)\]]?", re.I)


def patreon_creators(env: dict | None = None) -> list[str]:
    """The creators whose Patreon feeds to read (``AUDIO_ASSETS_PATREON_CREATORS``, comma separated)."""
    text = (os.environ if env is None else env).get("AUDIO_ASSETS_PATREON_CREATORS") or ""
    return [c.strip() for c in text.split(",") if c.strip()]


def build_patreon_posts(client: PoliteClient, creators: list[str], days: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """Posts of followed creators published on ``days``, as post-analysis rows (post id
    ``pt_<id>``), so their audio is downloaded and aggregated like a Reddit post's. Returns the
    rows and the problems met (a creator whose feed could not be read), never raising."""
    wanted, rows, problems = set(days), [], []
    for vanity in creators:
        try:
            feed = patreon.list_creator_posts(client, vanity)
        except (FetchError, patreon.ParseError, ValueError) as exc:
            problems.append(f"Patreon feed of {vanity}: {exc}")
            continue
        for p in feed:
            day = (p.published_at or "")[:10]
            if not _is_day(day):
                # no day, so no day's partition to hold its row: named in every run's problems
                when = (f"a publication date {p.published_at!r} that is not a date" if p.published_at
                        else "no publication date")
                why = f": {p.error}" if p.error else ""
                problems.append(f"Patreon post {p.url} of {vanity} has {when}, so no day's partition holds it{why}")
                continue
            if day not in wanted:
                continue
            base = {"post_id": f"pt_{p.id}", "post_date": day, "author": p.creator or vanity, "permalink": p.url}
            if p.error:
                rows.append({**base, "status": "invalid", "error": f"Patreon post {p.url} could not be read: {p.error}"})
                continue
            try:
                title = EARLY_ACCESS_RE.sub(" ", p.title or "")
                a = analysis.analyse_post(post_id=f"pt_{p.id}", title=title, body=p.text or "", author=p.creator or vanity)
                d = a.as_dict()
                is_audio = p.post_type in patreon.AUDIO_POST_TYPES or p.audio_url is not None
                d["audio_links"] = ([{"platform": "patreon", "url": p.url, "label": "Patreon", "variant": None}]
                                    if is_audio else [])
                try:
                    created = datetime.fromisoformat(p.published_at).timestamp()
                except ValueError:  # "2024-05-01 noon": the day is read, the time is not
                    created = None
                row = {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in d.items()}
                row.update(base, created_utc=created, status="locked" if p.locked else "ok",
                           error=patreon.locked_message(p) if p.locked else None)
            except Exception as exc:  # noqa: BLE001 - bad input marks its row
                row = {**base, "status": "invalid", "error": f"Patreon post {p.url} could not be analysed: {_err(exc)}"}
            rows.append(row)
    rows.sort(key=lambda r: (r["post_date"], r["post_id"]))
    return frame(rows, ANALYSIS_SCHEMA), problems


# -- audio_files -----------------------------------------------------------------------------

def _verify_audio(expected: float | None):
    def check(path: Path) -> str | None:
        result = media.check_audio(path, expected_duration_s=expected)
        return None if result.ok else result.error
    return check


def _held(settings: Settings, held: dict[str, str] | None, key: str, dest: Path) -> None:
    """A file already held under another name (same platform id) is linked, never fetched again."""
    if not held or dest.exists() or key not in held:
        return
    src = settings.data_root / held[key]
    if src.exists() and src.resolve() != dest.resolve():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)


def fetch_audio(settings: Settings, client: PoliteClient, link: dict, held: dict[str, str] | None = None) -> dict:
    """Resolve one audio link and download it. Returns an AUDIO_SCHEMA row (never raises).

    ``held`` maps "platform:id" to files already downloaded (a content id is never fetched twice)."""
    platform, url = link["platform"], link["url"]
    row = {"platform": platform, "page_url": url, "link_label": link.get("label"), "variant_hint": link.get("variant")}
    try:
        if platform == "soundgasm":
            page = soundgasm.resolve(client, url)
            row.update(page_url=page.page_url, platform_id=page.audio_id, platform_user=page.user,
                       platform_title=page.title, platform_description=page.description, media_url=page.media_url)
            ext = Path(urlsplit(page.media_url).path).suffix or ".m4a"
            dest = settings.audio_dir("soundgasm") / safe_name(page.user) / f"{safe_name(page.slug)}-{page.audio_id[:10]}{ext}"
            _held(settings, held, f"soundgasm:{page.audio_id}", dest)
            got = download(client, page.media_url, within(settings.data_root, dest), max_bytes=settings.max_audio_bytes,
                           cap_setting=CAP_SETTING, verify=_verify_audio(None))
        elif platform == "whypit":
            track = whypit.resolve(client, url)
            media_url = track.best_media_url
            if not media_url:
                raise DownloadError(f"whyp.it track {track.track_id} offers no media URL")
            row.update(platform_id=str(track.track_id), platform_user=track.user, platform_title=track.title,
                       platform_description=track.description, media_url=media_url.split("?")[0],
                       platform_duration_s=track.duration_s, artwork_url=track.artwork_url)
            ext = Path(urlsplit(media_url).path).suffix or ".mp3"
            dest = settings.audio_dir("whypit") / safe_name(track.user) / f"{track.track_id}-{safe_name(track.slug)}{ext}"
            _held(settings, held, f"whypit:{track.track_id}", dest)

            def refresh() -> str:
                fresh = whypit.resolve(client, url)
                return fresh.best_media_url or media_url

            got = download(client, media_url, within(settings.data_root, dest), headers=whypit.CDN_HEADERS,
                           max_bytes=settings.max_audio_bytes, cap_setting=CAP_SETTING, refresh_url=refresh,
                           verify=_verify_audio(track.duration_s))
        elif platform == "hotaudio":
            page = hotaudio.resolve(client, url)
            row.update(platform_id=f"{page.user}/{page.slug}", platform_user=page.user, platform_title=page.title,
                       platform_description=page.description, platform_duration_s=page.length_s,
                       status="metadata_only",
                       error="HotAudio encrypts its audio; metadata kept, audio taken from another host")
            return row
        elif platform == "patreon":
            post = patreon.resolve(client, url)  # the user's own session (PATREON_SESSION_ID), if set
            row.update(
                page_url=post.url,
                platform_id=post.id,
                platform_user=post.creator,
                platform_title=post.title,
                platform_description=post.text,
                media_url=post.public_audio_url,
            )
            if post.locked:  # never worked around: recorded with its status
                row.update(status="locked", error=patreon.locked_message(post))
                return row
            if not post.audio_url:
                row.update(
                    status="no_audio",
                    error=f"Patreon post {post.id} ({post.post_type or 'unknown type'}) has no audio file",
                )
                return row
            folder = safe_name(post.creator, fallback=f"post-{post.id}")
            dest = (
                settings.audio_dir("patreon")
                / folder
                / f"{post.id}-{safe_name(post.slug or post.title, fallback='post')}{post.audio_ext}"
            )
            _held(settings, held, f"patreon:{post.id}", dest)

            def refresh_patreon() -> str:
                return patreon.resolve(client, url).audio_url or post.audio_url

            try:
                got = download(
                    client,
                    post.audio_url,
                    within(settings.data_root, dest),
                    max_bytes=settings.max_audio_bytes, cap_setting=CAP_SETTING,
                    refresh_url=refresh_patreon,
                    verify=_verify_audio(None),
                )
            except Exception as exc:  # signed media URLs carry their grant: never into the row
                raise patreon.redacted(exc) from None
        else:
            if not other_hosts.will_fetch(url):
                row.update(status="link_only", error=other_hosts.link_only_reason(platform, url))
                return row
            key = other_hosts.link_key(url)
            row.update(platform_id=key)
            prior = (held or {}).get(f"{platform}:{key}")
            if prior and (settings.data_root / prior).is_file():
                got = other_hosts.as_downloaded(settings.data_root / prior, fetched=False)
            else:
                path = other_hosts.fetch_with_ytdlp(
                    url,
                    within(settings.data_root, settings.audio_dir(safe_name(platform))),
                    max_bytes=settings.max_audio_bytes,
                    lock_dir=settings.state_dir / "locks",
                    verify=_verify_audio(None),
                )
                got = other_hosts.as_downloaded(path)
    except FetchError as exc:
        row.update(status="not_found" if exc.status in (404, 410) else "error",
                   error=f"{platform} {url}: {exc}")
        return row
    except Exception as exc:  # noqa: BLE001 - bad input marks its row
        row.update(status="error", error=f"{platform} {url}: {_err(exc)}")
        return row
    check = media.check_audio(got.path)
    row.update(local_path=rel(settings, got.path), bytes=got.bytes, sha256=got.sha256, duration_s=check.duration_s,
               codec=check.codec, bit_rate_kbps=check.bit_rate_kbps)
    if not check.ok:
        row.update(status="error", error=check.error)
        return row
    try:
        row["fingerprint"] = media.fingerprint(got.path)
    except Exception as exc:  # noqa: BLE001
        row.update(status="error", error=f"fingerprint failed: {_err(exc)}")
        return row
    row["status"] = "ok"
    return row


def held_files(previous: pl.DataFrame | None) -> dict[str, str]:
    """"platform:id" -> local path of every verified audio file already held."""
    if previous is None or not previous.height:
        return {}
    ok = previous.filter((pl.col("status") == "ok") & pl.col("platform_id").is_not_null() & pl.col("local_path").is_not_null())
    return {f"{r['platform']}:{r['platform_id']}": r["local_path"] for r in ok.iter_rows(named=True)}


#: an audio row's own fields (the rest say which post and link it is for)
_AUDIO_PAGE_FIELDS = [c for c in AUDIO_SCHEMA if c not in ("post_id", "post_date", "link_index", "link_label",
                                                           "variant_hint")]


def held_pages(previous: pl.DataFrame | None) -> dict[str, dict]:
    """Page URL -> what an earlier run read of it and downloaded, for each audio held (status ok):
    a run of a day already read (or a post linking an audio another post linked) reads no page again."""
    if previous is None or not previous.height:
        return {}
    ok = previous.filter((pl.col("status") == "ok") & pl.col("local_path").is_not_null())
    return {r["page_url"]: {k: r[k] for k in _AUDIO_PAGE_FIELDS} for r in ok.iter_rows(named=True)}


def build_audio_files(settings: Settings, client: PoliteClient, analysis_rows: pl.DataFrame, workers: int = 4,
                      held: dict[str, str] | None = None, pages: dict[str, dict] | None = None) -> pl.DataFrame:
    """The audio_files rows of ``analysis_rows``' audio links. ``held`` (held_files) names the
    files already downloaded; ``pages`` (held_pages): a link whose page an earlier run read and
    whose file is still there is that row again, with nothing fetched."""
    pages = pages or {}
    jobs = []
    for r in analysis_rows.iter_rows(named=True):
        for i, link in enumerate(json.loads(r["audio_links"] or "[]")):
            jobs.append((r, i, link))
    cache: dict[str, dict] = {}

    def one(job):
        r, i, link = job
        key = link["url"]
        if key not in cache:
            known = pages.get(key)
            if known is not None and (settings.data_root / known["local_path"]).is_file():
                cache[key] = dict(known)
            else:
                cache[key] = fetch_audio(settings, client, link, held)
        row = dict(cache[key])
        row.update(post_id=r["post_id"], post_date=r["post_date"], link_index=i,
                   link_label=link.get("label"), variant_hint=link.get("variant"))
        return row

    # Same URL twice in one run is fetched once: group jobs by URL, run groups in parallel.
    by_url: dict[str, list] = {}
    for job in jobs:
        by_url.setdefault(job[2]["url"], []).append(job)
    rows: list[dict] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for group_rows in pool.map(lambda group: [one(j) for j in group], by_url.values()):
            rows.extend(group_rows)
    rows.sort(key=lambda r: (r["post_date"], r["post_id"], r["link_index"]))
    return frame(rows, AUDIO_SCHEMA)


# -- scripts ---------------------------------------------------------------------------------

def _offer_post_id(url: str) -> str | None:
    parts = urlsplit(url).path.split("/")
    if "comments" in parts:
        idx = parts.index("comments")
        if idx + 1 < len(parts) and parts[idx + 1]:
            return parts[idx + 1].lower()
    return None


#: a script row's own fields (the rest say which post it is for)
_SCRIPT_PAGE_FIELDS = ["url", "platform", "script_user", "slug", "title", "tags", "audience", "author", "word_count",
                       "text_path", "status"]


def held_scripts(previous: pl.DataFrame | None) -> dict[str, dict]:
    """Script URL -> what an earlier run read of it, for each script whose text is kept (status ok)."""
    if previous is None or not previous.height:
        return {}
    ok = previous.filter((pl.col("status") == "ok") & (pl.col("platform") == "scriptbin")
                         & pl.col("text_path").is_not_null())
    return {r["url"]: {k: r[k] for k in _SCRIPT_PAGE_FIELDS} for r in ok.iter_rows(named=True)}


def build_scripts(settings: Settings, client: PoliteClient, analysis_rows: pl.DataFrame,
                  held: dict[str, dict] | None = None) -> pl.DataFrame:
    """The scripts rows of ``analysis_rows``' script links; a scriptbin script an earlier run kept
    (``held``, held_scripts) whose text is still there is read again from that, not from the site."""
    held = held or {}
    rows: list[dict] = []
    fetched: dict[str, dict] = {}
    profiles: dict[str, list[dict]] = {}
    for r in analysis_rows.iter_rows(named=True):
        links = json.loads(r["script_links"] or "[]")
        base = {"post_id": r["post_id"], "post_date": r["post_date"], "private_fill": bool(r["private_fill"])}
        if not links and r["private_fill"]:
            rows.append({**base, "platform": "private", "author": r["scribe"], "status": "private",
                         "error": None})
            continue
        if not links and r["scribe"] and r["kind"] == "script_fill":
            # An uncredited link (or a deleted body): look for the title on the writer's scriptbin profile.
            key = r["scribe"].lower()
            if key not in profiles:
                try:
                    profiles[key] = scriptbin.fetch_profile(client, r["scribe"])
                except (FetchError, ValueError):
                    profiles[key] = []
            found = scriptbin.match_title(profiles[key], r["clean_title"])
            if found:
                links = [{"platform": "scriptbin", "url": found, "label": "found on the writer's scriptbin profile"}]
        for link in links:
            url = link["url"]
            if link["platform"] == "reddit":
                rows.append({**base, "url": url, "platform": "reddit", "offer_post_id": _offer_post_id(url),
                             "status": "reddit_post", "author": r["scribe"]})
                continue
            known = held.get(url) if url not in fetched else None
            if known is not None and (settings.data_root / known["text_path"]).is_file():
                fetched[url] = dict(known)
            if url not in fetched:
                try:
                    script = scriptbin.resolve(client, url)
                    dest = settings.scripts_dir / safe_name(script.user) / f"{safe_name(script.slug)}.txt"
                    within(settings.data_root, dest).parent.mkdir(parents=True, exist_ok=True)
                    tmp = dest.with_name(dest.name + ".part")
                    tmp.write_text(script.text, encoding="utf-8")
                    tmp.replace(dest)
                    fetched[url] = {"url": script.url, "platform": "scriptbin", "script_user": script.user,
                                    "slug": script.slug, "title": script.title, "tags": json.dumps(script.tags),
                                    "audience": script.audience, "author": script.author,
                                    "word_count": script.word_count, "text_path": rel(settings, dest), "status": "ok"}
                except FetchError as exc:
                    fetched[url] = {"url": url, "platform": "scriptbin",
                                    "status": "not_found" if exc.status == 404 else "error", "error": str(exc)}
                except Exception as exc:  # noqa: BLE001
                    fetched[url] = {"url": url, "platform": "scriptbin", "status": "error",
                                    "error": f"script {url}: {_err(exc)}"}
            rows.append({**base, **fetched[url]})
    return frame(rows, SCRIPT_SCHEMA)


# -- artwork ---------------------------------------------------------------------------------

def _verify_image(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # noqa: BLE001
        return f"not an image: {exc}"
    return None


def build_artwork(settings: Settings, client: PoliteClient, analysis_rows: pl.DataFrame,
                  audio_rows: pl.DataFrame) -> pl.DataFrame:
    from PIL import Image

    wanted: list[tuple[dict, str, str]] = []
    for r in analysis_rows.iter_rows(named=True):
        for link in json.loads(r["image_links"] or "[]"):
            wanted.append((r, link["url"], "post"))
    for a in audio_rows.iter_rows(named=True):
        if a["artwork_url"]:
            wanted.append(({"post_id": a["post_id"], "post_date": a["post_date"]}, a["artwork_url"], a["platform"]))
    rows = []
    done: dict[str, dict] = {}
    for r, url, source in wanted:
        if url not in done:
            parts = urlsplit(url)
            ext = Path(parts.path).suffix.lower() if Path(parts.path).suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".webp") else ".img"
            dest = settings.artwork_dir / safe_name(parts.hostname) / f"{safe_name(Path(parts.path).stem)}{ext}"
            try:
                got = download(client, url, within(settings.data_root, dest), max_bytes=50 * 1024**2, verify=_verify_image)
                with Image.open(got.path) as img:
                    w, h = img.size
                done[url] = {"local_path": rel(settings, got.path), "bytes": got.bytes, "sha256": got.sha256,
                             "width": w, "height": h, "status": "ok"}
            except FetchError as exc:
                done[url] = {"status": "not_found" if exc.status == 404 else "error", "error": str(exc)}
            except Exception as exc:  # noqa: BLE001
                done[url] = {"status": "error", "error": f"artwork {url}: {_err(exc)}"}
        rows.append({"post_id": r["post_id"], "post_date": r["post_date"], "url": url, "source": source, **done[url]})
    return frame(rows, ARTWORK_SCHEMA)
