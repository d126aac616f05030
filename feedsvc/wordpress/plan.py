"""Deciding what an import does: WXR items + the category map → posts to create. Pure.

Every problem of the file (an unmapped category, a title too long, two items with one guid)
is collected and reported together, before anything is written, so one fix-and-rerun cycle
suffices.

Mapping WordPress onto feedsvc:
- post_type ``post`` is imported; attachments, pages, menu items, revisions... are skipped and
  counted by type; status ``trash`` and ``auto-draft`` are skipped too, and so are posts
  without content (feedsvc keeps none).
- status: ``publish`` → published; ``future`` → published at its future date (feedsvc's
  scheduled post: absent from feeds until due); ``draft``, ``pending``, ``private`` → draft.
  A password-protected post becomes a draft: feedsvc has no passwords, and publishing it
  would show its text to everyone.
- date: ``wp:post_date_gmt`` (UTC); WordPress writes ``0000-00-00 00:00:00`` there for drafts,
  so then ``wp:post_date`` is read in the site's time zone; neither → the import time.
- category: a post has one in feedsvc; the first of its WordPress categories (by nicename)
  that the map names, else ``--default-category``, else an error listing the unmapped ones.
- tags: ``domain="post_tag"`` names; author: ``dc:creator`` → that author's display name.
- guid: the WordPress ``<guid>`` (what readers of the old feed saw) becomes the post's guid;
  the slug is ``wp:post_name`` when it is a feedsvc slug (ASCII), else derived from the title.
- content: HTML as stored by WordPress, which adds paragraphs only when displaying (wpautop):
  blank-line-separated text becomes ``<p>`` here; ``<!--nextpage-->`` splits pages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal
from urllib.parse import unquote

from pydantic import ValidationError

from feedsvc.content import (
    NEXTPAGE,
    TooDeep,
    html_to_text,
    is_url_safe_slug,
    render_pages,
)
from feedsvc.schemas import PostCreate
from feedsvc.wordpress.parse import ZERO_DATE, WxrError, WxrItem, WxrSite

IMPORTED_TYPES = ("post",)
SKIPPED_STATUSES = ("trash", "auto-draft", "inherit")
STATUSES: dict[str, Literal["draft", "published"]] = {
    "publish": "published",
    "future": "published",
    "draft": "draft",
    "pending": "draft",
    "private": "draft",
}
GUID_MAX = 300  # posts.guid


@dataclass(frozen=True)
class PlannedPost:
    guid: str
    wp_post_id: str
    data: PostCreate
    protected: bool = False


@dataclass(frozen=True)
class Plan:
    posts: tuple[PlannedPost, ...]
    skipped: dict[str, int]  # reason → count ("attachment", "page", "trash", ...)
    protected: int = 0  # password-protected posts, planned as drafts


def plan(
    site: WxrSite,
    category_map: Mapping[str, str],
    default_category: str | None,
    tz: tzinfo,
    now: datetime,
) -> Plan:
    problems: list[str] = []
    unmapped: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    planned: list[PlannedPost] = []
    guids: dict[str, int] = {}
    for item in site.items:
        if item.post_type not in IMPORTED_TYPES:
            skipped[item.post_type or "untyped item"] += 1
            continue
        if item.status in SKIPPED_STATUSES:
            skipped[item.status] += 1
            continue
        where = f"item {item.position} ({item.title[:30] or item.guid or 'untitled'})"
        if item.status not in STATUSES:
            problems.append(f"{where}: unknown status {item.status!r}")
            continue
        guid = item.guid or ""
        if not guid or len(guid) > GUID_MAX:
            problems.append(f"{where}: guid must be 1 to {GUID_MAX} characters")
            continue
        if guid in guids:
            problems.append(f"{where}: guid {guid!r} is also item {guids[guid]}'s")
            continue
        guids[guid] = item.position
        try:
            pages = render_pages(autop(item.content), "html")
        except TooDeep as exc:
            problems.append(f"{where}: content: {exc}")
            continue
        if not pages:
            skipped["empty content"] += 1  # feedsvc keeps no post without content
            continue
        categories = [t.nicename for t in item.terms if t.domain == "category"]
        category = next((category_map[c] for c in categories if c in category_map), None)
        if category is None:
            category = default_category
        if category is None:
            unmapped.update(categories or ["(no category)"])
            continue
        try:
            data = _post(item, site, category, tz, now)
        except (ValidationError, ValueError) as exc:
            problems.append(f"{where}: {_reason(exc)}")
            continue
        planned.append(PlannedPost(guid, item.post_id, data, item.password_protected))
    if unmapped:
        listed = ", ".join(
            f"{name} ({count} post{'s' if count > 1 else ''})"
            for name, count in sorted(unmapped.items())
        )
        problems.insert(
            0,
            f"WordPress categories without a feedsvc category: {listed}; "
            "map them with --category-map WP=FEEDSVC or give --default-category",
        )
    if problems:
        shown = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise WxrError(f"nothing imported: {shown}{more}")
    protected = sum(1 for p in planned if p.protected)
    return Plan(tuple(planned), dict(skipped), protected)


def _post(item: WxrItem, site: WxrSite, category: str, tz: tzinfo, now: datetime) -> PostCreate:
    slug = unquote(item.post_name)
    excerpt = html_to_text(item.excerpt).strip()
    return PostCreate(
        title=item.title or "(无标题)",
        category=category,
        content=autop(item.content),
        format="html",
        slug=slug if slug and is_url_safe_slug(slug) and len(slug) <= 200 else None,
        author=site.authors.get(item.creator) or item.creator,
        summary=excerpt or None,
        tags=list(dict.fromkeys(t.name for t in item.terms if t.domain == "post_tag" and t.name)),
        status="draft" if item.password_protected else STATUSES[item.status],
        published_at=published_at(item, tz, now),
    )


def published_at(item: WxrItem, tz: tzinfo, now: datetime) -> datetime:
    if item.post_date_gmt and item.post_date_gmt != ZERO_DATE:
        when = _wp_date(item.post_date_gmt).replace(tzinfo=UTC)
    elif item.post_date and item.post_date != ZERO_DATE:
        when = _wp_date(item.post_date).replace(tzinfo=tz)
    else:
        return now
    if not 1970 <= when.year <= 9998:
        raise ValueError("published_at: year must be between 1970 and 9998")
    return when


def _wp_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"date {value[:30]!r} is not YYYY-MM-DD HH:MM:SS") from None


_BLOCK = re.compile(
    r"^\s*<(?:p|div|h[1-6]|ul|ol|li|blockquote|pre|table|figure|hr|img|iframe|!--)[\s>/]",
    re.IGNORECASE,
)


def autop(html: str) -> str:
    """WordPress's wpautop, in its simplest form: blank-line-separated text → paragraphs,
    single line breaks → <br>. Blocks that already are HTML blocks are left alone."""
    pages = []
    for page in NEXTPAGE.split(html.replace("\r\n", "\n")):
        blocks = [block.strip() for block in re.split(r"\n\s*\n", page) if block.strip()]
        pages.append(
            "\n".join(
                block if _BLOCK.match(block) else "<p>" + block.replace("\n", "<br>\n") + "</p>"
                for block in blocks
            )
        )
    return "\n<!--nextpage-->\n".join(pages)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        return f"{field}: {error['msg']}"
    return str(exc)
