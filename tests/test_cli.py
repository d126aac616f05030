"""The `feedsvc` command, through the same services as the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedsvc.cli import cli
from feedsvc.services import tokens as token_service
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")


def run(runner, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), input=input)


def test_init_is_idempotent(runner, factory: Factory) -> None:
    first = run(runner, "init")
    assert first.exit_code == 0, first.output
    assert "categories: 5 added" in first.output
    assert "sample posts: 16 loaded" in first.output
    counts = factory.counts()
    assert counts["categories"] == 5 and counts["posts"] == 16
    second = run(runner, "init")
    assert second.exit_code == 0, second.output
    assert "0 added, 0 updated, 5 unchanged" in second.output
    assert "sample posts: skipped" in second.output
    assert factory.counts() == counts


def test_sample_posts_make_valid_feeds(runner, client) -> None:
    from tests.feedcheck import parse

    assert run(runner, "init").exit_code == 0
    parsed, _ = parse(client.get("/feeds/all.atom").data)
    assert len(parsed.entries) == 16
    (multi,) = [e for e in parsed.entries if e.link.endswith("/posts/zhishu-jijin-xuanze")]
    assert multi.title == "指数基金怎么选：宽基、行业与ETF"
    assert "<!--nextpage-->" not in multi.content[0].value
    assert 'href="/posts/' not in multi.content[0].value  # relative links made absolute
    assert "alert(1)" not in client.get("/feeds/baoxian.rss").get_data(as_text=True)


def test_category_commands(runner, factory: Factory) -> None:
    added = run(runner, "category", "add", "baoxian", "--name", "保险", "--position", "4")
    assert added.exit_code == 0, added.output
    edited = run(runner, "category", "edit", "baoxian", "--description", "保险配置")
    assert edited.exit_code == 0, edited.output
    listing = run(runner, "category", "list")
    assert "baoxian" in listing.output and "保险" in listing.output
    factory.post("jijin")
    refused = run(runner, "category", "remove", "jijin")
    assert refused.exit_code == 1
    assert refused.output.strip().count("\n") == 0 and "move" in refused.output
    moved = run(runner, "category", "remove", "jijin", "--move-to", "baoxian")
    assert moved.exit_code == 0 and "1 posts moved" in moved.output
    bad = run(runner, "category", "add", "BAD SLUG", "--name", "坏")
    assert bad.exit_code == 1 and "slug" in bad.output


def test_post_commands(runner, factory: Factory, tmp_path: Path) -> None:
    factory.category()
    source = tmp_path / "post.md"
    source.write_text("# 记账\n\n第一页\n\n<!--nextpage-->\n\n第二页", encoding="utf-8")
    added = run(
        runner,
        "post",
        "add",
        "--title",
        "记账的第一步",
        "--category",
        "licai-fangfa",
        "--file",
        str(source),
        "--tag",
        "记账",
        "--tag",
        "预算",
    )
    assert added.exit_code == 0, added.output
    assert "ji-zhang-de-di-yi-bu" in added.output
    from_stdin = run(
        runner,
        "post",
        "add",
        "--title",
        "从标准输入",
        "--category",
        "licai-fangfa",
        "--status",
        "draft",
        input="标准输入的正文",
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    listing = run(runner, "post", "list")
    assert "记账的第一步" in listing.output and "draft" in listing.output
    factory.post("jijin", title="基金分类里的一篇")
    by_category = run(runner, "post", "list", "--category", "jijin")
    assert by_category.exit_code == 0, by_category.output
    assert "基金分类里的一篇" in by_category.output and "记账的第一步" not in by_category.output
    unknown = run(runner, "post", "list", "--category", "没有")
    assert (unknown.exit_code, unknown.output) == (1, "feedsvc: error: no category '没有'\n")
    shown = run(runner, "post", "show", "ji-zhang-de-di-yi-bu")
    assert '"page_count": 2' in shown.output and '"tags": [' in shown.output
    removed = run(runner, "post", "remove", "ji-zhang-de-di-yi-bu")
    assert removed.exit_code == 0
    missing = run(runner, "post", "show", "ji-zhang-de-di-yi-bu")
    assert missing.exit_code == 1 and missing.output.startswith("feedsvc: error:")
    bad = run(runner, "post", "add", "--title", "x", "--category", "no-such", input="正文")
    assert bad.exit_code == 1 and "category" in bad.output
    assert factory.counts()["posts"] == 2


def test_token_commands(runner, ctx) -> None:
    created = run(runner, "token", "create", "editor")
    assert created.exit_code == 0
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("fsv_") and token_service.authenticate(ctx, token) is not None
    assert "editor" in run(runner, "token", "list").output
    assert run(runner, "token", "revoke", "editor").exit_code == 0
    assert token_service.authenticate(ctx, token) is None
    assert run(runner, "token", "revoke", "nobody").exit_code == 1


def test_bad_config_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "feedsvc.toml"
    config.write_text('[feeds]\nmax_length = "many"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "category", "list"],
        env={"FEEDSVC_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "feeds.max_length" in result.stderr


def test_source_commands(runner, factory: Factory, httpserver) -> None:
    from feedsvc.sources.poll import poll_sources

    factory.category("jijin")
    url = httpserver.url_for("/feed.xml")
    httpserver.expect_request("/feed.xml").respond_with_data("oops", status=503)
    added = run(runner, "source", "add", url, "--category", "jijin", "--interval-minutes", "45")
    assert added.exit_code == 0, added.output
    assert f"added source 1 {url} (related, every 45 min)" in added.output
    poll_sources(runner.app.extensions["feedsvc"], None)
    listing = run(runner, "source", "list")
    assert listing.exit_code == 0
    header, row = listing.output.strip().splitlines()[:2]
    assert "next fetch" in header and "errors" in header
    assert "jijin" in row and "related" in row and "503" in row and url in row
    assert "disabled" in run(runner, "source", "disable", "1").output
    assert "enabled" in run(runner, "source", "enable", url).output
    for bad, message in (
        (["source", "add", "ftp://x.example/feed", "--category", "jijin"], "url"),
        (["source", "add", url + "?2", "--category", "jijin", "--interval", "1"], "interval"),
        (["source", "add", url, "--category", "jijin"], "exists"),
        (["source", "remove", "99"], "no source"),
    ):
        result = run(runner, *bad)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("feedsvc: error:") and message in result.output
        assert result.output.strip().count("\n") == 0
    assert run(runner, "source", "remove", "1").exit_code == 0
    assert "no source" in run(runner, "source", "remove", "1").output


def test_init_adds_the_sources_listed_in_categories_toml(db_url: str, tmp_path: Path) -> None:
    from feedsvc import create_app
    from feedsvc.config import load_settings
    from feedsvc.repo import sources as source_repo
    from tests.conftest import overrides_for

    (tmp_path / "categories.toml").write_text(
        '[[categories]]\nslug = "jijin"\nname = "基金"\n\n'
        '[[categories.sources]]\nurl = "https://上游.example/基金.xml"\nmode = "related"\n'
        "interval_minutes = 45\n",
        "utf-8",
    )
    overrides = overrides_for(db_url)
    overrides["data_dir"] = str(tmp_path)
    app = create_app(settings=load_settings(overrides, environ={}))
    ctx = app.extensions["feedsvc"]
    try:
        first = run(app.test_cli_runner(), "init")
        assert first.exit_code == 0, first.output
        assert "sources: 1 added, 0 updated, 0 unchanged" in first.output
        assert "sample posts: 0 loaded" in first.output
        again = run(app.test_cli_runner(), "init")
        assert "sources: 0 added, 0 updated, 1 unchanged" in again.output
        with ctx.db.read() as session:
            (source,) = source_repo.list_sources(session)
            assert (source.category.slug, source.mode, source.interval_minutes) == (
                "jijin",
                "related",
                45,
            )
    finally:
        ctx.db.dispose()
