"""/admin/sources: upstream feeds with their fetch state; add, edit, 停用/启用, 立即抓取, delete.

Every write goes through services/sources.py, as the API's does, so a source added here is
the same row as one added with POST /api/v1/sources. A form that does not validate is shown
again (422) with the typed values and a message per field. Whether the fetch guard lets a
host through (private and loopback addresses only with ``[sources] allow_hosts``) is decided
when the source is fetched; its refusal is the source's last error, shown here.

立即抓取 makes the source due now (services.sources.fetch_now, one transaction) and asks the
scheduler process for a sources-poll run (jobs.request_run), as /admin/jobs' 立即运行 does: a
web worker never fetches. Should the request fail after the first step, the source is still
due and the poll job's own schedule fetches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request
from werkzeug.wrappers import Response

from feedsvc import jobs
from feedsvc.errors import Conflict, FeedsvcError, NotFound
from feedsvc.models import Source
from feedsvc.repo import sources as source_repo
from feedsvc.schemas import SourceCreate, SourceUpdate, parse_id
from feedsvc.services import sources as source_service
from feedsvc.sources.jobs import POLL
from feedsvc.web import ctx
from feedsvc.web.admin import PREFIX, bp, forms, session
from feedsvc.web.admin.layout import admin_layout, category_choices, local_time

LIST = PREFIX + "/sources"
MODES = (("related", "相关内容"), ("posts", "文章"))
_TEXT = ("url", "category", "mode")
_FIELDS = ("category", "mode", "interval_minutes")  # the edit form; enabled is a checkbox


@dataclass(frozen=True)
class SourceRow:
    id: int
    url: str
    title: str
    category: str  # slug
    category_name: str
    mode: str
    interval_minutes: int
    enabled: bool
    disabled_reason: str
    last_fetched_at: str  # site time zone; "" when never fetched
    last_status: int | None
    last_error: str
    consecutive_errors: int
    next_fetch_at: str
    items: int  # related mode: external items kept; posts mode: entries imported as posts

    def form(self) -> dict[str, str]:
        return {
            "category": self.category,
            "mode": self.mode,
            "interval_minutes": str(self.interval_minutes),
            "enabled": "on" if self.enabled else "",
        }


def _row(source: Source, counts: tuple[int, int]) -> SourceRow:
    tz = ctx().settings.site.tz
    return SourceRow(
        id=source.id,
        url=source.url,
        title=source.title,
        category=source.category.slug,
        category_name=source.category.name,
        mode=source.mode,
        interval_minutes=source.interval_minutes,
        enabled=source.enabled,
        disabled_reason=source.disabled_reason or "",
        last_fetched_at=local_time(source.last_fetched_at, tz),
        last_status=source.last_status,
        last_error=source.last_error or "",
        consecutive_errors=source.consecutive_errors,
        next_fetch_at=local_time(source.next_fetch_at, tz),
        items=counts[0] if source.mode == "related" else counts[1],
    )


def _rows() -> list[SourceRow]:
    with ctx().db.read() as db:
        counts = source_repo.item_counts(db)
        return [_row(s, counts.get(s.id, (0, 0))) for s in source_repo.list_sources(db)]


def _source(text: str) -> SourceRow:
    source_id = parse_id(text)  # not ASCII digits, or beyond what both backends store: None
    if source_id is not None:
        with ctx().db.read() as db:
            source = source_repo.get_source(db, source_id)
            if source is not None:
                counts = source_repo.item_counts(db, source.id)
                return _row(source, counts.get(source.id, (0, 0)))
    raise NotFound(f"没有编号为 {forms.shown(text)[:40]} 的订阅源")


def _read_form(
    names: tuple[str, ...], *, blank_interval_is_default: bool
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """(typed values to show again, values for the schema, errors the form itself finds)."""
    typed = {name: request.form.get(name, "") for name in names}
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, text in typed.items():
        if forms.has_control(text):
            errors[name] = forms.CONTROL
        elif name == "interval_minutes":
            if not text.strip():
                if not blank_interval_is_default:
                    errors[name] = forms.in_chinese("is required")
                continue  # on create: sources.default_interval_minutes
            number = forms.whole_number(text)
            least = ctx().settings.sources.min_interval_minutes
            if number is None:
                errors[name] = forms.NOT_A_NUMBER
            elif number < least:  # the schema's bound is 1; the site's is what matters here
                errors[name] = forms.in_chinese(f"must be at least {least} minutes")
            else:
                data[name] = number
        else:
            data[name] = text.strip()
    # An unticked checkbox is not sent at all: absent means off.
    data["enabled"] = "enabled" in request.form
    values = {name: forms.shown(text) for name, text in typed.items()}
    values["enabled"] = "on" if data["enabled"] else ""
    return values, data, errors


def _common() -> dict[str, Any]:
    context = ctx()
    settings = context.settings.sources
    return {
        "categories": category_choices(),
        "modes": MODES,
        "mode_label": dict(MODES),
        "default_interval": settings.default_interval_minutes,
        "min_interval": settings.min_interval_minutes,
        "timezone": context.settings.site.timezone,
        "csrf_token": session.csrf_token(),
        **admin_layout(context.settings),
    }


def _page(**extra: Any) -> str:
    defaults = {
        "url": "",
        "category": "",
        "mode": "related",
        "interval_minutes": "",
        "enabled": "on",
    }
    return render_template(
        "admin/sources.html",
        sources=_rows(),
        **{"values": defaults, "errors": {}, "message": "", **extra},
        **_common(),
    )


def _edit_page(row: SourceRow, **extra: Any) -> str:
    return render_template(
        "admin/source.html",
        source=row,
        **{"values": row.form(), "errors": {}, "message": "", **extra},
        **_common(),
    )


def _name(row: SourceRow) -> str:
    return f"“{row.title}”（{row.url}）" if row.title else row.url


@bp.get("/sources")
def sources() -> str:
    return _page()


@bp.post("/sources")
def create_source() -> Response | tuple[str, int]:
    values, data, errors = _read_form((*_TEXT, "interval_minutes"), blank_interval_is_default=True)
    parsed = forms.validated(SourceCreate, data, errors)
    if parsed is not None:
        try:
            source = source_service.create_source(ctx(), parsed)
        except FeedsvcError as exc:
            if not exc.fields:
                raise
            errors.update(forms.chinese_fields(exc.fields))
        else:
            state = "，将在调度进程下一次检查时抓取" if source.enabled else "（已停用）"
            flash(f"已添加订阅源 {source.url}（编号 {source.id}）{state}。")
            return redirect(LIST, 303)
    return _page(values=values, errors=errors, message="请修改标出的字段。"), 422


@bp.get("/sources/<source_id>")
def source(source_id: str) -> str:
    return _edit_page(_source(source_id))


@bp.post("/sources/<source_id>")
def edit_source(source_id: str) -> Response | tuple[str, int]:
    row = _source(source_id)
    values, data, errors = _read_form(_FIELDS, blank_interval_is_default=False)
    parsed = forms.validated(SourceUpdate, data, errors)
    if parsed is not None:
        try:
            source_service.update_source(ctx(), row.id, parsed)
        except FeedsvcError as exc:
            if not exc.fields:
                raise
            errors.update(forms.chinese_fields(exc.fields))
        else:
            flash(f"已保存订阅源 {_name(row)}。")
            return redirect(f"{LIST}/{row.id}", 303)
    return _edit_page(row, values=values, errors=errors, message="请修改标出的字段。"), 422


@bp.post("/sources/<source_id>/enabled")
def set_enabled(source_id: str) -> Response | tuple[str, int]:
    """停用 / 启用: the form says which (``enabled`` is "1" or "0"), so sending it twice
    leaves the source as asked rather than flipping it back."""
    row = _source(source_id)
    choice = request.form.get("enabled")
    if choice not in ("0", "1"):
        return _edit_page(row, message="请用页面上的“停用”或“启用”按钮。"), 422
    enabled = choice == "1"
    source_service.update_source(ctx(), row.id, SourceUpdate(enabled=enabled))
    flash(f"已{'启用' if enabled else '停用'}订阅源 {_name(row)}。")
    return redirect(f"{LIST}/{row.id}", 303)


@bp.post("/sources/<source_id>/refresh")
def refresh_source(source_id: str) -> Response | tuple[str, int]:
    row = _source(source_id)
    try:
        source_service.fetch_now(ctx(), row.id)
    except Conflict:
        message = "这个订阅源已停用，不会抓取：请先启用。"
        return _edit_page(row, message=message), 409
    run_id = jobs.request_run(ctx(), POLL)
    flash(
        f"已加入抓取队列：订阅源 {_name(row)} 将在调度进程下一次检查时抓取"
        f"（{POLL.name} 运行编号 {run_id}）。刷新本页可查看抓取状态。"
    )
    return redirect(f"{LIST}/{row.id}", 303)


@bp.get("/sources/<source_id>/delete")
def confirm_delete(source_id: str) -> str:
    return render_template("admin/source_delete.html", source=_source(source_id), **_common())


@bp.post("/sources/<source_id>/delete")
def delete_source(source_id: str) -> Response:
    row = _source(source_id)
    source_service.delete_source(ctx(), row.id)
    flash(f"已删除订阅源 {_name(row)}；它导入的文章仍保留。")
    return redirect(LIST, 303)
