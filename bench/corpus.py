"""Big bench sites: ``site_for(posts, postgres_url)`` -> a site folder holding that many posts.

A site folder (``build/corpus-<backend>-<n>/``) holds ``feedsvc.toml`` and, on SQLite, the
database file beside it; on PostgreSQL a database of its own on the given server
(``bench_scale_<n>``). It is built once and reused: a ``complete`` marker is written last, so
an interrupted build is started again from scratch.

What is in it (realistic enough for query plans and page sizes, copied from no article):
- 5 categories, 120 tags (2-4 per post);
- ``posts`` published posts, one every 7 minutes back from an hour before the build, with
  Markdown bodies of synthetic Chinese built from a finance vocabulary (300-1,500 characters;
  one in eight has two or three pages split by ``<!--nextpage-->``);
- besides them 2% drafts and 1% scheduled posts (a week ahead), which the API lists and the
  feeds must skip;
- stored related lists: 5 random neighbours from the same category per published post, so a
  bench does not wait on the related engine.

It is filled through SQLAlchemy Core in batches (a few thousand rows per statement); bodies
are rendered through feedsvc's own Markdown + sanitizer, once per distinct body (a pool of
them is reused), so pages hold exactly what the service would store. SQLite gets no ANALYZE:
a fresh database is what its plans must hold up on. PostgreSQL gets the VACUUM ANALYZE that
autovacuum would run within a minute anyway, so that it does not run in the middle of a
measurement (tests/test_scale_plans.py checks PostgreSQL's plans without statistics).
"""

from __future__ import annotations

import random
import shutil
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUILD = ROOT / "build"
CATEGORIES = [
    ("jijin", "基金"),
    ("gupiao", "股票"),
    ("licai", "理财"),
    ("baoxian", "保险"),
    ("hongguan", "宏观"),
]
BATCH = 2000
SPACING = timedelta(minutes=7)
BODY_POOL = 400
NEIGHBOURS = 5

# A finance vocabulary: sentences are built from these, never copied from an article.
_SUBJECTS = [
    "指数基金", "债券基金", "货币基金", "沪深300", "中证500", "创业板", "科创板", "银行股",
    "消费板块", "新能源", "医药行业", "半导体", "央行", "美联储", "人民币汇率", "国债收益率",
    "房地产市场", "保险产品", "养老金", "个人投资者", "机构资金", "北向资金", "可转债", "黄金",
]  # fmt: skip
_VERBS = [
    "小幅上涨", "震荡回落", "维持稳定", "明显分化", "持续走强", "承压下行", "迎来修复",
    "出现反弹", "表现平淡", "获得资金流入", "遭遇获利回吐", "估值回到历史低位",
]  # fmt: skip
_REASONS = [
    "市场情绪有所改善", "流动性保持合理充裕", "业绩预期逐步兑现", "政策面释放积极信号",
    "海外市场波动加大", "通胀数据好于预期", "利率中枢继续下移", "资金面边际收紧",
    "行业景气度回升", "投资者风险偏好下降",
]  # fmt: skip
_ADVICE = [
    "长期投资者不必过度关注短期波动", "建议保持合理的资产配置比例", "定投可以平滑买入成本",
    "需要警惕估值过高带来的回撤风险", "分散投资仍是控制风险的有效方法",
    "普通投资者应量力而行，避免追涨杀跌", "建议关注基金的费率和跟踪误差",
]  # fmt: skip
_TITLE_HEADS = [
    "每日财经快讯", "基金周报", "市场观察", "投资笔记", "理财课堂", "宏观速递", "保险指南",
    "股市复盘", "债市点评", "资产配置手记",
]  # fmt: skip


