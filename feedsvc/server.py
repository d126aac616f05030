"""`feedsvc serve`: gunicorn workers, each creating its own app (engines after fork)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from feedsvc.config import Settings


class FeedsvcServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # No --preload: every worker opens its own database engine after fork.
        from feedsvc import create_app

        return create_app()


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": 4,
        "worker_class": "gthread",
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "feedsvc",
    }
    FeedsvcServer(options).run()
