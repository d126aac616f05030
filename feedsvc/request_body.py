"""A request whose body was not read to its end is answered with ``Connection: close``.

An answer given before the body was read (413 over ``http.max_request_bytes``, 405, a
redirect to the admin's sign-in page) leaves the body on the connection. gunicorn's gthread
worker then discards at most 64 KiB of it (gunicorn/http/parser.py ``finish_body``) and, past
that, closes the connection, after the answer already said ``Connection: keep-alive``: the
client's next request on it is lost ("Server disconnected without sending a response", or a
broken pipe). RFC 9112 §9.6: a server that closes says so with ``close`` in the answer.

Only the server can close a connection, and gunicorn drops a ``Connection`` header an
application sends (PEP 3333 forbids hop-by-hop headers to applications; gunicorn/http/wsgi.py
``Response.process_headers``). So this wraps the worker's application (feedsvc/server.py): it
counts what is read of ``wsgi.input`` and, when the answer starts with the body unread, tells
gunicorn's response to close (``Response.force_close()``, whose ``start_response`` we are
given). A body read whole (a form that fails validation with 400 or 422) keeps the
connection alive. Bodies are not drained here: one too large to take is not worth reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class CountedBody:
    """``wsgi.input``, noting how much was read and whether its end was seen."""

    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream = stream
        self._length = length  # None: chunked, read until the stream ends
        self._read = 0
        self._ended = length == 0

    @property
    def finished(self) -> bool:
        return self._ended or (self._length is not None and self._read >= self._length)

    # wsgi.input reads as a buffered file does (PEP 3333; gunicorn's Body too): fewer bytes
    # than asked for, or a last line without its newline, only at the end.
    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._stream.read() if size is None else self._stream.read(size)
        self._read += len(data)
        if size is None or size < 0 or len(data) < size:
            self._ended = True
        return data

    def readline(self, size: int | None = None) -> bytes:
        data: bytes = self._stream.readline() if size is None else self._stream.readline(size)
        self._read += len(data)
        whole = size is not None and 0 <= size == len(data)
        if not data.endswith(b"\n") and not whole:
            self._ended = True
        return data

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def declared_body(environ: WSGIEnvironment) -> int | None:
    """The body's declared length: 0 without one, None when chunked (RFC 9112 §6.3)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    declared = environ.get("CONTENT_LENGTH") or "0"
    return int(declared) if declared.isascii() and declared.isdigit() else 0


def closing_after_unread_body(app: WSGIApplication) -> WSGIApplication:
    """``app``, closing the connection after an answer given with the body unread."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = declared_body(environ)
        if length == 0:  # no body: nothing can be left on the connection
            return app(environ, start_response)
        body = CountedBody(environ["wsgi.input"], length)
        environ["wsgi.input"] = body

        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            if not body.finished:
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if force_close is not None:  # gunicorn's Response; other servers: as they do
                    force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped
