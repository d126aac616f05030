"""Fetch an upstream feed over HTTP, safely and politely.

Safely: http/https only; every hop's host is resolved and refused if it is not
a public address (SSRF), and the request is then sent to the address that was
checked, so a DNS answer that changes between check and connect (rebinding)
cannot slip through; redirects are followed by hand, at most
``max_redirects``; the body is streamed and decompressed by us in bounded
steps, so neither a huge body nor a gzip bomb is ever held in memory.
Politely: conditional GET (RFC 9110 §13.1), our User-Agent, and Retry-After
(RFC 9110 §10.2.3) handed back to the scheduler.

Nothing here raises for a failed fetch: the result carries an ``error`` that
names this layer ("fetch: ...").
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

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
    """A fetch stopped by one of our rules (address, size, time); str() is the message."""


@dataclass
class _Progress:
    url: str
    status: int | None = None
    permanent: bool = True
    hops: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
    http = client if client is not None else httpx.Client(trust_env=False, follow_redirects=False)
    headers = {"User-Agent": user_agent, "Accept": _ACCEPT, "Accept-Encoding": "gzip, deflate"}
    # RFC 9110 §13.1.2-3: send the validators back exactly as received.
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        result = _exchange(http, headers, limits, allow_hosts, progress, clock, started)
    except _Refused as exc:
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
        target = _checked_url(progress.url)
        addresses = _public_addresses(target, allow_hosts)
        response = _send(http, target, addresses, headers, timeout)
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
        content = _read_body(response, limits, deadline)
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


# -- where we may connect ---------------------------------------------------


def _checked_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise _Refused(f"fetch: invalid URL {url!r}: {exc}") from exc
    # feedparser itself would read file:// URLs and plain paths (LIBRARIES.md).
    if parsed.scheme not in ("http", "https"):
        raise _Refused(f"fetch: only http and https URLs are fetched, not {url!r}")
    if not parsed.host:
        raise _Refused(f"fetch: URL has no host: {url!r}")
    return parsed


def _public_addresses(url: httpx.URL, allow_hosts: frozenset[str]) -> list[str]:
    """Resolve the URL's host; refuse unless every address is public or allowed."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        # raw_host: the IDNA (punycode) form DNS knows.
        infos = socket.getaddrinfo(url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _Refused(f"fetch: cannot resolve host {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if host in allow_hosts:
        return addresses
    for address in addresses:
        kind = _non_public_kind(address)
        if kind is None or address in allow_hosts:
            continue
        article = "an" if kind[0] in "aeiou" else "a"
        if address == host:
            raise _Refused(f"fetch: host {host} is {article} {kind} address")
        # One bad address refuses the host: an attacker's DNS can mix them.
        raise _Refused(f"fetch: host {host} resolves to {address}, {article} {kind} address")
    return addresses


def _non_public_kind(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    # ::ffff:10.0.0.1 and 2002:a00:1:: carry an IPv4 address inside; Python
    # 3.11 does not look inside them for is_private.
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    for kind in ("loopback", "link-local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, "is_" + kind.replace("-", "_")):
            return kind
    # Shared address space 100.64.0.0/10 (RFC 6598) is neither private nor
    # global; cloud metadata services live there (Alibaba: 100.100.100.200).
    return None if ip.is_global else "non-public"


def _send(
    http: httpx.Client,
    url: httpx.URL,
    addresses: list[str],
    headers: dict[str, str],
    timeout: httpx.Timeout,
) -> httpx.Response:
    # Connect to the address we checked, not to whatever a second DNS lookup
    # returns. Host and TLS SNI (so certificate checks) keep the real name.
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    hop_headers = {**headers, "Host": url.netloc.decode("ascii")}
    last_error: httpx.ConnectError | None = None
    for address in addresses:  # the resolver's order, as socket.create_connection does
        request = http.build_request(
            "GET",
            url.copy_with(host=address),
            headers=hop_headers,
            timeout=timeout,
            extensions=extensions,
        )
        try:
            return http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            last_error = exc
    if last_error is None:  # getaddrinfo returned no address at all
        raise _Refused(f"fetch: host {url.host} has no address")
    raise last_error


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host
    except (httpx.InvalidURL, TypeError, ValueError):
        return url


# -- the body -----------------------------------------------------------------


def _read_body(response: httpx.Response, limits: FetchLimits, deadline: float) -> bytes:
    too_big = f"fetch: body larger than {limits.max_bytes} bytes"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _Refused(too_big)
    decoder = _decoder(response.headers.get("content-encoding", ""), limits.max_decompressed_bytes)
    body = bytearray()
    received = 0
    # iter_raw: the bytes as sent (chunked framing removed, Content-Encoding
    # kept), so we count wire bytes and decompress in bounded steps ourselves.
    # httpx's own decoding inflates a whole network read at once: 64 KiB of a
    # gzip bomb is ~64 MiB.
    for chunk in response.iter_raw():
        received += len(chunk)
        if received > limits.max_bytes:
            raise _Refused(too_big)
        if time.monotonic() > deadline:
            raise _Refused(f"fetch: took longer than {limits.total_timeout:g}s")
        for piece in decoder(chunk):
            body += piece
    for piece in decoder(b""):
        body += piece
    return bytes(body)


_INFLATE_STEP = 64 * 1024


def _decoder(content_encoding: str, limit: int) -> Callable[[bytes], Iterator[bytes]]:
    """A function taking wire bytes (b"" at the end) and yielding decoded ones.

    It raises _Refused once more than ``limit`` decoded bytes came out.
    """
    coding = content_encoding.strip().lower()
    too_big = f"fetch: decompressed body larger than {limit} bytes"
    produced = 0

    def count(piece: bytes) -> bytes:
        nonlocal produced
        produced += len(piece)
        if produced > limit:
            raise _Refused(too_big)
        return piece

    if coding in ("", "identity"):

        def identity(chunk: bytes) -> Iterator[bytes]:
            if chunk:
                yield count(chunk)

        return identity
    # RFC 9110 §8.4.1: gzip (x-gzip is its old alias) and deflate, which is
    # the zlib format (RFC 1950). We only ask for these two.
    if coding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif coding == "deflate":
        inflater = zlib.decompressobj(zlib.MAX_WBITS)
    else:
        raise _Refused(f"fetch: unsupported content-encoding {content_encoding!r}")

    def inflate(chunk: bytes) -> Iterator[bytes]:
        try:
            if not chunk:
                yield count(inflater.flush())
                return
            while chunk:
                # max_length bounds each step (one read of a gzip bomb would
                # otherwise inflate ~1000x at once), and we stop one byte
                # past the limit.
                step = min(_INFLATE_STEP, limit - produced + 1)
                yield count(inflater.decompress(chunk, step))
                chunk = inflater.unconsumed_tail
        except zlib.error as exc:
            raise _Refused(f"fetch: corrupt {coding} body: {exc}") from exc

    return inflate


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
