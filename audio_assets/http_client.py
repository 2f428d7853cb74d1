"""One shared, polite HTTP client for every outside platform.

- Only allow-listed hosts are fetched (http/https, no redirect off the list).
- Real URLs are translated through the host map (``Settings.host_map``), so posts and
  pages keep their real URLs while tests and the demo hit the local replica.
- Per-host concurrency and a per-host minimum interval between requests.
- Retries with exponential backoff on 429, 5xx, timeouts and dropped connections,
  honouring ``Retry-After``.
- A real User-Agent on every request.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from audio_assets.settings import KNOWN_HOSTS, USER_AGENT, Settings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(RuntimeError):
    """A fetch failed for good. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, url: str, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class HostNotAllowed(FetchError):
    pass


class TooManyRedirects(FetchError):
    """A redirect chain longer than the client follows (a loop, as a gate that sends back to itself)."""

    def __init__(self, message: str, *, url: str, hops: list[str]):
        super().__init__(message, url=url)
        self.hops = hops


@dataclass
class HostStats:
    requests: int = 0
    retries: int = 0
    bytes: int = 0
    rate_limit_waits: int = 0


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class PoliteClient:
    def __init__(
        self,
        settings: Settings,
        *,
        max_retries: int = 5,
        timeout: float = 30.0,
        backoff_base: float = 0.5,
        max_backoff: float = 60.0,
        extra_allowed_hosts: frozenset[str] = frozenset(),
    ):
        self.settings = settings
        self.host_map = dict(settings.host_map)
        self.allowed_hosts = KNOWN_HOSTS | extra_allowed_hosts | frozenset(self.host_map)
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.min_interval = 1.0 / settings.requests_per_second_per_host if settings.requests_per_second_per_host > 0 else 0.0
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = defaultdict(float)
        self._semaphores: dict[str, threading.Semaphore] = {}
        self.stats: dict[str, HostStats] = defaultdict(HostStats)

    # -- URL handling -------------------------------------------------------------------
    def check_allowed(self, url: str) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https"):
            raise HostNotAllowed(f"refusing to fetch {url!r}: only http(s) URLs are fetched", url=url)
        if host not in self.allowed_hosts:
            raise HostNotAllowed(
                f"refusing to fetch {url!r}: host {host!r} is not on the allow-list of known platforms", url=url
            )
        return host

    def map_url(self, url: str) -> str:
        """Translate a real URL to the address it is served from (the host map)."""
        return self._mapped(url, self.check_allowed(url))

    def _mapped(self, url: str, host: str) -> str:
        """map_url for a URL whose (allowed) host is known."""
        base = self.host_map.get(host)
        if not base:
            return url
        parts = urlsplit(url)
        tail = parts.path or "/"
        if parts.query:
            tail += "?" + parts.query
        return base + tail

    # -- politeness ------------------------------------------------------------------------
    def _semaphore(self, host: str) -> threading.Semaphore:
        with self._lock:
            sem = self._semaphores.get(host)
            if sem is None:
                sem = self._semaphores[host] = threading.Semaphore(self.settings.concurrency_per_host)
            return sem

    def _wait_for_slot(self, host: str) -> None:
        if self.min_interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot[host])
            self._next_slot[host] = slot + self.min_interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _honour_rate_limit(self, host: str, headers: httpx.Headers) -> None:
        """Reddit-style budget headers: when the budget is spent, wait until it resets."""
        remaining = headers.get("x-ratelimit-remaining")
        reset = headers.get("x-ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            if float(remaining) >= 1:
                return
            wait = min(float(reset), self.max_backoff)
        except ValueError:
            return
        with self._lock:
            self._next_slot[host] = max(self._next_slot[host], time.monotonic() + wait)
        self.stats[host].rate_limit_waits += 1

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.max_backoff, self.backoff_base * (2**attempt)) * (0.5 + random.random() / 2)

    # -- requests ------------------------------------------------------------------------
    @contextmanager
    def stream(
        self, method: str, url: str, *, headers: dict | None = None, params: dict | None = None, data=None,
        auth=None, max_redirects: int = 5,
    ) -> Iterator[httpx.Response]:
        """Open a response (after redirects and retries) for streaming; the caller reads it.

        Raises FetchError for a final HTTP error status (after retries) or a dead host."""
        current = url
        hops = [url]
        for _hop in range(max_redirects + 1):
            host = self.check_allowed(current)
            target = self._mapped(current, host)
            attempt = 0
            while True:
                self._wait_for_slot(host)
                sem = self._semaphore(host)
                sem.acquire()
                response = None
                try:
                    self.stats[host].requests += 1
                    request = self._client.build_request(
                        method, target, headers=headers, params=params, data=data
                    )
                    if auth is not None:
                        request = next(httpx.BasicAuth(*auth).auth_flow(request))
                    response = self._client.send(request, stream=True)
                except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                    sem.release()
                    if attempt >= self.max_retries:
                        why = (f"timed out (no answer for {self.timeout:g} s; AUDIO_ASSETS_HTTP_TIMEOUT sets the limit)"
                               if isinstance(exc, httpx.TimeoutException) else f"{type(exc).__name__}: {exc}")
                        raise FetchError(f"{method} {current} failed after {attempt + 1} attempts: {why}",
                                         url=current) from None
                    self.stats[host].retries += 1
                    time.sleep(self._backoff(attempt, None))
                    attempt += 1
                    continue
                self._honour_rate_limit(host, response.headers)
                if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                    response.close()
                    sem.release()
                    self.stats[host].retries += 1
                    time.sleep(self._backoff(attempt, retry_after))
                    attempt += 1
                    continue
                break
            try:
                if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                    location = urljoin(current, response.headers["location"])
                    response.close()
                    current = location
                    hops.append(location)
                    if response.status_code == 303:
                        method, data = "GET", None
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise FetchError(
                        f"{method} {current} answered HTTP {response.status_code}", url=current,
                        status=response.status_code,
                    )
                response.extensions["real_url"] = current
                yield response
                return
            finally:
                response.close()
                sem.release()
        raise TooManyRedirects(f"{method} {url}: more than {max_redirects} redirects ({' -> '.join(hops[:4])} ...)",
                               url=url, hops=hops)

    def get(self, url: str, **kwargs) -> httpx.Response:
        """GET a whole body (pages, JSON). Retries truncated bodies too."""
        return self.request("GET", url, **kwargs)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                with self.stream(method, url, **kwargs) as response:
                    response.read()
                    self.stats[urlsplit(url).hostname or ""].bytes += len(response.content)
                    return response
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout) as exc:
                last = exc
                time.sleep(self._backoff(attempt, None))
        raise FetchError(f"{method} {url}: body could not be read: {last}", url=url)

    def total_requests(self, host: str | None = None) -> int:
        if host:
            return self.stats[host].requests
        return sum(s.requests for s in self.stats.values())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
