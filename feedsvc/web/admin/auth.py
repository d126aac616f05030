"""/admin/login and /admin/logout (the rules: services/users.py; the session: session.py)."""

from __future__ import annotations

from flask import redirect, render_template, request
from werkzeug.wrappers import Response

from feedsvc.services import users as user_service
from feedsvc.web import ctx
from feedsvc.web.admin import bp, session
from feedsvc.web.admin.layout import admin_layout


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    context = ctx()
    problem = session.key_problem(context)
    next_path = session.local_next(request.values.get("next"))
    if problem is not None:
        # A sign-in attempt is refused (403: no client can change it; not a 5xx, which would
        # read as the server failing); the page says what the operator must do.
        status = 200 if request.method in ("GET", "HEAD") else 403
        return _page(problem, next_path, form=False), status
    if request.method in ("GET", "HEAD"):
        if session.current_user(context) is not None:
            return redirect(next_path)
        return _page("", next_path), 200
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    result = user_service.sign_in(context, name, password, session.client_address())
    if result.user is None:
        # The name goes back into the form only when it could be a name at all.
        shown = name if len(name) <= user_service.NAME_MAX and name.isprintable() else ""
        return _page(result.message, next_path, name=shown), 429 if result.locked else 200
    session.start(result.user, context)
    return redirect(next_path)


@bp.post("/logout")
def logout() -> Response:
    session.end()
    return redirect(session.LOGIN)


def _page(message: str, next_path: str, *, name: str = "", form: bool = True) -> str:
    return render_template(
        "admin/login.html",
        message=message,
        next_path=next_path,
        name=name,
        form=form,
        csrf_token=session.csrf_token() if form else "",
        **admin_layout(ctx().settings),
    )
