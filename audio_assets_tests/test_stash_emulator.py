"""Tests for the Stash emulator (audio_assets.replica.stash_emulator)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    build_schema,
    parse,
    validate,
)

from audio_assets.ffmpeg_tools import run_ffmpeg
from audio_assets.replica.stash_emulator import SCHEMA_PATH, StashEmulator, oshash, sql_like

REPO = Path(__file__).resolve().parents[1]
OPERATIONS_DIR = REPO / "audio_assets" / "stash" / "operations"
REAL_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared/reference/stash-graphql"

SCAN_DOC = (OPERATIONS_DIR / "jobs.graphql").read_text()

BULK_DOC = """
mutation Bulk($input: BulkSceneUpdateInput!) {
  bulkSceneUpdate(input: $input) { id urls tags { id } performers { id } groups { group { id } scene_index } }
}
"""


# --------------------------------------------------------------------------- fixtures / helpers


def _make_mp4(path: Path, color: str, seconds: int = 2) -> None:
    run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c={color}:s=64x64:d={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=d={seconds}",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ]
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    for name, color in (("blue.mp4", "blue"), ("red.mp4", "red"), ("green.mp4", "green")):
        _make_mp4(d / name, color)
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(d / "audio.m4a")])
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "libmp3lame", str(d / "audio.mp3")])
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(d / "cover.png")])
    run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=d=1",
            "-i",
            str(d / "cover.png"),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "aac",
            "-c:v",
            "mjpeg",
            "-disposition:v:0",
            "attached_pic",
            str(d / "cover_only.mp4"),
        ]
    )
    return d


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "library"
    lib.mkdir()
    return lib


@pytest.fixture
def emu(library):
    with StashEmulator(library) as e:
        yield e


def gql(
    emu: StashEmulator,
    op: str,
    variables: dict | None = None,
    *,
    doc_file: str | None = None,
    doc: str | None = None,
    headers: dict | None = None,
) -> httpx.Response:
    if doc is None:
        doc = (OPERATIONS_DIR / doc_file).read_text()
    return httpx.post(
        emu.url,
        json={"query": doc, "operationName": op, "variables": variables or {}},
        headers=headers or {},
        timeout=30,
    )


def data(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "errors" not in body, body
    return body["data"]


def error_of(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.get("errors"), body
    return body["errors"][0]["message"]


def scan(emu: StashEmulator, paths: list[str] | None = None, *, wait: bool = True) -> dict:
    variables = {"input": {"paths": paths} if paths is not None else {}}
    job_id = data(gql(emu, "MetadataScan", variables, doc=SCAN_DOC))["metadataScan"]
    if not wait:
        return {"id": job_id}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = find_job(emu, job_id)
        if job and job["status"] in ("FINISHED", "FAILED", "CANCELLED"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"scan job {job_id} did not finish")


def find_job(emu: StashEmulator, job_id: str) -> dict | None:
    return data(gql(emu, "FindJob", {"input": {"id": job_id}}, doc=SCAN_DOC))["findJob"]


def find_scenes(emu: StashEmulator, scene_filter: dict | None = None, filter: dict | None = None) -> dict:
    return data(
        gql(emu, "FindScenes", {"scene_filter": scene_filter, "filter": filter}, doc_file="scenes.graphql")
    )["findScenes"]


def path_eq(value: str, modifier: str = "EQUALS") -> dict:
    return {"path": {"value": value, "modifier": modifier}}


# --------------------------------------------------------------------------- schema


def _type_str(t) -> str:
    return str(t)


def test_subset_schema_matches_real_schema():
    if not REAL_SCHEMA_DIR.is_dir():
        pytest.skip(f"real Stash schema not available at {REAL_SCHEMA_DIR}")
    real_sdl = "\n".join(p.read_text() for p in sorted(REAL_SCHEMA_DIR.rglob("*.graphql")))
    real = build_schema(real_sdl)
    subset = build_schema(SCHEMA_PATH.read_text())

    checked = 0
    for name, sub_type in subset.type_map.items():
        if name.startswith("__"):
            continue
        real_type = real.type_map.get(name)
        assert real_type is not None, f"type {name} does not exist in the real schema"
        assert type(real_type) is type(sub_type), f"{name}: kind differs"
        if isinstance(sub_type, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in sub_type.fields.items():
                assert fname in real_type.fields, f"{name}.{fname} not in real schema"
                real_field = real_type.fields[fname]
                assert _type_str(field.type) == _type_str(real_field.type), f"{name}.{fname} type differs"
                for aname, arg in field.args.items():
                    assert aname in real_field.args, f"{name}.{fname}({aname}) not in real schema"
                    assert _type_str(arg.type) == _type_str(real_field.args[aname].type), (
                        f"{name}.{fname}({aname})"
                    )
                # required arguments of the real field must be present in the subset too
                for aname, rarg in real_field.args.items():
                    if str(rarg.type).endswith("!") and rarg.default_value is None:
                        assert aname in field.args, f"{name}.{fname} misses required arg {aname}"
                checked += 1
        elif isinstance(sub_type, GraphQLInputObjectType):
            for fname, field in sub_type.fields.items():
                assert fname in real_type.fields, f"input {name}.{fname} not in real schema"
                assert _type_str(field.type) == _type_str(real_type.fields[fname].type), (
                    f"input {name}.{fname}"
                )
                checked += 1
            for fname, rfield in real_type.fields.items():
                if str(rfield.type).endswith("!"):
                    assert fname in sub_type.fields, f"input {name} misses required field {fname}"
        elif isinstance(sub_type, GraphQLEnumType):
            assert set(sub_type.values) <= set(real_type.values), f"enum {name} has unknown values"
        else:
            assert isinstance(sub_type, GraphQLScalarType)
    assert checked > 100

    # the input fields the project may send are all accepted
    must_accept = {
        "SceneUpdateInput": "id title code details director urls date rating100 organized studio_id "
        "performer_ids tag_ids groups cover_image",
        "PerformerCreateInput": "name disambiguation alias_list urls gender details tag_ids image",
        "PerformerUpdateInput": "id name disambiguation alias_list urls gender details tag_ids image",
        "TagCreateInput": "name aliases description",
        "StudioCreateInput": "name urls aliases details parent_id",
        "GroupCreateInput": "name aliases duration date studio_id director synopsis urls tag_ids front_image",
        "GroupUpdateInput": "id name aliases duration date studio_id director synopsis urls tag_ids front_image",
        "SceneFilterType": "AND OR NOT path title oshash checksum id",
        "PerformerFilterType": "AND OR NOT name aliases disambiguation",
        "TagFilterType": "AND OR NOT name aliases",
        "StudioFilterType": "AND OR NOT name aliases",
        "GroupFilterType": "AND OR NOT name",
    }
    for type_name, fields in must_accept.items():
        assert set(fields.split()) <= set(subset.type_map[type_name].fields), type_name
    scan_input = real.type_map["ScanMetadataInput"]
    real_bools = {n for n, f in scan_input.fields.items() if str(f.type) == "Boolean"}
    assert real_bools | {"paths"} <= set(subset.type_map["ScanMetadataInput"].fields)


def test_operations_validate_against_subset_and_real_schema():
    subset = build_schema(SCHEMA_PATH.read_text())
    schemas = [("subset", subset)]
    if REAL_SCHEMA_DIR.is_dir():
        real_sdl = "\n".join(p.read_text() for p in sorted(REAL_SCHEMA_DIR.rglob("*.graphql")))
        schemas.append(("real", build_schema(real_sdl)))
    files = sorted(OPERATIONS_DIR.glob("*.graphql"))
    assert files
    for f in files:
        doc = parse(f.read_text())
        for label, schema in schemas:
            errors = validate(schema, doc)
            assert not errors, f"{f.name} against {label}: {errors}"
    assert not validate(subset, parse(BULK_DOC))


# --------------------------------------------------------------------------- HTTP / auth / errors


def test_version_and_configuration(emu, library):
    v = data(gql(emu, "Version", doc_file="version.graphql"))["version"]
    assert v["version"] == "v0.30.1" and v["hash"] and v["build_time"]
    stashes = data(gql(emu, "LibraryConfiguration", doc_file="configuration.graphql"))["configuration"][
        "general"
    ]["stashes"]
    assert stashes == [{"path": str(library), "excludeVideo": False}]
    # GET works too
    r = httpx.get(emu.url, params={"query": "{ version { version } }"})
    assert r.status_code == 200 and r.json()["data"]["version"]["version"] == "v0.30.1"
    r = httpx.get(emu.url, params={"query": "mutation { tagDestroy(input: {id: 1}) }"})
    assert r.status_code == 406


def test_api_key_without_configured_key(emu):
    assert gql(emu, "Version", doc_file="version.graphql").status_code == 200
    assert gql(emu, "Version", doc_file="version.graphql", headers={"ApiKey": ""}).status_code == 200
    assert gql(emu, "Version", doc_file="version.graphql", headers={"ApiKey": "stale"}).status_code == 401
    r = httpx.post(emu.url + "?apikey=stale", json={"query": "{ version { version } }"})
    assert r.status_code == 401


def test_api_key_configured(library):
    with StashEmulator(library, api_key="s3cret") as e:
        assert gql(e, "Version", doc_file="version.graphql").status_code == 401
        assert gql(e, "Version", doc_file="version.graphql", headers={"ApiKey": "wrong"}).status_code == 401
        assert gql(e, "Version", doc_file="version.graphql", headers={"ApiKey": "s3cret"}).status_code == 200
        r = httpx.post(e.url + "?apikey=s3cret", json={"query": "{ version { version } }"})
        assert r.status_code == 200
        assert e.request_count == 4


def test_errors_and_fault_injection(emu):
    # validation error: gqlgen answers 422 with errors
    r = httpx.post(emu.url, json={"query": "{ nope }"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    r = httpx.post(emu.url, json={"query": "{ version { "})
    assert r.status_code == 422 and r.json()["errors"]
    # resolver error: 200 with errors and a path
    r = gql(emu, "TagDestroy", {"input": {"id": "99"}}, doc_file="tags.graphql")
    assert r.status_code == 200
    body = r.json()
    assert body["errors"][0]["path"] == ["tagDestroy"] and "not found" in body["errors"][0]["message"]
    assert body["data"] is None

    emu.graphql_error_next("boom", count=2)
    for _ in range(2):
        assert error_of(gql(emu, "Version", doc_file="version.graphql")) == "boom"
    assert data(gql(emu, "Version", doc_file="version.graphql"))

    emu.fail_next_requests(503, count=1)
    r = gql(emu, "TagCreate", {"input": {"name": "x"}}, doc_file="tags.graphql")
    assert r.status_code == 503
    assert emu.tags == {}
    assert (
        data(gql(emu, "TagCreate", {"input": {"name": "x"}}, doc_file="tags.graphql"))["tagCreate"]["id"]
        == "1"
    )


def test_request_and_mutation_counting(emu):
    before = emu.request_count
    gql(emu, "Version", doc_file="version.graphql")
    gql(emu, "TagCreate", {"input": {"name": "one"}}, doc_file="tags.graphql")
    gql(emu, "TagCreate", {"input": {"name": "ONE"}}, doc_file="tags.graphql")  # fails, still executed
    emu.fail_next_requests(500)
    gql(emu, "TagCreate", {"input": {"name": "two"}}, doc_file="tags.graphql")  # never executed
    assert emu.request_count == before + 4
    assert emu.mutation_count == 2
    assert emu.operations[-4:] == [
        ("query", "Version"),
        ("mutation", "TagCreate"),
        ("mutation", "TagCreate"),
        ("mutation", "TagCreate"),
    ]


# --------------------------------------------------------------------------- scanning and jobs


def test_scan_creates_scenes_and_handles_rescan_and_moves(emu, library, media, tmp_path):
    (library / "sub").mkdir()
    shutil.copy(media / "blue.mp4", library / "blue.mp4")
    shutil.copy(media / "red.mp4", library / "sub" / "red.mp4")
    shutil.copy(media / "audio.m4a", library / "audio.m4a")
    shutil.copy(media / "audio.mp3", library / "sub" / "audio.mp3")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(media / "green.mp4", outside / "green.mp4")

    job = scan(emu, [str(library), str(outside)])
    assert job["status"] == "FINISHED" and job["progress"] == 1.0 and job["error"] is None
    assert job["description"] == "Scanning..." and job["startTime"] and job["endTime"] and job["addTime"]
    result = find_scenes(emu, filter={"per_page": -1, "sort": "path"})
    assert result["count"] == 2
    paths = [s["files"][0]["path"] for s in result["scenes"]]
    assert paths == [str(library / "blue.mp4"), str(library / "sub" / "red.mp4")]
    f = result["scenes"][0]["files"][0]
    assert abs(f["duration"] - 2.0) < 0.2
    assert f["video_codec"] == "h264" and f["audio_codec"] == "aac" and (f["width"], f["height"]) == (64, 64)
    assert f["size"] == (library / "blue.mp4").stat().st_size
    fps = {fp["type"]: fp["value"] for fp in f["fingerprints"]}
    assert fps["oshash"] == oshash(library / "blue.mp4") and len(fps["md5"]) == 32
    scene = result["scenes"][0]
    assert scene["title"] is None and scene["organized"] is False and scene["urls"] == []

    # re-scan: no duplicates
    scan(emu)
    assert find_scenes(emu)["count"] == 2

    # move a file: the scene keeps it
    blue_id = result["scenes"][0]["id"]
    os.rename(library / "blue.mp4", library / "sub" / "renamed_blue.mp4")
    scan(emu, [str(library / "sub")])
    assert find_scenes(emu)["count"] == 2
    moved = find_scenes(emu, path_eq(str(library / "sub" / "renamed_blue.mp4")))
    assert [s["id"] for s in moved["scenes"]] == [blue_id]
    assert moved["scenes"][0]["files"][0]["basename"] == "renamed_blue.mp4"

    # findSceneByHash
    doc = "query($i: SceneHashInput!) { findSceneByHash(input: $i) { id } }"
    r = gql(emu, None, {"i": {"oshash": fps["oshash"]}}, doc=doc)
    assert data(r)["findSceneByHash"]["id"] == blue_id

    # only paths outside the library: silently skipped, job finishes
    job = scan(emu, [str(outside)])
    assert job["status"] == "FINISHED"
    assert find_scenes(emu)["count"] == 2


def test_cover_only_mp4_has_no_video_stream(emu, library, media):
    shutil.copy(media / "cover_only.mp4", library / "cover_only.mp4")
    scan(emu)
    (scene,) = find_scenes(emu)["scenes"]
    f = scene["files"][0]
    assert f["video_codec"] == "" and f["width"] == 0 and f["audio_codec"] == "aac"


def test_job_graveyard_keeps_last_ten(emu, tmp_path):
    ids = [scan(emu, [str(tmp_path / "not-in-library")])["id"] for _ in range(12)]
    assert find_job(emu, ids[0]) is None
    assert find_job(emu, ids[1]) is None
    assert find_job(emu, ids[2])["status"] == "FINISHED"
    assert find_job(emu, ids[-1])["status"] == "FINISHED"
    assert data(httpx.post(emu.url, json={"query": "{ jobQueue { id } }"}))["jobQueue"] == []


def test_failed_and_hanging_scan(library, media):
    shutil.copy(media / "blue.mp4", library / "blue.mp4")
    with StashEmulator(library) as e:
        e.scan_mode = "fail"
        job = scan(e)
        assert job["status"] == "FAILED" and job["error"]
        assert e.scenes == {}
        e.scan_mode = "hang"
        jid = scan(e, wait=False)["id"]
        deadline = time.monotonic() + 5
        while find_job(e, jid)["status"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert find_job(e, jid)["status"] == "RUNNING"
        queued = scan(e, wait=False)["id"]
        time.sleep(0.1)
        assert find_job(e, queued)["status"] == "READY"
        q = data(httpx.post(e.url, json={"query": "{ jobQueue { id status } }"}))["jobQueue"]
        assert q == [{"id": jid, "status": "RUNNING"}, {"id": queued, "status": "READY"}]


# --------------------------------------------------------------------------- finding


def test_path_equals_is_sql_like(emu, library, media):
    shutil.copy(media / "blue.mp4", library / "a_b.mp4")
    shutil.copy(media / "red.mp4", library / "aXb.mp4")
    shutil.copy(media / "green.mp4", library / "100%.mp4")
    scan(emu)
    assert find_scenes(emu)["count"] == 3

    def basenames(flt: dict) -> list[str]:
        res = find_scenes(emu, flt, {"per_page": -1, "sort": "path"})
        return sorted(s["files"][0]["basename"] for s in res["scenes"])

    assert basenames(path_eq(str(library / "a_b.mp4"))) == ["aXb.mp4", "a_b.mp4"]
    assert basenames(path_eq(str(library / "aXb.mp4"))) == ["aXb.mp4"]
    assert basenames(path_eq(str(library / "A_B.MP4").upper())) == ["aXb.mp4", "a_b.mp4"]
    assert basenames(path_eq(str(library / "100%.mp4"))) == ["100%.mp4"]
    assert basenames(path_eq(str(library / "%.mp4"))) == ["100%.mp4", "aXb.mp4", "a_b.mp4"]
    assert basenames(path_eq(str(library / "a_b.mp4"), "NOT_EQUALS")) == ["100%.mp4"]
    assert basenames(path_eq("a_b", "INCLUDES")) == ["aXb.mp4", "a_b.mp4"]
    assert basenames(path_eq(r"/a_b\.mp4$", "MATCHES_REGEX")) == ["a_b.mp4"]
    assert basenames({"title": {"value": "", "modifier": "IS_NULL"}}) == ["100%.mp4", "aXb.mp4", "a_b.mp4"]
    # OR at one level; AND + OR at the same level is an error
    flt = {**path_eq(str(library / "aXb.mp4")), "OR": path_eq(str(library / "100%.mp4"))}
    assert basenames(flt) == ["100%.mp4", "aXb.mp4"]
    flt = {**path_eq(str(library / "a_b.mp4")), "NOT": path_eq(str(library / "aXb.mp4"))}
    assert basenames(flt) == ["a_b.mp4"]
    r = gql(
        emu,
        "FindScenes",
        {"scene_filter": {"AND": path_eq("x"), "OR": path_eq("y")}},
        doc_file="scenes.graphql",
    )
    assert "only one of AND, OR, NOT" in error_of(r)
    # paging
    page = find_scenes(emu, None, {"per_page": 2, "page": 2, "sort": "path", "direction": "ASC"})
    assert page["count"] == 3 and len(page["scenes"]) == 1
    ids = [s["id"] for s in find_scenes(emu, None, {"sort": "id", "direction": "DESC"})["scenes"]]
    assert ids == ["3", "2", "1"]


def test_sql_like_helper():
    assert sql_like("/lib/aXb.mp4", "/lib/a_b.mp4")
    assert sql_like("/LIB/A_B.MP4", "/lib/a_b.mp4")
    assert not sql_like("/lib/ab.mp4", "/lib/a_b.mp4")
    assert sql_like("anything", "%")
    assert not sql_like("É", "é")  # SQLite LIKE folds ASCII only


# --------------------------------------------------------------------------- performers, tags, studios


def test_performer_uniqueness_and_aliases(emu):
    def create(**inp) -> httpx.Response:
        return gql(emu, "PerformerCreate", {"input": inp}, doc_file="performers.graphql")

    p = data(create(name="Jane Doe", alias_list=["JD"], urls=["https://example.org/jane"]))["performerCreate"]
    assert p == {
        "id": "1",
        "name": "Jane Doe",
        "disambiguation": None,
        "alias_list": ["JD"],
        "urls": ["https://example.org/jane"],
        "details": None,
    }
    assert error_of(create(name="jane doe")) == "performer with name 'jane doe' already exists"
    assert data(create(name="Jane Doe", disambiguation="UK"))["performerCreate"]["id"] == "2"
    assert "already exists" in error_of(create(name="JANE DOE", disambiguation="uk"))
    assert "alias" in error_of(create(name="Other", alias_list=["other"]))
    assert "duplicate alias" in error_of(create(name="Other", alias_list=["x", "X"]))
    assert len(emu.performers) == 2

    # update: partial, same checks
    r = gql(emu, "PerformerUpdate", {"input": {"id": "1", "details": "bio"}}, doc_file="performers.graphql")
    upd = data(r)["performerUpdate"]
    assert (
        upd["details"] == "bio"
        and upd["alias_list"] == ["JD"]
        and upd["urls"] == ["https://example.org/jane"]
    )
    r = gql(
        emu,
        "PerformerUpdate",
        {"input": {"id": "1", "alias_list": ["Jane Doe"]}},
        doc_file="performers.graphql",
    )
    assert "alias" in error_of(r)
    assert emu.performers["1"]["alias_list"] == ["JD"]

    # find: name EQUALS or alias EQUALS (LIKE: case-insensitive)
    def find(flt: dict) -> list[str]:
        r = gql(
            emu,
            "FindPerformers",
            {"performer_filter": flt, "filter": {"per_page": -1}},
            doc_file="performers.graphql",
        )
        return [p["id"] for p in data(r)["findPerformers"]["performers"]]

    assert find(
        {
            "name": {"value": "jd", "modifier": "EQUALS"},
            "OR": {"aliases": {"value": "jd", "modifier": "EQUALS"}},
        }
    ) == ["1"]
    assert find({"name": {"value": "JANE DOE", "modifier": "EQUALS"}}) == ["1", "2"]
    assert find({"name": {"value": "Jane_Doe", "modifier": "EQUALS"}}) == ["1", "2"]
    assert find({"disambiguation": {"value": "uk", "modifier": "EQUALS"}}) == ["2"]
    r = gql(
        emu,
        "FindPerformers",
        {"performer_filter": {"AND": {"name": {"value": "a", "modifier": "EQUALS"}}, "NOT": {}}},
        doc_file="performers.graphql",
    )
    assert "only one of AND, OR, NOT" in error_of(r)

    # destroy removes the performer from scenes
    assert data(gql(emu, "PerformerDestroy", {"input": {"id": "2"}}, doc_file="performers.graphql")) == {
        "performerDestroy": True
    }
    assert "2" not in emu.performers


def test_tag_name_and_alias_clash(emu):
    def create(**inp) -> httpx.Response:
        return gql(emu, "TagCreate", {"input": inp}, doc_file="tags.graphql")

    t = data(create(name="Whisper", aliases=["ASMR whisper"], description="soft"))["tagCreate"]
    assert t == {"id": "1", "name": "Whisper", "aliases": ["ASMR whisper"]}
    assert "already exists" in error_of(create(name="whisper"))
    assert "alias" in error_of(create(name="asmr WHISPER"))
    assert "alias" in error_of(create(name="Soft", aliases=["WHISPER"]))
    assert "alias" in error_of(create(name="Soft", aliases=["soft"]))
    assert data(create(name="Soft"))["tagCreate"]["id"] == "2"
    r = gql(
        emu,
        "FindTags",
        {"tag_filter": {"aliases": {"value": "asmr%", "modifier": "EQUALS"}}},
        doc_file="tags.graphql",
    )
    assert [t["id"] for t in data(r)["findTags"]["tags"]] == ["1"]
    r = gql(emu, "FindTags", {"filter": {"q": "whis"}}, doc_file="tags.graphql")
    assert data(r)["findTags"]["count"] == 1
    assert data(gql(emu, "TagDestroy", {"input": {"id": "1"}}, doc_file="tags.graphql"))["tagDestroy"] is True
    assert data(create(name="whisper"))["tagCreate"]["id"] == "3"


def test_studios(emu):
    def create(**inp) -> httpx.Response:
        return gql(emu, "StudioCreate", {"input": inp}, doc_file="studios.graphql")

    s = data(create(name="Moonlight Audio", urls=["https://example.org"], aliases=["MLA"]))["studioCreate"]
    assert s == {"id": "1", "name": "Moonlight Audio", "aliases": ["MLA"], "urls": ["https://example.org"]}
    assert "already exists" in error_of(create(name="moonlight audio"))
    assert "not found" in error_of(create(name="Child", parent_id="42"))
    r = gql(
        emu,
        "FindStudios",
        {
            "studio_filter": {
                "name": {"value": "mla", "modifier": "EQUALS"},
                "OR": {"aliases": {"value": "mla", "modifier": "EQUALS"}},
            }
        },
        doc_file="studios.graphql",
    )
    assert data(r)["findStudios"]["count"] == 1
    assert data(gql(emu, "StudioDestroy", {"input": {"id": "1"}}, doc_file="studios.graphql"))[
        "studioDestroy"
    ]


# --------------------------------------------------------------------------- scene updates and groups


def _scanned_scene(emu, library, media) -> str:
    shutil.copy(media / "blue.mp4", library / "blue.mp4")
    shutil.copy(media / "red.mp4", library / "red.mp4")
    scan(emu)
    return find_scenes(emu, path_eq(str(library / "blue.mp4")))["scenes"][0]["id"]


def test_scene_update_partial_and_list_replacement(emu, library, media):
    sid = _scanned_scene(emu, library, media)
    t1 = data(gql(emu, "TagCreate", {"input": {"name": "t1"}}, doc_file="tags.graphql"))["tagCreate"]["id"]
    t2 = data(gql(emu, "TagCreate", {"input": {"name": "t2"}}, doc_file="tags.graphql"))["tagCreate"]["id"]
    p1 = data(gql(emu, "PerformerCreate", {"input": {"name": "P"}}, doc_file="performers.graphql"))[
        "performerCreate"
    ]["id"]
    st = data(gql(emu, "StudioCreate", {"input": {"name": "S"}}, doc_file="studios.graphql"))["studioCreate"][
        "id"
    ]

    def update(**inp) -> httpx.Response:
        return gql(emu, "SceneUpdate", {"input": {"id": sid, **inp}}, doc_file="scenes.graphql")

    s = data(
        update(
            title="Title",
            urls=["https://a", "https://b"],
            tag_ids=[t1, t2],
            performer_ids=[p1],
            studio_id=st,
            date="2024-05",
            code="X1",
            organized=True,
            cover_image="data:image/png;base64,iVBORw0KGgo=",
        )
    )["sceneUpdate"]
    assert s["title"] == "Title" and s["date"] == "2024-05" and s["organized"] is True
    assert [t["id"] for t in s["tags"]] == [t1, t2] and s["performers"] == [{"id": p1, "name": "P"}]
    assert s["studio"] == {"id": st, "name": "S"}
    assert emu.scenes[sid]["cover_image"]["sha256"]

    s = data(update(details="more"))["sceneUpdate"]
    assert s["title"] == "Title" and s["details"] == "more" and s["urls"] == ["https://a", "https://b"]
    assert [t["id"] for t in s["tags"]] == [t1, t2]

    s = data(update(tag_ids=[t2], urls=["https://c"]))["sceneUpdate"]
    assert [t["id"] for t in s["tags"]] == [t2] and s["urls"] == ["https://c"]

    before = emu.snapshot()
    assert "date" in error_of(update(date="2024-13-01"))
    assert "date" in error_of(update(date="May 2024"))
    assert "not found" in error_of(update(tag_ids=[t1, "999"]))
    assert "not found" in error_of(
        gql(emu, "SceneUpdate", {"input": {"id": "999", "title": "x"}}, doc_file="scenes.graphql")
    )
    assert emu.snapshot() == before
    assert data(update(date="2024"))["sceneUpdate"]["date"] == "2024"
    assert data(update(title=None))["sceneUpdate"]["title"] is None

    # bulk update
    other = find_scenes(emu, path_eq(str(library / "red.mp4")))["scenes"][0]["id"]
    r = gql(
        emu,
        "Bulk",
        {
            "input": {
                "ids": [sid, other],
                "tag_ids": {"ids": [t1], "mode": "ADD"},
                "urls": {"values": ["u"], "mode": "ADD"},
            }
        },
        doc=BULK_DOC,
    )
    res = {s["id"]: s for s in data(r)["bulkSceneUpdate"]}
    assert [t["id"] for t in res[sid]["tags"]] == [t2, t1] and [t["id"] for t in res[other]["tags"]] == [t1]
    assert res[sid]["urls"] == ["https://c", "u"]
    r = gql(emu, "Bulk", {"input": {"ids": [sid], "tag_ids": {"ids": [t2], "mode": "REMOVE"}}}, doc=BULK_DOC)
    assert [t["id"] for t in data(r)["bulkSceneUpdate"][0]["tags"]] == [t1]

    # destroying a tag/performer/studio unlinks it
    gql(emu, "PerformerDestroy", {"input": {"id": p1}}, doc_file="performers.graphql")
    gql(emu, "StudioDestroy", {"input": {"id": st}}, doc_file="studios.graphql")
    s = find_scenes(emu, {"id": {"value": int(sid), "modifier": "EQUALS"}})["scenes"][0]
    assert s["performers"] == [] and s["studio"] is None


def test_groups_with_scene_index(emu, library, media):
    sid = _scanned_scene(emu, library, media)
    tag = data(gql(emu, "TagCreate", {"input": {"name": "series"}}, doc_file="tags.graphql"))["tagCreate"][
        "id"
    ]

    def group_op(op: str, inp: dict) -> httpx.Response:
        return gql(emu, op, {"input": inp}, doc_file="groups.graphql")

    g = data(
        group_op(
            "GroupCreate",
            {"name": "Series A", "aliases": "SA", "date": "2023", "urls": ["https://g"], "tag_ids": [tag]},
        )
    )["groupCreate"]
    assert g == {
        "id": "1",
        "name": "Series A",
        "aliases": "SA",
        "date": "2023",
        "synopsis": None,
        "urls": ["https://g"],
        "studio": None,
        "tags": [{"id": tag}],
    }
    g = data(group_op("GroupUpdate", {"id": g["id"], "synopsis": "story"}))["groupUpdate"]
    assert g["synopsis"] == "story" and g["aliases"] == "SA" and g["urls"] == ["https://g"]
    assert "blank" in error_of(group_op("GroupCreate", {"name": "  "}))

    r = gql(
        emu,
        "SceneUpdate",
        {"input": {"id": sid, "groups": [{"group_id": g["id"], "scene_index": 3}]}},
        doc_file="scenes.graphql",
    )
    assert data(r)["sceneUpdate"]["groups"] == [
        {"group": {"id": g["id"], "name": "Series A"}, "scene_index": 3}
    ]
    r = gql(
        emu, "SceneUpdate", {"input": {"id": sid, "groups": [{"group_id": "77"}]}}, doc_file="scenes.graphql"
    )
    assert "not found" in error_of(r)

    r = group_op("GroupCreate", {"synopsis": "no name"})  # variables not matching the input type: 422
    assert r.status_code == 422 and "name" in r.json()["errors"][0]["message"]
    r = gql(
        emu,
        "FindGroups",
        {"group_filter": {"name": {"value": "series a", "modifier": "EQUALS"}}},
        doc_file="groups.graphql",
    )
    assert data(r)["findGroups"]["count"] == 1

    assert data(group_op("GroupDestroy", {"id": g["id"]}))["groupDestroy"] is True
    assert find_scenes(emu, {"id": {"value": int(sid), "modifier": "EQUALS"}})["scenes"][0]["groups"] == []


# --------------------------------------------------------------------------- persistence


def _create_performer(emu: StashEmulator, name: str) -> dict:
    r = gql(emu, "PerformerCreate", {"input": {"name": name}}, doc_file="performers.graphql")
    return data(r)["performerCreate"]


def test_state_file_keeps_state_across_restarts(library, media, tmp_path):
    state = tmp_path / "state" / "stash.json"  # the folder does not exist yet
    shutil.copy(media / "blue.mp4", library / "blue.mp4")
    blue = str(library / "blue.mp4")

    with StashEmulator(library, state_file=state) as a:
        performer = _create_performer(a, "Jane Doe")
        assert json.loads(state.read_text())["performers"][performer["id"]]["name"] == "Jane Doe"
        assert scan(a)["status"] == "FINISHED"
        # saved when the job finished, not only at stop()
        saved = json.loads(state.read_text())
        assert [f["path"] for s in saved["scenes"].values() for f in s["files"]] == [blue]
        assert "jobs" not in saved
        scene = find_scenes(a, path_eq(blue))["scenes"][0]
        snapshot_a = a.snapshot()
        folders_a = dict(a.folders)
    assert sorted(p.name for p in state.parent.iterdir()) == ["stash.json"]  # no temp files left

    with StashEmulator(library, state_file=state) as b:
        assert b.snapshot() == snapshot_a
        assert b.folders == folders_a
        assert b.jobs == {} and find_job(b, "1") is None  # jobs are not persisted
        found = find_scenes(b, path_eq(blue))
        assert found["count"] == 1 and found["scenes"][0] == scene
        fps = {fp["type"]: fp["value"] for fp in found["scenes"][0]["files"][0]["fingerprints"]}
        assert fps["oshash"] == oshash(library / "blue.mp4") and len(fps["md5"]) == 32
        r = gql(
            b,
            "FindPerformers",
            {"performer_filter": {"name": {"value": "Jane Doe", "modifier": "EQUALS"}}},
            doc_file="performers.graphql",
        )
        assert data(r)["findPerformers"]["performers"] == [performer]
        # uniqueness checks see the loaded performer, and new ids keep increasing
        assert "already exists" in error_of(
            gql(b, "PerformerCreate", {"input": {"name": "jane doe"}}, doc_file="performers.graphql")
        )
        assert int(_create_performer(b, "John Roe")["id"]) > int(performer["id"])

        # re-scanning the same file (plain and forced) creates no new scene or file
        assert scan(b)["status"] == "FINISHED"
        assert scan(b, [str(library)])["status"] == "FINISHED"
        job = data(gql(b, "MetadataScan", {"input": {"rescan": True}}, doc=SCAN_DOC))["metadataScan"]
        assert b.wait_idle() and find_job(b, job)["status"] == "FINISHED"
        found = find_scenes(b, path_eq(blue))
        assert found["count"] == 1 and found["scenes"][0]["id"] == scene["id"]
        assert found["scenes"][0]["files"] == scene["files"]
        assert len(b.scenes) == 1 and b.folders == folders_a

        # a new file in a new folder gets higher scene, file and folder ids
        (library / "sub").mkdir()
        shutil.copy(media / "red.mp4", library / "sub" / "red.mp4")
        scan(b)
        red = find_scenes(b, path_eq(str(library / "sub" / "red.mp4")))["scenes"][0]
        assert int(red["id"]) > int(scene["id"])
        assert int(red["files"][0]["id"]) > int(scene["files"][0]["id"])
        assert len(b.folders) == len(folders_a) + 1
        assert min(int(i) for i in set(b.folders) - set(folders_a)) > max(int(i) for i in folders_a)

    with StashEmulator(library, state_file=state) as c:  # B's changes were kept as well
        assert sorted(p["name"] for p in c.performers.values()) == ["Jane Doe", "John Roe"]
        assert len(c.scenes) == 2


def test_state_file_is_optional_and_rejects_garbage(library, tmp_path):
    state = tmp_path / "stash.json"
    with StashEmulator(library, state_file=state) as e:  # a missing file means a fresh start
        assert e.performers == {}
    assert json.loads(state.read_text())["performers"] == {}  # saved on stop

    state.write_text("not json")
    with pytest.raises(ValueError, match="state file"):
        StashEmulator(library, state_file=state).start()

    with StashEmulator(library) as e:  # without a state file nothing is written
        _create_performer(e, "Jane Doe")
    assert state.read_text() == "not json"


# --------------------------------------------------------------------------- CLI


def test_main_serves_until_sigterm(library):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audio_assets.replica.stash_emulator",
            "--library",
            str(library),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/graphql")
        r = httpx.post(url, json={"query": "{ version { version } }"})
        assert r.json()["data"]["version"]["version"] == "v0.30.1"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_main_state_file(library, tmp_path):
    state = tmp_path / "stash.json"

    def run(check) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "audio_assets.replica.stash_emulator",
                "--library",
                str(library),
                "--port",
                "0",
                "--state-file",
                str(state),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        try:
            check(proc.stdout.readline().strip())
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0

    def post(url: str, doc: str, variables: dict) -> dict:
        r = httpx.post(url, json={"query": doc, "variables": variables}, timeout=30)
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        return r.json()["data"]

    create = "mutation($name: String!) { performerCreate(input: {name: $name}) { id } }"
    run(lambda url: post(url, create, {"name": "Jane Doe"}))
    assert [p["name"] for p in json.loads(state.read_text())["performers"].values()] == ["Jane Doe"]

    def second_run(url: str) -> None:
        found = post(url, "{ findPerformers { performers { id name } } }", {})
        assert found["findPerformers"]["performers"] == [{"id": "1", "name": "Jane Doe"}]
        assert post(url, create, {"name": "John Roe"})["performerCreate"]["id"] == "2"

    run(second_run)
