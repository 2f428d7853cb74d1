"""Dagster definitions: thin assets, checks and sensors over the plain modules."""

import json
import os
import warnings

import dagster as dg
import polars as pl

from audio_assets import gwasi_import, gwasi_watch, media
from audio_assets.http_client import PoliteClient
from audio_assets.layers import catalogue as catalogue_layer
from audio_assets.layers import releases as releases_layer
from audio_assets.layers import rendering, sources
from audio_assets.platforms import gwasi
from audio_assets.settings import Settings, load_settings, parse_host_map
from audio_assets.stash import service as stash_service
from audio_assets.stash.client import StashClient
from audio_assets.stash.sync import sync_frame
from audio_assets.warehouse import Warehouse

# backfill_policy is marked beta in Dagster 1.13; it is the documented way to get single-run backfills.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

START_DATE = os.environ.get("AUDIO_ASSETS_START_DATE", "2014-01-01")
daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=1)
DAILY = {"partitions_def": daily_partitions, "backfill_policy": dg.BackfillPolicy.single_run()}

#: follow the upstream partition that changed (no "latest window only", no history sweep)
FOLLOW_UPSTREAM = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follow upstream")
#: releases reads every day: any updated day re-aggregates it (missing days are normal)
FOLLOW_ANY_DAY = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follow any updated day")


class PipelineResource(dg.ConfigurableResource):
    """Settings for every layer. Unset fields come from the environment (see settings.py);
    secrets (STASH_API_KEY, REDDIT_*) are read from the environment only, never config."""

    data_root: str | None = None
    host_map: str | None = None
    stash_url: str | None = None
    stash_library_path: str | None = None

    def settings(self) -> Settings:
        s = load_settings()
        changes = {}
        if self.data_root:
            from pathlib import Path

            changes["data_root"] = Path(self.data_root).resolve()
        if self.host_map:
            changes["host_map"] = {**s.host_map, **parse_host_map(self.host_map)}
        if self.stash_url:
            changes["stash_url"] = self.stash_url
        if self.stash_library_path:
            changes["stash_library_path"] = self.stash_library_path
        from dataclasses import replace

        return replace(s, **changes)

    def http(self) -> PoliteClient:
        settings = self.settings()
        return PoliteClient(settings, timeout=settings.http_timeout_s)

    def stash(self) -> StashClient:
        return StashClient(self.settings().stash_url, os.environ.get("STASH_API_KEY") or None)

    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings().data_root)


def _md_preview(df: pl.DataFrame, columns: list[str], n: int = 10) -> dg.MetadataValue:
    cols = [c for c in columns if c in df.columns]
    if not df.height or not cols:
        return dg.MetadataValue.md("_no rows_")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.select(cols).head(n).iter_rows():
        cells = [str(v if v is not None else "").replace("|", "\\|").replace("\n", " ")[:60] for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _status_counts(df: pl.DataFrame) -> dict:
    if not df.height or "status" not in df.columns:
        return {}
    return {str(k): int(v) for k, v in df.group_by("status").len().sort("status").iter_rows()}


def _errors(df: pl.DataFrame, n: int = 10) -> dict:
    """The first ``n`` errors of rows whose status is error, so the UI says what went wrong where."""
    if not df.height or "status" not in df.columns or "error" not in df.columns:
        return {}
    errors = df.filter((pl.col("status") == "error") & pl.col("error").is_not_null()).get_column("error")
    return {"errors": dg.MetadataValue.json(errors.head(n).to_list())} if errors.len() else {}


def _result(df: pl.DataFrame, preview: list[str], **extra) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(df.height),
            "rows_by_status": dg.MetadataValue.json(_status_counts(df)),
            "preview": _md_preview(df, preview),
            **_errors(df),
            **extra,
        }
    )


def _frame_or_empty(df: pl.DataFrame | None, schema: dict) -> pl.DataFrame:
    return df if df is not None else pl.DataFrame(schema=schema)


# -- sources ------------------------------------------------------------------------------------


