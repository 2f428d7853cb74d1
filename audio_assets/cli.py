"""The `audio-assets` command."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path


def _print(msg: str = "") -> None:
    print(msg, flush=True)


@contextmanager
def local_world(data_root: Path, *, stash_port: int = 0, replica_port: int = 0):
    """Start the replica of the outside world and the Stash emulator; set the environment."""
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.replica.server import ReplicaServer
    from audio_assets.replica.stash_emulator import StashEmulator
    from audio_assets.settings import environment

    corpus = build_corpus()
    media_dir = data_root / "cache" / "replica_media"
    videos = data_root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        replica = stack.enter_context(ReplicaServer(corpus, media_dir, port=replica_port))
        # The emulator keeps its state across runs, like a real Stash server.
        state_file = data_root / "cache" / "stash_emulator_state.json"
        stash = stack.enter_context(StashEmulator(videos, port=stash_port, state_file=state_file))
        env = {
            "AUDIO_ASSETS_DATA": str(data_root),
            "AUDIO_ASSETS_HOST_MAP": replica.host_map_env(),
            "STASH_URL": stash.url,
            "AUDIO_ASSETS_RATE_PER_HOST": os.environ.get("AUDIO_ASSETS_RATE_PER_HOST", "50"),
            # the sample creators on Patreon (no session: their paid posts show as locked)
            "AUDIO_ASSETS_PATREON_CREATORS": ",".join(sorted({r["creator"]["vanity"] for r in corpus.patreon.values()})),
        }
        with environment(env):
            yield corpus, replica, stash, env


def summary(data_root: Path, stash_url: str | None = None) -> dict:
    from audio_assets.warehouse import Warehouse

    wh = Warehouse(data_root)
    out: dict = {}

    def count(table: str, where: str = "") -> int:
        try:
            return wh.query(f'SELECT count(*) FROM "{table}" {where}')[0][0]
        except Exception:  # noqa: BLE001 - table not built yet
            return 0

    out["posts"] = count("reddit_posts")
    out["audios"] = count("audio_files", "WHERE status = 'ok'")
    out["audio_links"] = count("audio_files")
    out["scripts"] = count("scripts", "WHERE status = 'ok'")
    out["releases"] = count("releases")
    out["variants"] = count("release_variants")
    out["videos"] = count("rendered_videos", "WHERE status = 'ok'")
    out["performers"] = count("performers")
    if stash_url:
        from audio_assets.stash.client import StashClient

        with StashClient(stash_url, os.environ.get("STASH_API_KEY") or None) as c:
            for op, root in (("FindScenes", "findScenes"), ("FindPerformers", "findPerformers"), ("FindGroups", "findGroups"),
                             ("FindTags", "findTags")):
                out[f"stash_{root.removeprefix('find').lower()}"] = c.execute(op, {"filter": {"per_page": 0}})[root]["count"]
    return out


def _dagster_home(data_root: Path) -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(data_root / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return home


def cmd_demo(args) -> int:
    import dagster as dg

    from audio_assets.definitions import PipelineResource
    from audio_assets.runner import run_pipeline

    data_root = Path(os.environ.get("AUDIO_ASSETS_DATA") or "data").resolve()
    _dagster_home(data_root)
    with local_world(data_root) as (corpus, replica, stash, _env):
        days = corpus.days[: args.days] if args.days else corpus.days
        _print(f"replica on {replica.base_url}, Stash emulator on {stash.url}")
        _print(f"materialising {len(days)} days ({days[0]} .. {days[-1]}) as a single-run backfill ...")
        with dg.DagsterInstance.get() as instance:
            result = run_pipeline(days[0], days[-1], pipeline=PipelineResource(), instance=instance,
                                  log_level=os.environ.get("AUDIO_ASSETS_LOG_LEVEL", "WARNING"))
        s = summary(data_root, stash.url)
        _print("")
        _print("audio_assets demo summary")
        for key, value in s.items():
            _print(f"  {key:<18} {value}")
        _print(f"  stash mutations    {stash.mutation_count} this run")
        if result.failed_checks:
            _print(f"asset checks failed: {', '.join(result.failed_checks)}")
            return 1
        _print("all asset checks passed")
    return 0


def failure_text(exc: BaseException) -> str:
    """What went wrong in a failed run, in one line: the step and its own error (no Dagster wrapping)."""
    step = getattr(exc, "step_key", None)
    inner = getattr(exc, "user_exception", None) or exc
    return (f"{step} failed: " if step else "") + f"{inner}"


def cmd_run(args) -> int:
    """The whole pipeline for a date range against the configured world (STASH_URL, the host map,
    the data root), recorded in the Dagster instance (DAGSTER_HOME, default data/dagster_home)."""
    import dagster as dg

    from audio_assets.definitions import PipelineResource
    from audio_assets.runner import run_pipeline

    data_root = Path(os.environ.get("AUDIO_ASSETS_DATA") or "data").resolve()
    _dagster_home(data_root)
    last = args.last or args.first
    _print(f"materialising {args.first} .. {last} as a single-run backfill ...")
    try:
        with dg.DagsterInstance.get() as instance:
            result = run_pipeline(args.first, last, pipeline=PipelineResource(), instance=instance,
                                  log_level=os.environ.get("AUDIO_ASSETS_LOG_LEVEL", "WARNING"))
    except Exception as exc:  # noqa: BLE001 - one clear line; Dagster's log has the traceback
        print(f"audio-assets run: {failure_text(exc)}", file=sys.stderr)
        return 1
    for key, value in summary(data_root).items():
        _print(f"  {key:<18} {value}")
    if result.failed_checks:
        _print(f"asset checks failed: {', '.join(result.failed_checks)}")
        return 1
    _print("all asset checks passed")
    return 0


def cmd_ui(args) -> int:
    data_root = Path(os.environ.get("AUDIO_ASSETS_DATA") or "data").resolve()
    _dagster_home(data_root)
    with local_world(data_root, stash_port=args.stash_port, replica_port=args.replica_port) as (_c, replica, stash, env):
        _print(f"replica: {replica.base_url}   Stash emulator: {stash.url}")
        for k, v in env.items():
            _print(f"  {k}={v}")
        _print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops everything)")
        root = Path(__file__).resolve().parent.parent
        try:
            return subprocess.call([sys.executable, "-m", "dagster", "dev", "-w", str(root / "workspace.yaml"),
                                    "-h", "127.0.0.1", "-p", str(args.port)], cwd=root)
        except KeyboardInterrupt:
            return 0


def cmd_analyze(args) -> int:
    from audio_assets.analysis import analyse_post
    from audio_assets.platforms.reddit import parse_listing

    text = sys.stdin.read() if args.file in (None, "-") else Path(args.file).read_text()
    doc = json.loads(text)
    posts = parse_listing(doc)
    results = []
    for data in posts:
        a = analyse_post(post_id=str(data.get("id", "")), title=data.get("title"), body=data.get("selftext"),
                         author=data.get("author") if data.get("author") != "[deleted]" else None,
                         flair=data.get("link_flair_text"))
        d = a.as_dict()
        links = ("platform", "url")
        results.append({
            "clean_title": d["clean_title"], "tags": d["tags"], "audiences": d["audiences"], "kind": d["kind"],
            "performers": d["performers"], "scribe": d["scribe"], "other_credits": d["credits"],
            "private_fill": d["private_fill"],
            "audio_links": [{k: x[k] for k in links} for x in d["audio_links"]],
            "script_links": [{k: x[k] for k in links} for x in d["script_links"]],
            "variant_hints": d["variant_hints"],
        })
    is_listing = isinstance(doc, list) or (isinstance(doc, dict) and doc.get("kind") == "Listing")
    print(json.dumps(results if is_listing else (results[0] if results else None), indent=2, ensure_ascii=False))
    return 0


def cmd_render(args) -> int:
    from audio_assets import media

    data_root = Path(os.environ.get("AUDIO_ASSETS_DATA") or "data").resolve()
    r = media.render(Path(args.audio), Path(args.image), Path(args.out), cache_dir=data_root / "cache" / "stills",
                     metadata={"title": args.title} if args.title else None)
    _print(f"{r.path}: {r.duration_s:.2f}s (audio {r.audio_duration_s:.2f}s), {r.video_codec}+{r.audio_codec}, "
           f"{r.settings}, {r.seconds:.2f}s")
    return 0


def cmd_import_gwasi(args) -> int:
    from tqdm import tqdm

    from audio_assets import gwasi_import
    from audio_assets.settings import load_settings
    from audio_assets.warehouse import Warehouse

    settings = load_settings()
    bar = tqdm(total=0, unit="file", desc="decoding GWASI base", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = gwasi_import.import_dump(Path(args.path), Warehouse(settings.data_root), settings.gwasi_dir,
                                          progress=progress, memory_limit=args.memory_limit)
    except FileNotFoundError as exc:
        bar.close()
        print(f"import-gwasi: {exc}", file=sys.stderr)
        return 2
    bar.close()
    from audio_assets.layers.sources import build_gwasi_rejects

    rejects = build_gwasi_rejects(result.snapshot, result.delta)
    Warehouse(settings.data_root).replace_table("gwasi_rejects", rejects)
    s = result.staged
    _print(f"base {result.version}: {s['entries']:,} entries ({s['invalid']:,} invalid, {s['duplicates']:,} duplicates "
           f"across shards), {result.rows:,} rows over {len(result.days):,} days into gwasi_index, "
           f"{rejects.height:,} entries with no usable date into gwasi_rejects, "
           f"in {result.seconds:.1f}s ({s['entries'] / max(result.seconds, 1e-9):,.0f} entries/s)")
    if os.environ.get("DAGSTER_HOME"):
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            for day in tqdm(result.days, desc="recording partitions in Dagster", unit="day", disable=args.quiet):
                instance.report_runless_asset_event(dg.AssetMaterialization(
                    asset_key="gwasi_index", partition=day,
                    metadata={"source": "audio-assets import-gwasi", "base_version": result.version}))
        _print(f"recorded {len(result.days):,} gwasi_index partitions as materialised in {os.environ['DAGSTER_HOME']}")
    else:
        _print("DAGSTER_HOME is not set, so Dagster was not told: set DAGSTER_HOME to your instance folder and run "
               "this again, or materialise gwasi_index for these days from the UI (it reuses the staged snapshot).")
    return 0


def _warehouse():
    from audio_assets.settings import load_settings
    from audio_assets.warehouse import Warehouse

    return Warehouse(load_settings().data_root)


def _need(df, what: str):
    if df is None:
        print(f"audio-assets: no {what} yet: materialise the releases first (make demo, or from the UI)", file=sys.stderr)
        raise SystemExit(2)
    return df


def cmd_catalogue(args) -> int:
    import polars as pl

    df = _need(_warehouse().read("catalogue"), "catalogue")
    kind = {"performers": "performer", "scribes": "scribe", "tags": "tag", "audiences": "audience", "kinds": "kind"}
    if args.kind:
        df = df.filter(pl.col("kind") == kind[args.kind])
    for k, group in df.group_by("kind", maintain_order=True):
        _print(f"{k[0]}s:")
        for r in group.head(args.top).iter_rows(named=True):
            _print(f"  {r['release_count']:>4}  {r['name']}")
    return 0


def cmd_similar(args) -> int:
    import polars as pl

    wh = _warehouse()
    sims = _need(wh.read("release_similarity"), "similarity table")
    rel = _need(wh.read("releases"), "releases")
    titles = dict(zip(rel.get_column("release_id").to_list(), rel.get_column("title").to_list(), strict=True))
    hits = sims.filter((pl.col("kind") == "release") & (pl.col("item") == args.release_id))
    if not hits.height:
        known = args.release_id in titles
        print(f"audio-assets: {'no similar releases for' if known else 'no release'} {args.release_id}"
              + ("" if known else " (ids look like rel_1mf1onp: see `audio-assets search`)"), file=sys.stderr)
        return 1 if known else 2
    _print(f"releases like {args.release_id} ({titles.get(args.release_id)}):")
    for r in hits.iter_rows(named=True):
        _print(f"  {r['score']:.3f}  {r['similar']}  {titles.get(r['similar'])}")
    return 0


def cmd_search(args) -> int:
    from audio_assets.layers.catalogue import search

    hits, method = search(_need(_warehouse().read("releases"), "releases"), " ".join(args.text), limit=args.limit)
    _print(f"{len(hits)} releases ({method}):")
    for h in hits:
        _print(f"  {h['score']:.3f}  {h['release_id']}  {h['title']}")
    return 0 if hits else 1


def cmd_stash(args) -> int:
    import uuid

    from audio_assets.settings import load_settings
    from audio_assets.stash import service
    from audio_assets.stash.client import StashClient, StashError
    from audio_assets.warehouse import Warehouse

    settings = load_settings()
    wh = Warehouse(settings.data_root)
    try:
        with StashClient(settings.stash_url, os.environ.get("STASH_API_KEY") or None) as client:
            if args.action == "runs":
                for run_id, n, at in service.runs(wh):
                    _print(f"{at}  {run_id}  {n} changes")
                return 0
            if args.action == "rollback":
                if not args.run_id:
                    print("audio-assets stash rollback RUN_ID: which run? (see `audio-assets stash runs`)", file=sys.stderr)
                    return 2
                undone = service.rollback_run(wh, client, args.run_id)
                _print(f"rolled back {undone} changes of run {args.run_id}")
                return 0
            run_id = f"cli-{uuid.uuid4().hex[:12]}"
            outcome = service.sync_days(settings, wh, client, args.day or None, run_id=run_id,
                                        dry_run=args.action == "plan")
    except (StashError, LookupError) as exc:
        print(f"audio-assets stash {args.action}: {exc}", file=sys.stderr)
        return 1
    _print(outcome.plan_markdown)
    if args.action == "apply":
        _print(f"\napplied {len(outcome.changes)} changes as run {run_id}; undo with: audio-assets stash rollback {run_id}")
    else:
        _print(f"\n{len(outcome.changes)} changes planned; `audio-assets stash apply` carries them out")
    return 0


def cmd_doctor(args) -> int:
    from audio_assets import doctor
    from audio_assets.settings import load_settings

    checks = doctor.run_checks(load_settings())
    _print(doctor.render(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_summary(args) -> int:
    data_root = Path(os.environ.get("AUDIO_ASSETS_DATA") or "data").resolve()
    print(json.dumps(summary(data_root, os.environ.get("STASH_URL") if args.stash else None), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audio-assets", description="GWA releases into an organised Stash library")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the whole pipeline offline against the bundled replica and Stash emulator")
    p.add_argument("--days", type=int, default=None, help="only the first N days of the sample corpus")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("run", help="run the whole pipeline for a date range against your settings (STASH_URL, ...)")
    p.add_argument("--first", required=True, help="first day (YYYY-MM-DD, post date in UTC)")
    p.add_argument("--last", help="last day (default: the first)")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("ui", help="start the replica, the Stash emulator and `dagster dev` wired to them")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--replica-port", type=int, default=8100)
    p.add_argument("--stash-port", type=int, default=9999)
    p.set_defaults(fn=cmd_ui)
    p = sub.add_parser("analyze", help="analyse a Reddit post JSON (t3 object, its data, or a listing) from FILE or stdin")
    p.add_argument("file", nargs="?", default="-")
    p.set_defaults(fn=cmd_analyze)
    p = sub.add_parser("render", help="wrap one audio file as an mp4 with a still image")
    p.add_argument("--audio", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--title")
    p.set_defaults(fn=cmd_render)
    p = sub.add_parser("import-gwasi", help="import a GWASI dump on disk (delta.json + base in either form) into gwasi_index")
    p.add_argument("path")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit while decoding (default 1GB)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_import_gwasi)
    p = sub.add_parser("catalogue", help="performers, scribes, audiences and tags with release counts")
    p.add_argument("--kind", choices=["performers", "scribes", "tags", "audiences", "kinds"])
    p.add_argument("--top", type=int, default=20)
    p.set_defaults(fn=cmd_catalogue)
    p = sub.add_parser("similar", help="releases similar to RELEASE_ID (TF-IDF over titles, tags, descriptions)")
    p.add_argument("release_id")
    p.set_defaults(fn=cmd_similar)
    p = sub.add_parser("search", help="full-text search over releases")
    p.add_argument("text", nargs="+")
    p.add_argument("--limit", type=int, default=10)
    p.set_defaults(fn=cmd_search)
    p = sub.add_parser("stash", help="plan, apply or roll back the sync of rendered videos to Stash")
    p.add_argument("action", choices=["plan", "apply", "rollback", "runs"])
    p.add_argument("run_id", nargs="?", help="with rollback: the run to undo")
    p.add_argument("--day", action="append", help="only these release days (repeatable); default every day")
    p.set_defaults(fn=cmd_stash)
    p = sub.add_parser("doctor", help="check Stash, the library paths, ffmpeg, Reddit credentials and the data root")
    p.set_defaults(fn=cmd_doctor)
    p = sub.add_parser("summary", help="counts of every layer (and of Stash with --stash)")
    p.add_argument("--stash", action="store_true")
    p.set_defaults(fn=cmd_summary)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
