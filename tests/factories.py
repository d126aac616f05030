"""Builders for test data, through the real service functions (no hand-made rows)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from feedsvc.context import Context
from feedsvc.models import ApiToken, Category, Post, Tag
from feedsvc.schemas import CategoryCreate, PostCreate
from feedsvc.services import categories, posts, tokens

BEIJING = ZoneInfo("Asia/Shanghai")  # as tests.conftest's (which imports this module)
CATEGORIES = {
    "licai-fangfa": ("理财方法", "普通家庭的记账、预算与资产配置方法。"),
    "jijin": ("基金", "指数基金、债券基金与定投。"),
    "gupiao": ("股票", "读财报、看估值、控仓位。"),
}


class Factory:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._n = 0

    def category(self, slug: str = "licai-fangfa", **fields: Any) -> Category:
        name, description = CATEGORIES.get(slug, (slug, ""))
        data = {"slug": slug, "name": name, "description": description, **fields}
        return categories.create_category(self.ctx, CategoryCreate(**data))

    def ensure_category(self, slug: str) -> None:
        with self.ctx.db.read() as session:
            exists = session.scalar(select(Category.id).where(Category.slug == slug))
        if exists is None:
            self.category(slug)

    def post(self, category: str = "licai-fangfa", **fields: Any) -> Post:
        self.ensure_category(category)
        self._n += 1
        data: dict[str, Any] = {
            "title": f"第{self._n}篇：每月结余先存一半",
            "category": category,
            "content": (
                f"## 小标题\n\n第{self._n}篇正文：工资到账先把一半转入储蓄账户，余下再花。"
                "\n\n理财有风险，投资需谨慎。"
            ),
            "author": "林晓",
            "tags": ["储蓄", "预算"],
            "status": "published",
            # Older posts first: each new one an hour later, all in the past.
            "published_at": (self.ctx.clock.now() - timedelta(days=30) + timedelta(hours=self._n)),
        }
        data.update(fields)
        return posts.create_post(self.ctx, PostCreate(**data))

    def two_fund_posts(self) -> tuple[Post, Post]:
        """(older, newer) in 基金: tags on the older; an author, a summary, two pages with a
        relative link and a relative image on the newer. What every feed format is read on."""
        self.category("jijin")
        old = self.post(
            "jijin",
            title="定投指数基金的三个误区",
            tags=["定投", "ETF"],
            published_at=datetime(2026, 3, 15, 9, 30, tzinfo=BEIJING),
        )
        new = self.post(
            "jijin",
            title="债券基金为什么也会亏",
            author="周明远",
            content="第一页[链接](/posts/guozhai)\n\n<!--nextpage-->\n\n第二页![图](/static/c.png)",
            summary="利率上行时债券价格下跌。",
            published_at=datetime(2026, 4, 1, 8, 0, tzinfo=BEIJING),
        )
        return old, new

    def token(self, name: str = "tests") -> str:
        return tokens.create_token(self.ctx, name)[1]

    def counts(self) -> dict[str, int]:
        """Row counts: a rejected request must leave every one unchanged."""
        with self.ctx.db.read() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Category, Post, Tag, ApiToken)
            }

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Every post and category as values, to prove a rejected write changed nothing."""
        with self.ctx.db.read() as session:
            rows: list[tuple[Any, ...]] = [
                (c.slug, c.name, c.description, c.content_version, c.feed_changed_at)
                for c in session.scalars(select(Category).order_by(Category.id))
            ]
            rows += [
                (
                    p.id,
                    p.slug,
                    p.title,
                    p.body,
                    p.status,
                    p.published_at,
                    p.updated_at,
                    p.category_id,
                    tuple(t.name for t in p.tags),
                )
                for p in session.scalars(select(Post).order_by(Post.id))
            ]
            return rows


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)
