"""A read that met a connection the database server had just dropped is answered again, once.

PostgreSQL connections are not pinged at checkout (feedsvc/db.py): a pooled connection whose
server hung up is noticed from its socket. One case slips through: a backend terminated a
moment before the checkout, whose goodbye has not reached the socket yet (a restart, a
failover, ``pg_terminate_backend``). The first statement then fails as a disconnect,
SQLAlchemy invalidates the pool, and a GET or HEAD, which writes nothing a reader asked for,
runs its view once more on a fresh connection: the reader never sees the restart. Writes are
not retried (the first attempt may have committed); they answer 503 as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, request
from sqlalchemy.exc import DBAPIError

_SAFE_METHODS = ("GET", "HEAD")


def init_app(app: Flask) -> None:
    """Wrap every view registered so far (call it after the blueprints are registered)."""
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _once_more_after_disconnect(view)


def _once_more_after_disconnect(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def answer(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except DBAPIError as error:
            if not error.connection_invalidated or request.method not in _SAFE_METHODS:
                raise
        return view(*args, **kwargs)

    return answer
