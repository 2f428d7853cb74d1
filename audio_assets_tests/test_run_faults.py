"""Whole pipeline runs that are killed, or whose Stash misbehaves, and the runs after them.

One corpus day (2025-07-25: three releases, four soundgasm audios, one two-variant release that
becomes a Stash group, one HotAudio mirror) is built once; each test starts from a copy of it at
the stage it needs and runs the whole pipeline (sources, releases, rendering, Stash sync):

- kills: `audio-assets run` in its own process group is SIGKILLed at a moment the test holds
  open (a media download stalled mid-body, a render whose temp file is written, a Stash mutation
  not yet answered), then the pipeline runs again to completion;
- Stash faults: the emulator refuses the API key, answers 500 to everything, rejects single
  writes with GraphQL errors, fails its scan job or never finishes it; then the fault clears and
  the pipeline runs again.

After every scenario the world is checked against a clean run's: files in place verify against
the tables (size, sha256, decode, duration), nothing half-written is left, no verified audio was
downloaded twice, Stash holds exactly the clean run's scenes, performers, tags, studios and groups
(nothing twice), every release matches the corpus's ground truth, and Dagster has no run left
looking in progress."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import httpx
import polars as pl
import pytest

from audio_assets.definitions import PipelineResource
from audio_assets.ffmpeg_tools import ffmpeg_exe, probe
from audio_assets.media import check_audio, sha256_file
from audio_assets.replica.ground_truth import release_mismatches
from audio_assets.runner import SOURCE_ASSETS, UNFINISHED, _materialize, run_pipeline
from audio_assets.settings import environment, load_settings
from audio_assets.warehouse import Warehouse

DAY = "2025-07-25"
MEDIA_HOSTS = {"media.soundgasm.net", "cdn.whyp.it", "c10.patreonusercontent.com"}
HOLD_S = 60  # the longest a held moment waits for the kill (a safety net: the kill comes first)
OK = pl.col("status") == "ok"


# -- the day, built once ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bases(tmp_path_factory, replica):
    """Copies of the day's data root after sources and releases (``sourced``) and after rendering
    (``rendered``), and the Stash state a clean sync of it leaves (``reference``)."""
    import audio_assets.definitions as d
    from audio_assets.replica.stash_emulator import StashEmulator

    top = tmp_path_factory.mktemp("bases")
    root = top / "build" / "data"
    (root / "videos").mkdir(parents=True)
    with StashEmulator(root / "videos") as stash:
        env = {"AUDIO_ASSETS_DATA": str(root), "AUDIO_ASSETS_HOST_MAP": replica.host_map_env(),
               "STASH_URL": stash.url, "AUDIO_ASSETS_RATE_PER_HOST": "200", "STASH_API_KEY": None,
               "REDDIT_CLIENT_ID": None, "AUDIO_ASSETS_PATREON_CREATORS": None}
        with environment(env), dg.DagsterInstance.ephemeral() as instance:
            pipeline = PipelineResource()
            _materialize(dg.AssetSelection.assets(*SOURCE_ASSETS), DAY, DAY, pipeline, instance)
            _materialize(dg.AssetSelection.assets(d.releases), None, None, pipeline, instance)
            shutil.copytree(root, top / "sourced")
            _materialize(dg.AssetSelection.assets(d.rendered_videos), DAY, DAY, pipeline, instance)
            shutil.copytree(root, top / "rendered")
            _materialize(dg.AssetSelection.assets(d.stash_scenes), DAY, DAY, pipeline, instance)
        reference = stash_state(stash, root / "videos")
    assert len(reference["scenes"]) == 4 and reference["groups"] and reference["performers"], reference
    return {"sourced": top / "sourced", "rendered": top / "rendered", "reference": reference}


@pytest.fixture
def world(tmp_path, world_factory, bases, monkeypatch):
    """A world (data root, replica, fresh Stash emulator, Dagster home) from a base, or from nothing."""

    def make(base: str | None = None):
        root = tmp_path / "data"
        if base:
            shutil.copytree(bases[base], root)
        w = world_factory(root)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.delenv("AUDIO_ASSETS_PATREON_CREATORS", raising=False)
        monkeypatch.delenv("AUDIO_ASSETS_STASH_SCAN_TIMEOUT", raising=False)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        w.log = tmp_path / "killed_run.log"
        return w

    # Dagster's sqlite storage commits every event: in memory (tmpfs) where there is one, so the runs
    # do not wait on a busy disk
    home = Path(tempfile.mkdtemp(prefix="dagster_home_", dir="/dev/shm" if os.path.isdir("/dev/shm") else tmp_path))
    yield make
    shutil.rmtree(home, ignore_errors=True)


# -- helpers ---------------------------------------------------------------------------------------


def stash_state(stash, videos: Path) -> dict:
    """Everything the sync creates, by name (lists, so a duplicate shows), scenes by library path."""
    snap = stash.snapshot()
    names = {kind: {i: o["name"] for i, o in snap[kind].items()} for kind in ("performers", "tags", "studios", "groups")}
    scenes = {}
    for s in snap["scenes"].values():
        for f in s["files"]:
            path = Path(f["path"]).relative_to(videos.resolve()).as_posix()
            assert path not in scenes, f"two scenes for {path}"
            scenes[path] = (s.get("title"), s.get("code"), sorted(names["performers"][i] for i in s.get("performer_ids") or []),
                            sorted(names["tags"][i] for i in s.get("tag_ids") or []),
                            names["studios"].get(s.get("studio_id")),
                            [(names["groups"][g["group_id"]], g.get("scene_index")) for g in s.get("groups") or []])
    state = {"scenes": scenes, **{kind: sorted(n.lower() for n in v.values()) for kind, v in names.items()}}
    for kind in ("performers", "tags", "studios", "groups"):
        assert len(state[kind]) == len(set(state[kind])), f"{kind} created twice: {state[kind]}"
    return state


def start_run(w, extra_env: dict | None = None) -> subprocess.Popen:
    """`audio-assets run` for the day in its own process group (its ffmpeg children die with it)."""
    with open(w.log, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "audio_assets.cli", "run", "--first", DAY],
                                env={**os.environ, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for(condition, what: str, proc: subprocess.Popen, w, timeout: float = HOLD_S) -> None:
    """Poll ``condition`` until it holds; fail if the run ends first or it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{w.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            kill(proc)
            pytest.fail(f"no {what} within {timeout}s:\n{w.log.read_text()[-3000:]}")
        time.sleep(0.01)


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def final_audio(w) -> dict[str, int]:
    """Audio files under their final names (only verified downloads get one) -> size."""
    root = w.data_root / "audio"
    return {p.relative_to(w.data_root).as_posix(): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(".part")} if root.exists() else {}


def leftovers(w) -> list[str]:
    """Half-written files anywhere in the data root (temp names of downloads, renders, tables)."""
    return sorted(p.relative_to(w.data_root).as_posix() for p in w.data_root.rglob("*")
                  if p.is_file() and (p.name.endswith((".part", ".tmp")) or ".part." in p.name))


def rerun(w, corpus, bases, instance: dg.DagsterInstance | None = None) -> list:
    """Run the whole pipeline to completion in this process (recorded in DAGSTER_HOME, where a
    killed run left its runs, or in ``instance``) and check the world; returns the re-run's media
    requests (what it downloaded)."""
    w.replica.clear_requests()
    with (contextlib.nullcontext(instance) if instance else dg.DagsterInstance.get()) as instance:
        result = run_pipeline(DAY, DAY, pipeline=PipelineResource(), instance=instance, log_level="ERROR")
        assert result.success and result.failed_checks == [], result
        unfinished = instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED))
        assert unfinished == [], [r.dagster_run.run_id for r in unfinished]  # the killed run is marked failed
        assert DAY in instance.get_materialized_partitions(dg.AssetKey("stash_scenes"))
    media = [r for r in w.replica.requests if r.host in MEDIA_HOSTS]
    assert_world_sound(w, corpus, bases)
    return media


