"""What every admin template needs (templates/admin/layout.html)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import g

from feedsvc.config import Settings
from feedsvc.feeds.document import Links
from feedsvc.models import DISABLED_BY_PUBLISHER, IMPORT_ONLY
from feedsvc.repo import categories as category_repo
from feedsvc.web import ctx

# What each job does, as the admin says it (the API and CLI keep the jobs' own English).
JOB_DESCRIPTIONS = {
    "related-refresh": "重新计算自上次运行以来可能变化的相关内容",
    "related-rebuild": "重新计算全部相关内容（包括 IDF 词频统计）",
    "sources-poll": "抓取到期的上游订阅源",
    "websub": "WebSub：发现变化的订阅，验证订阅者，推送新内容或通知 hub",
}


def job_description(name: str, english: str) -> str:
    return JOB_DESCRIPTIONS.get(name, english)


# Why a source is disabled (sources.disabled_reason, stored in English for the API and CLI).
DISABLED_REASONS = {
    DISABLED_BY_PUBLISHER: "由发布者停用",
    "gone (410)": "上游已永久删除这个订阅（HTTP 410）",
    IMPORT_ONLY: "仅用于导入，不定时抓取",
}


def disabled_reason(english: str | None) -> str:
    return "" if not english else DISABLED_REASONS.get(english, english)


def admin_layout(settings: Settings) -> dict[str, Any]:
    return {
        "site": settings.site,
        "language": "zh-CN",
        "links": Links(settings.site.base_url),
        "user": g.get("admin_user"),
        "job_description": job_description,
        "disabled_reason": disabled_reason,
    }


def category_choices() -> list[tuple[str, str]]:
    """(slug, name) of every category, in the site's order: a form's category select."""
    with ctx().db.read() as db:
        return [(c.slug, c.name) for c in category_repo.list_categories(db)]


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """A time as the admin reads it: the site's time zone, to the minute."""
    return "" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def local_time_of(value: str | None, tz: ZoneInfo) -> str:
    """An API timestamp (RFC 3339, as serialize.py writes it) as the admin reads it."""
    return "" if value is None else local_time(datetime.fromisoformat(value), tz)
