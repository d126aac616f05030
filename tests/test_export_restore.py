"""`feedsvc export` / `feedsvc restore`: a site moved between SQLite and PostgreSQL serves
every feed byte for byte; a bad archive is one line, exit 1, and changes nothing."""

from __future__ import annotations

import gzip
import itertools
import json
import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text

from feedsvc import create_app
from feedsvc.cli import cli
from feedsvc.clock import FrozenClock
from feedsvc.config import load_settings
from feedsvc.errors import FeedsvcError
from feedsvc.models import Category, Job, Post, RemovedCategory, SiteState, Tag
from feedsvc.related import refresh
from feedsvc.schemas import PostUpdate, SourceCreate
from feedsvc.services import categories as category_service
from feedsvc.services import posts as post_service
from feedsvc.services import sources as source_service
from feedsvc.sources.poll import poll_sources
from feedsvc.transfer import restore as restore_module
from tests.conftest import NOW, POSTGRES_URL, PROFILE, fresh_database, overrides_for
from tests.factories import Factory
from tests.hypothesis_profiles import FUZZ
from tests.test_cli_errors import assert_one_error_line, unmigrated_url  # noqa: F401 (a fixture)
from tests.test_sources_poll import item, rss

FEEDS = ("all", "licai-fangfa", "jijin", "gupiao")
FORMATS = ("rss", "atom")

needs_postgresql = pytest.mark.skipif(
    not POSTGRES_URL, reason="FEEDSVC_TEST_POSTGRES_URL is not set: PostgreSQL variants skipped"
)


class Site:
    """An app on one database, with its client, CLI runner and factory."""

    def __init__(self, url: str, **sections: dict[str, Any]) -> None:
        settings = load_settings(overrides_for(url, **sections), environ={})
        self.app = create_app(settings=settings, clock=FrozenClock(NOW))
        self.ctx = self.app.extensions["feedsvc"]
        self.client = self.app.test_client()
        self.runner = self.app.test_cli_runner()
        self.factory = Factory(self.ctx)

    def cli(self, *args: str) -> Any:
        return self.runner.invoke(cli, list(args))

    def feeds(self) -> dict[str, tuple[bytes, str | None, str | None]]:
        """Every feed's bytes and validators, plain and gzip'd."""
        out = {}
        for slug in FEEDS:
            for fmt in FORMATS:
                for coding in ("identity", "gzip"):
                    response = self.client.get(
                        f"/feeds/{slug}.{fmt}", headers={"Accept-Encoding": coding}
                    )
                    assert response.status_code == 200, (slug, fmt)
                    body = response.data
                    if coding == "gzip":
                        body = gzip.decompress(body)
                    out[f"{slug}.{fmt} {coding}"] = (
                        body,
                        response.headers.get("ETag"),
                        response.headers.get("Last-Modified"),
                    )
        return out

    def close(self) -> None:
        self.ctx.db.dispose()


@pytest.fixture
def make_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Site]]:
    sites: list[Site] = []

    def make(backend: str) -> Site:
        folder = tmp_path / f"site{len(sites)}"
        folder.mkdir()
        site = Site(fresh_database(backend, request, folder))
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


