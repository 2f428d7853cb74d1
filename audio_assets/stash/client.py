"""A small Stash GraphQL client over httpx.

Every document lives as a .graphql file in ``operations/`` (validated against the real
Stash schema by ``../shared/tools/check-stash-ops``). GraphQL errors raise StashError
with the operation's name; nothing is swallowed. The ApiKey header is sent only when a
key is set (a non-empty wrong key is a 401 even on an open server). No message carries
the key, or credentials written into STASH_URL."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from graphql import OperationDefinitionNode, parse

OPERATIONS_DIR = Path(__file__).with_name("operations")


class StashError(RuntimeError):
    """A Stash request that did not do its job. ``kind`` says what a sync does about it:

    - ``auth``: the API key is missing, wrong or lacks rights (nothing more can be done: stop);
    - ``unavailable``: Stash cannot be reached or answers server errors (stop once Stash stops
      answering even reads);
    - ``rejected``: Stash refused this one request (a GraphQL error): the scene it was for fails;
    - ``job``: a scan job failed or did not finish: the files it was to add fail."""

    def __init__(self, operation: str, message: str, *, status: int | None = None, kind: str = "rejected"):
        super().__init__(f"Stash {operation}: {message}")
        self.operation = operation
        self.status = status
        self.kind = kind

    @property
    def fatal(self) -> bool:
        return self.kind in ("auth", "unavailable")


def display_url(url: str) -> str:
    """``url`` without user info or query (where credentials could hide), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0]


@functools.cache
def operation_documents() -> dict[str, str]:
    """Operation name -> the text of the .graphql file that defines it (with its fragments)."""
    docs: dict[str, str] = {}
    for path in sorted(OPERATIONS_DIR.glob("*.graphql")):
        text = path.read_text()
        for d in parse(text).definitions:
            if isinstance(d, OperationDefinitionNode) and d.name:
                docs[d.name.value] = text
    return docs


class StashClient:
    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 60.0, retries: int = 3):
        self.url = url
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["ApiKey"] = api_key
        self.sends_key = bool(api_key)
        self.shown_url = display_url(url)
        self._http = httpx.Client(timeout=timeout, headers=headers)
        self.retries = retries
        self.requests = 0
        self.mutations = 0

    def execute(self, operation: str, variables: dict | None = None) -> dict:
        docs = operation_documents()
        if operation not in docs:
            raise StashError(operation, "no such operation in audio_assets/stash/operations")
        is_mutation = docs[operation].find(f"mutation {operation}") >= 0
        payload = {"query": docs[operation], "operationName": operation, "variables": variables or {}}
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                response = self._http.post(self.url, json=payload)
            except httpx.TransportError as exc:
                if attempt < self.retries and not is_mutation:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise StashError(operation, f"cannot reach Stash at {self.shown_url} ({type(exc).__name__}"
                                 f"{': ' + str(exc) if str(exc) else ''}): is Stash running, and is STASH_URL its "
                                 "GraphQL endpoint?", kind="unavailable") from None
            if response.status_code in (401, 403):
                raise StashError(operation, self._auth_advice(response.status_code), status=response.status_code,
                                 kind="auth")
            if response.status_code >= 500 and attempt < self.retries and not is_mutation:
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status_code >= 500:
                tries = "" if is_mutation else f" {attempt + 1} times"
                raise StashError(operation, f"Stash at {self.shown_url} answered HTTP {response.status_code} (a "
                                 f"server error){tries}: {response.text[:200].strip()}; see Stash's log (Settings > "
                                 "Logs) and re-run once it is healthy", status=response.status_code, kind="unavailable")
            if response.status_code == 422:  # gqlgen: the document or its variables did not validate
                try:
                    errors = response.json().get("errors") or []
                except ValueError:
                    errors = []
                messages = "; ".join(e.get("message", str(e)) for e in errors) or response.text[:300]
                raise StashError(operation, f"rejected by the server's schema: {messages}", status=422)
            if response.status_code >= 400:
                raise StashError(operation, f"HTTP {response.status_code}: {response.text[:300]}", status=response.status_code)
            body = response.json()
            if is_mutation:
                self.mutations += 1
            if body.get("errors"):
                messages = "; ".join(e.get("message", str(e)) for e in body["errors"])
                raise StashError(operation, messages)
            return body.get("data") or {}
        raise StashError(operation, "gave up after retries", kind="unavailable")

    def _auth_advice(self, status: int) -> str:
        where = f"Stash at {self.shown_url}"
        if status == 403:
            return (f"{where} answered 403 Forbidden: the API key in STASH_API_KEY may not do this; use the key "
                    "of an account with full rights (Stash > Settings > Security > API Key)")
        if self.sends_key:
            return (f"{where} refused the API key in STASH_API_KEY (401 Unauthorized): it is wrong or was "
                    "regenerated; copy the current key from Stash > Settings > Security > API Key into "
                    "STASH_API_KEY (or unset it if this Stash has no credentials)")
        return (f"{where} asks for an API key (401 Unauthorized): set STASH_API_KEY to the key from "
                "Stash > Settings > Security > API Key")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StashClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- conveniences -----------------------------------------------------------------
    def version(self) -> dict:
        return self.execute("Version")["version"]

    def find_all(self, operation: str, root: str, items: str, variables: dict | None = None, per_page: int = 1000) -> list[dict]:
        """Page through a find* query (one request per ``per_page`` items)."""
        out: list[dict] = []
        page = 1
        while True:
            data = self.execute(operation, {**(variables or {}), "filter": {"per_page": per_page, "page": page, "sort": "id", "direction": "ASC"}})[root]
            out.extend(data[items])
            if len(out) >= data["count"] or not data[items]:
                return out
            page += 1

    def wait_for_job(self, job_id: str, *, timeout_s: float = 600.0, poll_s: float = 0.2) -> dict | None:
        """Wait for one job. Returns the job, or None when it has left the 10-job graveyard."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.execute("FindJob", {"input": {"id": job_id}})["findJob"]
            if job is None:
                return None
            if job["status"] == "FAILED":
                raise StashError("MetadataScan", f"scan job {job_id} failed: {job.get('error') or 'no reason given'}; "
                                 "see Stash's log (Settings > Logs)", kind="job")
            if job["status"] in ("FINISHED", "CANCELLED"):
                return job
            if time.monotonic() > deadline:
                raise StashError("MetadataScan", f"scan job {job_id} did not finish within {timeout_s:g}s "
                                 f"(still {job['status']}); check Stash's task queue (Settings > Tasks), and raise "
                                 "AUDIO_ASSETS_STASH_SCAN_TIMEOUT if big scans need longer", kind="job")
            time.sleep(poll_s)
