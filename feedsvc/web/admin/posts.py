"""/admin/posts: the list (filters, title search, numbered pages), the editor, delete.

Every write goes through services/posts.py with the API's PostCreate / PostUpdate
(post_form.py reads the form into them), so a post written here is the same rows, the same
feeds and the same validators as one sent to POST /api/v1/posts. A form that does not
validate, or that the service refuses, comes back (422) with every typed value and a
message in Chinese next to each field. The preview is preview.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request
from werkzeug.exceptions import NotFound as HttpNotFound
from werkzeug.wrappers import Response

from feedsvc.errors import FeedsvcError, NotFound
from feedsvc.models import Post
from feedsvc.repo import categories as category_repo
from feedsvc.repo import posts as post_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo.posts import PostFilter
from feedsvc.repo.related import RelatedView
from feedsvc.schemas import MAX_ID, parse_id, parse_whole_number
from feedsvc.services import posts as post_service
from feedsvc.web import ctx
from feedsvc.web.admin import PREFIX, bp, forms, session
from feedsvc.web.admin.layout import admin_layout, category_choices, local_time
from feedsvc.web.admin.post_form import FORMATS, STATUSES, PostForm, stored_values

LIST = PREFIX + "/posts"
PAGE_SIZE = 20
STATES = (("", "全部状态"), ("published", "已发布"), ("scheduled", "定时"), ("draft", "草稿"))
_FILTERS = ("category", "status", "tag", "q")


@dataclass(frozen=True)
class PostRow:
    id: int
    title: str
    slug: str
    category: str
    tags: list[str]
    state: str  # 已发布 / 定时 / 草稿
    published_at: str  # site time zone
    updated_at: str


def state_of(post: Post, now: datetime) -> str:
    if post.status == "draft":
        return "草稿"
    return "定时" if post.published_at > now else "已发布"


def post_row(post: Post, now: datetime, tz: ZoneInfo) -> PostRow:
    return PostRow(
        id=post.id,
        title=post.title,
        slug=post.slug,
        category=post.category.name,
        tags=[tag.name for tag in post.tags],
        state=state_of(post, now),
        published_at=local_time(post.published_at, tz),
        updated_at=local_time(post.updated_at, tz),
    )


def _filters() -> dict[str, str]:
    """The list's filters as given (unknown names and values find nothing, as in the API)."""
    return {name: forms.shown(request.args.get(name, "")).strip() for name in _FILTERS}


def _page_number() -> int:
    raw = request.args.get("page")
    number = 1 if raw is None else parse_whole_number(raw)
    if number is None or not 1 <= number <= MAX_ID // PAGE_SIZE:
        raise HttpNotFound("没有这一页。")
    return number


def _where(session: Any, filters: dict[str, str], now: datetime) -> PostFilter | None:
    """The filter, or None when one names nothing (a category, tag or state there is not)."""
    where = PostFilter(title_contains=filters["q"] or None)
    if filters["category"]:
        category = category_repo.get_category(session, filters["category"])
        if category is None:
            return None
        where = replace(where, category_id=category.id)
    if filters["tag"]:
        tag = post_repo.get_tag(session, filters["tag"])  # its name, or its slug
        if tag is None:
            return None
        where = replace(where, tag_id=tag.id)
    status = filters["status"]
    if status == "published":  # published and due: on the site now
        where = replace(where, visible_at=now)
    elif status == "scheduled":
        where = replace(where, scheduled_after=now)
    elif status == "draft":
        where = replace(where, status="draft")
    elif status:
        return None
    return where


@bp.get("/posts")
def posts() -> str:
    context = ctx()
    now, tz = context.clock.now(), context.settings.site.tz
    filters, number = _filters(), _page_number()
    rows: list[PostRow] = []
    with context.db.read() as db:
        where = _where(db, filters, now)
        if where is not None:
            found = post_repo.list_posts(
                db, where, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE
            )
            rows = [post_row(post, now, tz) for post in found]
    query = urlencode({name: value for name, value in filters.items() if value})
    return render_template(
        "admin/posts.html",
        posts=rows[:PAGE_SIZE],
        number=number,
        more=len(rows) > PAGE_SIZE,
        query=query,
        filters=filters,
        states=STATES,
        categories=category_choices(),
        csrf_token=session.csrf_token(),
        **admin_layout(context.settings),
    )


# -- the editor -----------------------------------------------------------------------------


def load_post(text: str) -> Post:
    """The post with this id (its category and tags loaded), or 404."""
    post_id = parse_id(text)
    with ctx().db.read() as db:
        post = post_repo.get_post(db, post_id) if post_id is not None else None
        if post is None:
            raise NotFound(f"没有编号为 {text} 的文章")
        _ = post.category, post.tags
        return post


