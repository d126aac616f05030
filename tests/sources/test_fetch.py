"""fetch() against a real HTTP server on 127.0.0.1 (pytest-httpserver).

Nothing here sends traffic anywhere else: private-address cases use an
httpx.MockTransport that fails the test if a request ever reaches it.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.serving import WSGIRequestHandler

from feedsvc.sources.fetch import FetchLimits, FetchResult, MiB, fetch, parse_retry_after

LOCAL = frozenset({"127.0.0.1", "localhost"})
UA = "feedsvc/0.1 (+http://127.0.0.1:8000)"
NOW = datetime(2024, 3, 15, 1, 0, tzinfo=UTC)
FAST = FetchLimits(connect_timeout=0.5, read_timeout=0.5)
RSS = "<rss version='2.0'><channel><title>理财</title></channel></rss>".encode()


def get(url: str, *, limits: FetchLimits = FAST, **kwargs: object) -> FetchResult:
    kwargs.setdefault("allow_hosts", LOCAL)
    return fetch(url, limits=limits, user_agent=UA, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def unreachable() -> httpx.Client:
    """A client whose every request fails the test: proof nothing was sent."""

    def handler(request: httpx.Request) -> httpx.Response:
        pytest.fail(f"request sent to {request.url}")

    return httpx.Client(transport=httpx.MockTransport(handler))


# -- success and conditional GET -------------------------------------------------


def test_200_returns_body_validators_and_parser_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        RSS,
        headers={
            "Content-Type": "application/rss+xml; charset=utf-8",
            "Content-Language": "zh-CN",
            "ETag": '"v1"',
            "Last-Modified": "Fri, 15 Mar 2024 01:00:00 GMT",
            "X-Other": "not for the parser",
        },
    )

    result = get(httpserver.url_for("/feed.xml"))

    assert result.ok and result.status == 200
    assert result.content == RSS
    assert result.etag == '"v1"'
    assert result.last_modified == "Fri, 15 Mar 2024 01:00:00 GMT"
    assert result.headers == {
        "content-type": "application/rss+xml; charset=utf-8",
        "content-language": "zh-CN",
    }
    assert result.final_url == httpserver.url_for("/feed.xml")
    assert result.permanent_redirect_url is None
    assert timedelta(0) < result.elapsed < timedelta(seconds=5)


def test_sends_our_user_agent_and_only_encodings_we_decode(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(RSS)

    get(httpserver.url_for("/feed.xml"))

    request, _ = httpserver.log[0]
    assert request.headers["User-Agent"] == UA
    assert request.headers["Accept-Encoding"] == "gzip, deflate"
    assert request.headers["Host"] == f"localhost:{httpserver.port}"


def test_etag_and_last_modified_round_trip_to_a_304(httpserver: HTTPServer) -> None:
    last_modified = "Fri, 15 Mar 2024 01:00:00 GMT"

    def conditional(request: Request) -> Response:
        if (
            request.headers.get("If-None-Match") == '"v1"'
            and request.headers.get("If-Modified-Since") == last_modified
        ):
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(RSS, headers={"ETag": '"v1"', "Last-Modified": last_modified})

    httpserver.expect_request("/feed.xml").respond_with_handler(conditional)
    url = httpserver.url_for("/feed.xml")

    first = get(url)
    second = get(url, etag=first.etag, last_modified=first.last_modified)

    assert first.status == 200 and first.content == RSS
    assert second.status == 304 and second.ok and second.not_modified
    assert second.content is None
    assert second.etag == '"v1"'


def test_gzip_body_is_decoded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        gzip.compress(RSS), headers={"Content-Encoding": "gzip"}
    )

    assert get(httpserver.url_for("/feed.xml")).content == RSS


def test_deflate_body_is_decoded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        zlib.compress(RSS), headers={"Content-Encoding": "deflate"}
    )

    assert get(httpserver.url_for("/feed.xml")).content == RSS


def test_encodings_we_did_not_ask_for_are_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        b"\x00", headers={"Content-Encoding": "br"}
    )

    result = get(httpserver.url_for("/feed.xml"))

    assert result.error == "fetch: unsupported content-encoding 'br'"


# -- redirects -------------------------------------------------------------------


def redirect(httpserver: HTTPServer, path: str, to: str, status: int) -> None:
    httpserver.expect_request(path).respond_with_data("", status=status, headers={"Location": to})


@pytest.mark.parametrize(
    ("statuses", "moved"),
    [
        ((301,), True),
        ((308,), True),
        ((301, 308), True),
        ((302,), False),
        ((307,), False),
        ((303,), False),
        ((301, 302), False),
        ((302, 301), False),
    ],
)
def test_only_all_permanent_hops_move_the_url(
    httpserver: HTTPServer, statuses: tuple[int, ...], moved: bool
) -> None:
    for hop, status in enumerate(statuses):
        redirect(httpserver, f"/hop{hop}", f"/hop{hop + 1}", status)
    final = f"/hop{len(statuses)}"
    httpserver.expect_request(final).respond_with_data(RSS)

    result = get(httpserver.url_for("/hop0"))

    assert result.ok and result.content == RSS
    assert result.final_url == httpserver.url_for(final)
    assert result.permanent_redirect_url == (httpserver.url_for(final) if moved else None)


def test_five_redirects_are_followed_six_are_not(httpserver: HTTPServer) -> None:
    for hop in range(6):
        redirect(httpserver, f"/hop{hop}", f"/hop{hop + 1}", 302)
    httpserver.expect_request("/hop6").respond_with_data(RSS)

    five = get(httpserver.url_for("/hop1"))
    six = get(httpserver.url_for("/hop0"))

    assert five.ok and five.content == RSS
    assert six.error == "fetch: more than 5 redirects"
    assert six.content is None


def test_redirect_loop_is_detected(httpserver: HTTPServer) -> None:
    redirect(httpserver, "/a", "/b", 301)
    redirect(httpserver, "/b", "/a", 301)

    result = get(httpserver.url_for("/a"))

    assert result.error == f"fetch: redirect loop at {httpserver.url_for('/a')}"
    assert result.permanent_redirect_url is None


def test_redirect_to_a_private_address_is_refused(httpserver: HTTPServer) -> None:
    redirect(httpserver, "/feed.xml", "http://10.0.0.1/latest.xml", 302)

    result = get(httpserver.url_for("/feed.xml"))

    assert result.error == "fetch: host 10.0.0.1 is a private address"
    assert result.final_url == "http://10.0.0.1/latest.xml"
    assert len(httpserver.log) == 1


def test_redirect_to_a_file_url_is_refused(httpserver: HTTPServer) -> None:
    redirect(httpserver, "/feed.xml", "file:///etc/passwd", 301)

    result = get(httpserver.url_for("/feed.xml"))

    assert result.error is not None
    assert result.error.startswith("fetch: only http and https URLs are fetched, not 'file:")
    assert result.content is None


# -- error statuses and Retry-After ----------------------------------------------


def test_410_is_reported_with_its_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data("gone", status=410)

    result = get(httpserver.url_for("/feed.xml"))

    assert result.status == 410
    assert result.error == "fetch: HTTP 410 Gone"
    assert result.content is None


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", NOW + timedelta(seconds=120)),
        (429, "Fri, 15 Mar 2024 02:30:00 GMT", datetime(2024, 3, 15, 2, 30, tzinfo=UTC)),
        (503, "30", NOW + timedelta(seconds=30)),
        (503, "Fri, 15 Mar 2024 03:00:00 GMT", datetime(2024, 3, 15, 3, 0, tzinfo=UTC)),
    ],
)
def test_retry_after_seconds_and_http_date(
    httpserver: HTTPServer, status: int, retry_after: str, expected: datetime
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        "slow down", status=status, headers={"Retry-After": retry_after}
    )

    result = get(httpserver.url_for("/feed.xml"))

    assert result.status == status
    assert result.retry_after == expected
    assert result.error is not None and result.error.startswith(f"fetch: HTTP {status}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", NOW),
        (" 3600 ", NOW + timedelta(hours=1)),
        ("Fri, 15 Mar 2024 03:00:00 GMT", datetime(2024, 3, 15, 3, 0, tzinfo=UTC)),
        ("Friday, 15-Mar-24 03:00:00 GMT", datetime(2024, 3, 15, 3, 0, tzinfo=UTC)),  # RFC 850
        ("Fri Mar 15 03:00:00 2024", datetime(2024, 3, 15, 3, 0, tzinfo=UTC)),  # asctime
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("9" * 40, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# -- timeouts and size limits ----------------------------------------------------


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of a test so a deliberately slow handler stops.

    The test server answers one request at a time: a handler still sleeping
    would make the next test time out.
    """
    event = threading.Event()
    yield event
    event.set()


