"""`audio-assets doctor`: check the set-up and say what to do about each problem."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from audio_assets.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    advice: str | None = None


def check_stash(settings: Settings, api_key: str | None) -> list[Check]:
    from audio_assets.stash.client import StashClient, StashError

    out: list[Check] = []
    with StashClient(settings.stash_url, api_key, retries=0, timeout=10) as client:
        try:
            v = client.version()
        except StashError as exc:
            if exc.status == 401:
                advice = ("set STASH_API_KEY to the key in Stash > Settings > Security" if not api_key else
                          "STASH_API_KEY does not match the server's key: copy it again from Stash > Settings > Security "
                          "(or unset it if the server has no credentials)")
            else:
                advice = f"is Stash running? Set STASH_URL to its GraphQL endpoint (now {settings.stash_url})"
            return [Check("Stash connection", False, str(exc), advice)]
        out.append(Check("Stash connection", True, f"{settings.stash_url}: Stash {v.get('version')} ({v.get('hash')})"))
        try:
            stashes = client.execute("LibraryConfiguration")["configuration"]["general"]["stashes"]
        except StashError as exc:
            out.append(Check("Stash library paths", False, str(exc), "check the API key's permissions"))
            return out
    seen = settings.stash_path_for(settings.videos_dir / "x.mp4").rsplit("/", 1)[0]
    roots = [s["path"].rstrip("/") for s in stashes if not s.get("excludeVideo")]
    inside = any(seen == r or seen.startswith(r + "/") for r in roots)
    out.append(Check(
        "Stash library paths", inside,
        f"videos go to {settings.videos_dir}, which Stash sees as {seen}; Stash scans {roots or 'nothing'}",
        None if inside else ("add that folder as a library in Stash > Settings > Library, or, if Stash sees it under "
                             "another path (a container mount), set STASH_LIBRARY_PATH to that path"),
    ))
    return out


def check_ffmpeg() -> Check:
    from audio_assets.ffmpeg_tools import ffmpeg_exe

    try:
        exe = ffmpeg_exe()
        muxers = subprocess.run([exe, "-hide_banner", "-muxers"], capture_output=True, text=True, timeout=30).stdout
        encoders = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    except Exception as exc:  # noqa: BLE001
        return Check("ffmpeg", False, f"{type(exc).__name__}: {exc}",
                     "reinstall the project (`make venv`): ffmpeg comes from the imageio-ffmpeg package")
    missing = [n for n, text in (("libx264", encoders), ("chromaprint", muxers)) if n not in text]
    return Check("ffmpeg", not missing, f"{exe}" + (f"; missing {', '.join(missing)}" if missing else ""),
                 "install an imageio-ffmpeg build with libx264 and chromaprint" if missing else None)


def check_reddit(settings: Settings) -> Check:
    from audio_assets.http_client import FetchError, PoliteClient
    from audio_assets.platforms.reddit import praw_credentials

    creds = praw_credentials()
    if not creds:
        return Check("Reddit", True, "no REDDIT_CLIENT_ID/SECRET: reading Reddit's public JSON (100 posts a request)")
    cid, secret, ua = creds
    if ":" not in ua or "(by u/" not in ua:
        return Check("Reddit", False, f"REDDIT_USER_AGENT {ua!r} is not in Reddit's format",
                     "use <platform>:<app id>:<version> (by u/<your name>), e.g. python:audio_assets:0.1 (by u/you)")
    try:
        with PoliteClient(settings, max_retries=1, timeout=15) as client:
            token = client.request("POST", "https://www.reddit.com/api/v1/access_token",
                                   data={"grant_type": "client_credentials"}, auth=(cid, secret)).json()
    except FetchError as exc:
        return Check("Reddit", False, f"token request failed: HTTP {exc.status}",
                     "check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (a 'script' app at reddit.com/prefs/apps)")
    ok = bool(token.get("access_token"))
    return Check("Reddit", ok, "credentials accepted (PRAW will be used)" if ok else "no token in Reddit's answer",
                 None if ok else "check the app's type and credentials")


def check_data_root(settings: Settings) -> Check:
    root = settings.data_root
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".doctor_write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("data root", False, f"{root}: {exc}", "set AUDIO_ASSETS_DATA to a folder you can write")
    free = shutil.disk_usage(root).free
    return Check("data root", free > 5 * 1024**3, f"{root}: {free / 1024**3:.1f} GiB free",
                 None if free > 5 * 1024**3 else "free some space: audio needs ~20 MB a release")


def run_checks(settings: Settings, env: dict | None = None) -> list[Check]:
    env = os.environ if env is None else env
    checks = [check_data_root(settings), check_ffmpeg()]
    checks += check_stash(settings, env.get("STASH_API_KEY") or None)
    checks.append(check_reddit(settings))
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        if c.advice and not c.ok:
            lines.append(f"       -> {c.advice}")
    return "\n".join(lines)