def assert_world_sound(w, corpus, bases) -> None:
    from audio_assets.stash import service
    from audio_assets.stash.client import StashClient

    assert leftovers(w) == []
    wh = Warehouse(w.data_root)
    audio = wh.read("audio_files", [DAY]).filter(OK)
    assert audio.height == 4
    for r in audio.iter_rows(named=True):
        path = w.data_root / r["local_path"]
        assert path.stat().st_size == r["bytes"] and sha256_file(path) == r["sha256"], r["local_path"]
        assert check_audio(path).ok, r["local_path"]
    assert set(final_audio(w)) == set(audio.get_column("local_path").to_list())
    videos = wh.read("rendered_videos", [DAY]).filter(OK)
    assert videos.height == 4
    for r in videos.iter_rows(named=True):
        path = w.data_root / r["video_path"]
        info = probe(path)
        assert path.stat().st_size == r["bytes"] and info.has_real_video, r["video_path"]
        assert abs(info.duration_s - r["audio_duration_s"]) < 0.5, r["video_path"]
    in_library = {p.relative_to(w.data_root).as_posix() for p in (w.data_root / "videos").rglob("*") if p.is_file()}
    assert in_library == set(videos.get_column("video_path").to_list())
    assert release_mismatches(w.data_root / "warehouse.duckdb", corpus, {DAY}) == []
    scenes = wh.read("stash_scenes", [DAY])
    assert scenes.height == 4 and set(scenes.get_column("status")) == {"ok"}, scenes.select("action", "error")
    assert stash_state(w.stash, w.data_root / "videos") == bases["reference"]
    with StashClient(w.stash.url, os.environ.get("STASH_API_KEY") or None) as client:
        plan = service.sync_days(load_settings(), wh, client, [DAY], run_id="check", dry_run=True)
    assert plan.changes == []  # Stash holds exactly what the sync wants