def test_read_timeout(httpserver: HTTPServer, release: threading.Event) -> None:
    def slow(request: Request) -> Response:
        release.wait(timeout=5)
        return Response(RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(slow)
    started = time.monotonic()

    result = get(httpserver.url_for("/feed.xml"))

    assert result.error == "fetch: read timeout after 0.5s"
    assert result.status is None
    assert 0.5 <= time.monotonic() - started < 2


def test_a_slow_drip_is_cut_by_the_total_timeout(
    httpserver: HTTPServer, release: threading.Event
) -> None:
    def drip() -> Iterator[bytes]:
        while not release.wait(timeout=0.05):  # a byte every 50 ms: never a read timeout
            yield b" "

    httpserver.expect_request("/feed.xml").respond_with_response(Response(drip()))
    limits = FetchLimits(connect_timeout=0.5, read_timeout=0.5, total_timeout=0.3)

    result = get(httpserver.url_for("/feed.xml"), limits=limits)

    assert result.error == "fetch: took longer than 0.3s"
    assert result.status == 200 and result.content is None


def test_connection_refused_is_a_readable_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = get(f"http://127.0.0.1:{port}/feed.xml")

    assert result.status is None
    assert result.error is not None and result.error.startswith(
        "fetch: cannot connect to 127.0.0.1"
    )


def test_body_over_the_limit_by_content_length(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(b"x" * 2000)
    limits = FetchLimits(connect_timeout=0.5, read_timeout=0.5, max_bytes=1000)

    result = get(httpserver.url_for("/feed.xml"), limits=limits)

    assert result.error == "fetch: body larger than 1000 bytes"
    assert result.content is None


@pytest.fixture
def chunked_server() -> Iterator[HTTPServer]:
    """A threaded server: werkzeug then speaks HTTP/1.1 and sends chunked bodies."""
    # werkzeug switches to HTTP/1.1 by setting an attribute on its shared
    # handler class: undo that so other tests' servers stay as they were.
    was_set = "protocol_version" in vars(WSGIRequestHandler)
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()
    if not was_set:
        del WSGIRequestHandler.protocol_version


def test_body_over_the_limit_chunked_without_content_length(chunked_server: HTTPServer) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1024):  # 64 MiB if nobody stops reading
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    chunked_server.expect_request("/feed.xml").respond_with_handler(lambda _: Response(endless()))
    url = chunked_server.url_for("/feed.xml")
    with httpx.stream("GET", url) as probe:  # the framing is what this test is about
        assert "content-length" not in probe.headers
        assert probe.headers["transfer-encoding"] == "chunked"
    sent = 0

    result = get(url)  # default limit: 10 MiB

    assert result.error == "fetch: body larger than 10485760 bytes"
    assert sent < 20 * MiB


def test_gzip_bomb_stops_early_in_little_memory(httpserver: HTTPServer) -> None:
    # 50 MB of zeros, gzip-compressed to ~50 KB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    bomb = b"".join(compressor.compress(zeros) for _ in range(50)) + compressor.flush()
    assert len(bomb) < MiB
    httpserver.expect_request("/feed.xml").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
    )
    del zeros

    tracemalloc.start()
    try:
        result = get(httpserver.url_for("/feed.xml"), limits=FetchLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result.error == "fetch: decompressed body larger than 10485760 bytes"
    assert result.content is None
    assert peak < 16 * MiB  # the 10 MiB cap plus working space, not 50 MB


def test_gzip_bomb_under_a_small_cap(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(bytes(5 * MiB))
    httpserver.expect_request("/feed.xml").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}
    )
    limits = FetchLimits(connect_timeout=0.5, read_timeout=0.5, max_decompressed_bytes=4096)

    result = get(httpserver.url_for("/feed.xml"), limits=limits)

    assert result.error == "fetch: decompressed body larger than 4096 bytes"


