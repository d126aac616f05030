"""/admin/categories: list (by position, with each feed's URLs), create, edit, delete.

Every write goes through services/categories.py, as the API's does, so a category made here
is the same rows and the same feeds as one made with POST /api/v1/categories. A form that
does not validate is shown again (422) with the typed values and a message per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from feedsvc.errors import FeedsvcError, NotFound
from feedsvc.repo import categories as category_repo
from feedsvc.schemas import CategoryCreate, CategoryUpdate
from feedsvc.services import categories as category_service
from feedsvc.web import ctx
from feedsvc.web.admin import PREFIX, bp, forms, session
from feedsvc.web.admin.layout import admin_layout

LIST = PREFIX + "/categories"
FEED_FORMATS = (("rss", "RSS"), ("atom", "Atom"), ("json", "JSON Feed"))
_TEXT = ("name", "description", "language")
_NUMBERS = ("feed_length", "position")
CREATE_DEFAULTS = {
    "slug": "",
    "name": "",
    "description": "",
    "language": "zh-CN",
    "feed_length": "20",
    "position": "0",
}


@dataclass(frozen=True)
class CategoryRow:
    slug: str
    name: str
    description: str
    language: str
    position: int
    feed_length: int
    posts: int

    def form(self) -> dict[str, str]:
        return {
            "name": self.name,
            "description": self.description,
            "language": self.language,
            "feed_length": str(self.feed_length),
            "position": str(self.position),
        }


def _rows() -> list[CategoryRow]:
    with ctx().db.read() as db:
        return [
            CategoryRow(
                c.slug,
                c.name,
                c.description,
                c.language,
                c.position,
                c.feed_length,
                category_repo.count_posts(db, c.id),
            )
            for c in category_repo.list_categories(db)
        ]


def _read_form(names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """(typed values to show again, values for the schema, errors the form itself finds)."""
    typed = {name: request.form.get(name, "") for name in names}
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, text in typed.items():
        if forms.has_control(text):
            errors[name] = forms.CONTROL
        elif name in _NUMBERS:
            number = forms.whole_number(text)
            if number is None:
                errors[name] = forms.NOT_A_NUMBER
            else:
                data[name] = number
        else:
            data[name] = text
    return {name: forms.shown(text) for name, text in typed.items()}, data, errors


def _page(**extra: Any) -> str:
    context = ctx()
    return render_template(
        "admin/categories.html",
        categories=_rows(),
        feed_formats=FEED_FORMATS,
        csrf_token=session.csrf_token(),
        **{"values": CREATE_DEFAULTS, "errors": {}, "message": "", **extra},
        **admin_layout(context.settings),
    )


def _edit_page(row: CategoryRow, **extra: Any) -> str:
    context = ctx()
    others = [other for other in _rows() if other.slug != row.slug]
    return render_template(
        "admin/category.html",
        category=row,
        others=others,
        feed_formats=FEED_FORMATS,
        csrf_token=session.csrf_token(),
        **{"values": row.form(), "errors": {}, "message": "", "move_to": "", **extra},
        **admin_layout(context.settings),
    )


def _row(slug: str) -> CategoryRow:
    for row in _rows():
        if row.slug == slug:
            return row
    raise NotFound(f"没有分类 {slug!r}")


@bp.get("/categories")
def categories() -> str:
    return _page()


@bp.post("/categories")
def create_category() -> Response | tuple[str, int]:
    values, data, errors = _read_form(("slug", *_TEXT, *_NUMBERS))
    parsed = forms.validated(CategoryCreate, data, errors)
    if parsed is not None:
        try:
            category_service.create_category(ctx(), parsed)
        except FeedsvcError as exc:
            errors.update(forms.chinese_fields(exc.fields))
            if not exc.fields:
                return _page(values=values, message=forms.in_chinese(exc.message)), 422
        else:
            flash(f"已创建分类“{parsed.name}”（{parsed.slug}）。")
            return redirect(LIST, 303)
    return _page(values=values, errors=errors, message="请修改标出的字段。"), 422


@bp.get("/categories/<slug>")
def category(slug: str) -> str:
    return _edit_page(_row(slug))


@bp.post("/categories/<slug>")
def edit_category(slug: str) -> Response | tuple[str, int]:
    row = _row(slug)
    values, data, errors = _read_form((*_TEXT, *_NUMBERS))
    parsed = forms.validated(CategoryUpdate, data, errors)
    if parsed is not None:
        try:
            category_service.update_category(ctx(), slug, parsed)
        except FeedsvcError as exc:
            errors.update(forms.chinese_fields(exc.fields))
            if not exc.fields:
                raise
        else:
            flash(f"已保存分类“{parsed.name}”（{slug}）。")
            return redirect(LIST, 303)
    return _edit_page(row, values=values, errors=errors, message="请修改标出的字段。"), 422


@bp.post("/categories/<slug>/move")
def move_category(slug: str) -> Response:
    """上移 / 下移: swap with the neighbour in the listed order, then number the list 0, 1, 2…

    Positions may tie (the list then goes by slug), so swapping two numbers would not always
    move anything; renumbering does. Only the categories whose number changes are written,
    each through update_category (one transaction each: an interruption leaves a valid order).
    """
    rows = _rows()
    index = next((i for i, row in enumerate(rows) if row.slug == slug), None)
    if index is None:
        raise NotFound(f"没有分类 {slug!r}")
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        raise BadRequest("direction 须为 up 或 down（请用页面上的“上移”“下移”按钮）。")
    step = -1 if direction == "up" else 1
    other = index + step
    if not 0 <= other < len(rows):
        flash(f"“{rows[index].name}”已经在{'最前' if step < 0 else '最后'}。")
        return redirect(LIST, 303)
    rows[index], rows[other] = rows[other], rows[index]
    for position, row in enumerate(rows):
        if row.position != position:
            category_service.update_category(ctx(), row.slug, CategoryUpdate(position=position))
    flash(f"已{'上移' if step < 0 else '下移'}“{rows[other].name}”。")
    return redirect(LIST, 303)


@bp.post("/categories/<slug>/delete")
def delete_category(slug: str) -> Response | tuple[str, int]:
    row = _row(slug)
    move_to = request.form.get("move_to", "")
    if forms.has_control(move_to):
        # Not a slug, and PostgreSQL refuses NUL in a query parameter: answered here.
        errors = {"move_to": forms.in_chinese("is not a category")}
        message = "分类没有删除：" + errors["move_to"]
        return _edit_page(row, errors=errors, message=message), 422
    try:
        removal = category_service.delete_category(ctx(), slug, move_to=move_to or None)
    except FeedsvcError as exc:
        if not exc.fields:
            raise
        errors = {"move_to": forms.in_chinese(exc.fields.get("move_to", exc.message))}
        message = "分类没有删除：" + errors["move_to"]
        page = _edit_page(row, errors=errors, message=message, move_to=forms.shown(move_to))
        return page, exc.status
    moved = f"，{removal.posts_moved} 篇文章已移到 {move_to}" if move_to else ""
    flash(f"已删除分类“{row.name}”（{slug}）{moved}。")
    return redirect(LIST, 303)
