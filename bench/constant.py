"""The baseline of bench/feeds.py: a Flask app answering constant bytes.

The same bytes and headers feedsvc answers for the bench feed (identity, gzip, 304), read
once from files at start-up, so that the ratio measures only what feedsvc adds.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from flask import Flask, Response


def create_app(payload: str) -> Flask:
    body = Path(payload).read_bytes()
    compressed = gzip.compress(body, compresslevel=6, mtime=0)
    headers = {
        "ETag": '"constant"',
        "Last-Modified": "Thu, 01 Jan 2026 00:00:00 GMT",
        "Cache-Control": "public, max-age=300",
        "Vary": "Accept-Encoding",
    }
    app = Flask("constant")

    @app.get("/constant")
    def identity() -> Response:
        return Response(body, headers=headers, content_type="application/rss+xml; charset=utf-8")

    @app.get("/constant.gz")
    def gzipped() -> Response:
        response = Response(
            compressed, headers=headers, content_type="application/rss+xml; charset=utf-8"
        )
        response.headers["Content-Encoding"] = "gzip"
        return response

    @app.get("/constant.304")
    def not_modified() -> Response:
        return Response(status=304, headers=headers)

    return app