def media_path(url: str) -> str:
    return urlsplit(url).path


# -- a stalling media host --------------------------------------------------------------------------


class StallingMedia:
    """Stands in front of the replica's media.soundgasm.net: the first ``pass_first`` downloads go
    through, every later one gets its headers and half its body, then the connection is held open
    until ``release`` (the run is killed with those downloads in flight)."""

    def __init__(self, upstream: str, pass_first: int):
        self.upstream, self.pass_first = upstream, pass_first
        self.count, self.stalled = 0, 0
        self.release = threading.Event()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - stdlib name
                with proxy.lock:
                    proxy.count += 1
                    stall = proxy.count > proxy.pass_first
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("range", "if-range", "user-agent")}
                r = httpx.get(proxy.upstream + self.path, headers=headers)
                self.send_response(r.status_code)
                for k in ("Content-Type", "Content-Length", "Content-Range", "ETag", "Accept-Ranges"):
                    if k in r.headers:
                        self.send_header(k, r.headers[k])
                self.end_headers()
                body = r.content
                try:
                    if not stall:
                        self.wfile.write(body)
                        return
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    with proxy.lock:
                        proxy.stalled += 1
                    proxy.release.wait(HOLD_S)
                    self.close_connection = True
                except OSError:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# -- kills -------------------------------------------------------------------------------------------


def test_kill_during_downloads(world, corpus, bases):
    """SIGKILL while audio downloads are in flight (two of the day's four verified and in place,
    two stalled half-way through their bodies). The killed run leaves only ``.part`` files, never a
    partial file under a final name; the re-run completes the two partial downloads (resuming with
    Range), downloads neither verified file again, and the world equals a clean run's."""
    w = world(None)
    media = StallingMedia(w.replica.host_map()["media.soundgasm.net"], pass_first=2)
    host_map = ",".join(f"{h}={media.url if h == 'media.soundgasm.net' else b}" for h, b in w.replica.host_map().items())
    proc = start_run(w, {"AUDIO_ASSETS_HOST_MAP": host_map})

    def parts() -> list[Path]:
        return sorted((w.data_root / "audio").rglob("*.part")) if (w.data_root / "audio").exists() else []

    try:
        wait_for(lambda: media.stalled == 2 and len(final_audio(w)) == 2 and len(parts()) == 2
                 and all(p.stat().st_size > 0 for p in parts()), "two verified downloads and two half-way", proc, w)
        kill(proc)
    finally:
        kill(proc)
        media.close()
    verified = final_audio(w)
    partial = {p.relative_to(w.data_root).as_posix()[: -len(".part")]: p.stat().st_size for p in parts()}
    assert len(verified) == 2 and len(partial) == 2 and not set(verified) & set(partial)
    for rel in verified:  # what got its final name is whole: it decodes
        assert check_audio(w.data_root / rel).ok, rel
    assert Warehouse(w.data_root).read("audio_files", [DAY]) is None  # the partition was never written

    fetched = rerun(w, corpus, bases)
    audio = {r["local_path"]: media_path(r["media_url"])
             for r in Warehouse(w.data_root).read("audio_files", [DAY]).iter_rows(named=True) if r["local_path"]}
    again = [r.path for r in fetched if urlsplit(r.path).path in {audio[p] for p in verified}]
    assert again == [], f"verified audio downloaded again: {again}"
    resumed = sorted((urlsplit(r.path).path, {k.lower(): v for k, v in r.headers.items()}.get("range")) for r in fetched)
    assert resumed == sorted((audio[p], f"bytes={size}-") for p, size in partial.items())


