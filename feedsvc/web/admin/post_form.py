"""The post editor's form: typed text → the API's PostCreate / PostUpdate, or field errors.

The editor posts strings; the schemas are strict about types (they serve a JSON API), so
this module turns the text into the values the API would be sent: tags split at commas (，
、 ,), the publish time read as a wall-clock time in the site's time zone (a
``datetime-local`` input), an empty slug or summary left out (derived, as the API derives
them). An edit sends only what differs from the stored post, so a publish time shown to
the minute never cuts the stored seconds, and a derived summary stays derived.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from feedsvc.errors import Invalid
from feedsvc.models import Post
from feedsvc.schemas import PostCreate, PostUpdate, parse_input
from feedsvc.web.admin import forms

FIELDS = (
    "title",
    "slug",
    "category",
    "tags",
    "format",
    "content",
    "summary",
    "author",
    "status",
    "published_at",
)
FORMATS = (("markdown", "Markdown"), ("html", "HTML"))
STATUSES = (("published", "发布"), ("draft", "草稿"))
_TAG_SEPARATORS = re.compile(r"[,，、;；]")
_LOCAL_TIME = "%Y-%m-%dT%H:%M"  # what a datetime-local input shows and sends
M = TypeVar("M", PostCreate, PostUpdate)
_TIME_HINT = "请按 2026-03-15 09:30 的格式填写（站点时区）"


def split_tags(text: str) -> list[str]:
    """Tags as typed, in order, each once: 储蓄, 理财方法 / 储蓄，理财方法 / 储蓄、理财方法."""
    tags: list[str] = []
    for part in _TAG_SEPARATORS.split(text):
        name = part.strip()
        if name and name not in tags:
            tags.append(name)
    return tags


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def local_input(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime(_LOCAL_TIME)


def _publish_time(text: str) -> datetime | None:
    """A wall-clock time (site time zone, applied by the service) or None when unreadable.
    Only ASCII digits: fromisoformat would take some others."""
    text = text.strip()
    if not text.isascii():
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    return value.replace(tzinfo=None) if value.tzinfo is None else value


@dataclass
class PostForm:
    """What was typed (shown again as it was), and errors by field."""

    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, form: Mapping[str, str]) -> PostForm:
        # A textarea sends its line breaks as CRLF (HTML §4.10.11); the API is sent LF.
        typed = {name: _lf(form.get(name, "")) for name in FIELDS}
        errors = {name: forms.CONTROL for name, text in typed.items() if forms.has_control(text)}
        return cls({name: forms.shown(text) for name, text in typed.items()}, errors)

    def _value(self, name: str) -> Any:
        text = self.typed[name]
        if name == "tags":
            return split_tags(text)
        if name == "published_at":
            when = _publish_time(text)
            if when is None:
                self.errors[name] = _TIME_HINT
            return when
        return text.strip() if name in ("title", "slug", "author") else text

    def create(self) -> PostCreate | None:
        """The create the API would be sent, or None with ``errors`` filled in."""
        data: dict[str, Any] = {}
        for name in FIELDS:
            if name in self.errors:
                continue
            if name in ("slug", "summary", "published_at") and not self.typed[name].strip():
                continue  # derived: the slug from the title, the summary, the time (now)
            data[name] = self._value(name)
        return self._validated(PostCreate, data)

    def update(self, post: Post, tz: ZoneInfo) -> PostUpdate | None:
        """The fields that differ from ``post``, as the API's PATCH would send them."""
        stored = stored_values(post, tz)
        data: dict[str, Any] = {}
        for name in FIELDS:
            if name in self.errors or self.typed[name] == stored[name]:
                continue
            if name == "tags" and split_tags(self.typed[name]) == split_tags(stored[name]):
                continue
            if name == "published_at" and not self.typed[name].strip():
                self.errors[name] = "必填（" + _TIME_HINT + "）"
                continue
            data[name] = self._value(name)
        return self._validated(PostUpdate, data)

    def _validated(self, model: type[M], data: dict[str, Any]) -> M | None:
        try:
            parsed = parse_input(model, data)
        except Invalid as exc:
            self.add(exc.fields)
            return None
        return None if self.errors else parsed

    def add(self, fields: Mapping[str, str]) -> None:
        """A service's or schema's field messages, in Chinese; ``tags.3`` is the tags field."""
        for name, message in fields.items():
            base, _, index = name.partition(".")
            chinese = forms.in_chinese(message)
            if index.isdigit():
                chinese = f"第 {int(index) + 1} 个标签：{chinese}"
            self.errors.setdefault(base if base in FIELDS else name, chinese)


def stored_values(post: Post, tz: ZoneInfo) -> dict[str, str]:
    """The editor's fields for a stored post; a derived summary shows empty (it stays
    derived until one is typed)."""
    return {
        "title": post.title,
        "slug": post.slug,
        "category": post.category.slug,
        "tags": "，".join(tag.name for tag in post.tags),
        "format": post.format,
        "content": _lf(post.body),
        "summary": post.summary if post.summary_given else "",
        "author": post.author,
        "status": post.status,
        "published_at": local_input(post.published_at, tz),
    }
