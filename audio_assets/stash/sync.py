"""Sync rendered videos into Stash: scan, then one scene per audio variant with its
performers, tags, studio and (for multi-variant releases) a group.

Reads are batched (the whole library's scenes, performers, tags, studios and groups in
a handful of paged requests), and only fields that differ are written, so an unchanged
library re-syncs with zero mutations."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from audio_assets.layers.sources import I, S, frame
from audio_assets.settings import Settings
from audio_assets.stash.client import StashClient, StashError

STASH_SCENES_SCHEMA = {
    "release_id": S, "variant_id": S, "release_date": S, "video_path": S, "stash_path": S, "scene_id": S,
    "group_id": S, "performer_ids": S, "tag_ids": S, "studio_id": S, "desired_hash": S, "action": S,
    "changed_fields": S, "kept_fields": S, "written": S, "synced_at": S, "status": S, "error": S,
}
CHANGE_SCHEMA = {"run_id": S, "seq": I, "kind": S, "stash_id": S, "action": S, "field": S, "old": S, "new": S,
                 "label": S, "at": S}
SCENE_FIELDS = ("title", "code", "date", "details", "urls", "performer_ids", "tag_ids", "studio_id", "groups")
KIND_TAGS = {"script_fill": "Script Fill", "oc": "OC", "improv": "Improv", "ramblefap": "Ramblefap"}


@dataclass
class SceneWant:
    release_id: str
    variant_id: str
    release_date: str
    video_path: str  # relative to the data root
    stash_path: str
    title: str
    code: str
    date: str
    details: str
    urls: list[str]
    performers: list[dict]  # {name, aliases, urls}
    tags: list[str]
    studio: str | None
    group: dict | None  # {name, urls, date, synopsis}
    scene_index: int | None = None
    cover: str | None = None  # the still image (relative to the data root), sent as the scene's cover
    extra: dict = field(default_factory=dict)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def studio_for(names: list[str], env: dict | None = None) -> str | None:
    """The studio setting ``AUDIO_ASSETS_STASH_STUDIO``: ``performer`` (default: the primary
    performer), ``none``, or a fixed studio name (e.g. ``r/gonewildaudio``)."""
    choice = ((os.environ if env is None else env).get("AUDIO_ASSETS_STASH_STUDIO") or "performer").strip()
    if choice.lower() == "performer":
        return names[0] if names else None
    if choice.lower() == "none":
        return None
    return choice


def cover_data_url(path: Path) -> str:
    mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def desired_scenes(settings: Settings, releases: pl.DataFrame, variants: pl.DataFrame, videos: pl.DataFrame,
                   performers: pl.DataFrame, bodies: dict[str, str] | None = None) -> list[SceneWant]:
    """One wanted scene per rendered variant. ``bodies`` (post id -> Reddit post text) goes into
    the scene's details below the credits."""
    rel_by_id = {r["release_id"]: r for r in releases.iter_rows(named=True)}
    var_by_id = {v["variant_id"]: v for v in variants.iter_rows(named=True)}
    perf_by_key = {p["performer_id"]: p for p in performers.iter_rows(named=True)}
    wants = []
    for video in videos.filter(pl.col("status") == "ok").iter_rows(named=True):
        r, v = rel_by_id.get(video["release_id"]), var_by_id.get(video["variant_id"])
        if r is None or v is None:
            continue
        names = json.loads(r["performers"] or "[]")
        perf = []
        for n in names:
            p = perf_by_key.get(n.lower(), {"name": n, "aliases": "[]", "urls": "[]"})
            perf.append({"name": p["name"], "aliases": json.loads(p["aliases"] or "[]"), "urls": json.loads(p["urls"] or "[]")})
        tags = []
        for t in json.loads(r["audiences"] or "[]") + ([KIND_TAGS[r["kind"]]] if r["kind"] in KIND_TAGS else []) + json.loads(r["content_tags"] or "[]"):
            if t and all(t.lower() != x.lower() for x in tags):
                tags.append(t)
        if r["private_fill"]:
            tags.append("Private Fill")
        post_urls = json.loads(r["post_urls"] or "[]")
        script_urls = json.loads(r["script_urls"] or "[]")
        lines = [r["title"] or ""]
        if names:
            lines.append("Voices: " + ", ".join(names))
        if r["scribe"]:
            lines.append(f"Script: u/{r['scribe']}" + (" (private fill)" if r["private_fill"] else ""))
        for s in script_urls:
            lines.append(f"Script link: {s}")
        for c in json.loads(r["credits"] or "[]"):
            lines.append(f"{c['role'].title()}: {c['name']}")
        if v["label"]:
            lines.append(f"Variant: {v['label']}")
        lines.extend(f"Post: {u}" for u in post_urls)
        body = (bodies or {}).get(r["primary_post_id"] or "")
        if body:
            lines += ["", body.strip()[:20_000]]
        urls = []
        for u in post_urls + json.loads(v["source_urls"] or "[]") + script_urls:
            if u not in urls:
                urls.append(u)
        multi = (r["variant_count"] or 0) > 1
        wants.append(SceneWant(
            release_id=r["release_id"], variant_id=v["variant_id"], release_date=r["release_date"],
            video_path=video["video_path"], stash_path=settings.stash_path_for(settings.data_root / video["video_path"]),
            title=(r["title"] or r["release_id"]) + (f" [{v['label']}]" if v["label"] else ""), code=v["variant_id"],
            date=r["release_date"], details="\n".join(lines), urls=urls, performers=perf, tags=tags,
            studio=studio_for(names),
            cover=(video["image_path"] or None),
            group={"name": r["title"] or r["release_id"], "urls": post_urls[:1], "date": r["release_date"],
                   "synopsis": f"{r['title']} — {len(json.loads(r['post_ids']))} post(s), {r['variant_count']} variants"} if multi else None,
            scene_index=(v["variant_index"] + 1) if multi else None,
        ))
    return [without_control_characters(w) for w in wants]


