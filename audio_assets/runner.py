"""Run the whole pipeline in-process through Dagster (the demo, the tests, `audio-assets run`).

A date range runs as a single-run backfill (one run over the partition range, as the
assets' backfill policy asks), then releases, then rendering and the Stash sync, all
recorded in the Dagster instance so the UI shows the partitions as materialised.

Runs execute in this process, so nothing outside it notices when it dies (SIGKILL, a crash, the
machine going down): each run is tagged with its process, and the next pipeline run marks runs
whose process is gone as failed, so the UI and automation do not see them in progress forever."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg

from audio_assets.definitions import (
    ALL_ASSETS,
    ALL_CHECKS,
    PipelineResource,
    artwork,
    audio_files,
    catalogue,
    gwasi_index,
    patreon_posts,
    post_analysis,
    reddit_posts,
    release_similarity,
    releases,
    rendered_videos,
    scripts,
    stash_scenes,
)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
PID_TAG = "audio_assets/pid"
HOST_TAG = "audio_assets/host"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.CANCELING]
SOURCE_ASSETS = [gwasi_index, patreon_posts, reddit_posts, post_analysis, audio_files, scripts, artwork]
STASH_ASSETS = [rendered_videos, stash_scenes]


@dataclass
class PipelineRun:
    run_ids: list[str]
    success: bool
    failed_checks: list[str]


def _materialize(
    selection,
    first: str | None,
    last: str | None,
    pipeline: PipelineResource,
    instance: dg.DagsterInstance,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    tags = {RANGE_START: first, RANGE_END: last} if first else {}
    tags.update({PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=selection,
        instance=instance,
        resources={"pipeline": pipeline},
        tags=tags,
        raise_on_error=True,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark as failed the unfinished runs of this host whose process no longer exists (killed
    mid-run). Returns their run ids."""
    orphans = []
    host = socket.gethostname()
    for record in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, message=f"the process running it (pid {pid} on {host}) ended without "
                                   "finishing the run (killed or crashed); what it completed is kept, the next run "
                                   "does the rest")
        orphans.append(run.run_id)
    return orphans


def run_pipeline(
    first_day: str,
    last_day: str,
    *,
    pipeline: PipelineResource,
    instance: dg.DagsterInstance,
    log_level: str = "INFO",
) -> PipelineRun:
    def run(selection, first, last):
        return _materialize(selection, first, last, pipeline, instance, log_level)

    fail_orphaned_runs(instance)

    runs = [
        run(
            dg.AssetSelection.assets(*SOURCE_ASSETS) | dg.AssetSelection.checks_for_assets(*SOURCE_ASSETS),
            first_day,
            last_day,
        ),
        run(dg.AssetSelection.assets(releases, catalogue, release_similarity)
            | dg.AssetSelection.checks_for_assets(releases), None, None),
        run(
            dg.AssetSelection.assets(*STASH_ASSETS) | dg.AssetSelection.checks_for_assets(*STASH_ASSETS),
            first_day,
            last_day,
        ),
    ]
    failed = []
    for r in runs:
        for ev in r.get_asset_check_evaluations():
            if not ev.passed:
                failed.append(ev.check_name)
    return PipelineRun([r.run_id for r in runs], all(r.success for r in runs), failed)
