"""Fetch an upstream feed over HTTP, safely and politely.

Safely: http/https only; every hop's host is resolved and refused if it is not
a public address (SSRF), and the request is then sent to the address that was
checked, so a DNS answer that changes between check and connect (rebinding)
cannot slip through; redirects are followed by hand, at most
``max_redirects``; the body is streamed and decompressed by us in bounded
steps, so neither a huge body nor a gzip bomb is ever held in memory.
Politely: conditional GET (RFC 9110 §13.1), our User-Agent, and Retry-After
(RFC 9110 §10.2.3) handed back to the scheduler.

The address guard lives in ``guard.py`` and the bounded body reading in
``body.py``; this module runs the exchange and builds the result.

Nothing here raises for a failed fetch: the result carries an ``error`` that
names this layer ("fetch: ...").
"""

from __future__ import annotations

import functools
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import certifi
import httpx

from feedsvc.sources.body import BodyRefused, read_body
from feedsvc.sources.guard import AddressRefused, checked_url, public_addresses, send_pinned

MiB = 1024 * 1024

# RFC 9110 §15.4: the redirects whose Location we follow. Only 301 and 308
# are permanent (§15.4.2, §15.4.9): a chain of them moves the stored URL.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})

# What feedparser needs from the response (content-encoding is ours: the body
# we hand on is already decoded).
_HEADERS_FOR_PARSER = ("content-type", "content-location", "content-language")

_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 30.0  # seconds between two reads
    # The read timeout restarts at every byte, so a server dripping one byte
    # at a time would hold us for ever: this bounds the whole fetch.
    total_timeout: float = 120.0
    max_bytes: int = 10 * MiB  # on the wire
    max_decompressed_bytes: int = 10 * MiB  # after Content-Encoding
    max_redirects: int = 5


@dataclass(frozen=True)
class FetchResult:
    status: int | None  # None when no response arrived
    final_url: str  # the URL of the last response (after redirects)
    permanent_redirect_url: str | None  # set only if every hop was 301/308
    etag: str | None
    last_modified: str | None
    content: bytes | None  # decoded body of a 2xx response, else None
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names
    retry_after: datetime | None = None
    error: str | None = None  # "fetch: ..." when this is not a usable response
    elapsed: timedelta = timedelta(0)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304


class _Refused(Exception):
    """A fetch stopped by one of our rules (redirects, time); str() is the message.

    The address guard and the body reader raise their own (``AddressRefused``,
    ``BodyRefused``); ``fetch`` turns all three into a failed result.
    """