def test_corrupt_gzip_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        b"definitely not gzip", headers={"Content-Encoding": "gzip"}
    )

    result = get(httpserver.url_for("/feed.xml"))

    assert result.error is not None and result.error.startswith("fetch: corrupt gzip body")


# -- where we may connect --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://10.0.0.1/feed.xml", "fetch: host 10.0.0.1 is a private address"),
        ("http://192.168.1.1/feed.xml", "fetch: host 192.168.1.1 is a private address"),
        ("http://169.254.169.254/latest/", "fetch: host 169.254.169.254 is a link-local address"),
        ("http://[::1]/feed.xml", "fetch: host ::1 is a loopback address"),
        ("http://127.0.0.1/feed.xml", "fetch: host 127.0.0.1 is a loopback address"),
        ("http://0.0.0.0/feed.xml", "fetch: host 0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/feed.xml", "fetch: host 224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/feed.xml", "fetch: host 240.0.0.1 is a reserved address"),
        ("http://100.100.100.200/", "fetch: host 100.100.100.200 is a non-public address"),
        ("http://[fd00::1]/feed.xml", "fetch: host fd00::1 is a private address"),
        ("http://[::ffff:10.0.0.1]/", "fetch: host ::ffff:10.0.0.1 is a private address"),
        ("https://10.0.0.1:8443/feed.xml", "fetch: host 10.0.0.1 is a private address"),
    ],
)
def test_non_public_addresses_are_refused_before_connecting(url: str, error: str) -> None:
    with unreachable() as client:
        result = fetch(url, limits=FAST, user_agent=UA, client=client)

    assert result.error == error
    assert result.status is None and result.content is None


