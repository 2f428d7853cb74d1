"""incremental: a backfill of every corpus day through Dagster, then one new post: the cost of
materialising only its day vs the backfill (time, requests to the outside world, rows written)."""

from __future__ import annotations

import calendar
import time
from collections import Counter

from benchmarks.common import REPLICA_MEDIA, BenchResult, env, say, temp_dir

NEW_POST_ID = "1zzbnch1"
#: the one-day run may cost up to this many times the backfill's average day (days differ in size)
SLACK = 2.0


def _run_facts(instance, run_ids: list[str]) -> list[dict]:
    """Per Dagster run: seconds, and rows written per asset (metadata dagster/row_count; a single-run
    backfill records the range's count on every partition's materialisation, so one value per asset)."""
    import dagster as dg

    facts = []
    for rid in run_ids:
        stats = instance.get_run_stats(rid)
        rows: dict[str, int] = {}
        for entry in instance.all_logs(rid, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = entry.asset_materialization
            value = mat.metadata.get("dagster/row_count")
            if value is not None:
                rows[mat.asset_key.to_user_string()] = int(value.value)
        steps = {}
        for entry in instance.all_logs(rid, of_type=dg.DagsterEventType.STEP_SUCCESS):
            data = entry.dagster_event.event_specific_data
            steps[entry.step_key] = round((getattr(data, "duration_ms", 0) or 0) / 1000, 2)
        facts.append(
            {
                "run_id": rid,
                "seconds": (stats.end_time or 0) - (stats.start_time or 0),
                "rows": rows,
                "steps": steps,
            }
        )
    return facts


def _requests_by_host(server) -> Counter:
    return Counter(r.host for r in list(server.requests))


def run(scale: float, **_) -> BenchResult:
    import dagster as dg

    from audio_assets.definitions import PipelineResource
    from audio_assets.replica.corpus import build_corpus
    from audio_assets.replica.server import ReplicaServer
    from audio_assets.replica.stash_emulator import StashEmulator
    from audio_assets.runner import run_pipeline

    res = BenchResult("incremental")
    corpus = build_corpus()
    days = list(corpus.days)
    if scale < 1:
        days = days[: max(4, round(len(days) * scale * 10))]
        res.note(f"scale {scale}: backfill of the first {len(days)} of the corpus's {len(corpus.days)} days")
    n_days = len(days)
    day = days[n_days // 2]
    with temp_dir("incremental") as tmp:
        data = tmp / "data"
        (data / "videos").mkdir(parents=True)
        server = ReplicaServer(corpus, REPLICA_MEDIA).start()
        emu = StashEmulator(data / "videos").start()
        try:
            with (
                env(
                    AUDIO_ASSETS_DATA=str(data),
                    AUDIO_ASSETS_HOST_MAP=server.host_map_env(),
                    STASH_URL=emu.url,
                    AUDIO_ASSETS_RATE_PER_HOST="200",
                    STASH_API_KEY=None,
                    REDDIT_CLIENT_ID=None,
                    REDDIT_CLIENT_SECRET=None,
                    DAGSTER_HOME=None,
                ),
                dg.DagsterInstance.ephemeral() as instance,
            ):
                # 1. The backfill of every day.
                say(f"  backfill of {n_days} days ({days[0]} .. {days[-1]}) ...")
                server.clear_requests()
                emu_req0, emu_mut0 = emu.request_count, emu.mutation_count
                t0 = time.perf_counter()
                full = run_pipeline(
                    days[0], days[-1], pipeline=PipelineResource(), instance=instance, log_level="WARNING"
                )
                full_s = time.perf_counter() - t0
                full_hosts = _requests_by_host(server)
                full_req = sum(full_hosts.values())
                full_stash = (emu.request_count - emu_req0, emu.mutation_count - emu_mut0)
                full_runs = _run_facts(instance, full.run_ids)
                say(
                    f"  backfill: {full_s:.1f}s, {full_req} requests to the replica, Stash {full_stash[0]} requests / "
                    f"{full_stash[1]} mutations, runs {[round(r['seconds'], 1) for r in full_runs]}s"
                    + (f", failed checks {full.failed_checks}" if full.failed_checks else "")
                )

                # 2. One new post on an existing day, linking an existing soundgasm audio page.
                rec = next(r for r in corpus.soundgasm.values() if not r["removed"])
                created = calendar.timegm(time.strptime(day, "%Y-%m-%d")) + 13 * 3600 + 17 * 60
                link = f"https://soundgasm.net/u/{rec['user']}/{rec['slug']}"
                server.add_post(
                    {
                        "id": NEW_POST_ID,
                        "name": f"t3_{NEW_POST_ID}",
                        "subreddit": "gonewildaudio",
                        "author": rec["user"],
                        "title": f"[F4M] [OC] [Whispers] {rec['title'].split('] ')[-1]} (repost)",
                        "link_flair_text": "OC",
                        "selftext": f"[Soundgasm]({link})\n\nThank you for listening!",
                        "created_utc": float(created),
                        "created": float(created),
                        "score": 12,
                        "num_comments": 0,
                        "over_18": True,
                        "permalink": f"/r/gonewildaudio/comments/{NEW_POST_ID}/repost/",
                        "removed_by_category": None,
                    },
                    length=round((rec.get("duration") or 60) / 6, 1),
                )

                # 3. Materialise only that day.
                say(f"  one new post on {day}: materialising that day only ...")
                server.clear_requests()
                emu_req0, emu_mut0 = emu.request_count, emu.mutation_count
                t0 = time.perf_counter()
                one = run_pipeline(
                    day, day, pipeline=PipelineResource(), instance=instance, log_level="WARNING"
                )
                one_s = time.perf_counter() - t0
                one_hosts = _requests_by_host(server)
                one_req = sum(one_hosts.values())
                one_stash = (emu.request_count - emu_req0, emu.mutation_count - emu_mut0)
                one_runs = _run_facts(instance, one.run_ids)
                say(
                    f"  one day: {one_s:.1f}s, {one_req} requests to the replica {dict(one_hosts)}, Stash "
                    f"{one_stash[0]} requests / {one_stash[1]} mutations, runs {[round(r['seconds'], 1) for r in one_runs]}s"
                    + (f", failed checks {one.failed_checks}" if one.failed_checks else "")
                )
        finally:
            emu.stop()
            server.stop()

    def part_rows(runs: list[dict]) -> int:  # rows of the daily-partitioned assets (runs 1 and 3)
        return sum(sum(r["rows"].values()) for i, r in enumerate(runs) if i != 1)

    full_part_s = full_runs[0]["seconds"] + full_runs[2]["seconds"]
    one_part_s = one_runs[0]["seconds"] + one_runs[2]["seconds"]
    releases_s = one_runs[1]["seconds"]
    full_rows, one_rows = part_rows(full_runs), part_rows(one_runs)
    res.details.update(
        days=n_days,
        new_post_day=day,
        new_post_link=link,
        backfill={
            "seconds": round(full_s, 2),
            "requests": full_req,
            "requests_by_host": dict(full_hosts),
            "stash_requests": full_stash[0],
            "stash_mutations": full_stash[1],
            "runs": full_runs,
            "failed_checks": full.failed_checks,
        },
        one_day={
            "seconds": round(one_s, 2),
            "requests": one_req,
            "requests_by_host": dict(one_hosts),
            "stash_requests": one_stash[0],
            "stash_mutations": one_stash[1],
            "runs": one_runs,
            "failed_checks": one.failed_checks,
        },
    )
    for label, runs in (("backfill", full_runs), ("one day", one_runs)):
        steps = sorted(((k, v) for r in runs for k, v in r["steps"].items()), key=lambda kv: -kv[1])
        say(f"  {label} steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in steps))
    per_day_req = full_req / n_days
    per_day_s = full_part_s / n_days
    res.row(
        f"requests to the outside world (1 of {n_days} days)",
        one_req,
        full_req,
        "",
        one_req / full_req,
        "x backfill",
        f"<= {SLACK:g}x 1/{n_days} ({SLACK * per_day_req:.1f})",
        one_req <= SLACK * per_day_req,
    )
    res.row(
        "rows written by the daily assets",
        one_rows,
        full_rows,
        "",
        one_rows / max(1, full_rows),
        "x backfill",
        f"<= {SLACK:g}x 1/{n_days} ({SLACK * full_rows / n_days:.0f})",
        one_rows <= SLACK * full_rows / n_days,
    )
    res.row(
        "time of the daily runs (sources + render/sync)",
        one_part_s,
        full_part_s,
        "s",
        one_part_s / full_part_s,
        "x backfill",
        f"<= {SLACK:g}x 1/{n_days} ({SLACK * per_day_s:.1f} s)",
        one_part_s <= SLACK * per_day_s,
    )
    res.row(
        "total wall time (with the releases step)",
        one_s,
        full_s,
        "s",
        one_s / full_s,
        "x backfill",
        f"(info; releases step {releases_s:.1f} s)",
        None,
    )
    return res