def site_for(posts: int, postgres_url: str | None = None) -> Path:
    """The cached site folder of a ``posts``-post corpus on SQLite (or on this PostgreSQL)."""
    backend = "sqlite" if postgres_url is None else "postgresql"
    folder = BUILD / f"corpus-{backend}-{posts}"
    if (folder / "complete").exists():
        _upgrade(folder)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if postgres_url is None:
        url = f"sqlite:///{folder}/feedsvc.db"
    else:
        url = _fresh_postgres_database(postgres_url, f"bench_scale_{posts}")
    (folder / "feedsvc.toml").write_text(
        '[site]\nbase_url = "http://127.0.0.1:8000"\ntitle = "财经笔记"\n'
        f'[database]\nurl = "{url}"\n'
        "[scheduler]\nenabled = false\n",
        encoding="utf-8",
    )
    started = datetime.now(UTC)
    _fill(url, posts)
    seconds = (datetime.now(UTC) - started).total_seconds()
    (folder / "complete").write_text(f"{posts} posts, built in {seconds:.0f} s\n")
    return folder


def database_url(folder: Path) -> str:
    import tomllib

    with (folder / "feedsvc.toml").open("rb") as config:
        return str(tomllib.load(config)["database"]["url"])


def drop_postgres(postgres_url: str, sizes: list[int]) -> None:
    """Drop the corpora's PostgreSQL databases and forget their folders."""
    for size in sizes:
        _drop_database(postgres_url, f"bench_scale_{size}")
        shutil.rmtree(BUILD / f"corpus-postgresql-{size}", ignore_errors=True)


def _upgrade(folder: Path) -> None:
    """A cached corpus follows the checkout's schema (new indexes come with migrations)."""
    from feedsvc import migrate
    from feedsvc.db import Database

    db = Database(database_url(folder))
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()


def _admin_url(postgres_url: str, database: str) -> Any:
    from sqlalchemy.engine import make_url

    return make_url(postgres_url).set(database=database)