#: bidirectional embeddings, overrides and isolates: they reorder how the text around them is
#: shown ("evil" typed after U+202E shows as "live"), so a name or title could pass for another
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def stash_text(value, *, multiline: bool = False):
    """Text from outside as Stash gets it: no control characters (a NUL in a title or a name)
    and no bidirectional overrides (right-to-left text itself is kept), line breaks kept only
    where the field has lines."""
    if not isinstance(value, str):
        return value
    keep = "\n\t" if multiline else ""
    return "".join(c for c in value
                   if c in keep or (unicodedata.category(c) != "Cc" and c not in BIDI_CONTROLS))


def without_control_characters(w: SceneWant) -> SceneWant:
    w.title, w.details = stash_text(w.title), stash_text(w.details, multiline=True)
    w.studio, w.tags = stash_text(w.studio), [stash_text(t) for t in w.tags]
    w.performers = [{**p, "name": stash_text(p["name"]), "aliases": [stash_text(a) for a in p["aliases"]]}
                    for p in w.performers]
    if w.group:
        w.group = {**w.group, "name": stash_text(w.group["name"]),
                   "synopsis": stash_text(w.group["synopsis"], multiline=True)}
    return w


def _by_name(items: list[dict], alias_key: str | None = None) -> dict[str, dict]:
    index: dict[str, dict] = {}
    for item in items:
        index.setdefault(item["name"].lower(), item)
    if alias_key:
        for item in items:
            for a in item.get(alias_key) or []:
                index.setdefault(a.lower(), item)
    return index


