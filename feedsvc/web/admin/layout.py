"""What every admin template needs (templates/admin/layout.html)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import g

from feedsvc.config import Settings
from feedsvc.feeds.document import Links


def admin_layout(settings: Settings) -> dict[str, Any]:
    return {
        "site": settings.site,
        "language": "zh-CN",
        "links": Links(settings.site.base_url),
        "user": g.get("admin_user"),
    }


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """A time as the admin reads it: the site's time zone, to the minute."""
    return "" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def local_time_of(value: str | None, tz: ZoneInfo) -> str:
    """An API timestamp (RFC 3339, as serialize.py writes it) as the admin reads it."""
    return "" if value is None else local_time(datetime.fromisoformat(value), tz)
