"""/admin/tokens: API tokens. Created through services/tokens.py, as `feedsvc token create`:
the token is on the answer to the POST that made it and nowhere else (only its SHA-256 is
stored; the page is no-store like every admin page). Revoking asks first (a page with one
button), then counts at once: the API reads the token row on every request.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request
from werkzeug.wrappers import Response

from feedsvc.errors import Invalid, NotFound
from feedsvc.models import ApiToken
from feedsvc.schemas import parse_id
from feedsvc.services import tokens as token_service
from feedsvc.web import ctx
from feedsvc.web.admin import PREFIX, bp, forms, session
from feedsvc.web.admin.layout import admin_layout, local_time

LIST = PREFIX + "/tokens"


def _page(template: str, **extra: object) -> str:
    context = ctx()
    return render_template(
        template,
        local_time=local_time,
        tz=context.settings.site.tz,
        timezone=context.settings.site.timezone,
        csrf_token=session.csrf_token(),
        **{"name": "", "errors": {}, "message": "", **extra},
        **admin_layout(context.settings),
    )


def _token(text: str) -> ApiToken:
    token_id = parse_id(text)
    for row in token_service.list_tokens(ctx()):
        if row.id == token_id:
            return row
    raise NotFound(f"没有编号为 {text} 的令牌")


@bp.get("/tokens")
def tokens() -> str:
    return _page("admin/tokens.html", tokens=token_service.list_tokens(ctx()))


@bp.post("/tokens")
def create_token() -> tuple[str, int]:
    name = request.form.get("name", "")
    errors = {"name": forms.CONTROL} if forms.has_control(name) else {}
    if not errors:
        try:
            row, token = token_service.create_token(ctx(), name)
        except Invalid as exc:
            errors = forms.chinese_fields(exc.fields)
        else:
            # 200, not a redirect: the token exists only in this answer.
            return _page("admin/token_created.html", token_row=row, token=token), 200
    page = _page(
        "admin/tokens.html",
        tokens=token_service.list_tokens(ctx()),
        name=forms.shown(name),
        errors=errors,
        message="请修改标出的字段。",
    )
    return page, 422


@bp.get("/tokens/<token_id>/revoke")
def confirm_revoke(token_id: str) -> str:
    return _page("admin/token_revoke.html", token_row=_token(token_id))


@bp.post("/tokens/<token_id>/revoke")
def revoke_token(token_id: str) -> Response:
    row = _token(token_id)
    # By id, never by name: revoking one token must not revoke its namesakes.
    token_service.revoke_token(ctx(), str(row.id))
    flash(f"已吊销令牌“{row.name}”（编号 {row.id}），使用它的 API 请求将得到 401。")
    return redirect(LIST, 303)