def related_of(post: Post) -> list[RelatedView]:
    context = ctx()
    with context.db.read() as db:
        return related_repo.related_views(db, [post.id], context.clock.now()).get(post.id, [])


def editor(post: Post | None, values: dict[str, str], **extra: Any) -> str:
    context = ctx()
    now, tz = context.clock.now(), context.settings.site.tz
    return render_template(
        "admin/post.html",
        post=None if post is None else post_row(post, now, tz),
        version="" if post is None else version_of(post),
        values=values,
        related=[] if post is None else related_of(post),
        categories=category_choices(),
        formats=FORMATS,
        statuses=STATUSES,
        timezone=context.settings.site.timezone,
        local_time=local_time,
        tz=tz,
        csrf_token=session.csrf_token(),
        **{"errors": {}, "message": "", **extra},
        **admin_layout(context.settings),
    )


def _new_values() -> dict[str, str]:
    categories = category_choices()
    return {
        "title": "",
        "slug": "",
        "category": categories[0][0] if categories else "",
        "tags": "",
        "format": "markdown",
        "content": "",
        "summary": "",
        "author": "",
        "status": "published",
        "published_at": "",
    }


def _saved(post: Post, now: datetime, tz: ZoneInfo) -> str:
    if post.status == "draft":
        return f"已保存草稿《{post.title}》。"
    if post.published_at > now:
        return f"《{post.title}》将于 {local_time(post.published_at, tz)} 发布。"
    return f"已发布《{post.title}》。"


def refused(post: Post | None, form: PostForm, exc: FeedsvcError | None = None) -> tuple[str, int]:
    if exc is not None:
        form.add(exc.fields)
        if not exc.fields:
            message = "文章没有保存：" + forms.in_chinese(exc.message)
            return editor(post, form.typed, errors=form.errors, message=message), exc.status
    message = "文章没有保存：请修改标出的字段。"
    return editor(post, form.typed, errors=form.errors, message=message), 422


@bp.get("/posts/new")
def new_post() -> str:
    return editor(None, _new_values())


@bp.post("/posts")
def create_post() -> Response | tuple[str, int]:
    form = PostForm.read(request.form)
    data = form.create()
    if data is None:
        return refused(None, form)
    try:
        post = post_service.create_post(ctx(), data)
    except FeedsvcError as exc:
        return refused(None, form, exc)
    context = ctx()
    flash(_saved(post, context.clock.now(), context.settings.site.tz))
    return redirect(f"{LIST}/{post.id}", 303)


@bp.get("/posts/<post_id>")
def edit_post(post_id: str) -> str:
    post = load_post(post_id)
    return editor(post, stored_values(post, ctx().settings.site.tz))


def version_of(post: Post) -> str:
    """What the editor was loaded with: an edit made since then changed updated_at."""
    return post.updated_at.isoformat()


@bp.post("/posts/<post_id>")
def update_post(post_id: str) -> Response | tuple[str, int]:
    post = load_post(post_id)
    context = ctx()
    form = PostForm.read(request.form)
    loaded = request.form.get("version")
    if loaded is not None and loaded != version_of(post):
        # Saved from a page older than the post (another tab, another editor): its untouched
        # fields show old values, and saving them would undo that edit. The page comes back
        # with what was typed and the current version: a second 保存 overwrites knowingly.
        changed = local_time(post.updated_at, context.settings.site.tz)
        message = (
            f"没有保存：这篇文章在你打开编辑页之后被修改过（{changed}）。你填写的内容保留在下面；"
            "核对后再点“保存”，会用它覆盖那次修改。"
        )
        return editor(post, form.typed, message=message), 409
    data = form.update(post, context.settings.site.tz)
    if data is None:
        return refused(post, form)
    if not data.model_fields_set:
        flash("没有改动。")
        return redirect(f"{LIST}/{post.id}", 303)
    try:
        saved = post_service.update_post(context, post.id, data)
    except FeedsvcError as exc:
        return refused(post, form, exc)
    flash(_saved(saved, context.clock.now(), context.settings.site.tz))
    return redirect(f"{LIST}/{post.id}", 303)


@bp.get("/posts/<post_id>/delete")
def confirm_delete_post(post_id: str) -> str:
    context = ctx()
    post = load_post(post_id)
    return render_template(
        "admin/post_delete.html",
        post=post_row(post, context.clock.now(), context.settings.site.tz),
        csrf_token=session.csrf_token(),
        **admin_layout(context.settings),
    )


@bp.post("/posts/<post_id>/delete")
def delete_post(post_id: str) -> Response:
    post = load_post(post_id)
    post_service.delete_post(ctx(), post.id)
    flash(f"已删除《{post.title}》。")
    return redirect(LIST, 303)