RENDER_HOLD = """#!/bin/sh
# ffmpeg for a run that is killed mid-render: the render of the F4F variant writes its temp file, then holds
case " $* " in
  *" -stream_loop "*"[F4F]"*)
    "{real}" "$@"
    : > "{marker}"
    exec sleep {hold_s};;
esac
exec "{real}" "$@"
"""


def test_kill_during_rendering(world, corpus, bases, tmp_path):
    """SIGKILL of a run (audio already downloaded) while it renders: the F4F variant's mp4 is
    written under its temp name (a name with brackets, as titles have) but not yet renamed. Nothing
    Stash would scan is partial; the re-run removes the dead render's temp file, renders what is
    missing (the videos finished before the kill are kept), and downloads nothing."""
    w = world("sourced")
    wrapper, marker = tmp_path / "ffmpeg-hold.sh", tmp_path / "render-held"
    wrapper.write_text(RENDER_HOLD.format(real=ffmpeg_exe(), marker=marker, hold_s=HOLD_S))
    wrapper.chmod(0o755)
    proc = start_run(w, {"IMAGEIO_FFMPEG_EXE": str(wrapper)})
    try:
        wait_for(marker.exists, "the F4F render written to its temp file", proc, w)
        kill(proc)
    finally:
        kill(proc)
    videos = w.data_root / "videos"
    [temp] = [p for p in videos.rglob(".*.part")]
    assert "[F4F]" in temp.name and probe(temp).has_real_video  # whole, but not under a name Stash scans
    in_place = list(videos.rglob("*.mp4"))
    assert len(in_place) < 4 and not any("[F4F]" in p.name for p in in_place), in_place
    for path in in_place:  # what has its name is whole
        assert probe(path).has_real_video, path
    assert Warehouse(w.data_root).read("rendered_videos", [DAY]) is None
    assert in_place  # the videos rendered before the F4F one
    made = {p: p.stat().st_mtime_ns for p in in_place}

    fetched = rerun(w, corpus, bases)
    assert fetched == []  # every audio was verified before the kill: nothing downloaded again
    assert {p: p.stat().st_mtime_ns for p in in_place} == made  # and finished videos were not made again


def test_kill_during_stash_sync(world, corpus, bases):
    """SIGKILL of a run in the middle of the Stash sync: the emulator holds its answer to the 8th
    mutation (the scan, performers, tags, a studio and a group have landed; scenes are half
    updated) while the run is killed. The re-run finishes the sync: Stash ends up exactly as after
    a clean run, with nothing created twice."""
    w = world("rendered")
    held, release = threading.Event(), threading.Event()

    def hold(count: int, _operation: str) -> None:
        if count == 8:
            held.set()
            release.wait(HOLD_S)

    w.stash.after_mutation = hold
    proc = start_run(w)
    try:
        wait_for(held.is_set, "the 8th Stash mutation", proc, w)
        kill(proc)
    finally:
        kill(proc)
        release.set()
        w.stash.clear_faults()
    partial = stash_state(w.stash, w.data_root / "videos")
    assert partial != bases["reference"] and w.stash.mutation_count == 8

    fetched = rerun(w, corpus, bases)
    assert fetched == []


# -- Stash faults -------------------------------------------------------------------------------------


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


