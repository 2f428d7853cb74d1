"""Plan, apply and roll back Stash syncs over the warehouse (no Dagster here: the asset and the
`audio-assets stash` commands both call it)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from audio_assets.downloads import safe_name
from audio_assets.layers import releases as releases_layer
from audio_assets.layers import rendering
from audio_assets.settings import Settings
from audio_assets.stash.client import StashClient
from audio_assets.stash.sync import (
    CHANGE_SCHEMA,
    StashSync,
    SyncAborted,
    changes_frame,
    desired_scenes,
    plan_markdown,
    rollback,
    sync_frame,
)
from audio_assets.warehouse import Warehouse


@dataclass
class SyncOutcome:
    run_id: str
    rows: list[dict]
    changes: list[dict]
    days: list[str]
    dry_run: bool

    @property
    def plan_markdown(self) -> str:
        return plan_markdown(self.changes)


def overwrite_user_edits(env: dict | None = None) -> bool:
    return ((os.environ if env is None else env).get("AUDIO_ASSETS_STASH_OVERWRITE_EDITS") or "") in ("1", "true", "yes")


def scan_timeout_s(env: dict | None = None) -> float:
    """``AUDIO_ASSETS_STASH_SCAN_TIMEOUT``: seconds to wait for Stash's scan job (default 600)."""
    value = ((os.environ if env is None else env).get("AUDIO_ASSETS_STASH_SCAN_TIMEOUT") or "").strip()
    try:
        return float(value) if value else 600.0
    except ValueError:
        raise ValueError(f"AUDIO_ASSETS_STASH_SCAN_TIMEOUT={value!r} is not a number of seconds") from None


def _frame(df: pl.DataFrame | None, schema: dict) -> pl.DataFrame:
    return df if df is not None else pl.DataFrame(schema=schema)


def sync_days(settings: Settings, wh: Warehouse, client: StashClient, days: list[str] | None, *, run_id: str,
              dry_run: bool = False) -> SyncOutcome:
    """Sync the rendered videos of ``days`` (all when None). With ``dry_run`` nothing is written
    anywhere: the outcome's changes are the plan. Otherwise the sync state (stash_scenes) and the
    change log (stash_changes, for rollback) are written, also when the sync stops part-way
    (SyncAborted: Stash refused the key or stopped answering), before the error is raised."""
    days = days if days is not None else wh.days("rendered_videos")
    rel = _frame(wh.read("releases"), releases_layer.RELEASE_SCHEMA)
    var = _frame(wh.read("release_variants"), releases_layer.VARIANT_SCHEMA)
    perf = _frame(wh.read("performers"), releases_layer.PERFORMER_SCHEMA)
    videos = _frame(wh.read("rendered_videos", days), rendering.VIDEO_SCHEMA)
    previous = wh.read("stash_scenes", days)
    posts = wh.read("reddit_posts", days)  # a release's date is its primary post's date
    bodies = {} if posts is None else {r[0]: r[1] for r in posts.select("post_id", "body").iter_rows() if r[1]}
    wants = desired_scenes(settings, rel, var, videos, perf, bodies)
    journal = None
    if not dry_run:
        recover_journals(wh)
        journal = journal_path(wh, run_id)
        journal.parent.mkdir(parents=True, exist_ok=True)
    sync = StashSync(client, library_root=settings.stash_library_path or str(settings.videos_dir.resolve()),
                     dry_run=dry_run, overwrite_user_edits=overwrite_user_edits(),
                     previous=previous.to_dicts() if previous is not None and "written" in previous.columns else None,
                     data_root=settings.data_root, scan_timeout_s=scan_timeout_s(), journal=journal)
    try:
        rows = sync.run(wants)
    except SyncAborted as exc:
        if not dry_run:  # what was written is kept on record: the state, and the changes for rollback
            wh.replace_partitions("stash_scenes", sync_frame(exc.rows), partition_column="release_date",
                                  partitions=days)
            record_changes(wh, run_id, sync.changes)
            journal.unlink(missing_ok=True)
        raise
    # Any other end (a kill, a crash) leaves the journal: the next sync, `stash runs` or
    # `stash rollback` records its changes, so they can still be undone.
    if not dry_run:
        wh.replace_partitions("stash_scenes", sync_frame(rows), partition_column="release_date", partitions=days)
        record_changes(wh, run_id, sync.changes)
        journal.unlink(missing_ok=True)
    return SyncOutcome(run_id, rows, sync.changes, days, dry_run)


def journal_path(wh: Warehouse, run_id: str) -> Path:
    return wh.data_root / "stash" / "journal" / (safe_name(run_id, max_len=200, fallback="run") + ".jsonl")


def recover_journals(wh: Warehouse) -> list[str]:
    """Record the changes of syncs that died before recording them (their journals), so
    `stash runs` lists them and `stash rollback` can undo them. Returns their run ids."""
    folder = wh.data_root / "stash" / "journal"
    recovered = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        changes = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                changes.append(json.loads(line))
            except ValueError:  # the line being written when the process died
                continue
        if changes:
            record_changes(wh, path.stem, changes)
            recovered.append(path.stem)
        path.unlink()
    return recovered


def record_changes(wh: Warehouse, run_id: str, changes: list[dict]) -> None:
    """Append a run's changes to the log (replacing that run's earlier entries, if any)."""
    old = wh.read("stash_changes")
    new = changes_frame(run_id, changes)
    if old is not None and old.height:
        new = pl.concat([old.filter(pl.col("run_id") != run_id), new], how="diagonal_relaxed")
    wh.replace_table("stash_changes", new if new.height else pl.DataFrame(schema=CHANGE_SCHEMA))


def rollback_run(wh: Warehouse, client: StashClient, run_id: str) -> int:
    """Restore Stash to what it was before ``run_id``'s changes; the log keeps a record of it."""
    recover_journals(wh)
    log = wh.read("stash_changes")
    mine = [] if log is None else log.filter((pl.col("run_id") == run_id) & (pl.col("action") != "rolled back")).to_dicts()
    if not mine:
        raise LookupError(f"no Stash changes recorded for run {run_id}: see `audio-assets stash runs`")
    undone = rollback(client, mine)
    record_changes(wh, f"{run_id}:rollback", [{**c, "action": "rolled back"} for c in mine])
    return undone


def runs(wh: Warehouse) -> list[tuple[str, int, str]]:
    """(run id, changes, when) of every recorded sync, newest first."""
    recover_journals(wh)
    log = wh.read("stash_changes")
    if log is None or not log.height:
        return []
    agg = log.group_by("run_id").agg(pl.len().alias("n"), pl.col("at").max().alias("at")).sort("at", descending=True)
    return [(r["run_id"], r["n"], r["at"]) for r in agg.iter_rows(named=True)]
