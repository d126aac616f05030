"""Who is signed in, the CSRF token, and where ``?next=`` may lead (see __init__.py)."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlencode, urlsplit

from flask import abort, g, jsonify, redirect, render_template, request, session
from werkzeug.wrappers import Response

from feedsvc.config import ADMIN_MIN_SECRET_CHARS
from feedsvc.context import Context
from feedsvc.models import AdminUser
from feedsvc.services import users as user_service
from feedsvc.web import ctx
from feedsvc.web.admin import PREFIX, bp, forms
from feedsvc.web.admin.layout import admin_layout

LOGIN = PREFIX + "/login"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The endpoints a signed-out visitor may reach.
_OPEN = frozenset({"admin.login", "admin.logout"})


def key_problem(context: Context) -> str | None:
    """Why the admin cannot sign anyone in with this configuration, or None."""
    key = context.settings.site.secret_key
    if len(key) < ADMIN_MIN_SECRET_CHARS:
        return (
            "管理后台未启用：site.secret_key 为空或太短（至少 "
            f"{ADMIN_MIN_SECRET_CHARS} 个字符）。运行 feedsvc init 会在配置文件旁生成 "
            "secret_key 文件；也可以在 feedsvc.toml 的 [site] 中设置一个随机密钥，"
            "例如 python -c 'import secrets; print(secrets.token_urlsafe(32))' 的输出。"
            "然后重启服务。"
        )
    return None


def client_address() -> str:
    """The address the lockout counts failures of.

    Behind a front on this host (nginx, deploy/nginx.conf; ``feedsvc serve``'s default
    ``--forwarded-allow-ips`` is loopback) every peer is 127.0.0.1 or a Unix socket: the last
    ``X-Forwarded-For`` hop that is not loopback is the reader, as the access log reads it
    (logs.py). A front on another host is seen as one address: all clients share its counts.
    """
    peer = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if not forwarded or not _loopback(peer):
        return peer
    for hop in reversed([hop.strip() for hop in forwarded.split(",")]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # not an address: a front would not write it, so not trusted
        if not address.is_loopback:
            return str(address)
    return peer


def _loopback(peer: str) -> bool:
    if not peer:  # a Unix socket
        return True
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def start(user: AdminUser, context: Context) -> None:
    """A new session for ``user``: nothing of the signed-out one is kept (session fixation)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["pw"] = user_service.password_stamp(user)
    session["since"] = context.clock.now().timestamp()
    session["csrf"] = secrets.token_urlsafe(32)


def end() -> None:
    session.clear()


def current_user(context: Context) -> AdminUser | None:
    """The signed-in account, or None (and the session emptied when it has ended)."""
    if key_problem(context) is not None:
        return None
    uid, stamp, since = session.get("uid"), session.get("pw"), session.get("since")
    if uid is None:
        return None
    # A cookie we signed holds what start() put there; anything else is not ours to trust.
    if (
        not isinstance(uid, int)
        or not isinstance(stamp, str)
        or not isinstance(since, int | float)
        or isinstance(since, bool)
    ):
        end()
        return None
    age = context.clock.now().timestamp() - since
    if not -60 <= age <= context.settings.admin.session_hours * 3600:
        end()
        return None
    user = user_service.get_user(context, uid)
    if user is None or not hmac.compare_digest(stamp, user_service.password_stamp(user)):
        end()
        return None
    return user


def local_next(value: str | None) -> str:
    """``value`` when it is a path under /admin on this site; /admin otherwise (no open
    redirect: not //host, not https://host, not /admin/../elsewhere)."""
    if not value or len(value) > 2000 or not value.isprintable() or "\\" in value:
        return PREFIX
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return PREFIX
    if parts.path != PREFIX and not parts.path.startswith(PREFIX + "/"):
        return PREFIX
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return PREFIX
    return value


def login_url(next_path: str) -> str:
    next_path = local_next(next_path)
    if next_path == PREFIX + "/":
        next_path = PREFIX
    return LOGIN + "?" + urlencode({"next": next_path}, safe="/")


@bp.before_request
def _check_csrf() -> tuple[str, int] | None:
    """Every request that may change something carries the session's token (400 otherwise,
    and nothing runs)."""
    if request.method in READ_METHODS or key_problem(ctx()) is not None:
        return None  # without a usable key the login view refuses everything itself
    given = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if (
        not isinstance(expected, str)
        or not given.isascii()
        or not hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    ):
        kept = _kept_form()
        if kept is None:
            abort(400, "表单已过期或缺少安全令牌（CSRF），请刷新页面后重试。")
        return kept, 400
    return None


# The typed fields a kept form shows (the others, and empty ones, go back hidden).
KEPT_LABELS = {
    "title": "标题",
    "category": "分类",
    "tags": "标签",
    "content": "正文",
    "summary": "摘要",
    "author": "作者",
    "published_at": "发布时间",
    "slug": "网址名",
    "name": "名称",
    "description": "简介",
    "language": "语言",
    "feed_length": "订阅中的文章数",
    "position": "位置",
    "url": "订阅地址",
    "interval_minutes": "抓取间隔（分钟）",
}


def _kept_form() -> str | None:
    """A form refused for its token, given back: the session ended while it was being written
    (signed out in another tab, expired), or the page is older than the session. Its fields
    come back (escaped, in read-only boxes) with 重新提交, which fetches the new session's
    token (GET /admin/csrf-token) after signing in again in another tab. Only for a form sent
    from this site's own pages (Origin, else Referer): another site's POST gets the bare 400,
    never its text shown on ours. Never the login form (its password)."""
    if request.endpoint in _OPEN:
        return None
    sender = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if urlsplit(sender).netloc != request.host:
        return None
    fields = [
        (name, forms.shown(value), KEPT_LABELS.get(name) if value.strip() else None)
        for name, value in request.form.items(multi=True)
        if name not in ("csrf_token", "password") and not forms.has_control(name)
    ]
    if not any(label for _, _, label in fields):
        return None
    return render_template(
        "admin/expired.html",
        fields=fields,
        action=request.path,
        multipart=request.mimetype == "multipart/form-data",
        csrf_token="",
        **admin_layout(ctx().settings),
    )


@bp.get("/csrf-token")
def fresh_csrf_token() -> Response:
    """The signed-in session's CSRF token, for a kept form's 重新提交 (expired.html). Signed
    out: the usual 302 to the login page. Readable by this site's pages only (no CORS)."""
    return jsonify({"csrf_token": csrf_token()})


@bp.before_request
def _require_sign_in() -> Response | None:
    if request.endpoint in _OPEN:
        return None
    user = current_user(ctx())
    if user is None:
        wanted = request.full_path.removesuffix("?")
        return redirect(login_url(wanted))
    g.admin_user = user
    return None