class Outcome:
    """A whole pipeline run: its result or the error that stopped it, and what Dagster recorded."""

    def __init__(self, instance: dg.DagsterInstance):
        self.result = self.error = None
        before = {r.dagster_run.run_id for r in instance.get_run_records()}
        try:
            self.result = run_pipeline(DAY, DAY, pipeline=PipelineResource(), instance=instance, log_level="ERROR")
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc
        runs = [r.dagster_run.run_id for r in instance.get_run_records() if r.dagster_run.run_id not in before]
        self.logs = [str(e) for run_id in runs for e in instance.all_logs(run_id)]
        self.materialized = {}
        for key in ("rendered_videos", "stash_scenes"):
            records = instance.fetch_materializations(dg.AssetKey(key), limit=100).records
            self.materialized[key] = [r.event_log_entry for r in records if r.run_id in runs]
        self.error_text = "" if self.error is None else " | ".join(_chain(self.error))

    def scene_metadata(self) -> dict:
        [entry] = self.materialized["stash_scenes"]
        return {k: v.value for k, v in entry.asset_materialization.metadata.items()}


def _chain(exc: BaseException | None) -> list[str]:
    out = []
    while exc is not None and len(out) < 10:
        out.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return out


def stash_error(outcome: Outcome):
    """The StashError that stopped the run (Dagster wraps it)."""
    from audio_assets.stash.client import StashError

    exc = outcome.error
    while exc is not None and not isinstance(exc, StashError):
        exc = getattr(exc, "user_exception", None) or exc.__cause__
    assert exc is not None, outcome.error_text
    return exc


def assert_upstream_intact(w, bases, outcome: Outcome) -> None:
    """The Stash fault lost nothing before the sync: rendering materialised in this run, and the
    audio, releases and videos are what the base holds."""
    assert len(outcome.materialized["rendered_videos"]) == 1
    mine, base = Warehouse(w.data_root), Warehouse(bases["rendered"])
    for table, cols in {"audio_files": ["local_path", "bytes", "sha256", "status"],
                        "releases": ["release_id", "status", "variant_count"],
                        "rendered_videos": ["variant_id", "video_path", "bytes", "render_key", "status"]}.items():
        assert mine.read(table).select(cols).sort(cols[0]).equals(base.read(table).select(cols).sort(cols[0])), table
    for path in (w.data_root / "videos").rglob("*.mp4"):
        assert path.stat().st_size == (bases["rendered"] / path.relative_to(w.data_root)).stat().st_size


def scene_rows(w) -> list[dict]:
    return Warehouse(w.data_root).read("stash_scenes", [DAY]).sort("variant_id").to_dicts()


def assert_rows_name_their_file(rows: list[dict]) -> None:
    for r in rows:
        if r["status"] != "ok":
            assert r["stash_path"] in r["error"] and r["release_id"] in r["error"], r


