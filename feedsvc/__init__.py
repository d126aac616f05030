"""feedsvc: a self-hosted RSS/Atom feed service.

``create_app()`` reads the settings once, opens the database (after fork: gunicorn workers
each call it), and registers the blueprints and the CLI.
"""

from __future__ import annotations

import logging
from importlib import metadata as _metadata
from typing import Any

# One place: the version in pyproject.toml, read from the installed package's metadata.
try:
    __version__ = _metadata.version("feedsvc")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"


def create_app(
    overrides: dict[str, Any] | None = None,
    *,
    settings: Any = None,
    clock: Any = None,
) -> Any:
    from flask import Flask

    from feedsvc.clock import SystemClock
    from feedsvc.config import load_settings
    from feedsvc.context import Context
    from feedsvc.db import Database
    from feedsvc.feeds.cache import FeedCache
    from feedsvc.web import admin, api, errors, feeds, pages, retry, routing, static, websub, writes
    from feedsvc.web import metrics as web_metrics

    settings = settings or load_settings(overrides)
    _configure_logging()
    # Static files are served by web/static.py (content-hashed URLs, their own caching).
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.http.max_request_bytes
    # One limit for a whole request: Werkzeug's own 500 kB per form field would refuse a long
    # post written in the admin's editor that the API takes.
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.http.max_request_bytes
    app.config["SECRET_KEY"] = settings.site.secret_key or None
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    context = Context(
        settings,
        Database(settings.database.url, echo=settings.database.echo),
        clock or SystemClock(),
    )
    app.extensions["feedsvc"] = context
    app.extensions["feedsvc.feed_cache"] = FeedCache(
        settings.feeds.cache_entries, settings.feeds.cache_max_bytes
    )
    web_metrics.init_app(app, settings.metrics.enabled)  # first: its clock starts first
    routing.init_app(app)
    errors.init_app(app)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(pages.bp)
    static.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(websub.bp)
    admin.init_app(app, settings)
    retry.init_app(app)  # after the views it wraps; /healthz below reports, never retries

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        # Alive means able to serve feeds and take writes: both are probed (feedsvc/health.py).
        from feedsvc import health

        state, error = health.check(context.db)
        if error is not None:
            logging.getLogger("feedsvc.web").error("healthz: %s: %s", state.as_json(), error)
        return state.as_json(), 200 if state.healthy else 503

    writes.init_app(app, settings)  # outermost
    return app


def _configure_logging() -> None:
    """The one log format (feedsvc/logs.py), unless this process already has handlers.

    Under gunicorn, its ``logconfig_dict`` installed it already; under pytest, the capture
    handlers must stay.
    """
    from feedsvc import logs

    if not logging.getLogger().handlers:
        logs.configure()
    for name, level in logs.QUIET.items():
        logging.getLogger(name).setLevel(level)