@dg.asset(
    group_name="sources",
    description="GWASI's index of r/gonewildaudio posts, decoded: one row per post "
    "(post id, author, flair, title, created, score, duration or script words, extra), by post date (UTC).",
    **DAILY,
)
def gwasi_index(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    settings, days = pipeline.settings(), context.partition_keys
    with pipeline.http() as client:
        snapshot, delta, base_fills, notes = sources.prepare_gwasi(
            client, settings.gwasi_dir, settings.gwasi_base_url
        )
        requests = client.total_requests()
    for note in notes:
        context.log.warning(note)
    df = sources.build_gwasi_index(snapshot, delta, days, base_fills)
    wh = pipeline.warehouse()
    wh.replace_partitions("gwasi_index", df, partition_column="post_date", partitions=days)
    rejects = sources.build_gwasi_rejects(snapshot, delta)
    wh.replace_table("gwasi_rejects", rejects)
    return _result(
        df,
        ["post_date", "post_id", "author", "flair", "title", "duration_s", "script_words"],
        base_version=str(delta.get("base")),
        days=len(days),
        http_requests=requests,
        rejected_entries=rejects.height,
        base_restarts=dg.MetadataValue.json(notes),
    )


@dg.asset(
    group_name="sources",
    deps=[gwasi_index],
    automation_condition=FOLLOW_UPSTREAM,
    description="The full Reddit post for each GWASI entry (body, flair, author, deleted/removed state), read "
    "100 posts per request; posts Reddit no longer returns keep GWASI's data (source column).",
    **DAILY,
)
def reddit_posts(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, days = pipeline.warehouse(), context.partition_keys
    g = _frame_or_empty(wh.read("gwasi_index", days), sources.GWASI_SCHEMA)
    with pipeline.http() as client:
        df = sources.build_reddit_posts(pipeline.settings(), client, g)
        requests = client.total_requests()
    wh.replace_partitions("reddit_posts", df, partition_column="post_date", partitions=days)
    return _result(
        df, ["post_date", "post_id", "author", "title", "status", "source"], reddit_requests=requests
    )


@dg.asset(
    group_name="sources",
    deps=[reddit_posts],
    automation_condition=FOLLOW_UPSTREAM,
    description="Per post: clean title, tags, audiences, kind, performers, scribe, credits, private fill, and "
    "links by platform and role with variant hints. Deterministic, no LLM.",
    **DAILY,
)
def post_analysis(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, days = pipeline.warehouse(), context.partition_keys
    posts = _frame_or_empty(wh.read("reddit_posts", days), sources.REDDIT_SCHEMA)
    g = _frame_or_empty(wh.read("gwasi_index", days), sources.GWASI_SCHEMA)
    df = sources.build_post_analysis(posts, g)
    wh.replace_partitions("post_analysis", df, partition_column="post_date", partitions=days)
    kinds = {str(k): int(v) for k, v in df.group_by("kind").len().iter_rows()} if df.height else {}
    return _result(
        df,
        ["post_date", "post_id", "kind", "audiences", "performers", "scribe"],
        kinds=dg.MetadataValue.json(kinds),
    )


@dg.asset(
    group_name="sources",
    description="Posts of the Patreon creators the user follows (AUDIO_ASSETS_PATREON_CREATORS), by publication "
    "date, as analysed posts (id pt_<id>): early-access releases join their later Reddit post. Posts the "
    "user's own session (PATREON_SESSION_ID) cannot view are recorded as locked.",
    **DAILY,
)
def patreon_posts(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    days, creators = context.partition_keys, sources.patreon_creators()
    if creators:
        with pipeline.http() as client:
            df, problems = sources.build_patreon_posts(client, creators, days)
        for problem in problems:
            context.log.warning(problem)
    else:
        df, problems = pl.DataFrame(schema=sources.ANALYSIS_SCHEMA), []
    pipeline.warehouse().replace_partitions(
        "patreon_posts", df, partition_column="post_date", partitions=days
    )
    return _result(
        df,
        ["post_date", "post_id", "author", "clean_title", "status"],
        creators=len(creators),
        feed_problems=dg.MetadataValue.json(problems),
    )


def _posts(wh: Warehouse, days: list[str] | None = None) -> pl.DataFrame:
    """Analysed posts of every origin: Reddit (post_analysis) and followed Patreon creators."""
    frames = [
        f
        for f in (wh.read("post_analysis", days), wh.read("patreon_posts", days))
        if f is not None and f.height
    ]
    return (
        pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=sources.ANALYSIS_SCHEMA)
    )


@dg.asset(
    group_name="media",
    deps=[post_analysis, patreon_posts],
    automation_condition=FOLLOW_UPSTREAM,
    description="One row per audio link: platform ids, URLs, the downloaded file (data/audio/<platform>/), bytes, "
    "sha256, duration, codec, chromaprint fingerprint, status and error. HotAudio: metadata only.",
    **DAILY,
)
def audio_files(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, days = pipeline.warehouse(), context.partition_keys
    a = _posts(wh, days)
    previous = wh.read("audio_files")
    held, pages = sources.held_files(previous), sources.held_pages(previous)
    with pipeline.http() as client:
        df = sources.build_audio_files(pipeline.settings(), client, a, held=held, pages=pages)
    wh.replace_partitions("audio_files", df, partition_column="post_date", partitions=days)
    return _result(
        df,
        ["post_date", "post_id", "platform", "platform_id", "duration_s", "status"],
        bytes=int(df.get_column("bytes").fill_null(0).sum()) if df.height else 0,
    )


@dg.asset(
    group_name="media",
    deps=[post_analysis],
    automation_condition=FOLLOW_UPSTREAM,
    description="Scripts linked from posts: scriptbin.works texts saved under data/scripts/scriptbin/, links to "
    "Reddit script offers, and private fills marked.",
    **DAILY,
)
def scripts(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, days = pipeline.warehouse(), context.partition_keys
    a = _frame_or_empty(wh.read("post_analysis", days), sources.ANALYSIS_SCHEMA)
    held = sources.held_scripts(wh.read("scripts"))
    with pipeline.http() as client:
        df = sources.build_scripts(pipeline.settings(), client, a, held=held)
    wh.replace_partitions("scripts", df, partition_column="post_date", partitions=days)
    return _result(df, ["post_date", "post_id", "platform", "title", "author", "word_count", "status"])


@dg.asset(
    group_name="media",
    deps=[post_analysis, audio_files],
    automation_condition=FOLLOW_UPSTREAM,
    description="Images linked from posts and platforms (whyp.it artwork), saved under data/artwork/.",
    **DAILY,
)
def artwork(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, days = pipeline.warehouse(), context.partition_keys
    a = _frame_or_empty(wh.read("post_analysis", days), sources.ANALYSIS_SCHEMA)
    au = _frame_or_empty(wh.read("audio_files", days), sources.AUDIO_SCHEMA)
    with pipeline.http() as client:
        df = sources.build_artwork(pipeline.settings(), client, a, au)
    wh.replace_partitions("artwork", df, partition_column="post_date", partitions=days)
    return _result(df, ["post_date", "post_id", "url", "width", "height", "status"])


# -- releases -----------------------------------------------------------------------------------


@dg.asset(
    group_name="releases",
    deps=[post_analysis, patreon_posts, audio_files, scripts, artwork],
    automation_condition=FOLLOW_ANY_DAY,
    description="Releases over every day: posts of one performance, its audio variants (mirrors grouped by "
    "acoustic fingerprint), performers, scribe and script. Also writes release_variants, performers and "
    "data/releases/release_db.json; credits (person, role) and release_tags (audience, kind, content; raw kept).",
)
def releases(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, settings = pipeline.warehouse(), pipeline.settings()
    a = _posts(wh)
    au = _frame_or_empty(wh.read("audio_files"), sources.AUDIO_SCHEMA)
    old = wh.read("releases")
    previous_sigs = wh.read("release_inputs")
    rel, var, perf, sigs, stats = releases_layer.aggregate_incremental(
        a, au, wh.read("scripts"), wh.read("artwork"), wh.read("reddit_posts"),
        # aggregation reads only which offer a post fills: not the millions of rows of a full index
        wh.query_frame("SELECT post_id, fill_of FROM gwasi_index WHERE fill_of IS NOT NULL ORDER BY post_id"),
        previous_releases=old, previous_variants=wh.read("release_variants"),
        previous_signatures=dict(previous_sigs.iter_rows()) if previous_sigs is not None else None,
    )
    context.log.info(f"aggregation: {stats}")
    wh.replace_table("releases", rel)
    wh.replace_table("release_variants", var)
    wh.replace_table("performers", perf)
    credits, tags = releases_layer.credits_and_tags(rel)
    wh.replace_table("credits", credits)
    wh.replace_table("release_tags", tags)
    works = releases_layer.script_works(rel)
    wh.replace_table("script_works", works)
    releases_layer.export_release_db(settings.release_db_path, rel, var, perf)
    # written last: a run that dies before this point re-aggregates the same posts next time
    wh.replace_table("release_inputs", pl.DataFrame(list(sigs.items()), schema=releases_layer.SIGNATURE_SCHEMA,
                                                    orient="row"))
    changed = releases_layer.changed_release_days(old, rel)
    context.log.info(f"{rel.height} releases, {var.height} variants; release days changed: {len(changed)}")
    return _result(
        rel,
        ["release_id", "release_date", "title", "performers", "variant_count", "status"],
        variants=var.height,
        performers=perf.height,
        credits=credits.height,
        tags=tags.height,
        scripts_performed_more_than_once=int(works.filter(pl.col("performance_count") > 1).height),
        changed_release_days=dg.MetadataValue.json(changed),
        aggregation=dg.MetadataValue.json(stats),
    )


@dg.asset(
    group_name="releases",
    deps=[releases],
    automation_condition=FOLLOW_ANY_DAY,
    description="The catalogue: performers, scribes, audiences, kinds and tags with their release counts.",
)
def catalogue(pipeline: PipelineResource) -> dg.MaterializeResult:
    wh = pipeline.warehouse()
    df = catalogue_layer.build_catalogue(_frame_or_empty(wh.read("releases"), releases_layer.RELEASE_SCHEMA))
    wh.replace_table("catalogue", df)
    kinds = {str(k): int(v) for k, v in df.group_by("kind").len().iter_rows()} if df.height else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": df.height,
            "by_kind": dg.MetadataValue.json(kinds),
            "preview": _md_preview(df, ["kind", "name", "release_count"], 15),
        }
    )


@dg.asset(
    group_name="releases",
    deps=[releases],
    automation_condition=FOLLOW_ANY_DAY,
    description="Similar releases (TF-IDF over titles, tags and descriptions, cosine) and similar performers "
    "(the cosine of their mean release profiles), top 5 each.",
)
def release_similarity(pipeline: PipelineResource) -> dg.MaterializeResult:
    wh = pipeline.warehouse()
    df = catalogue_layer.build_similarity(_frame_or_empty(wh.read("releases"), releases_layer.RELEASE_SCHEMA))
    wh.replace_table("release_similarity", df)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": df.height,
            "preview": _md_preview(df, ["kind", "item", "similar", "rank", "score"], 10),
        }
    )


# -- stash --------------------------------------------------------------------------------------


@dg.asset(
    group_name="stash",
    deps=[releases],
    description="Each audio variant wrapped as an mp4 (real h264 still-image stream from the artwork or a title "
    "card, audio copied) under data/videos/, by release date.",
    **DAILY,
)
def rendered_videos(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, settings, days = pipeline.warehouse(), pipeline.settings(), context.partition_keys
    rel = _frame_or_empty(wh.read("releases"), releases_layer.RELEASE_SCHEMA).filter(
        pl.col("release_date").is_in(days)
    )
    var = _frame_or_empty(wh.read("release_variants"), releases_layer.VARIANT_SCHEMA).filter(
        pl.col("release_date").is_in(days)
    )
    df = rendering.build_rendered_videos(settings, rel, var, wh.read("rendered_videos", days))
    wh.replace_partitions("rendered_videos", df, partition_column="release_date", partitions=days)
    rendered = int(df.get_column("rendered").fill_null(False).sum()) if df.height else 0
    return _result(
        df, ["release_date", "variant_id", "video_path", "duration_s", "status"], newly_rendered=rendered
    )


@dg.asset(
    group_name="stash",
    deps=[rendered_videos],
    automation_condition=FOLLOW_UPSTREAM,
    description="Stash scenes for the rendered videos: scan, then one scene per variant with performers, tags, "
    "studio and a group per multi-variant release. The sync state (Stash ids, hash of what was written).",
    **DAILY,
)
def stash_scenes(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    wh, settings, days = pipeline.warehouse(), pipeline.settings(), context.partition_keys
    with pipeline.stash() as client:
        plan = stash_service.sync_days(settings, wh, client, days, run_id=context.run.run_id, dry_run=True)
        outcome = stash_service.sync_days(settings, wh, client, days, run_id=context.run.run_id)
        mutations, requests = client.mutations, client.requests
    df = sync_frame(outcome.rows)
    actions = {str(k): int(v) for k, v in df.group_by("action").len().iter_rows()} if df.height else {}
    return _result(
        df,
        ["release_date", "variant_id", "scene_id", "action", "status"],
        stash_mutations=mutations,
        stash_requests=requests,
        actions=dg.MetadataValue.json(actions),
        plan=dg.MetadataValue.md(plan.plan_markdown),
        changes_applied=len(outcome.changes),
        rollback=dg.MetadataValue.text(f"audio-assets stash rollback {context.run.run_id}"),
    )


# -- checks -------------------------------------------------------------------------------------


@dg.asset_check(asset=gwasi_index, description="No post id appears twice in the index.")
def gwasi_no_duplicate_post_ids(pipeline: PipelineResource) -> dg.AssetCheckResult:
    counts = pipeline.warehouse().query_frame(
        "SELECT (SELECT count(*) FROM (SELECT post_id FROM gwasi_index WHERE post_id IS NOT NULL "
        "GROUP BY post_id HAVING count(*) > 1)) AS dups, "
        "(SELECT count(*) FROM gwasi_index WHERE status <> 'ok') AS invalid")
    dups, invalid = (0, 0) if counts is None else counts.row(0)
    rejects = pipeline.warehouse().read("gwasi_rejects")
    return dg.AssetCheckResult(
        passed=dups == 0,
        metadata={"duplicate_post_ids": dups, "invalid_entries": invalid,
                  "rejected_undated_entries": 0 if rejects is None else rejects.height},
    )


@dg.asset_check(
    asset=releases,
    description="Every release has a playable audio, or a status saying why not; "
    "no audio belongs to two releases.",
)
def releases_have_audio(pipeline: PipelineResource) -> dg.AssetCheckResult:
    wh = pipeline.warehouse()
    rel, var = wh.read("releases"), wh.read("release_variants")
    if rel is None or var is None:
        return dg.AssetCheckResult(passed=True, metadata={"releases": 0})
    unexplained = rel.filter((pl.col("status") != "ok") & pl.col("status_reason").is_null()).height
    no_audio = rel.filter(pl.col("status") != "ok").height
    shared = (
        var.filter(pl.col("audio_sha256").is_not_null())
        .group_by("audio_sha256")
        .agg(pl.col("release_id").n_unique())
        .filter(pl.col("release_id") > 1)
        .height
    )
    return dg.AssetCheckResult(
        passed=unexplained == 0 and shared == 0,
        metadata={
            "releases": rel.height,
            "without_audio": no_audio,
            "without_audio_unexplained": unexplained,
            "audio_in_two_releases": shared,
        },
    )


@dg.asset_check(asset=releases, description="No performer identity is split by case or alias.")
def performers_not_split(pipeline: PipelineResource) -> dg.AssetCheckResult:
    perf = pipeline.warehouse().read("performers")
    split = [] if perf is None else releases_layer.split_identities(perf)
    return dg.AssetCheckResult(
        passed=not split,
        metadata={
            "performers": 0 if perf is None else perf.height,
            "split_names": dg.MetadataValue.json(split[:20]),
        },
    )


@dg.asset_check(
    asset=audio_files,
    description="Every downloaded audio file exists with its recorded size and decodes with ffmpeg "
    "(each file decoded once; later checks only look at new files).",
)
def audio_files_decode(pipeline: PipelineResource) -> dg.AssetCheckResult:
    settings = pipeline.settings()
    df = pipeline.warehouse().read("audio_files")
    if df is None:
        return dg.AssetCheckResult(passed=True, metadata={"checked": 0})
    ok = df.filter(pl.col("status") == "ok").unique("local_path")
    # Every file must be there with its size; only files not decoded by an earlier check are decoded
    # again, so a run that adds one audio decodes one file.
    state = settings.state_dir / "decoded_audio.json"
    decoded = set(json.loads(state.read_text())) if state.exists() else set()
    bad, newly = [], []
    for row in ok.select("local_path", "bytes", "sha256").iter_rows(named=True):
        path = settings.data_root / row["local_path"]
        if not path.exists() or (row["bytes"] is not None and path.stat().st_size != row["bytes"]):
            bad.append(f"{row['local_path']}: missing or not the size recorded")
            continue
        if row["sha256"] in decoded:
            continue
        result = media.check_audio(path)
        if result.ok:
            newly.append(row["sha256"])
        else:
            bad.append(f"{row['local_path']}: {result.error}")
    if newly:
        state.parent.mkdir(parents=True, exist_ok=True)
        tmp = state.with_suffix(".part")
        tmp.write_text(json.dumps(sorted(decoded | set(newly))))
        tmp.replace(state)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"files": ok.height, "decoded_now": len(newly), "failed": len(bad),
                  "failures": dg.MetadataValue.json(bad[:20])},
    )


@dg.asset_check(
    asset=rendered_videos, description="Every mp4 exists and its duration equals its audio's within 0.5 s."
)
def rendered_duration_matches_audio(pipeline: PipelineResource) -> dg.AssetCheckResult:
    settings = pipeline.settings()
    df = pipeline.warehouse().read("rendered_videos")
    if df is None:
        return dg.AssetCheckResult(passed=True, metadata={"videos": 0})
    ok = df.filter(pl.col("status") == "ok")
    off = ok.filter((pl.col("duration_s") - pl.col("audio_duration_s")).abs() > 0.5).height
    missing = sum(1 for p in ok.get_column("video_path").to_list() if not (settings.data_root / p).exists())
    return dg.AssetCheckResult(
        passed=off == 0 and missing == 0,
        metadata={"videos": ok.height, "duration_off": off, "missing_files": missing},
    )


@dg.asset_check(asset=stash_scenes, description="Stash holds a scene for every rendered video (exact path).")
def stash_has_scene_for_every_video(pipeline: PipelineResource) -> dg.AssetCheckResult:
    settings = pipeline.settings()
    videos = pipeline.warehouse().read("rendered_videos")
    if videos is None:
        return dg.AssetCheckResult(passed=True, metadata={"videos": 0})
    wanted = {
        settings.stash_path_for(settings.data_root / p)
        for p in videos.filter(pl.col("status") == "ok").get_column("video_path").to_list()
    }
    root = settings.stash_library_path or str(settings.videos_dir.resolve())
    with pipeline.stash() as client:
        scenes = client.find_all(
            "FindScenes",
            "findScenes",
            "scenes",
            {"scene_filter": {"path": {"value": root, "modifier": "INCLUDES"}}},
        )
    held = {f["path"] for s in scenes for f in s["files"]}
    missing = sorted(wanted - held)
    return dg.AssetCheckResult(
        passed=not missing,
        metadata={
            "videos": len(wanted),
            "scenes": len(scenes),
            "missing": dg.MetadataValue.json(missing[:20]),
        },
    )


# -- sensors ------------------------------------------------------------------------------------


@dg.sensor(
    target=[gwasi_index, patreon_posts],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls GWASI's delta.json and requests gwasi_index (and followed Patreon feeds) runs for the days whose posts were "
    "added, changed or removed. Downstream layers follow by declarative automation.",
)
def gwasi_sensor(context: dg.SensorEvaluationContext, pipeline: PipelineResource):
    settings = pipeline.settings()
    wh = pipeline.warehouse()
    with pipeline.http() as client:
        delta = gwasi.fetch_delta(client, settings.gwasi_base_url)

        def load_day_digests(d: dict) -> dict[str, str]:
            snap, _, fills = gwasi_import.prepare_snapshot(
                client, settings.gwasi_dir, settings.gwasi_base_url, d
            )
            con = gwasi_import.connect()
            try:
                return gwasi_import.day_digests(
                    con, gwasi_import.overlay(con, snap, d, None, base_fills=fills)
                )
            finally:
                con.close()

        def days_of_posts(ids: list[str]) -> dict[str, str]:
            if not wh.db_path.exists():
                return {}
            try:
                rows = wh.query(
                    "SELECT post_id, post_date FROM gwasi_index WHERE post_id IN (SELECT unnest(?))", [ids]
                )
            except Exception:  # noqa: BLE001 - no table yet
                return {}
            return dict(rows)

        try:
            result = gwasi_watch.check(
                delta, context.cursor, load_day_digests=load_day_digests, days_of_posts=days_of_posts
            )
        except gwasi.BaseReplaced as exc:  # the next tick walks the new base (the cursor is unchanged)
            return dg.SkipReason(str(exc))
    valid_days = set(daily_partitions.get_partition_keys())
    requests = [
        dg.RunRequest(run_key=f"gwasi:{day}:{result.digests.get(day)}", partition_key=day)
        for day in result.changed_days
        if day in valid_days
    ]
    context.update_cursor(result.cursor)
    if not requests:
        return dg.SkipReason("GWASI delta unchanged")
    return requests


@dg.asset_sensor(
    asset_key=dg.AssetKey("releases"),
    job_name="render_and_sync",
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="After releases re-aggregate, renders and syncs only the release days whose releases changed.",
)
def releases_changed_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    mat = asset_event.asset_materialization
    changed = mat.metadata.get("changed_release_days") if mat else None
    days = list(changed.value) if changed is not None else []
    valid = set(daily_partitions.get_partition_keys())
    for day in days:
        if day in valid:
            yield dg.RunRequest(
                run_key=f"render:{day}:{asset_event.run_id}:{asset_event.timestamp}", partition_key=day
            )


render_and_sync = dg.define_asset_job(
    "render_and_sync",
    selection=[rendered_videos, stash_scenes],
)
daily_sources_job = dg.define_asset_job(
    "daily_sources", selection=[gwasi_index, reddit_posts, post_analysis, audio_files, scripts, artwork]
)
releases_job = dg.define_asset_job("build_releases", selection=[releases])

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)

ALL_ASSETS = [
    gwasi_index,
    patreon_posts,
    reddit_posts,
    post_analysis,
    audio_files,
    scripts,
    artwork,
    releases,
    catalogue,
    release_similarity,
    rendered_videos,
    stash_scenes,
]
ALL_CHECKS = [
    gwasi_no_duplicate_post_ids,
    releases_have_audio,
    performers_not_split,
    audio_files_decode,
    rendered_duration_matches_audio,
    stash_has_scene_for_every_video,
]


def build_definitions(pipeline: PipelineResource | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        sensors=[gwasi_sensor, releases_changed_sensor, automation_sensor],
        jobs=[render_and_sync, daily_sources_job, releases_job],
        resources={"pipeline": pipeline or PipelineResource()},
    )


defs = build_definitions()

__all__ = ["defs", "build_definitions", "PipelineResource", "daily_partitions"]
