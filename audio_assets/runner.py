"""Run the whole pipeline in-process through Dagster (the demo, the tests, `audio-assets run`).

A date range runs as a single-run backfill (one run over the partition range, as the
assets' backfill policy asks), then releases, then rendering and the Stash sync, all
recorded in the Dagster instance so the UI shows the partitions as materialised."""

from __future__ import annotations

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
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=selection,
        instance=instance,
        resources={"pipeline": pipeline},
        tags=tags,
        raise_on_error=True,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


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
