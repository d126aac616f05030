"""Static files (/static/…): the stylesheet, and the images posts point at.

Pages name a file with its content hash in the query string (``static_url``:
``/static/site.css?v=3f2a…``). Asked for with the current hash, a file is immutable: it is
cached for a year (RFC 8246 ``immutable``), and a new version of it is a new URL. Asked for
without it (an image a post links to as ``/static/img/chart.png``) or with an old hash, it
is served the same, revalidated after an hour (ETag, Last-Modified, 304 from werkzeug's
conditional responses).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Flask, Response, request, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

bp = Blueprint("static_files", __name__)

FOLDER = Path(__file__).resolve().parent.parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATED = "public, max-age=3600"


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """The first 12 hex digits of the file's SHA-256 (keyed by mtime and size: an edited file
    during development gets a new hash)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _file(filename: str) -> Path | None:
    joined = safe_join(str(FOLDER), filename)
    if joined is None:
        return None
    path = Path(joined)
    try:
        return path if path.is_file() else None
    except OSError:  # a name longer than the file system allows (ENAMETOOLONG)
        return None


def content_hash(filename: str) -> str | None:
    path = _file(filename)
    if path is None:
        return None
    stat = path.stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


def static_url(filename: str) -> str:
    """The path of a static file with its content hash (a template helper)."""
    digest = content_hash(filename)
    if digest is None:
        raise LookupError(f"no static file {filename!r}")  # a template bug: fail loudly
    return f"/static/{filename}?v={digest}"


@bp.get("/static/<path:filename>")
def static_file(filename: str) -> Response:
    if "\x00" in filename or _file(filename) is None:
        raise NotFound(f"There is no static file {filename!r}.")
    response = send_from_directory(FOLDER, filename, conditional=True, etag=True, max_age=None)
    current = request.args.get("v") == content_hash(filename)
    response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATED
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["static_url"] = static_url
