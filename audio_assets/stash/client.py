"""A small Stash GraphQL client over httpx.

Every document lives as a .graphql file in ``operations/`` (validated against the real
Stash schema by ``../shared/tools/check-stash-ops``). GraphQL errors raise StashError
with the operation's name; nothing is swallowed. The ApiKey header is sent only when a
key is set (a non-empty wrong key is a 401 even on an open server)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import httpx
from graphql import OperationDefinitionNode, parse

OPERATIONS_DIR = Path(__file__).with_name("operations")


class StashError(RuntimeError):
    def __init__(self, operation: str, message: str, *, status: int | None = None):
        super().__init__(f"Stash {operation}: {message}")
        self.operation = operation
        self.status = status


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
                raise StashError(operation, f"cannot reach Stash at {self.url}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 401:
                raise StashError(operation, "401 Unauthorized: set STASH_API_KEY to the key from Stash's "
                                 "Settings > Security (and send none if Stash has no credentials)", status=401)
            if response.status_code >= 500 and attempt < self.retries and not is_mutation:
                time.sleep(0.5 * 2**attempt)
                continue
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
        raise StashError(operation, "gave up after retries")

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
                raise StashError("MetadataScan", f"scan job {job_id} failed: {job.get('error') or 'no reason given'}")
            if job["status"] in ("FINISHED", "CANCELLED"):
                return job
            if time.monotonic() > deadline:
                raise StashError("MetadataScan", f"scan job {job_id} did not finish within {timeout_s:.0f}s "
                                 f"(status {job['status']}); check Stash's task queue")
            time.sleep(poll_s)