def test_a_name_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        assert host == "feeds.internal.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with unreachable() as client:
        result = fetch(
            "https://feeds.internal.example/rss", limits=FAST, user_agent=UA, client=client
        )

    assert (
        result.error == "fetch: host feeds.internal.example resolves to 10.1.2.3, a private address"
    )


def test_requests_go_to_the_checked_address_with_the_real_host_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DNS rebinding: a second lookup could answer 127.0.0.1; we never do one.
    answers = iter(["93.184.216.34", "127.0.0.1"])

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(RSS))

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        result = fetch("https://blog.example.cn/feed", limits=FAST, user_agent=UA, client=client)

    assert result.ok and result.final_url == "https://blog.example.cn/feed"
    (request,) = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["Host"] == "blog.example.cn"
    assert request.extensions["sni_hostname"] == "blog.example.cn"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "/etc/passwd", "gopher://x/"]
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with unreachable() as client:
        result = fetch(url, limits=FAST, user_agent=UA, allow_hosts=LOCAL, client=client)

    assert result.error == f"fetch: only http and https URLs are fetched, not {url!r}"


def test_allow_hosts_admits_an_ip_literal(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(RSS)
    url = f"http://127.0.0.1:{httpserver.port}/feed.xml"

    allowed = get(url, allow_hosts=frozenset({"127.0.0.1"}))
    refused = get(url, allow_hosts=frozenset())

    assert allowed.ok and allowed.content == RSS
    assert refused.error == "fetch: host 127.0.0.1 is a loopback address"
    assert len(httpserver.log) == 1


# -- what else a fetch can meet ------------------------------------------------------------------


def test_a_redirect_without_a_location_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data("", status=302)
    result = get(httpserver.url_for("/feed.xml"))
    assert result.status == 302 and result.content is None
    assert result.error == "fetch: HTTP 302 without a Location header"


def test_slow_redirects_are_cut_by_the_total_timeout(httpserver: HTTPServer) -> None:
    def slow_redirect(request: Request) -> Response:
        time.sleep(0.3)
        return Response("", status=302, headers={"Location": "/next.xml"})

    httpserver.expect_request("/feed.xml").respond_with_handler(slow_redirect)
    limits = FetchLimits(connect_timeout=2, read_timeout=2, total_timeout=0.2)
    result = get(httpserver.url_for("/feed.xml"), limits=limits)
    assert result.error == "fetch: took longer than 0.2s"
    assert len(httpserver.log) == 1  # the next hop was never asked for


@pytest.fixture
def garbage_server() -> Iterator[int]:
    """Answers every connection with bytes that are not HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(5)

    def answer() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"\xe4\xb9\xb1\xe7\xa0\x81 not http at all\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    server.close()
    thread.join(timeout=5)


def test_a_server_that_does_not_speak_http(garbage_server: int) -> None:
    result = get(f"http://127.0.0.1:{garbage_server}/feed.xml")
    assert result.status is None and result.content is None
    assert result.error is not None
    assert result.error.startswith("fetch: RemoteProtocolError: ")


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (httpx.ConnectTimeout("timed out"), "fetch: connect timeout after 0.5s"),
        (httpx.PoolTimeout("no connection"), "fetch: PoolTimeout (no connection)"),
    ],
)
def test_timeouts_before_any_answer(raised: Exception, error: str) -> None:
    # A connect timeout needs an address that drops packets: nothing on loopback does that.
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1"
        raise raised

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        result = get("http://127.0.0.1:9/feed.xml", client=client)
    assert result.error == error and result.status is None


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://[::1/feed", "fetch: invalid URL 'http://[::1/feed': Invalid port: ':1'"),
        ("http:///feed.xml", "fetch: URL has no host: 'http:///feed.xml'"),
    ],
)
def test_urls_that_name_no_host(url: str, error: str) -> None:
    with unreachable() as client:
        result = fetch(url, limits=FAST, user_agent=UA, client=client)
    assert result.error == error


def test_a_host_dns_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolved by a fake: a real lookup would send a DNS query off this machine.
    def resolve(host: str, *args: object, **kwargs: object) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with unreachable() as client:
        result = fetch("https://没有这个.example/feed", limits=FAST, user_agent=UA, client=client)
    assert result.error == (
        "fetch: cannot resolve host 没有这个.example: [Errno -2] Name or service not known"
    )


def test_a_host_with_no_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [])
    with unreachable() as client:
        result = fetch("https://空的.example/feed", limits=FAST, user_agent=UA, client=client)
    assert result.error == "fetch: host 空的.example has no address"