def test_stash_refuses_the_api_key(world, corpus, bases, instance, monkeypatch):
    """401, with a wrong key and with a key revoked mid-sync. Nothing can be done without a valid
    key, so the stash_scenes step fails (automation and the UI show it) with an error that says the
    key in STASH_API_KEY was refused and where to copy the right one from; the key itself appears
    nowhere. Upstream stays materialised. Mid-sync, the scene synced before the 401 keeps its row
    and its changes are logged for rollback; the others are marked failed / not attempted with the
    reason. With the right key the re-run completes and creates nothing twice."""
    wrong, good, rotated = "sk-wrong-7b1e3d5f9a", "sk-good-2c4e6a8b0d", "sk-rotated-9f8e7d6c5b"
    w = world("rendered")
    w.stash.api_key = good
    monkeypatch.setenv("STASH_API_KEY", wrong)
    first = Outcome(instance)
    err = stash_error(first)
    assert err.kind == "auth" and "refused the API key in STASH_API_KEY (401 Unauthorized)" in str(err)
    assert "Stash > Settings > Security > API Key" in str(err) and w.stash.url in str(err)
    assert any("refused the API key" in line for line in first.logs)  # the UI shows the same words
    assert first.materialized["stash_scenes"] == [] and w.stash.mutation_count == 0
    assert_upstream_intact(w, bases, first)
    from audio_assets.cli import failure_text  # what `audio-assets run` prints: one line, no Dagster wrapping

    assert failure_text(first.error).endswith(str(err))

    monkeypatch.setenv("STASH_API_KEY", good)

    def revoke(_count: int, operation: str) -> None:
        if operation == "SceneUpdate":
            w.stash.api_key = rotated  # the user regenerates the key in Stash while a sync runs

    w.stash.after_mutation = revoke
    second = Outcome(instance)
    err = stash_error(second)
    assert err.kind == "auth" and "refused the API key" in str(err) and "1 of 4 scenes synced" in str(err)
    rows = scene_rows(w)
    assert sorted(r["action"] for r in rows) == ["failed", "not attempted", "not attempted", "updated"]
    assert_rows_name_their_file(rows)
    [done] = [r for r in rows if r["status"] == "ok"]
    log = Warehouse(w.data_root).read("stash_changes")
    assert log is not None and done["scene_id"] in log.get_column("stash_id").to_list()  # rollback can undo it
    created = log.filter(pl.col("action") == "create")
    store = {"performer": w.stash.performers, "tag": w.stash.tags, "studio": w.stash.studios, "group": w.stash.groups}
    assert created.height and all(r["stash_id"] in store[r["kind"]] for r in created.iter_rows(named=True))

    w.stash.clear_faults()
    monkeypatch.setenv("STASH_API_KEY", rotated)
    assert rerun(w, corpus, bases, instance) == []
    for secret in (wrong, good, rotated):
        for outcome in (first, second):
            assert secret not in outcome.error_text and not any(secret in line for line in outcome.logs)
            assert all(secret not in str(e) for entries in outcome.materialized.values() for e in entries)
        for path in w.data_root.rglob("*"):
            if path.is_file() and path.suffix not in (".m4a", ".mp3", ".mp4", ".png", ".jpg"):
                assert secret.encode() not in path.read_bytes(), path


def test_stash_starts_answering_500_to_everything(world, corpus, bases, instance):
    """Stash breaks mid-sync and answers HTTP 500 to every request from then on. The write that
    gets the 500 is followed by a status check (a read, retried); when that fails too, no other
    scene can sync, so the step fails with an error naming Stash's URL, the status and where to
    look (Stash's log), after recording the scene synced before (its row and its changes) and
    marking the rest. Upstream stays materialised; once Stash is healthy the re-run completes with
    nothing twice."""
    w = world("rendered")

    def break_down(_count: int, operation: str) -> None:
        if operation == "SceneUpdate":
            w.stash.fail_next_requests(500, count=None)

    w.stash.after_mutation = break_down
    outcome = Outcome(instance)
    err = stash_error(outcome)
    assert err.kind == "unavailable" and f"Stash at {w.stash.url} answered HTTP 500 (a server error)" in str(err)
    assert "a status check right after failed too (HTTP 500, 4 tries); see Stash's log" in str(err)
    assert "1 of 4 scenes synced" in str(err) and outcome.materialized["stash_scenes"] == []
    rows = scene_rows(w)
    assert sorted(r["action"] for r in rows) == ["failed", "not attempted", "not attempted", "updated"]
    assert_rows_name_their_file(rows)
    assert_upstream_intact(w, bases, outcome)

    w.stash.clear_faults()
    assert rerun(w, corpus, bases, instance) == []


def test_stash_answers_500_from_its_first_request(world, corpus, bases, instance):
    """Stash is up but broken from the start: HTTP 500 to every request, the first read included.
    Reads are retried with backoff; then the stash_scenes step fails with an error naming Stash's
    URL, the status and where to look, before any write and with no scene row written. Upstream
    stays materialised; once Stash is healthy the re-run completes with nothing twice."""
    w = world("rendered")
    w.stash.fail_next_requests(500, count=None)
    before = w.stash.mutation_count
    outcome = Outcome(instance)
    err = stash_error(outcome)
    assert err.kind == "unavailable" and err.status == 500
    assert f"Stash at {w.stash.url} answered HTTP 500 (a server error) 4 times" in str(err)
    assert "see Stash's log" in str(err) and outcome.materialized["stash_scenes"] == []
    assert w.stash.mutation_count == before
    assert Warehouse(w.data_root).read("stash_scenes", [DAY]) is None  # nothing was tried: no rows
    assert_upstream_intact(w, bases, outcome)

    w.stash.clear_faults()
    assert rerun(w, corpus, bases, instance) == []