@dataclass
class _Progress:
    url: str
    status: int | None = None
    permanent: bool = True
    hops: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle (~17 ms and ~3 MiB
    each, measured by bench/sources.py), which a client per fetch paid every time. Sharing
    the context shares no connection; the host name is still checked per connection."""
    return ssl.create_default_context(cafile=certifi.where())  # as httpx does by default


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits,
    allow_hosts: frozenset[str] = frozenset(),
    user_agent: str,
    client: httpx.Client | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> FetchResult:
    """GET ``url`` conditionally and return what happened.

    ``allow_hosts`` lists host names or IP literals that may be private (for
    tests and same-machine feeds). A caller-supplied ``client`` should be
    made with ``trust_env=False`` (a proxy would connect for us, unchecked)
    and not be shared between HTTPS hosts: requests go to checked addresses,
    so its pool keys connections by address, not by name.
    """
    started = time.monotonic()
    progress = _Progress(url)
    own_client = client is None
    http = (
        client
        if client is not None
        else httpx.Client(trust_env=False, follow_redirects=False, verify=tls_context())
    )
    headers = {"User-Agent": user_agent, "Accept": _ACCEPT, "Accept-Encoding": "gzip, deflate"}
    # RFC 9110 §13.1.2-3: send the validators back exactly as received.
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        result = _exchange(http, headers, limits, allow_hosts, progress, clock, started)
    except (_Refused, AddressRefused, BodyRefused) as exc:
        result = _failure(progress, str(exc))
    except httpx.ConnectTimeout:
        result = _failure(progress, f"fetch: connect timeout after {limits.connect_timeout:g}s")
    except httpx.ReadTimeout:
        result = _failure(progress, f"fetch: read timeout after {limits.read_timeout:g}s")
    except httpx.TimeoutException as exc:
        result = _failure(progress, f"fetch: {type(exc).__name__} ({exc})")
    except httpx.ConnectError as exc:
        result = _failure(progress, f"fetch: cannot connect to {_host(progress.url)}: {exc}")
    except httpx.HTTPError as exc:  # protocol errors, too many headers, ...
        result = _failure(progress, f"fetch: {type(exc).__name__}: {exc}")
    finally:
        if own_client:
            http.close()
    return replace(result, elapsed=timedelta(seconds=time.monotonic() - started))


def _exchange(
    http: httpx.Client,
    headers: dict[str, str],
    limits: FetchLimits,
    allow_hosts: frozenset[str],
    progress: _Progress,
    clock: Callable[[], datetime],
    started: float,
) -> FetchResult:
    deadline = started + limits.total_timeout
    visited = {progress.url}
    timeout = httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.connect_timeout,
    )
    while True:
        target = checked_url(progress.url)
        addresses = public_addresses(target, allow_hosts)
        response = send_pinned(http, target, addresses, headers, timeout)
        try:
            progress.status = response.status_code
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return _final(response, progress, limits, deadline, clock)
        finally:
            response.close()
        progress.hops += 1
        if progress.hops > limits.max_redirects:
            raise _Refused(f"fetch: more than {limits.max_redirects} redirects")
        progress.permanent = progress.permanent and response.status_code in _PERMANENT
        next_url = str(target.join(location.strip()))
        if next_url in visited:
            raise _Refused(f"fetch: redirect loop at {next_url}")
        visited.add(next_url)
        progress.url = next_url
        progress.status = None
        if time.monotonic() > deadline:
            raise _Refused(f"fetch: took longer than {limits.total_timeout:g}s")


def _final(
    response: httpx.Response,
    progress: _Progress,
    limits: FetchLimits,
    deadline: float,
    clock: Callable[[], datetime],
) -> FetchResult:
    status = response.status_code
    content: bytes | None = None
    error: str | None = None
    if 200 <= status < 300:
        content = read_body(
            response,
            max_bytes=limits.max_bytes,
            max_decompressed_bytes=limits.max_decompressed_bytes,
            deadline=deadline,
            total_timeout=limits.total_timeout,
        )
    elif status in _REDIRECTS:
        error = f"fetch: HTTP {status} without a Location header"
    elif status != 304:
        error = f"fetch: HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
    moved = progress.url if progress.hops and progress.permanent else None
    return FetchResult(
        status=status,
        final_url=progress.url,
        permanent_redirect_url=moved,
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        content=content,
        headers={k: response.headers[k] for k in _HEADERS_FOR_PARSER if k in response.headers},
        retry_after=parse_retry_after(response.headers.get("retry-after"), clock()),
        error=error,
    )


def _failure(progress: _Progress, message: str) -> FetchResult:
    return FetchResult(
        status=progress.status,
        final_url=progress.url,
        permanent_redirect_url=None,
        etag=None,
        last_modified=None,
        content=None,
        error=message,
    )


def _host(url: str) -> str:
    # Only called once checked_url() has parsed this very URL: it cannot fail here.
    return httpx.URL(url).host


# -- Retry-After --------------------------------------------------------------

_DELAY_SECONDS = re.compile(r"\d+", re.ASCII)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        if _DELAY_SECONDS.fullmatch(value):
            return now + timedelta(seconds=int(value))
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    # An HTTP-date is always GMT (RFC 9110 §5.6.7).
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
