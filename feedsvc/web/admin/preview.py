"""POST /admin/posts/preview: the editor's values as the public post page, before saving.

The page is pages.post_html, the function that builds /posts/<slug> for readers, given a
post that is not stored: the same template, Markdown, sanitizing and page breaks
(services/posts.prepare_post, as a save would run them), so what the preview shows is what
publishing shows. admin/preview.html extends the public post.html with only a banner on
top (预览, 未保存, and a button per page: the pager's links lead to the public URLs, which
exist once the post is published). Nothing is written; a form that does not validate comes
back as the editor with its messages (422).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import request
from werkzeug.exceptions import NotFound as HttpNotFound

from feedsvc.content import slug_from_title
from feedsvc.errors import FeedsvcError
from feedsvc.models import Post
from feedsvc.repo import categories as category_repo
from feedsvc.repo.related import RelatedView
from feedsvc.schemas import parse_id, parse_whole_number
from feedsvc.services.posts import prepare_post
from feedsvc.web import ctx
from feedsvc.web.admin import bp, session
from feedsvc.web.admin.post_form import FIELDS, PostForm
from feedsvc.web.admin.posts import load_post, refused, related_of
from feedsvc.web.pages import post_html


@dataclass(frozen=True)
class PreviewCategory:
    slug: str
    name: str


@dataclass(frozen=True)
class PreviewTag:
    name: str


@dataclass(frozen=True)
class PostPreview:
    """What post.html reads of a post."""

    title: str
    slug: str
    author: str
    pages: list[str]
    published_at: datetime
    category: PreviewCategory
    tags: list[PreviewTag]


@bp.post("/posts/preview")
def preview_post() -> str | tuple[str, int]:
    context = ctx()
    raw_id = request.form.get("post_id", "")
    post: Post | None = None
    if raw_id:
        if parse_id(raw_id) is None:
            raise HttpNotFound("没有这篇文章。")
        post = load_post(raw_id)
    form = PostForm.read(request.form)
    data = form.create()
    if data is None:
        return refused(post, form)
    try:
        prepared = prepare_post(data)
    except FeedsvcError as exc:
        return refused(post, form, exc)
    with context.db.read() as db:
        category = category_repo.get_category(db, data.category)
    if category is None:
        form.add({"category": f"unknown category {data.category!r}"})
        return refused(post, form)
    number = parse_whole_number(request.form.get("preview_page", "1")) or 1
    number = min(max(number, 1), len(prepared.pages))
    tz = context.settings.site.tz
    published = data.published_at or context.clock.now()
    preview = PostPreview(
        title=data.title,
        slug=data.slug or (post.slug if post is not None else slug_from_title(data.title)),
        author=data.author,
        pages=prepared.pages,
        published_at=published if published.tzinfo else published.replace(tzinfo=tz),
        category=PreviewCategory(category.slug, category.name),
        # As a stored post lists them: by name (code point order, as SQLite and PostgreSQL's
        # C collation sort; a database with a linguistic collation may order them otherwise).
        tags=[PreviewTag(name) for name in sorted(data.tags)],
    )
    related: list[RelatedView] = [] if post is None else related_of(post)
    return post_html(
        context.settings,
        preview,
        number,
        related,
        template="admin/preview.html",
        fields={name: form.typed[name] for name in FIELDS},
        post_id=raw_id,
        draft=data.status == "draft",
        csrf_token=session.csrf_token(),
    )
