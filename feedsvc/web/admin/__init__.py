"""The admin web UI at /admin: sign-in (auth.py) and the dashboard (dashboard.py).

What keeps it safe is in session.py, applied to every request under /admin:

- The session is Flask's signed cookie (``site.secret_key``), scoped to /admin, HttpOnly,
  SameSite=Lax, Secure when ``site.base_url`` is https. It names the account and the hash
  of its password hash, and ends ``admin.session_hours`` after sign-in (by the app's clock),
  when the account is removed, or when its password changes.
- With no usable secret key (empty, or shorter than config.ADMIN_MIN_SECRET_CHARS), nobody
  is signed in: a guessable key would let anyone forge a session.
- Every request that may change something carries the session's CSRF token in the form
  field ``csrf_token``; without it the answer is 400 and nothing runs.
- Signed out, every page but the login page answers 302 to ``/admin/login?next=<path>``.
- Every answer is ``Cache-Control: no-store`` and ``Vary: Cookie``: no proxy or browser
  cache keeps a page meant for one signed-in person.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, Response, request

from feedsvc.config import Settings

bp = Blueprint("admin", __name__, url_prefix="/admin")
PREFIX = "/admin"


def under_admin(path: str) -> bool:
    """Whether ``path`` is the admin's (/admin or below; not /administer)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def init_app(app: Flask, settings: Settings) -> None:
    from feedsvc.web.admin import (  # noqa: F401 - registers the views
        auth,
        categories,
        dashboard,
        jobs,
        posts,
        preview,
        session,
        sources,
        tokens,
    )

    app.config.update(
        SESSION_COOKIE_NAME="feedsvc_admin",
        SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.site.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.admin.session_hours),
    )
    app.register_blueprint(bp)

    @app.after_request
    def _never_cached(response: Response) -> Response:
        if under_admin(request.path):
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Cookie")
        return response
