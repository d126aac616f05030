"""Read a response body within bounds.

The body is streamed as sent and decompressed by us in bounded steps, so
neither a huge body nor a gzip bomb is ever held in memory: the wire bytes,
the decoded bytes and the time taken each have a cap.

Going over a cap raises ``BodyRefused``; its str() is the message, naming the
fetch layer ("fetch: ...").
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator

import httpx


class BodyRefused(Exception):
    """A body too large, too slow or undecodable; str() is the message."""


def read_body(
    response: httpx.Response,
    *,
    max_bytes: int,
    max_decompressed_bytes: int,
    deadline: float,
    total_timeout: float,
) -> bytes:
    """Return the decoded body of a streamed ``response``.

    ``max_bytes`` bounds the bytes on the wire, ``max_decompressed_bytes``
    those after Content-Encoding; ``deadline`` is a ``time.monotonic()``
    value, and ``total_timeout`` the budget it came from (for the message).
    """
    too_big = f"fetch: body larger than {max_bytes} bytes"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyRefused(too_big)
    decoder = _decoder(response.headers.get("content-encoding", ""), max_decompressed_bytes)
    body = bytearray()
    received = 0
    # iter_raw: the bytes as sent (chunked framing removed, Content-Encoding
    # kept), so we count wire bytes and decompress in bounded steps ourselves.
    # httpx's own decoding inflates a whole network read at once: 64 KiB of a
    # gzip bomb is ~64 MiB.
    for chunk in response.iter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise BodyRefused(too_big)
        if time.monotonic() > deadline:
            raise BodyRefused(f"fetch: took longer than {total_timeout:g}s")
        for piece in decoder(chunk):
            body += piece
    for piece in decoder(b""):
        body += piece
    return bytes(body)


_INFLATE_STEP = 64 * 1024


def _decoder(content_encoding: str, limit: int) -> Callable[[bytes], Iterator[bytes]]:
    """A function taking wire bytes (b"" at the end) and yielding decoded ones.

    It raises BodyRefused once more than ``limit`` decoded bytes came out.
    """
    coding = content_encoding.strip().lower()
    too_big = f"fetch: decompressed body larger than {limit} bytes"
    produced = 0

    def count(piece: bytes) -> bytes:
        nonlocal produced
        produced += len(piece)
        if produced > limit:
            raise BodyRefused(too_big)
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
        raise BodyRefused(f"fetch: unsupported content-encoding {content_encoding!r}")

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
            raise BodyRefused(f"fetch: corrupt {coding} body: {exc}") from exc

    return inflate
