"""`feedsvc import URL_OR_FILE --category SLUG`: bring in an existing RSS or Atom feed once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from feedsvc.cli import cli
from feedsvc.errors import Conflict
from feedsvc.models import IMPORT_ONLY, Post, Source, SourceEntry
from feedsvc.schemas import SourceCreate
from feedsvc.services import sources as source_service
from feedsvc.sources.importer import import_feed
from feedsvc.sources.poll import poll_sources
from tests.conftest import BEIJING, NOW
from tests.factories import Factory
from tests.feedcheck import parse

pytestmark = pytest.mark.usefixtures("backend")

FIXTURES = Path(__file__).parent / "sources" / "fixtures"


def beijing(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=BEIJING)


# Each format's entries: title, published_at, and the original link where the file gives an
# absolute one (a relative link in a file has no URL to resolve against).
FORMATS = [
    pytest.param("rss091.xml", [("定投指数基金的第一年", NOW, None)], id="rss-0.91"),
    pytest.param(
        "rss10.rdf",
        [
            (
                "债券基金怎么选",
                beijing(2024, 3, 15, 9, 4, 5),
                "https://blog.example.cn/2024/03/zhaiquan.html",
            )
        ],
        id="rss-1.0",
    ),
    pytest.param(
        "rss20.xml",
        [
            ("我的应急基金放在哪里", beijing(2024, 3, 15, 9, 4, 5), None),  # "... CST"
            (
                "第二篇",
                beijing(2024, 3, 14, 20, 0, 0),
                "https://blog.example.cn/2024/03/second.html",
            ),
        ],
        id="rss-2.0",
    ),
    pytest.param(
        "atom03.xml", [("记账三个月的收获", beijing(2024, 3, 15, 9, 4, 5), None)], id="atom-0.3"
    ),
    pytest.param(
        "atom10.xml", [("股票与基金的比例", beijing(2024, 3, 15, 9, 4, 5), None)], id="atom-1.0"
    ),
    pytest.param(
        "gbk.xml",
        [
            (
                "银行理财产品的风险等级",
                beijing(2024, 3, 15, 9, 4),  # 2024年3月15日 09:04
                "https://blog.example.cn/2024/03/fengxian.html",
            )
        ],
        id="rss-2.0-gbk",
    ),
]


def run(runner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args))


def posts(ctx, category: str | None = None) -> list[Post]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        rows = list(session.scalars(select(Post).order_by(Post.published_at, Post.id)))
    return [p for p in rows if category is None or p.category.slug == category]


def count(ctx, model: type) -> int:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def source_rows(ctx) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    with ctx.db.read() as session:
        return [
            tuple(getattr(row, column.key) for column in Source.__table__.columns)
            for row in session.scalars(select(Source).order_by(Source.id))
        ]


def state_of(ctx, factory: Factory) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    """Everything an import could touch: posts, categories, tags, sources, their entries."""
    return factory.snapshot(), factory.counts(), source_rows(ctx), count(ctx, SourceEntry)


def serve(httpserver: HTTPServer, path: str, body: bytes, content_type: str) -> str:
    httpserver.expect_request(path).respond_with_data(body, content_type=content_type)
    return httpserver.url_for(path)


@pytest.fixture
def jijin(factory: Factory) -> None:
    factory.category("jijin")
    factory.category("gupiao")


# -- every format, from a file --------------------------------------------------------------------


@pytest.mark.parametrize("name,expected", FORMATS)
@pytest.mark.usefixtures("jijin")
def test_import_each_format_from_a_file(runner, ctx, name: str, expected) -> None:
    result = run(runner, "import", str(FIXTURES / name), "--category", "jijin")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"import: {len(expected)} new, 0 updated, 0 skipped\n"
    stored = posts(ctx)
    assert all(p.category.slug == "jijin" and p.status == "published" for p in stored)
    got = sorted((p.title, p.published_at) for p in stored)
    assert got == sorted((title, when) for title, when, _ in expected)
    links = {p.title: p.origin_link for p in stored}
    for title, _, link in expected:
        if link is not None:
            assert links[title] == link


@pytest.mark.usefixtures("jijin")
def test_the_gbk_feed_keeps_its_chinese_text(runner, ctx, client) -> None:
    result = run(runner, "import", str(FIXTURES / "gbk.xml"), "--category", "jijin")
    assert result.exit_code == 0, result.output
    (post,) = posts(ctx)
    assert post.title == "银行理财产品的风险等级"
    assert "R1 到 R5，看清再买。" in post.pages[0]
    body = client.get(f"/api/v1/posts/{post.id}").json
    assert body["title"] == "银行理财产品的风险等级"
    text = client.get("/feeds/jijin.rss").get_data(as_text=True)
    assert "银行理财产品的风险等级" in text and "看清再买" in text


@pytest.mark.usefixtures("jijin")
def test_a_gbk_feed_over_http_keeps_its_chinese_text(httpserver: HTTPServer, ctx) -> None:
    url = serve(
        httpserver,
        "/gbk.xml",
        (FIXTURES / "gbk.xml").read_bytes(),
        "application/rss+xml; charset=gbk",
    )
    assert import_feed(ctx, url, "jijin").new == 1
    (post,) = posts(ctx)
    assert post.title == "银行理财产品的风险等级" and "看清再买" in post.pages[0]


# -- running it again ----------------------------------------------------------------------------


@pytest.mark.usefixtures("jijin")
def test_running_the_same_import_twice_adds_nothing(runner, ctx, factory: Factory) -> None:
    path = str(FIXTURES / "rss20.xml")
    first = run(runner, "import", path, "--category", "jijin")
    assert first.stdout == "import: 2 new, 0 updated, 0 skipped\n", first.output
    before = state_of(ctx, factory)
    second = run(runner, "import", path, "--category", "jijin")
    assert second.exit_code == 0, second.output
    assert second.stdout == "import: 0 new, 0 updated, 2 skipped\n"
    assert state_of(ctx, factory) == before
    assert count(ctx, Source) == 1 and count(ctx, Post) == 2


@pytest.mark.usefixtures("jijin")
def test_the_import_only_source_is_listed_but_never_polled(runner, ctx, client, auth) -> None:
    run(runner, "import", str(FIXTURES / "rss10.rdf"), "--category", "jijin")
    (listed,) = client.get("/api/v1/sources", headers=auth).json["items"]
    assert listed["url"] == (FIXTURES / "rss10.rdf").resolve().as_uri()
    assert (listed["category"], listed["mode"], listed["enabled"]) == ("jijin", "posts", False)
    assert listed["state"]["disabled_reason"] == IMPORT_ONLY
    assert poll_sources(ctx, None) == []


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("jijin")
def test_import_over_http_works_the_same(
    httpserver: HTTPServer, runner, ctx, factory: Factory
) -> None:
    url = serve(
        httpserver, "/feed.xml", (FIXTURES / "rss20.xml").read_bytes(), "application/rss+xml"
    )
    first = run(runner, "import", url, "--category", "jijin")
    assert first.exit_code == 0, first.output
    assert first.stdout == "import: 2 new, 0 updated, 0 skipped\n"
    stored = posts(ctx, "jijin")
    assert [(p.title, p.published_at) for p in stored] == [
        ("第二篇", beijing(2024, 3, 14, 20, 0, 0)),
        ("我的应急基金放在哪里", beijing(2024, 3, 15, 9, 4, 5)),
    ]
    # Relative links resolve against the URL the feed came from.
    assert [p.origin_link for p in stored] == [
        "https://blog.example.cn/2024/03/second.html",
        httpserver.url_for("/2024/03/yingji.html"),
    ]
    assert stored[1].author == "王小钱" and [t.name for t in stored[1].tags] == ["应急", "货币基金"]
    before = state_of(ctx, factory)
    report = import_feed(ctx, url, "jijin")
    assert (report.new, report.updated, report.skipped) == (0, 0, 2)
    assert state_of(ctx, factory) == before


def rss_with_dates(*dated: tuple[str, str]) -> bytes:
    items = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{guid} 的文章</title>"
        f"<link>https://blog.example.cn/{guid}.html</link><pubDate>{date}</pubDate>"
        "<description>正文。</description></item>"
        for guid, date in dated
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>小钱袋</title><link>https://blog.example.cn/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


@pytest.mark.usefixtures("jijin")
def test_chinese_date_forms_are_beijing_time(httpserver: HTTPServer, ctx, client) -> None:
    feed = rss_with_dates(
        ("slash", "2024/03/15 09:04:05"),
        ("chinese", "2024年3月15日"),
        ("cst", "Fri, 15 Mar 2024 09:04:05 CST"),  # China Standard Time, not US Central
        ("iso-naive", "2024-03-15T10:30:00"),
        ("chinese-time", "2024年03月16日 08:15"),
        ("offset", "2024-03-15T09:04:05+00:00"),  # an explicit offset is kept
    )
    url = serve(httpserver, "/dates.xml", feed, "application/rss+xml; charset=utf-8")
    assert import_feed(ctx, url, "jijin").new == 6
    with ctx.db.read() as session:
        stored = {
            p.origin_link.rsplit("/", 1)[1].removesuffix(".html"): p
            for p in session.scalars(select(Post))
        }
    expected = {
        "slash": beijing(2024, 3, 15, 9, 4, 5),
        "chinese": beijing(2024, 3, 15, 0, 0, 0),
        "cst": beijing(2024, 3, 15, 9, 4, 5),
        "iso-naive": beijing(2024, 3, 15, 10, 30, 0),
        "chinese-time": beijing(2024, 3, 16, 8, 15, 0),
        "offset": beijing(2024, 3, 15, 17, 4, 5),
    }
    assert {key: p.published_at for key, p in stored.items()} == expected
    assert all(p.published_at.utcoffset() is not None for p in stored.values())
    # What the API shows: the same instants, in Beijing time.
    shown = client.get(f"/api/v1/posts/{stored['cst'].id}").json
    assert shown["published_at"] == "2024-03-15T09:04:05+08:00"


# -- deleted posts stay deleted ------------------------------------------------------------------


@pytest.mark.parametrize("over", ["file", "http"])
@pytest.mark.usefixtures("jijin")
def test_a_post_the_publisher_deleted_is_not_imported_again(
    httpserver: HTTPServer, runner, ctx, client, auth, over: str
) -> None:
    path = FIXTURES / "rss20.xml"
    target = (
        str(path)
        if over == "file"
        else serve(httpserver, "/feed.xml", path.read_bytes(), "application/rss+xml")
    )
    assert run(runner, "import", target, "--category", "jijin").exit_code == 0
    gone, kept = posts(ctx)
    assert client.delete(f"/api/v1/posts/{gone.id}", headers=auth).status_code == 204
    again = run(runner, "import", target, "--category", "jijin")
    assert again.exit_code == 0, again.output
    assert again.stdout == "import: 0 new, 0 updated, 2 skipped\n"
    assert [p.id for p in posts(ctx)] == [kept.id]
    assert client.get(f"/api/v1/posts/{gone.id}").status_code == 404


@pytest.mark.usefixtures("jijin")
def test_an_entry_edited_upstream_updates_its_post(httpserver: HTTPServer, ctx) -> None:
    original = rss_with_dates(("edited", "2024/03/15 09:04:05"))
    edited = original.replace("edited 的文章".encode(), "改过的标题".encode())
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(original)
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(edited)
    url = httpserver.url_for("/feed.xml")
    assert import_feed(ctx, url, "jijin").new == 1
    (before,) = posts(ctx)
    report = import_feed(ctx, url, "jijin")
    assert (report.new, report.updated) == (0, 1)
    (after,) = posts(ctx)
    assert (after.id, after.title, after.guid) == (before.id, "改过的标题", before.guid)


# -- the feeds it makes ------------------------------------------------------------------------


@pytest.mark.usefixtures("jijin")
def test_imported_posts_make_feeds_linking_to_the_originals(
    httpserver: HTTPServer, runner, client
) -> None:
    for name in ("rss20.xml", "atom10.xml", "rss10.rdf"):
        url = serve(httpserver, f"/{name}", (FIXTURES / name).read_bytes(), "application/xml")
        result = run(runner, "import", url, "--category", "jijin")
        assert result.exit_code == 0, result.output
    originals = {
        "我的应急基金放在哪里": httpserver.url_for("/2024/03/yingji.html"),
        "第二篇": "https://blog.example.cn/2024/03/second.html",
        "股票与基金的比例": httpserver.url_for("/posts/bili.html"),
        "债券基金怎么选": "https://blog.example.cn/2024/03/zhaiquan.html",
    }
    for fmt in ("atom", "rss"):
        response = client.get(f"/feeds/jijin.{fmt}")
        assert response.status_code == 200
        parsed, _ = parse(response.data)
        assert {e.title: e.link for e in parsed.entries} == originals, fmt
    # The other category's feed has none of them.
    parsed, _ = parse(client.get("/feeds/gupiao.atom").data)
    assert parsed.entries == []


# -- bad input ---------------------------------------------------------------------------------

BAD_IMPORTS = [
    pytest.param("rss20", "nope", "unknown category 'nope'", id="unknown-category"),
    pytest.param("missing-file", "jijin", "cannot read", id="missing-file"),
    pytest.param("directory", "jijin", "cannot read", id="a-directory"),
    pytest.param("malformed", "jijin", "not a valid feed", id="malformed-xml"),
    pytest.param("html", "jijin", "not a valid feed", id="an-html-page"),
    pytest.param("empty", "jijin", "not a valid feed", id="empty-file"),
    pytest.param("ftp://127.0.0.1/feed.xml", "jijin", "not ftp:", id="ftp-url"),
    pytest.param("http-404", "jijin", "HTTP 404", id="http-404"),
    pytest.param("http://10.0.0.1/feed", "jijin", "10.0.0.1 is a private address", id="private"),
    pytest.param("http://169.254.169.254/latest", "jijin", "link-local", id="metadata-address"),
    # A malformed internationalised name: idna's error escaped the guard (a traceback) before.
    pytest.param("http://xn--/feed", "jijin", "invalid URL", id="bad-a-label"),
    pytest.param("http://127.0.0.1:99999/feed", "jijin", "port", id="port-out-of-range"),
]


def bad_target(kind: str, tmp_path: Path, httpserver: HTTPServer) -> str:
    files = {
        "malformed": b'<?xml version="1.0"?><rss version="2.0"><channel><item>',
        "html": "<!doctype html><html><body><p>这不是订阅源</p></body></html>".encode(),
        "empty": b"",
    }
    if kind == "rss20":
        return str(FIXTURES / "rss20.xml")
    if kind == "missing-file":
        return str(tmp_path / "no-such-feed.xml")
    if kind == "directory":
        return str(tmp_path)
    if kind in files:
        path = tmp_path / f"{kind}.xml"
        path.write_bytes(files[kind])
        return str(path)
    if kind == "http-404":
        httpserver.expect_request("/gone.xml").respond_with_data("not here", status=404)
        return httpserver.url_for("/gone.xml")
    return kind


@pytest.mark.parametrize("kind,category,message", BAD_IMPORTS)
@pytest.mark.usefixtures("jijin")
def test_bad_imports_fail_with_one_readable_line_and_change_nothing(
    httpserver: HTTPServer,
    runner,
    ctx,
    factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    category: str,
    message: str,
) -> None:
    import httpx

    factory.post("jijin")  # something that must stay as it is
    target = bad_target(kind, tmp_path, httpserver)
    real_send = httpx.Client.send

    def loopback_only(self, request, **kwargs):  # type: ignore[no-untyped-def]
        # The address guard must refuse before connecting: never any traffic but to 127.0.0.1.
        assert request.url.host == "127.0.0.1", f"tried to connect to {request.url}"
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", loopback_only)
    before = state_of(ctx, factory)
    result = run(runner, "import", target, "--category", category)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("feedsvc: error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("feedsvc: error: import: ")
    assert message in errors[0], errors[0]
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert state_of(ctx, factory) == before


@pytest.mark.usefixtures("jijin")
def test_a_failed_import_prints_only_the_error_line(runner) -> None:
    result = run(runner, "import", str(FIXTURES / "rss20.xml"), "--category", "nope")
    assert result.exit_code == 1
    assert result.output == "feedsvc: error: import: unknown category 'nope'\n"


@pytest.mark.usefixtures("jijin")
def test_importing_a_polled_sources_url_leaves_that_source_alone(
    httpserver: HTTPServer, ctx, client, auth
) -> None:
    url = serve(
        httpserver, "/feed.xml", (FIXTURES / "rss20.xml").read_bytes(), "application/rss+xml"
    )
    polled = source_service.create_source(
        ctx, SourceCreate(url=url, category="jijin", mode="related", interval_minutes=30)
    )
    before = client.get(f"/api/v1/sources/{polled.id}", headers=auth).json
    with pytest.raises(Conflict, match="polled already"):
        import_feed(ctx, url, "gupiao")
    after = client.get(f"/api/v1/sources/{polled.id}", headers=auth).json
    assert (after["category"], after["mode"], after["enabled"]) == (
        before["category"],
        before["mode"],
        before["enabled"],
    )


def _rss(*items: tuple[str, str, str]) -> str:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><pubDate>{date}</pubDate>"
        f"<description>{title}的正文。</description></item>"
        for guid, title, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>旧博客</title><link>https://旧博客.example/</link>{body}</channel></rss>"
    )


@pytest.mark.usefixtures("jijin")
def test_entries_a_post_cannot_hold_are_skipped_and_named(runner, ctx, tmp_path: Path) -> None:
    """One bad entry (a date before 1970) is skipped with its reason; the others go in."""
    feed = tmp_path / "旧博客.xml"
    feed.write_text(
        _rss(
            ("good-1", "好的一篇", "Fri, 15 Mar 2024 09:04:05 +0800"),
            ("old-1", "太旧的一篇", "Tue, 15 Mar 1960 09:04:05 +0800"),
        ),
        "utf-8",
    )
    result = run(runner, "import", str(feed), "--category", "jijin")
    assert result.exit_code == 0, result.output
    assert result.stdout == "import: 1 new, 0 updated, 1 skipped\n"
    assert result.stderr.splitlines()[-1] == (
        "  skipped https://旧博客.example/old-1: invalid input: published_at: "
        "year must be between 1970 and 9998"
    )
    assert [p.title for p in posts(ctx)] == ["好的一篇"]
    # The good entry edited upstream to a date no post may have: its post stays as it was.
    feed.write_text(_rss(("good-1", "改过的一篇", "Tue, 15 Mar 1960 09:04:05 +0800")), "utf-8")
    again = run(runner, "import", str(feed), "--category", "jijin")
    assert again.exit_code == 0, again.output
    assert again.stdout == "import: 0 new, 0 updated, 1 skipped\n"
    assert "skipped https://旧博客.example/good-1: invalid input: published_at:" in again.stderr
    assert [(p.title, p.published_at) for p in posts(ctx)] == [
        ("好的一篇", beijing(2024, 3, 15, 9, 4, 5))
    ]


def test_a_file_over_sources_max_bytes_is_refused(db_url: str, tmp_path: Path) -> None:
    from feedsvc import create_app
    from feedsvc.config import load_settings
    from tests.conftest import overrides_for

    settings = load_settings(overrides_for(db_url, sources={"max_bytes": 1024}), environ={})
    app = create_app(settings=settings)
    ctx = app.extensions["feedsvc"]
    try:
        Factory(ctx).category("jijin")
        feed = tmp_path / "大文件.xml"
        feed.write_text(_rss(("big-1", "长" * 400, "Fri, 15 Mar 2024 09:04:05 +0800")), "utf-8")
        result = run(app.test_cli_runner(), "import", str(feed), "--category", "jijin")
        assert result.exit_code == 1
        assert result.stderr == (
            f"feedsvc: error: import: {feed} is larger than 1024 bytes (sources.max_bytes)\n"
        )
        assert posts(ctx) == [] and count(ctx, Source) == 0
    finally:
        ctx.db.dispose()


SAVED_FEED = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>旧站</title>'
    "<link>https://old.example.cn/blog/</link><description>d</description>"
    "<item><title>相对链接</title><link>2024/03/xiangdui.html</link>"
    '<description>&lt;p&gt;见&lt;a href="/about"&gt;关于&lt;/a&gt;&lt;/p&gt;</description>'
    "</item></channel></rss>"
).encode()


def _parsed_as_before(ctx: Any, content: bytes, url: str) -> Any:
    """The import's parse before issue 9: once against the file, again against its site."""
    from feedsvc.sources.parse import parse_feed

    tz = ctx.settings.site.tz
    parsed = parse_feed(content, headers={}, url=url, site_tz=tz, now=NOW)
    if parsed.link and parsed.link.startswith("http"):
        parsed = parse_feed(content, headers={}, url=parsed.link, site_tz=tz, now=NOW)
    return parsed


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URL of every feedparser parse the importer runs from now on."""
    from feedsvc.sources import importer

    calls: list[str] = []
    real = importer.parse_feed

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["url"])
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "parse_feed", counted)
    return calls


@pytest.mark.parametrize(
    "name",
    [*(p.name for p in sorted(FIXTURES.glob("*.xml"))), *(p.name for p in FIXTURES.glob("*.rdf"))],
)
def test_a_saved_file_is_parsed_once_as_it_was_parsed_twice(
    ctx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from feedsvc.sources import importer

    content = (FIXTURES / name).read_bytes()
    url = (FIXTURES / name).resolve().as_uri()
    try:
        expected = _parsed_as_before(ctx, content, url)
    except Exception:
        pytest.skip("not a feed the import accepts")
    calls = _count_parses(monkeypatch)
    assert importer._parse(ctx, content, {}, url, NOW) == expected
    # Once, except where the head cannot be read as plain XML (expat has no GBK): as before.
    assert len(calls) == 1 or name == "gbk.xml"


def test_relative_links_of_a_saved_file_resolve_against_its_site_in_one_parse(
    ctx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.sources import importer

    url = (tmp_path / "feed.xml").as_uri()
    calls = _count_parses(monkeypatch)
    parsed = importer._parse(ctx, SAVED_FEED, {}, url, NOW)
    assert calls == ["https://old.example.cn/blog/"]
    assert parsed == _parsed_as_before(ctx, SAVED_FEED, url)
    assert parsed.entries[0].link == "https://old.example.cn/blog/2024/03/xiangdui.html"
    assert 'href="https://old.example.cn/about"' in parsed.entries[0].summary_html