def _drop_database(postgres_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(_admin_url(postgres_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_postgres_database(postgres_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    _drop_database(postgres_url, name)
    admin = create_engine(_admin_url(postgres_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return _admin_url(postgres_url, name).render_as_string(hide_password=False)


def _sentence(rng: random.Random) -> str:
    return (
        f"{rng.choice(_SUBJECTS)}{rng.choice(_VERBS)}，"
        f"{rng.choice(_REASONS)}，{rng.choice(_ADVICE)}。"
    )


def _markdown_body(rng: random.Random) -> str:
    """Sections of paragraphs; one body in eight is split into pages."""
    pages = rng.choice([2, 3]) if rng.random() < 0.125 else 1
    parts = []
    for page in range(pages):
        sections = []
        for n in range(rng.randint(1, 4)):
            paragraphs = [
                "".join(_sentence(rng) for _ in range(rng.randint(2, 6)))
                for _ in range(rng.randint(1, 3))
            ]
            items = "\n".join(f"- {rng.choice(_ADVICE)}" for _ in range(rng.randint(0, 3)))
            sections.append(
                f"## 第{page * 4 + n + 1}节\n\n" + "\n\n".join(paragraphs) + "\n\n" + items
            )
        parts.append("\n\n".join(sections))
    return "\n\n<!--nextpage-->\n\n".join(parts)


def _rendered_pool(rng: random.Random) -> list[tuple[str, list[str], str]]:
    from feedsvc.content import derive_summary, render_pages

    pool = []
    for _ in range(BODY_POOL):
        body = _markdown_body(rng)
        pages = render_pages(body, "markdown")
        pool.append((body, pages, derive_summary(pages)))
    return pool


def _title_pool(rng: random.Random) -> list[tuple[str, str]]:
    from feedsvc.content import slug_from_title

    titles = []
    for head in _TITLE_HEADS:
        for subject in _SUBJECTS:
            title = f"{head}：{subject}{rng.choice(_VERBS)}"
            titles.append((title, slug_from_title(title)))
    return titles


def _fill(url: str, posts: int) -> None:
    from sqlalchemy import insert, select

    from feedsvc import migrate
    from feedsvc.db import Database
    from feedsvc.models import Category, Post, RelatedItem, Tag, post_tags

    rng = random.Random(posts)  # the same corpus for the same size, on every backend
    db = Database(url)
    migrate.upgrade(db)
    now = datetime.now(UTC).replace(microsecond=0)
    newest = now - timedelta(hours=1)
    bodies, titles = _rendered_pool(rng), _title_pool(rng)
    with db.engine.begin() as connection:
        connection.execute(
            insert(Category),
            [
                {
                    "slug": slug,
                    "name": name,
                    "description": f"{name}相关的文章",
                    "position": n,
                    "feed_length": 20,
                    "created_at": now,
                    "updated_at": now,
                    "feed_changed_at": now,
                }
                for n, (slug, name) in enumerate(CATEGORIES)
            ],
        )
        category_ids = list(connection.scalars(select(Category.id).order_by(Category.position)))
        tag_names = [
            f"{subject}{suffix}"
            for subject in _SUBJECTS
            for suffix in ("", "观察", "策略", "风险", "数据")
        ]
        connection.execute(
            insert(Tag), [{"name": name, "slug": f"tag-{n}"} for n, name in enumerate(tag_names)]
        )
        tag_ids = list(connection.scalars(select(Tag.id).order_by(Tag.id)))

    drafts, scheduled = posts // 50, posts // 100
    total = posts + drafts + scheduled
    by_category: dict[int, list[int]] = {c: [] for c in category_ids}
    for start in range(0, total, BATCH):
        rows, tag_rows = [], []
        for n in range(start, min(start + BATCH, total)):
            post_id = n + 1
            body, pages, summary = bodies[rng.randrange(len(bodies))]
            title, slug = titles[rng.randrange(len(titles))]
            category = category_ids[n % len(category_ids)]
            if n < posts:
                status, published = "published", newest - SPACING * n
                by_category[category].append(post_id)
            elif n < posts + drafts:
                status, published = "draft", newest - SPACING * rng.randrange(posts)
            else:
                status, published = "published", now + timedelta(days=7, minutes=n)
            rows.append(
                {
                    "id": post_id,
                    "slug": f"{slug}-{post_id}",
                    "guid": f"tag:127.0.0.1,2026-01-01:post/{uuid.UUID(int=rng.getrandbits(128))}",
                    "category_id": category,
                    "title": title,
                    "author": "编辑部",
                    "summary": summary,
                    "summary_given": False,
                    "format": "markdown",
                    "body": body,
                    "pages": pages,
                    "status": status,
                    "published_at": published,
                    "created_at": min(published, now),
                    "updated_at": min(published, now),
                    "origin_link": None,
                }
            )
            tag_rows.extend(
                {"post_id": post_id, "tag_id": tag}
                for tag in rng.sample(tag_ids, rng.randint(2, 4))
            )
        with db.engine.begin() as connection:
            connection.execute(insert(Post), rows)
            connection.execute(insert(post_tags), tag_rows)

    for rows in _related_rows(rng, by_category, now):
        with db.engine.begin() as connection:
            connection.execute(insert(RelatedItem), rows)
    if db.dialect == "postgresql":  # explicit ids were inserted: move the sequence past them
        from sqlalchemy import text

        with db.engine.begin() as connection:
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('posts', 'id'), :n)"), {"n": total}
            )
        vacuum_analyze(url)
    db.dispose()


def vacuum_analyze(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def _related_rows(
    rng: random.Random, by_category: dict[int, list[int]], now: datetime
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for members in by_category.values():
        for post_id in members:
            neighbours = rng.sample(members, min(NEIGHBOURS + 1, len(members)))
            neighbours = [other for other in neighbours if other != post_id][:NEIGHBOURS]
            scores = sorted((rng.uniform(0.1, 0.9) for _ in neighbours), reverse=True)
            batch.extend(
                {
                    "post_id": post_id,
                    "rank": rank,
                    "related_post_id": other,
                    "external_item_id": None,
                    "score": round(score, 4),
                    "computed_at": now,
                }
                for rank, (other, score) in enumerate(zip(neighbours, scores, strict=True), 1)
            )
            if len(batch) >= BATCH * 2:
                yield batch
                batch = []
    if batch:
        yield batch


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="build (or find) the bench corpora")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        started = datetime.now(UTC)
        print(
            site_for(size, args.postgres), f"{(datetime.now(UTC) - started).total_seconds():.1f} s"
        )
