"""Where a fetch may connect: the SSRF address guard.

Only http/https URLs with a host are fetched. The host is resolved and
refused unless every address it resolves to is public (or allowed by the
caller): loopback, link-local, multicast, unspecified, reserved, private,
shared (100.64.0.0/10) and IPv4 addresses hidden in IPv6 (IPv4-mapped, 6to4)
are all refused. The request is then sent to the address that was checked, so
a DNS answer that changes between check and connect (rebinding) cannot slip
through.

Refusals raise ``AddressRefused``; its str() is the message, naming the
fetch layer ("fetch: ...").
"""

from __future__ import annotations

import ipaddress
import socket

import httpx


class AddressRefused(Exception):
    """A URL or host the guard will not connect to; str() is the message."""


def checked_url(url: str) -> httpx.URL:
    """Parse ``url``; refuse anything but an http/https URL with a host."""
    try:
        parsed = httpx.URL(url)
        # The host is decoded on first use: a malformed IDNA label ("xn--") raises here.
        host, port = parsed.host, parsed.port
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # UnicodeError is a ValueError
        raise AddressRefused(f"fetch: invalid URL {url!r}: {exc}") from exc
    # feedparser itself would read file:// URLs and plain paths (LIBRARIES.md).
    if parsed.scheme not in ("http", "https"):
        raise AddressRefused(f"fetch: only http and https URLs are fetched, not {url!r}")
    if not host:
        raise AddressRefused(f"fetch: URL has no host: {url!r}")
    if port is not None and not 0 < port < 65536:
        raise AddressRefused(f"fetch: URL has no usable port: {url!r}")
    return parsed


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable before any lookup (not http(s), no host, a malformed
    internationalised name, a port out of range), or None. For input validation."""
    try:
        checked_url(url)
    except AddressRefused as exc:
        return str(exc).removeprefix("fetch: ").replace(f": {url!r}", "").replace(f" {url!r}", "")
    return None


def public_addresses(url: httpx.URL, allow_hosts: frozenset[str]) -> list[str]:
    """Resolve the URL's host; refuse unless every address is public or allowed."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        # raw_host: the IDNA (punycode) form DNS knows.
        infos = socket.getaddrinfo(url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"fetch: cannot resolve host {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if host in allow_hosts:
        return addresses
    for address in addresses:
        kind = _non_public_kind(address)
        if kind is None or address in allow_hosts:
            continue
        article = "an" if kind[0] in "aeiou" else "a"
        if address == host:
            raise AddressRefused(f"fetch: host {host} is {article} {kind} address")
        # One bad address refuses the host: an attacker's DNS can mix them.
        raise AddressRefused(f"fetch: host {host} resolves to {address}, {article} {kind} address")
    return addresses


def literal_refusal(url: str, allow_hosts: frozenset[str]) -> str | None:
    """Why the guard would refuse ``url`` without resolving anything (an IP literal that is
    not public, or a localhost name), or None: a name is judged when it is resolved. For a
    check on the request path, where no DNS lookup may wait."""
    try:
        host = checked_url(url).host
    except AddressRefused as exc:
        return str(exc)
    if host in allow_hosts:
        return None
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761 §6.3: loopback
        return f"fetch: host {host} is a loopback name"
    try:
        kind = _non_public_kind(host)
    except ValueError:  # a name, not an address
        return None
    article = "an" if kind is not None and kind[0] in "aeiou" else "a"
    return None if kind is None else f"fetch: host {host} is {article} {kind} address"


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


def send_pinned(
    http: httpx.Client,
    url: httpx.URL,
    addresses: list[str],
    headers: dict[str, str],
    timeout: httpx.Timeout,
    *,
    method: str = "GET",
    content: bytes | None = None,
) -> httpx.Response:
    """Send a streamed request (a GET unless told) for ``url`` to the first of ``addresses``
    that connects. WebSub's callbacks come through here too (feedsvc/websub/deliver.py)."""
    # Connect to the address we checked, not to whatever a second DNS lookup
    # returns. Host and TLS SNI (so certificate checks) keep the real name.
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    hop_headers = {**headers, "Host": url.netloc.decode("ascii")}
    last_error: httpx.ConnectError | None = None
    for address in addresses:  # the resolver's order, as socket.create_connection does
        request = http.build_request(
            method,
            url.copy_with(host=address),
            headers=hop_headers,
            content=content,
            timeout=timeout,
            extensions=extensions,
        )
        try:
            return http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            last_error = exc
    if last_error is None:  # getaddrinfo returned no address at all
        raise AddressRefused(f"fetch: host {url.host} has no address")
    raise last_error
