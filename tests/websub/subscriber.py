"""A WebSub subscriber on 127.0.0.1 for tests: answers verifications, records deliveries.

``echo``: how it answers a verification GET: "challenge" (correct), "wrong" (another
string), or an HTTP status to answer with. ``post_status``: how it answers a delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Subscriber:
    port: int = 0
    echo: str | int = "challenge"
    post_status: int = 200
    post_delay: float = 0.0  # seconds before answering a delivery (a slow subscriber)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def callback(self, name: str = "cb") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def of(self, method: str, mode: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.received
                if r.method == method and (mode is None or r.params.get("hub.mode") == mode)
            ]

    @property
    def deliveries(self) -> list[Received]:
        return self.of("POST")

    def clear(self) -> None:
        with self.lock:
            self.received.clear()


def _handler(subscriber: Subscriber) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def _record(self, body: bytes) -> Received:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            received = Received(
                self.command,
                parts.path,
                params,
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            with subscriber.lock:
                subscriber.received.append(received)
            return received

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            received = self._record(b"")
            if received.params.get("hub.mode") == "denied":
                self._answer(200)
            elif isinstance(subscriber.echo, int):
                self._answer(subscriber.echo, b"no")
            elif subscriber.echo == "wrong":
                self._answer(200, b"not-the-challenge")
            else:
                self._answer(200, received.params.get("hub.challenge", "").encode())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self._record(self.rfile.read(length))
            time.sleep(subscriber.post_delay)
            self._answer(subscriber.post_status)

    return Handler


@contextmanager
def running_subscriber(**options: Any) -> Iterator[Subscriber]:
    subscriber = Subscriber(**options)
    server = ThreadingHTTPServer(("127.0.0.1", subscriber.port), _handler(subscriber))
    server.daemon_threads = True
    subscriber.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield subscriber
    finally:
        server.shutdown()
        server.server_close()
