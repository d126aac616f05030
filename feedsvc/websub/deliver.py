"""The hub's HTTP exchanges with subscribers and with an external hub (no database here).

Every callback URL goes through the sources' address guard (feedsvc/sources/guard.py): only
public addresses, unless the host is allowed by ``websub.allow_hosts`` or
``sources.allow_hosts``; the request goes to the address that was checked; redirects are not
followed. Each exchange has the ``websub.timeout`` for connecting and for each read, and
nothing but the challenge echo is read from a response (at most a few KiB).

Nothing here raises for a failed exchange: an ``Exchange`` says what happened, in a message
naming this layer ("websub: ...").
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

import httpx

from feedsvc import __version__
from feedsvc.context import Context
from feedsvc.sources.body import BodyRefused, read_body
from feedsvc.sources.fetch import tls_context
from feedsvc.sources.guard import AddressRefused, checked_url, public_addresses, send_pinned

# A challenge echo longer than this is wrong anyway (ours are 43 characters).
MAX_ECHO_BYTES = 4096
# Origins whose client (so kept-alive connections) a run keeps; others get one-shot clients.
MAX_KEPT_CLIENTS = 64


@dataclass(frozen=True)
class Exchange:
    status: int | None  # None: no response (refused, timed out, not allowed)
    error: str | None  # None: a 2xx (and, for a verification, the challenge echoed)
    # The callback said no for good (WebSub §5.3 404, or §7 410 Gone): do not retry.
    final: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def signature(secret: str, body: bytes) -> str:
    """WebSub §8: X-Hub-Signature, the HMAC of the exact body sent, keyed by hub.secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def hub_links(hub: str, topic: str) -> str:
    """WebSub §7: the hub and the topic as HTTP Link headers of a content distribution."""
    return f'<{hub}>; rel="hub", <{topic}>; rel="self"'


def _drain_small(response: httpx.Response) -> None:
    """Read an answer we do not need when it is empty or short (a 202, a 204), so that its
    connection goes back to the pool: a response closed unread closes its connection, and
    every delivery to a host with many callbacks paid a new connection (and handshake).
    Bounded: a body of unknown or larger length is left unread, as before."""
    length = response.headers.get("Content-Length")
    if response.status_code != 204 and (
        length is None or not length.isdigit() or int(length) > MAX_ECHO_BYTES
    ):
        return
    with contextlib.suppress(httpx.HTTPError):  # the status was read: what it says stands
        response.read()


class Messenger:
    """The HTTP clients of one job run (feedsvc/websub/pump.py sends through them).

    One client per callback origin: requests go to checked addresses, so a client shared
    between two HTTPS hosts on one address could reuse the other's connection (fetch.py).
    At most MAX_KEPT_CLIENTS origins keep theirs (and its kept-alive connections) for the
    run; others get a client for one request. Closed when the run ends.
    """

    def __init__(self, ctx: Context) -> None:
        settings = ctx.settings.websub
        self.user_agent = f"feedsvc/{__version__} WebSub hub (+{ctx.settings.site.base_url})"
        self.allow_hosts = frozenset(settings.allow_hosts) | frozenset(
            ctx.settings.sources.allow_hosts
        )
        self.timeout = httpx.Timeout(settings.timeout)
        self.concurrency = settings.concurrency
        self._clients: dict[tuple[str, str, int | None], httpx.Client] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Messenger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._close_clients()

    def _close_clients(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client(self, url: httpx.URL) -> tuple[httpx.Client, bool]:
        """The origin's client, and whether it is kept for the run: past MAX_KEPT_CLIENTS
        origins a client serves one request (a batch to distinct origins would otherwise
        hold a kept-alive socket per origin: 512 at concurrency 64, bench/websub.py)."""
        key = (url.scheme, url.host, url.port)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client, True
            limits = httpx.Limits(max_connections=self.concurrency)
            client = httpx.Client(
                trust_env=False, follow_redirects=False, verify=tls_context(), limits=limits
            )
            if len(self._clients) >= MAX_KEPT_CLIENTS:
                return client, False
            self._clients[key] = client
            return client, True

    # --- the exchanges ---------------------------------------------------------------------

    def verify(self, callback: str, params: dict[str, str], challenge: str) -> Exchange:
        """WebSub §5.3: a GET to the callback; verified only by a 2xx echoing the challenge."""
        exchange, echo = self._get(callback, params, read=True)
        if not exchange.ok:
            return exchange
        if echo != challenge.encode("ascii"):
            return Exchange(exchange.status, "websub: the callback did not echo hub.challenge")
        return exchange

    def tell(self, callback: str, params: dict[str, str]) -> Exchange:
        """A GET whose answer does not matter beyond its status (§5.2: a denial)."""
        return self._get(callback, params, read=False)[0]

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        guarded: bool = True,
    ) -> Exchange:
        """POST ``body``: a content distribution (§7) or a publish ping to a hub."""
        return self._send("POST", url, {}, headers, body, guarded=guarded, read=False)[0]

    def _get(self, url: str, params: dict[str, str], *, read: bool) -> tuple[Exchange, bytes]:
        return self._send("GET", url, params, {}, None, guarded=True, read=read)

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        body: bytes | None,
        *,
        guarded: bool,
        read: bool,
    ) -> tuple[Exchange, bytes]:
        one_shot: list[httpx.Client] = []  # a client not kept: closed after its response
        try:
            return self._exchange(
                one_shot, method, url, params, headers, body, guarded=guarded, read=read
            )
        finally:
            for client in one_shot:
                client.close()

    def _exchange(
        self,
        one_shot: list[httpx.Client],
        method: str,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        body: bytes | None,
        *,
        guarded: bool,
        read: bool,
    ) -> tuple[Exchange, bytes]:
        started = time.monotonic()
        all_headers = {"User-Agent": self.user_agent, **headers}
        try:
            target = checked_url(url)
            if params:
                target = target.copy_merge_params(params)
            # Unguarded: the external hub the site's owner configured, trusted like the database.
            addresses = public_addresses(target, self.allow_hosts) if guarded else [target.host]
            client, kept = self._client(target)
            if not kept:
                one_shot.append(client)
            response = send_pinned(
                client,
                target,
                addresses,
                all_headers,
                self.timeout,
                method=method,
                content=body,
            )
        except AddressRefused as exc:
            return Exchange(None, "websub: " + str(exc).removeprefix("fetch: "), final=True), b""
        except httpx.TimeoutException:
            return Exchange(None, f"websub: no answer within {self.timeout.read:g}s"), b""
        except httpx.HTTPError as exc:
            return Exchange(None, f"websub: {type(exc).__name__}: {exc or 'failed'}"), b""
        try:
            status = response.status_code
            if not 200 <= status < 300:
                final = status in (404, 410)
                return Exchange(status, f"websub: the callback answered HTTP {status}", final), b""
            if not read:
                _drain_small(response)
                return Exchange(status, None), b""
            deadline = started + 3 * (self.timeout.read or 10)
            echo = read_body(
                response,
                max_bytes=MAX_ECHO_BYTES,
                max_decompressed_bytes=MAX_ECHO_BYTES,
                deadline=deadline,
                total_timeout=3 * (self.timeout.read or 10),
            )
            return Exchange(status, None), echo
        except (BodyRefused, httpx.HTTPError) as exc:
            return Exchange(None, "websub: " + str(exc).removeprefix("fetch: ")), b""
        finally:
            response.close()