class StashSync:
    """One sync of a batch of wanted scenes. Counts reads and writes on the client."""

    def __init__(self, client: StashClient, *, scan_timeout_s: float = 600.0, library_root: str | None = None,
                 dry_run: bool = False, overwrite_user_edits: bool = False, previous: list[dict] | None = None,
                 data_root: Path | None = None, journal: Path | None = None):
        self.client = client
        # every write is appended here as it happens, so a killed sync's writes can be rolled back
        self.journal = journal
        self.scan_timeout_s = scan_timeout_s
        self.library_root = library_root
        self.dry_run = dry_run  # plan: read everything, write nothing
        self.data_root = data_root  # where covers are read from
        self.overwrite_user_edits = overwrite_user_edits
        # what the last sync wrote, per variant: a field whose Stash value differs was edited by hand
        self.previous = {r["variant_id"]: json.loads(r["written"]) for r in (previous or []) if r.get("written")}
        self.previous_rows = {r["variant_id"]: r for r in previous or []}
        self.changes: list[dict] = []  # every write, with its old value (the plan, when dry_run)

    def _log(self, kind: str, stash_id: str | None, action: str, field: str | None = None, old=None, new=None,
             label: str | None = None) -> None:
        change = {"seq": len(self.changes) + 1, "kind": kind, "stash_id": stash_id, "action": action,
                  "field": field, "old": json.dumps(old), "new": json.dumps(new), "label": label}
        self.changes.append(change)
        if self.journal is not None and not self.dry_run:
            with open(self.journal, "a", encoding="utf-8") as f:
                f.write(json.dumps(change) + "\n")

    def _create(self, kind: str, operation: str, root: str, payload: dict, label: str) -> dict:
        if self.dry_run:
            self._log(kind, None, "create", None, None, payload, label)
            return {"id": f"new:{kind}:{label}", "name": payload.get("name"), "alias_list": payload.get("alias_list"),
                    "aliases": [], "urls": payload.get("urls")}
        found = self.client.execute(operation, {"input": payload})[root]
        self._log(kind, found["id"], "create", None, None, payload, label)
        return found

    def _load(self) -> None:
        c = self.client
        self.performers = _by_name(c.find_all("FindPerformers", "findPerformers", "performers"), "alias_list")
        self.tags = _by_name(c.find_all("FindTags", "findTags", "tags"), "aliases")
        self.studios = _by_name(c.find_all("FindStudios", "findStudios", "studios"), "aliases")
        self.groups = _by_name(c.find_all("FindGroups", "findGroups", "groups"))

    def _scenes_by_path(self, prefix: str) -> dict[str, dict]:
        scenes = self.client.find_all("FindScenes", "findScenes", "scenes",
                                      {"scene_filter": {"path": {"value": prefix, "modifier": "INCLUDES"}}})
        by_path: dict[str, dict] = {}
        for s in scenes:
            for f in s["files"]:
                by_path[f["path"]] = s  # exact path: LIKE matching is confirmed here
        return by_path

    def _performer_id(self, p: dict) -> str:
        found = self.performers.get(p["name"].lower())
        if found is None:
            for a in p["aliases"]:
                found = self.performers.get(a.lower())
                if found:
                    break
        if found is None:
            aliases = sorted({a for a in p["aliases"] if a.lower() != p["name"].lower()}, key=str.lower)
            found = self._create("performer", "PerformerCreate", "performerCreate", {
                "name": p["name"], "alias_list": aliases, "urls": p["urls"],
                "details": "Voice performer on r/gonewildaudio (added by audio_assets)"}, p["name"])
            self.performers[found["name"].lower()] = found
            for a in found.get("alias_list") or []:
                self.performers.setdefault(a.lower(), found)
        return found["id"]

    def _tag_id(self, name: str) -> str:
        found = self.tags.get(name.lower())
        if found is None:
            found = self._create("tag", "TagCreate", "tagCreate", {"name": name}, name)
            self.tags[name.lower()] = found
        return found["id"]

    def _studio_id(self, name: str) -> str:
        found = self.studios.get(name.lower())
        if found is None:
            found = self._create("studio", "StudioCreate", "studioCreate", {"name": name}, name)
            self.studios[name.lower()] = found
        return found["id"]

    def _group_id(self, g: dict, studio_id: str | None) -> str:
        found = self.groups.get(g["name"].lower())
        if found is not None and set(found.get("urls") or []) & set(g["urls"]):
            return found["id"]
        if found is not None and not g["urls"]:
            return found["id"]
        created = self._create("group", "GroupCreate", "groupCreate", {
            "name": g["name"], "urls": g["urls"], "date": g["date"], "synopsis": g["synopsis"],
            **({"studio_id": studio_id} if studio_id and not studio_id.startswith("new:") else {})}, g["name"])
        self.groups[g["name"].lower()] = created
        return created["id"]

    def run(self, wants: list[SceneWant]) -> list[dict]:
        """One row per wanted scene. A problem with one scene (Stash rejects a write, a scan job
        fails or never finishes) marks the rows it concerns and the sync goes on. When Stash
        refuses the API key or stops answering, the sync stops: SyncAborted carries the rows so far,
        the rest marked not attempted (their previous sync state kept)."""
        rows: list[dict] = []
        try:
            self._run(wants, rows)
        except StashError as exc:
            done = {r["variant_id"] for r in rows}
            rest = [self._not_attempted(w, exc) for w in wants if w.variant_id not in done]
            raise SyncAborted(exc, rows + rest, synced=sum(r["status"] == "ok" for r in rows), total=len(wants)) from exc
        return rows

    def _row(self, w: SceneWant) -> dict:
        return {"release_id": w.release_id, "variant_id": w.variant_id, "release_date": w.release_date,
                "video_path": w.video_path, "stash_path": w.stash_path, "desired_hash": w.digest(),
                "synced_at": datetime.now(UTC).isoformat(timespec="seconds")}

    def _kept_state(self, w: SceneWant) -> dict:
        """What the last sync recorded for this scene (ids, what it wrote): a scene this sync could not
        update still holds it, and edits made in Stash are still recognised next time."""
        prev = self.previous_rows.get(w.variant_id) or {}
        return {k: prev.get(k) for k in ("scene_id", "group_id", "performer_ids", "tag_ids", "studio_id", "written")}

    def _not_attempted(self, w: SceneWant, exc: StashError) -> dict:
        return {**self._row(w), **self._kept_state(w), "action": "not attempted", "status": "error",
                "error": f"{w.stash_path} (release {w.release_id}): not synced, the sync stopped before it: {exc}"}

    def _still_down(self, exc: StashError) -> StashError | None:
        """After a server error on a write: None when Stash answers a status check (the write's own
        problem), else the error to stop the sync with."""
        try:
            self.client.version()
        except StashError as probe:
            if probe.kind == "auth":
                return probe
            what = f"answered HTTP {exc.status} (a server error)" if exc.status else "could not be reached"
            then = f"HTTP {probe.status}" if probe.status else "no answer"
            return StashError(exc.operation, f"Stash at {self.client.shown_url} {what}, and a status check right "
                              f"after failed too ({then}, {self.client.retries + 1} tries); see Stash's log "
                              "(Settings > Logs) and re-run once it is healthy", status=exc.status, kind=exc.kind)
        return None

    def _run(self, wants: list[SceneWant], rows: list[dict]) -> None:
        if not wants:
            return
        prefix = self.library_root or _common_prefix([w.stash_path for w in wants])
        scenes = self._scenes_by_path(prefix)
        missing = [w.stash_path for w in wants if w.stash_path not in scenes]
        scan_error: StashError | None = None
        if missing and self.dry_run:
            for path in sorted(missing):
                self._log("scene", None, "scan", "path", None, path, path)
                scenes[path] = {"id": f"new:scene:{path}", "title": None, "code": None, "date": None, "details": None,
                                "urls": [], "performers": [], "tags": [], "studio": None, "groups": []}
        elif missing:
            before = {s["id"] for s in scenes.values()}
            try:
                job_id = self.client.execute("MetadataScan", {"input": {"paths": sorted(missing)}})["metadataScan"]
                self.client.wait_for_job(job_id, timeout_s=self.scan_timeout_s)
            except StashError as exc:
                if exc.fatal:
                    raise
                scan_error = exc  # the files it did not add fail below; the scenes Stash holds still sync
            scenes = self._scenes_by_path(prefix)
            for path, scene in sorted(scenes.items()):
                if scene["id"] not in before and path in missing:
                    self._log("scene", scene["id"], "scan", "path", None, path, path)
        self._load()
        for w in wants:
            row = self._row(w)
            scene = scenes.get(w.stash_path)
            if scene is None:
                if scan_error is not None:
                    error = (f"{w.stash_path} (release {w.release_id}) is not in Stash: {scan_error}; the next run "
                             "scans it again")
                else:
                    error = (f"Stash did not create a scene for {w.stash_path} after scanning: is that path inside a "
                             "Stash library folder? Set STASH_LIBRARY_PATH to the videos folder as Stash sees it")
                rows.append({**row, **self._kept_state(w), "action": "missing", "status": "error", "error": error})
                continue
            try:
                perf_ids = [self._performer_id(p) for p in w.performers]
                tag_ids = [self._tag_id(t) for t in w.tags]
                studio_id = self._studio_id(w.studio) if w.studio else None
                group_id = self._group_id(w.group, studio_id) if w.group else None
                desired = {"title": w.title, "code": w.code, "date": w.date, "details": w.details, "urls": w.urls,
                           "performer_ids": perf_ids, "tag_ids": tag_ids, "studio_id": studio_id,
                           "groups": [{"group_id": group_id, "scene_index": w.scene_index}] if group_id else []}
                current = {"title": scene["title"], "code": scene["code"], "date": scene["date"], "details": scene["details"],
                           "urls": scene["urls"], "performer_ids": [p["id"] for p in scene["performers"]],
                           "tag_ids": [t["id"] for t in scene["tags"]], "studio_id": (scene["studio"] or {}).get("id"),
                           "groups": [{"group_id": g["group"]["id"], "scene_index": g["scene_index"]} for g in scene["groups"]]}
                changed = {k: v for k, v in desired.items() if _norm(k, v) != _norm(k, current.get(k))}
                written = self.previous.get(w.variant_id, {})  # what the last sync wrote
                cover_key = w.cover and hashlib.sha256((self.data_root / w.cover).read_bytes()).hexdigest()[:16] \
                    if self.data_root and w.cover and (self.data_root / w.cover).exists() else None
                if cover_key and written.get("cover") != cover_key:
                    changed["cover_image"] = cover_data_url(self.data_root / w.cover)
                # A field whose Stash value is no longer what we last wrote was edited by hand: keep it.
                kept = sorted(k for k in changed if k in written and _norm(k, current.get(k)) != _norm(k, written[k]))
                if not self.overwrite_user_edits:
                    for k in kept:
                        changed.pop(k)
                for k in sorted(changed):
                    new_value = f"<image {cover_key}>" if k == "cover_image" else changed[k]
                    self._log("scene", scene["id"], "update", k, current.get(k), new_value, w.variant_id)
                if changed and not self.dry_run:
                    self.client.execute("SceneUpdate", {"input": {"id": scene["id"], **changed}})
                now_written = {k: (current.get(k) if k in kept and not self.overwrite_user_edits else v)
                               for k, v in desired.items()}
                if cover_key:
                    now_written["cover"] = cover_key
                rows.append({**row, "scene_id": scene["id"], "group_id": group_id, "performer_ids": json.dumps(perf_ids),
                             "tag_ids": json.dumps(tag_ids), "studio_id": studio_id,
                             "action": ("would update" if self.dry_run else "updated") if changed else "unchanged",
                             "changed_fields": json.dumps(sorted(changed)),
                             "kept_fields": json.dumps(kept if not self.overwrite_user_edits else []),
                             "written": json.dumps(now_written, sort_keys=True), "status": "ok"})
            except StashError as exc:
                rows.append({**row, **self._kept_state(w), "scene_id": scene["id"], "action": "failed",
                             "status": "error",
                             "error": (f"{w.stash_path} (release {w.release_id}): {exc}; the scene was not updated, "
                                       "the next run tries again")[:2000]})
                if exc.kind == "auth":
                    raise  # Stash refuses the key: no other scene can sync
                if exc.kind == "unavailable" and (down := self._still_down(exc)) is not None:
                    raise down from exc  # Stash has stopped answering: no other scene can sync