def build_site(site: Site, upstream: HTTPServer) -> None:
    """Everything a feed's bytes depend on: three categories, multi-page posts, tags, a draft,
    a scheduled post, an edited post, a deleted one, aggregated posts and upstream related
    items from a real HTTP server, and related lists."""
    f, ctx = site.factory, site.ctx
    f.category("licai-fangfa", feed_length=5)
    f.category("jijin")
    f.category("gupiao", description="")
    f.category("baoxian")
    category_service.delete_category(ctx, "baoxian")  # `init` must not bring it back
    for n in range(8):
        f.post(
            "licai-fangfa",
            title=f"记账的第{n}个习惯",
            content=f"每天记账，第{n}条。\n\n<!--nextpage-->\n\n第二页：预算与储蓄。",
            tags=["记账", "预算", f"习惯{n}"],
        )
    f.post("jijin", title="指数基金定投", content="定投指数基金，长期持有。", tags=["基金", "定投"])
    f.post("jijin", title="草稿：债基", status="draft")
    f.post("gupiao", title="明天发布的财报解读", published_at=NOW + timedelta(days=1))
    edited = f.post("gupiao", title="估值入门")
    post_service.update_post(ctx, edited.id, PostUpdate(summary="市盈率与市净率，手写摘要。"))

    upstream.expect_request("/posts").respond_with_data(
        rss(
            item("u1", "债券基金的久期", "<p>久期越长，利率敏感度越高。</p>"),
            item("u2", "定投的纪律", "<p>每月固定日期买入指数基金。</p>"),
        )
    )
    upstream.expect_request("/related").respond_with_data(
        rss(
            item("r1", "记账软件对比", "<p>每天记账，预算与储蓄的工具。</p>"),
            item("r2", "基金定投误区", "<p>定投指数基金的常见误区。</p>"),
            title="理财同行",
        )
    )
    for path, mode, category in (
        ("/posts", "posts", "jijin"),
        ("/related", "related", "licai-fangfa"),
    ):
        source_service.create_source(
            ctx,
            SourceCreate(
                url=upstream.url_for(path), category=category, mode=mode, interval_minutes=30
            ),
        )
    outcomes = poll_sources(ctx, None)
    assert all(outcome.error is None for outcome in outcomes)
    report = refresh.rebuild(ctx, None)
    assert report.written > 0
    doomed = f.post("gupiao", title="将被删除")  # the newest id: must never be given again
    post_service.delete_post(ctx, doomed.id)


def archive_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def write_archive(path: Path, lines: list[Any]) -> Path:
    data = b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )
    path.write_bytes(gzip.compress(data))
    return path