def test_graphql_errors_fail_only_their_scenes(world, corpus, bases, instance):
    """Stash rejects two writes with GraphQL errors (a TagCreate and a SceneUpdate). Those are
    about one scene each: the two scenes' rows get status error with Stash's message, the file and
    the release; the other scenes sync, the partition materialises and its metadata lists the
    errors. The re-run completes them, with nothing twice."""
    w = world("rendered")
    w.stash.graphql_error_next("tag name rejected: database is locked", operation="TagCreate")
    w.stash.graphql_error_next("scene update rejected: database is locked", operation="SceneUpdate")
    outcome = Outcome(instance)
    assert outcome.error is None and outcome.result.failed_checks == [], outcome.error_text
    rows = scene_rows(w)
    failed = [r for r in rows if r["status"] != "ok"]
    assert len(failed) == 2 and {r["action"] for r in failed} == {"failed"}
    assert_rows_name_their_file(failed)
    assert sorted(r["error"].split("Stash ")[1].split(":")[0] for r in failed) == ["SceneUpdate", "TagCreate"]
    meta = outcome.scene_metadata()
    assert meta["rows_by_status"] == {"error": 2, "ok": 2}
    assert sorted(meta["errors"]) == sorted(r["error"] for r in failed)
    assert_upstream_intact(w, bases, outcome)

    assert rerun(w, corpus, bases, instance) == []


def test_a_failed_scan_job(world, corpus, bases, instance):
    """Stash's scan job ends FAILED. The files it was to add are not in Stash: their rows get status
    error saying the scan job failed, with Stash's reason and where to look, for each file and
    release; nothing else is created in Stash; the partition materialises, and the check that Stash
    holds a scene for every video fails (the UI shows it). The re-run scans again and completes."""
    w = world("rendered")
    w.stash.scan_mode = "fail"
    outcome = Outcome(instance)
    assert outcome.error is None and outcome.result.failed_checks == ["stash_has_scene_for_every_video"]
    rows = scene_rows(w)
    assert len(rows) == 4 and {r["action"] for r in rows} == {"missing"}
    assert_rows_name_their_file(rows)
    assert all("scan job" in r["error"] and "failed: scan failed: injected failure" in r["error"]
               and "Stash's log" in r["error"] for r in rows)
    assert not (w.stash.scenes or w.stash.performers or w.stash.tags or w.stash.groups)
    assert outcome.scene_metadata()["rows_by_status"] == {"error": 4}
    assert_upstream_intact(w, bases, outcome)

    w.stash.clear_faults()
    assert rerun(w, corpus, bases, instance) == []


def test_a_scan_that_never_finishes(world, corpus, bases, instance, monkeypatch):
    """Stash's scan job stays RUNNING past AUDIO_ASSETS_STASH_SCAN_TIMEOUT. The sync stops waiting:
    the files it was to add get status error saying the job did not finish, where to look (Stash's
    task queue) and which setting gives it longer; the partition materialises. When the stuck scan
    finally completes (its scenes appear late), the re-run picks them up: nothing twice."""
    w = world("rendered")
    monkeypatch.setenv("AUDIO_ASSETS_STASH_SCAN_TIMEOUT", "1")
    w.stash.scan_mode = "hang"
    outcome = Outcome(instance)
    assert outcome.error is None and outcome.result.failed_checks == ["stash_has_scene_for_every_video"]
    rows = scene_rows(w)
    assert len(rows) == 4 and {r["action"] for r in rows} == {"missing"}
    assert_rows_name_their_file(rows)
    assert all("did not finish within 1s (still RUNNING)" in r["error"] and "AUDIO_ASSETS_STASH_SCAN_TIMEOUT"
               in r["error"] for r in rows)
    assert_upstream_intact(w, bases, outcome)

    w.stash.clear_faults()  # the stuck job goes on and adds the scenes while the re-run looks
    assert rerun(w, corpus, bases, instance) == []