class SyncAborted(StashError):
    """The sync stopped part-way; ``rows`` are every wanted scene's rows (done or not attempted)."""

    def __init__(self, cause: StashError, rows: list[dict], *, synced: int, total: int):
        message = str(cause).removeprefix(f"Stash {cause.operation}: ")
        super().__init__(cause.operation, f"{message} [the sync stopped: {synced} of {total} scenes synced, the "
                         "others are left as they were; a re-run finishes the job without creating anything twice]",
                         status=cause.status, kind=cause.kind)
        self.rows = rows


def _norm(key: str, value):
    if key in ("performer_ids", "tag_ids"):
        return sorted(value or [])
    if key == "groups":
        return sorted((g["group_id"], g["scene_index"]) for g in value or [])
    if key == "urls":
        return list(value or [])
    return value or None


def _common_prefix(paths: list[str]) -> str:
    import os.path

    prefix = os.path.commonpath(paths) if paths else "/"
    return prefix


def sync_frame(rows: list[dict]) -> pl.DataFrame:
    return frame(rows, STASH_SCENES_SCHEMA)


def changes_frame(run_id: str, changes: list[dict]) -> pl.DataFrame:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return frame([{**c, "run_id": run_id, "at": at} for c in changes], CHANGE_SCHEMA)


def plan_markdown(changes: list[dict], limit: int = 60) -> str:
    """The plan as a markdown table: what will be created, scanned or changed, field by field."""
    if not changes:
        return "_nothing to change: Stash already matches_"
    lines = ["| # | object | action | field | old | new |", "|---|---|---|---|---|---|"]

    def cell(v: str | None) -> str:
        text = "" if v in (None, "null") else str(v)
        return text.replace("|", "\\|").replace("\n", " ")[:60]

    for c in changes[:limit]:
        obj = f"{c['kind']} {c['label'] or c['stash_id'] or ''}".strip()
        lines.append(f"| {c['seq']} | {cell(obj)} | {c['action']} | {cell(c['field'])} | {cell(c['old'])} | {cell(c['new'])} |")
    if len(changes) > limit:
        lines.append(f"| ... | {len(changes) - limit} more | | | | |")
    return "\n".join(lines)


DESTROY = {"performer": "PerformerDestroy", "tag": "TagDestroy", "studio": "StudioDestroy", "group": "GroupDestroy",
           "scene": "SceneDestroy"}


def rollback(client: StashClient, changes: list[dict]) -> int:
    """Undo one run's changes, newest first: restore each updated field's old value, remove what
    the run created (objects, and scenes its scan added). Returns the number of undone changes."""
    undone = 0
    for c in sorted(changes, key=lambda c: -c["seq"]):
        if c["action"] == "update":
            old = json.loads(c["old"]) if c["old"] else None
            if c["field"] == "groups":
                old = [{"group_id": g["group_id"], "scene_index": g["scene_index"]} for g in old or []]
            client.execute("SceneUpdate", {"input": {"id": c["stash_id"], c["field"]: old}})
        elif c["action"] in ("create", "scan") and c["stash_id"] and not c["stash_id"].startswith("new:"):
            client.execute(DESTROY[c["kind"]], {"input": {"id": c["stash_id"]}})
        else:
            continue
        undone += 1
    return undone