def move(source: Site, target: Site, path: Path) -> None:
    exported = source.cli("export", str(path))
    assert exported.exit_code == 0, exported.output
    restored = target.cli("restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert "posts" in restored.stdout and "warning" not in restored.stderr


def assert_same_site(before: Site, after: Site) -> None:
    expected, got = before.feeds(), after.feeds()
    for name, (body, etag, modified) in expected.items():
        assert got[name][0] == body, name
        assert got[name][1:] == (etag, modified), name
    # Posts' pages too (drafts and scheduled posts are not in any feed).
    with before.ctx.db.read() as old, after.ctx.db.read() as new:
        columns = (Post.id, Post.guid, Post.slug, Post.status, Post.published_at, Post.pages)
        assert list(old.execute(select(*columns).order_by(Post.id))) == list(
            new.execute(select(*columns).order_by(Post.id))
        )
        # The site's own history travels too: `init` on the new site neither brings a
        # removed category back nor loads sample posts (migration 0005).
        removed = select(RemovedCategory.slug, RemovedCategory.removed_at)
        assert list(new.execute(removed)) == list(old.execute(removed)) != []
        assert new.scalar(select(SiteState.had_posts)) is True


def assert_ids_continue(site: Site) -> None:
    """Ids are never reused: the deleted newest post's id stays given out."""
    with site.ctx.db.read() as session:
        top = session.scalar(select(Post.id).order_by(Post.id.desc()).limit(1))
    new = site.factory.post("jijin", title="迁移后的第一篇")
    assert top is not None and new.id == top + 2


def assert_rebuild_changes_nothing(site: Site) -> None:
    """The scheduler's full rebuild (its markers were cleared) finds the same lists."""
    with site.ctx.db.read() as session:
        assert session.scalars(select(Job)).all() == []
    before = site.feeds()
    report = refresh.rebuild(site.ctx, None)
    assert report.written == 0
    assert site.feeds() == before


def roundtrip(
    backends: tuple[str, ...],
    make_site: Callable[[str], Site],
    upstream: HTTPServer,
    tmp_path: Path,
) -> None:
    sites = [make_site(backend) for backend in backends]
    build_site(sites[0], upstream)
    archives = []
    for number, (source, target) in enumerate(itertools.pairwise(sites)):
        archives.append(tmp_path / f"step{number}.feedsvc.gz")
        move(source, target, archives[-1])
        assert_same_site(sites[0], target)
    # The archive a restored site writes holds the same rows and sequences (only the header's
    # database name may differ).
    if len(sites) > 2:
        again = tmp_path / "again.feedsvc.gz"
        assert sites[1].cli("export", str(again)).exit_code == 0
        first, second = archive_lines(archives[0]), archive_lines(again)
        assert first[0]["sequences"] == second[0]["sequences"]
        assert first[1:] == second[1:]
    assert_rebuild_changes_nothing(sites[-1])
    assert_ids_continue(sites[-1])


def test_sqlite_to_sqlite(
    make_site: Callable[[str], Site], httpserver: HTTPServer, tmp_path: Path
) -> None:
    roundtrip(("sqlite", "sqlite"), make_site, httpserver, tmp_path)


@needs_postgresql
def test_sqlite_to_postgresql_and_back(
    make_site: Callable[[str], Site], httpserver: HTTPServer, tmp_path: Path
) -> None:
    roundtrip(("sqlite", "postgresql", "sqlite"), make_site, httpserver, tmp_path)


@needs_postgresql
def test_postgresql_to_sqlite(
    make_site: Callable[[str], Site], httpserver: HTTPServer, tmp_path: Path
) -> None:
    roundtrip(("postgresql", "sqlite"), make_site, httpserver, tmp_path)


# -- one backend at a time -------------------------------------------------------------------


@pytest.fixture
def good_archive(runner: Any, factory: Factory, tmp_path: Path) -> Path:
    """A small valid archive of a site with two posts (then emptied of nothing: the test's own
    database still holds the site)."""
    factory.post(title="存档里的文章")
    factory.post("jijin", title="另一篇")
    path = tmp_path / "good.feedsvc.gz"
    result = runner.invoke(cli, ["export", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_export_is_deterministic_and_refuses_to_overwrite(
    runner: Any, good_archive: Path, tmp_path: Path
) -> None:
    first = good_archive.read_bytes()
    assert stat.S_IMODE(good_archive.stat().st_mode) == 0o600
    assert_one_error_line(runner.invoke(cli, ["export", str(good_archive)]), 1, "already exists")
    assert good_archive.read_bytes() == first
    assert runner.invoke(cli, ["export", str(good_archive), "--force"]).exit_code == 0
    assert good_archive.read_bytes() == first  # same data, same clock: same bytes
    lines = archive_lines(good_archive)
    assert lines[0]["format"] == "feedsvc-export" and lines[0]["version"] == 1
    assert lines[-1]["end"] == "feedsvc-export" and lines[-1]["rows"]["posts"] == 2
    (token_rows) = [line for line in lines if line.get("table") == "api_tokens"]
    assert token_rows == []


def test_restore_warns_when_the_site_settings_differ(
    good_archive: Path, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    folder = tmp_path / "moved"
    folder.mkdir()
    target = Site(
        fresh_database(backend, request, folder), site={"base_url": "https://new.example.test"}
    )
    try:
        result = target.cli("restore", str(good_archive))
        assert result.exit_code == 0, result.output
        warnings = result.stderr.splitlines()[-2:]
        assert any(
            "site.base_url is 'https://new.example.test' here but was "
            "'http://feeds.example.test'" in line
            for line in warnings
        ), result.stderr
        assert any("site.tag_authority" in line for line in warnings)
    finally:
        target.close()


def test_export_force_replaces_only_an_archive(
    runner: Any, good_archive: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "site.db"
    backup.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    result = runner.invoke(cli, ["export", str(backup), "--force"])
    assert_one_error_line(result, 1, "not what this command writes")
    assert backup.read_bytes().startswith(b"SQLite format 3")
    empty = tmp_path / "reserved.gz"
    empty.touch()
    assert runner.invoke(cli, ["export", str(empty), "--force"]).exit_code == 0
    assert archive_lines(empty)[0]["format"] == "feedsvc-export"


def test_tokens_travel_as_hashes_and_keep_working(
    runner: Any, factory: Factory, ctx: Any, client: Any, tmp_path: Path
) -> None:
    token = factory.token("迁移客户端")
    path = tmp_path / "t.gz"
    assert runner.invoke(cli, ["export", str(path)]).exit_code == 0
    assert token.encode() not in gzip.decompress(path.read_bytes())
    result = runner.invoke(cli, ["restore", "--replace", str(path)])
    assert result.exit_code == 0, result.output
    response = client.get(
        "/api/v1/posts?status=draft", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


def test_restore_refuses_a_site_with_content_unless_replace(
    runner: Any, factory: Factory, client: Any, good_archive: Path
) -> None:
    before = factory.snapshot()
    result = runner.invoke(cli, ["restore", str(good_archive)])
    assert_one_error_line(result, 1, "not empty", "2 posts", "--replace")
    assert factory.snapshot() == before
    # --replace: edits made since the export are gone, the archive's site is back, and the
    # feeds' versions move past the ones a running process may have cached.
    etag = client.get("/feeds/all.atom").headers["ETag"]
    factory.post(title="导出之后写的")
    assert client.get("/feeds/all.atom").headers["ETag"] != etag
    replaced = runner.invoke(cli, ["restore", "--replace", str(good_archive)])
    assert replaced.exit_code == 0, replaced.output
    restored = factory.snapshot()
    assert [row for row in restored if "导出之后写的" in row] == []
    assert restored[2:] == before[2:]  # the posts, as exported
    for old, new in zip(before[:2], restored[:2], strict=True):  # the two categories
        assert new[:3] == old[:3] and new[3] > old[3]
    assert client.get("/feeds/all.atom").headers["ETag"] == etag


def mutate(good: Path, tmp_path: Path, change: Callable[[list[Any]], None]) -> Path:
    lines: list[Any] = archive_lines(good)
    change(lines)
    return write_archive(tmp_path / "bad.feedsvc.gz", lines)


def first_row(lines: list[Any], table: str) -> dict[str, Any]:
    row: dict[str, Any] = next(line["row"] for line in lines if line.get("table") == table)
    return row


def _set(table: str, column: str, value: Any) -> Callable[[list[Any]], None]:
    return lambda lines: first_row(lines, table).__setitem__(column, value)


def _duplicate_guid(lines: list[Any]) -> None:
    posts = [line["row"] for line in lines if line.get("table") == "posts"]
    posts[1]["guid"] = posts[0]["guid"]


def _drop_end(lines: list[Any]) -> None:
    lines.pop()


def _future(lines: list[Any]) -> None:
    lines[0]["version"] = 2


def _foreign(lines: list[Any]) -> None:
    lines[0] = {"format": "something-else", "version": 1}


def _reorder(lines: list[Any]) -> None:
    site_state = lines.pop(1)  # nothing refers to it
    lines.insert(len(lines) - 1, site_state)


def _header(key: str, value: Any) -> Callable[[list[Any]], None]:
    return lambda lines: lines[0].__setitem__(key, value)


def _end_rows(value: Any) -> Callable[[list[Any]], None]:
    return lambda lines: lines[-1].__setitem__("rows", value)


def _line(value: Any, at: int = 1) -> Callable[[list[Any]], None]:
    return lambda lines: lines.insert(at if at >= 0 else len(lines) + at, value)


def _no_site_state(lines: list[Any]) -> None:
    del lines[1]
    lines[-1]["rows"]["site_state"] = 0


def _related_item(*, related: bool, score: Any) -> Callable[[list[Any]], None]:
    def change(lines: list[Any]) -> None:
        posts = [line["row"]["id"] for line in lines if line.get("table") == "posts"]
        row = {
            "post_id": posts[0],
            "rank": 1,
            "related_post_id": posts[1] if related else None,
            "external_item_id": None,
            "score": score,
            "computed_at": "2026-11-28T04:00:00+00:00",
        }
        lines.insert(len(lines) - 1, {"table": "related_items", "row": row})
        lines[-1]["rows"]["related_items"] = 1

    return change


def _huge_digits(lines: list[Any]) -> None:
    lines.insert(1, b'{"table": "tags", "row": {"id": ' + b"9" * 5000 + b"}}")


def _drop(table: str, column: str) -> Callable[[list[Any]], None]:
    return lambda lines: [line["row"].pop(column) for line in lines if line.get("table") == table]


HOSTILE = {
    "missing column": (_drop("posts", "title"), "missing column 'title'"),
    "negative feed length": (_set("categories", "feed_length", -1), "feed_length: must be from"),
    "second site state": (_set("site_state", "id", 2), "site_state: id: must be 1"),
    "unknown status": (_set("posts", "status", "archived"), "status: must be draft or"),
    "slug with a slash": (_set("posts", "slug", "a/b"), "slug: must be a slug"),
    "future version": (_future, "version 2 is newer"),
    "foreign header": (_foreign, "not a feedsvc export"),
    "no end line": (_drop_end, "truncated"),
    "bool for an integer": (_set("categories", "position", True), "position: must be an integer"),
    "string for an integer": (_set("categories", "feed_length", "20"), "must be an integer"),
    "huge number": (_set("posts", "id", 10**30), "id: is out of range"),
    "5000 digits": (_huge_digits, "not JSON"),
    "NaN": (_line(b'{"table": "tags", "row": {"id": NaN}}'), "not JSON (NaN is not JSON)"),
    "version as a string": (_header("version", "1"), "version must be an integer"),
    "version 0": (_header("version", 0), "version 0 does not exist"),
    "bad sequences": (_header("sequences", {"posts": -1}), "sequences must map"),
    "unknown sequence": (_header("sequences", {"jobs": 3}), "sequences must map"),
    "date not a string": (_header("created_at", 20261128), "must be strings"),
    "site not strings": (_header("site", {"base_url": 1}), "site must map"),
    "a list line": (_line([1, 2]), "line 2: not an object"),
    "unknown table": (_line({"table": "users", "row": {}}), "not a row of a known table"),
    "data after the end": (
        lambda lines: lines.append({"table": "tags", "row": {}}),
        "after the end line",
    ),
    "end without counts": (_end_rows(None), "the end line has no row counts"),
    "end counts differ": (
        lambda lines: lines[-1]["rows"].__setitem__("posts", 7),
        "posts: the end line counts 7 rows, the file holds 2",
    ),
    "int for a boolean": (_set("posts", "summary_given", 1), "must be true or false"),
    "date out of range": (
        _set("posts", "published_at", "0001-01-01T00:00:00+14:00"),
        "is out of range",
    ),
    "no site state": (_no_site_state, "site_state must have exactly one row"),
    "related item naming nothing": (
        _related_item(related=False, score=0.5),
        "exactly one of related_post_id",
    ),
    "string for a number": (_related_item(related=True, score="高"), "score: must be a number"),
    "NUL in text": (_set("posts", "title", "标题\x00"), "title: contains a NUL"),
    "lone surrogate": (_set("posts", "title", "\ud800"), "unpaired surrogate"),
    "too long": (_set("categories", "slug", "x" * 101), "longer than 100"),
    "naive date": (_set("posts", "published_at", "2026-01-01T00:00:00"), "UTC offset"),
    "bad date": (_set("posts", "published_at", "昨天"), "not an ISO 8601"),
    "pages not a list": (_set("posts", "pages", "<p>x</p>"), "list of strings"),
    "unknown column": (_set("posts", "extra", 1), "unknown column 'extra'"),
    "tables out of order": (_reorder, "after later tables"),
    "duplicate guid": (_duplicate_guid, "posts: guid 'tag:"),
    "dangling category": (_set("posts", "category_id", 999), "category_id 999: no such categories"),
    "duplicate id": (_set("tags", "id", 2), "tags: id 2 appears twice"),
}


def test_an_older_archive_without_newer_columns_is_filled_in(
    runner: Any, ctx: Any, good_archive: Path, tmp_path: Path
) -> None:
    """Columns a later schema added: their default, or NULL."""

    def older(lines: list[Any]) -> None:
        _drop("categories", "feed_length")(lines)
        _drop("posts", "origin_link")(lines)

    path = mutate(good_archive, tmp_path, older)
    result = runner.invoke(cli, ["restore", "--replace", str(path)])
    assert result.exit_code == 0, result.output
    with ctx.db.read() as session:
        assert {c.feed_length for c in session.scalars(select(Category))} == {20}
        assert {p.origin_link for p in session.scalars(select(Post))} == {None}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_bad_archive_changes_nothing(
    case: str, runner: Any, factory: Factory, good_archive: Path, tmp_path: Path
) -> None:
    change, needle = HOSTILE[case]
    bad = mutate(good_archive, tmp_path, change)
    before = factory.snapshot()
    result = runner.invoke(cli, ["restore", "--replace", str(bad)])
    assert_one_error_line(result, 1, needle)
    assert factory.snapshot() == before


def test_an_endless_line_is_refused(
    runner: Any, factory: Factory, good_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.transfer import archive

    monkeypatch.setattr(archive, "MAX_LINE_BYTES", 100)
    before = factory.snapshot()
    result = runner.invoke(cli, ["restore", "--replace", str(good_archive)])
    assert_one_error_line(result, 1, "a line longer than 100 bytes")
    assert factory.snapshot() == before


@pytest.mark.parametrize(
    "kind",
    ["missing", "directory", "truncated gzip", "not gzip", "empty", "not utf-8", "cut at a line"],
)
def test_unreadable_files(
    kind: str, runner: Any, factory: Factory, good_archive: Path, tmp_path: Path
) -> None:
    data = good_archive.read_bytes()
    path = tmp_path / "x.gz"
    if kind == "directory":
        path = tmp_path
    elif kind == "truncated gzip":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not gzip":
        path.write_text("title,slug\n记账,jizhang\n", encoding="utf-8")
    elif kind == "empty":
        path.write_bytes(gzip.compress(b""))
    elif kind == "not utf-8":
        path.write_bytes(
            gzip.compress('{"format": "feedsvc-export", "database": "记账"}\n'.encode("gb18030"))
        )
    elif kind == "cut at a line":
        lines = gzip.decompress(data).splitlines(keepends=True)
        path.write_bytes(gzip.compress(b"".join(lines[:3])))
    needle = {
        "missing": "no such file",
        "directory": "is a directory",
        "truncated gzip": "not a readable gzip file",
        "not gzip": "not a readable gzip file",
        "empty": "empty file",
        "not utf-8": "line 1: not UTF-8",
        "cut at a line": "truncated",
    }[kind]
    before = factory.snapshot()
    assert_one_error_line(runner.invoke(cli, ["restore", "--replace", str(path)]), 1, needle)
    assert factory.snapshot() == before


def test_restore_into_an_empty_database_needs_no_replace(
    runner: Any,
    ctx: Any,
    good_archive: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    ctx.db.dispose()
    target = Site(fresh_database(backend, request, folder))
    try:
        result = target.cli("restore", str(good_archive))
        assert result.exit_code == 0, result.output
        assert "2 posts" in result.stdout
        with target.ctx.db.read() as session:
            titles = set(session.scalars(select(Post.title)))
            assert titles == {"存档里的文章", "另一篇"}
            if backend == "postgresql":
                # Sequences continue past the restored ids.
                assert session.execute(text("SELECT last_value FROM posts_id_seq")).scalar() == 2
    finally:
        target.close()


@pytest.mark.parametrize("command", ["export", "restore", "import-wordpress"])
def test_before_init_says_run_init(
    command: str, request: pytest.FixtureRequest, good_archive: Path, tmp_path: Path
) -> None:
    from tests.test_wordpress import FIXTURE

    site = Site(request.getfixturevalue("unmigrated_url"))
    try:
        args = {
            "export": ["export", str(tmp_path / "out.gz")],
            "restore": ["restore", str(good_archive)],
            "import-wordpress": ["import-wordpress", str(FIXTURE), "--default-category", "x"],
        }[command]
        assert_one_error_line(site.cli(*args), 1, "run `feedsvc init`")
        assert not (tmp_path / "out.gz").exists()
    finally:
        site.close()


# -- any value in any column: refused with one line, or restored into a site that serves ----

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "0", "draft", "published", "html", "2026-13-01T00:00:00+00:00", "a-b"]),
    st.lists(st.text(max_size=10), max_size=3),
)


@settings(
    max_examples=1000 if PROFILE == FUZZ else 40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_changed_value_is_refused_or_served(
    data: st.DataObject, ctx: Any, client: Any, factory: Factory, good_archive: Path, tmp_path: Path
) -> None:
    lines = archive_lines(good_archive)
    rows = [line for line in lines if "table" in line]
    row = data.draw(st.sampled_from(rows))["row"]
    column = data.draw(st.sampled_from(sorted(row)))
    row[column] = data.draw(JSON_VALUES)
    path = write_archive(tmp_path / "changed.gz", lines)
    before = factory.snapshot()
    try:
        restore_module.restore(ctx, path, replace=True)
    except FeedsvcError as exc:
        event("refused")
        assert "\n" not in exc.message
        assert factory.snapshot() == before
        return
    event("restored")
    for slug in ("all", "licai-fangfa", "jijin"):
        for fmt in FORMATS:
            assert client.get(f"/feeds/{slug}.{fmt}").status_code in (200, 404), (slug, column)
    assert client.get("/api/v1/posts").status_code == 200


def test_restore_moves_tag_feeds_on_and_fills_in_older_archives(
    runner: Any, client: Any, factory: Factory, ctx: Any, good_archive: Path, tmp_path: Path
) -> None:
    """Tag feeds' versions (migration 0009) move past what running caches hold, as the other
    feeds' do; an archive from before 0009 gets them from the site feed's."""
    etag = client.get("/feeds/tags/chu-xu.atom").headers["ETag"]  # 储蓄
    factory.post(title="导出之后写的", tags=["储蓄"])
    assert client.get("/feeds/tags/chu-xu.atom").headers["ETag"] != etag

    def older(lines: list[Any]) -> None:
        _drop("tags", "content_version")(lines)
        _drop("tags", "feed_changed_at")(lines)

    path = mutate(good_archive, tmp_path, older)
    result = runner.invoke(cli, ["restore", "--replace", str(path)])
    assert result.exit_code == 0, result.output
    with ctx.db.read() as session:
        site = session.get(SiteState, 1)
        tags = list(session.scalars(select(Tag)))
        assert site is not None and {tag.name for tag in tags} == {"储蓄", "预算"}
        assert {tag.feed_changed_at for tag in tags} == {site.feed_changed_at}
        assert all(tag.content_version > 1 for tag in tags)  # past the cached versions
    restored = client.get("/feeds/tags/chu-xu.atom")
    assert restored.status_code == 200 and restored.headers["ETag"] == etag
    assert "导出之后写的" not in restored.get_data(as_text=True)
