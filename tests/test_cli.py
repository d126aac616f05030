"""The `feedsvc` command, through the same services as the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc import migrate
from feedsvc.cli import cli
from feedsvc.services import tokens as token_service
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")


def run(runner, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), input=input)


@pytest.fixture
def site_runner(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A CLI runner on a site made by `feedsvc new-site --samples` (its own feedsvc.toml, read
    from its folder), on this test's database."""
    from feedsvc import create_app
    from feedsvc.clock import FrozenClock
    from feedsvc.config import load_settings
    from tests.conftest import NOW

    folder = tmp_path / "站点"
    made = CliRunner().invoke(cli, ["new-site", str(folder), "--samples"])
    assert made.exit_code == 0, made.output
    settings = load_settings(
        {"database": {"url": db_url}, "scheduler": {"enabled": False}},
        environ={"FEEDSVC_CONFIG": str(folder / "feedsvc.toml")},
    )
    app = create_app(settings=settings, clock=FrozenClock(NOW))
    yield app.test_cli_runner()
    app.extensions["feedsvc"].db.dispose()


def test_init_is_idempotent(site_runner) -> None:  # type: ignore[no-untyped-def]
    factory = Factory(site_runner.app.extensions["feedsvc"])
    settings = site_runner.app.extensions["feedsvc"].settings
    first = run(site_runner, "init")
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == f"config: {settings.config_file}"
    assert lines[1].startswith("database: ")
    assert f"at revision {migrate.head_revision()}" in lines[1]
    assert f"categories ({settings.paths.categories}): 5 added" in first.output
    assert f"sample posts: 16 loaded from {settings.paths.posts}" in first.output
    counts = factory.counts()
    assert counts["categories"] == 5 and counts["posts"] == 16
    second = run(site_runner, "init")
    assert second.exit_code == 0, second.output
    assert "0 added, 5 already there, kept as they are\n" in second.output
    assert "sample posts: skipped (this database has had posts)" in second.output
    assert factory.counts() == counts


def test_init_hides_the_database_password(tmp_path: Path) -> None:
    from feedsvc.commands.setup import _safe_url

    assert _safe_url("postgresql+psycopg://u:s3cret@127.0.0.1/x") == (
        "postgresql+psycopg://u:***@127.0.0.1/x"
    )


def test_sample_posts_make_valid_feeds(site_runner) -> None:  # type: ignore[no-untyped-def]
    from tests.feedcheck import parse

    client = site_runner.app.test_client()
    assert run(site_runner, "init").exit_code == 0
    parsed, _ = parse(client.get("/feeds/all.atom").data)
    assert len(parsed.entries) == 16
    (multi,) = [e for e in parsed.entries if e.link.endswith("/posts/zhishu-jijin-xuanze")]
    assert multi.title == "指数基金怎么选：宽基、行业与ETF"
    assert "<!--nextpage-->" not in multi.content[0].value
    assert 'href="/posts/' not in multi.content[0].value  # relative links made absolute
    assert "alert(1)" not in client.get("/feeds/baoxian.rss").get_data(as_text=True)


def test_init_never_undoes_api_and_cli_edits(site_runner) -> None:  # type: ignore[no-untyped-def]
    """Renames and removals made through the API or CLI survive init (every `make run`)."""
    ctx = site_runner.app.extensions["feedsvc"]
    factory = Factory(ctx)
    client = site_runner.app.test_client()
    auth = {"Authorization": f"Bearer {factory.token('编辑')}"}
    assert run(site_runner, "init").exit_code == 0
    renamed = client.patch("/api/v1/categories/jijin", json={"name": "基金投资"}, headers=auth)
    assert renamed.status_code == 200
    edited = run(site_runner, "category", "edit", "gupiao", "--description", "自己写的说明")
    assert edited.exit_code == 0, edited.output
    gone = client.delete("/api/v1/categories/baoxian?move_to=licai-fangfa", headers=auth)
    assert gone.status_code == 204
    removed = run(site_runner, "category", "remove", "zhaiquan", "--move-to", "licai-fangfa")
    assert removed.exit_code == 0, removed.output
    before = factory.snapshot()

    again = run(site_runner, "init")
    assert again.exit_code == 0, again.output
    assert "0 added, 3 already there, kept as they are (2 differ from the file), " in again.output
    assert "2 removed earlier, not re-added" in again.output
    assert "`feedsvc category sync`" in again.output
    assert factory.snapshot() == before
    assert client.get("/api/v1/categories/jijin").json["name"] == "基金投资"
    assert client.get("/api/v1/categories/baoxian").status_code == 404

    # Explicitly: sync adds what is missing and reports what differs; --overwrite applies it.
    synced = run(site_runner, "category", "sync")
    assert synced.exit_code == 0, synced.output
    assert "added category baoxian" in synced.output and "added category zhaiquan" in synced.output
    assert "differs from the file (kept; --overwrite applies it): jijin: name" in synced.output
    assert "2 added, 0 updated, 1 unchanged, 2 differ (kept)" in synced.output
    assert client.get("/api/v1/categories/jijin").json["name"] == "基金投资"
    overwritten = run(site_runner, "category", "sync", "--overwrite")
    assert overwritten.exit_code == 0, overwritten.output
    assert "updated category jijin: name" in overwritten.output
    assert "updated category gupiao: description" in overwritten.output
    assert client.get("/api/v1/categories/jijin").json["name"] == "基金"
    # The removed slugs, re-created on purpose, are ordinary categories again for init.
    assert "0 added, 5 already there, kept as they are\n" in run(site_runner, "init").output


def test_samples_load_only_into_a_database_that_never_had_posts(site_runner) -> None:  # type: ignore[no-untyped-def]
    ctx = site_runner.app.extensions["feedsvc"]
    factory = Factory(ctx)
    skipped = run(site_runner, "init", "--no-samples")
    assert "sample posts: skipped (--no-samples)" in skipped.output
    assert factory.counts()["posts"] == 0
    loaded = run(site_runner, "init")  # never had a post: the samples come now
    assert "sample posts: 16 loaded" in loaded.output
    for post_id in range(1, 17):
        assert run(site_runner, "post", "remove", str(post_id)).exit_code == 0
    assert factory.counts()["posts"] == 0
    again = run(site_runner, "init")
    assert again.exit_code == 0, again.output
    assert "sample posts: skipped (this database has had posts)" in again.output
    assert factory.counts()["posts"] == 0


def test_a_post_from_the_api_first_means_no_samples(site_runner) -> None:  # type: ignore[no-untyped-def]
    factory = Factory(site_runner.app.extensions["feedsvc"])
    assert run(site_runner, "init", "--no-samples").exit_code == 0
    post = factory.post("jijin", title="我自己的第一篇")
    assert run(site_runner, "post", "remove", str(post.id)).exit_code == 0
    result = run(site_runner, "init")
    assert "sample posts: skipped (this database has had posts)" in result.output
    assert factory.counts()["posts"] == 0


def test_duplicate_slug_names_both_lines_and_stores_nothing(site_runner) -> None:  # type: ignore[no-untyped-def]
    ctx = site_runner.app.extensions["feedsvc"]
    path = ctx.settings.paths.categories
    path.write_text(
        '[[categories]]\nslug = "jijin"\nname = "基金"\n\n'
        '[[categories]]\n# 重复的一项\nslug = "gupiao"\nname = "股票"\n\n'
        '[[categories]]\nname = "又是基金"\nslug = "jijin"\n',
        encoding="utf-8",
    )
    for args in (["init"], ["category", "sync"]):
        result = run(site_runner, *args)
        assert result.exit_code == 1, result.output
        assert result.output == (
            f"feedsvc: error: {path}: line 12: category #3: slug 'jijin' is already "
            "category #1 (line 2)\n"
        )
    assert Factory(ctx).counts()["categories"] == 0


def test_a_bad_source_entry_rejects_the_whole_file(site_runner) -> None:  # type: ignore[no-untyped-def]
    ctx = site_runner.app.extensions["feedsvc"]
    path = ctx.settings.paths.categories
    path.write_text(
        '[[categories]]\nslug = "jijin"\nname = "基金"\n\n'
        '[[categories.sources]]\nurl = "https://partner.example.cn/jijin.xml"\n\n'
        '[[categories]]\nslug = "gupiao"\nname = "股票"\n\n'
        '[[categories.sources]]\nurl = "file:///etc/passwd"\n',
        encoding="utf-8",
    )
    for args in (["init"], ["category", "sync"], ["category", "sync", "--overwrite"]):
        result = run(site_runner, *args)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and "category #2, 'gupiao', source #1: " in (
            result.output
        )
        assert "(line 9)" in result.output
    assert Factory(ctx).counts()["categories"] == 0
    assert site_runner.app.test_client().get("/api/v1/categories").json["items"] == []


def test_category_sync_file_argument(site_runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = run(site_runner, "category", "sync", str(tmp_path / "缺少.toml"))
    assert missing.exit_code == 2
    assert missing.output == f"feedsvc: error: {tmp_path}/缺少.toml: file not found\n"
    other = tmp_path / "其他.toml"
    other.write_text(
        '[[categories]]\nslug = "qita"\nname = "其他"\n\n'
        '[[categories.sources]]\nurl = "https://其他.example/feed.xml"\nmode = "posts"\n',
        encoding="utf-8",
    )
    result = run(site_runner, "category", "sync", str(other))
    assert result.exit_code == 0, result.output
    assert "added category qita" in result.output
    assert "added source https://其他.example/feed.xml (qita)" in result.output
    assert "sources: 1 added, 0 updated" in result.output
    # An edit through the CLI is reported, kept, and undone only by --overwrite.
    assert run(site_runner, "source", "disable", "1").exit_code == 0
    ctx = site_runner.app.extensions["feedsvc"]
    from feedsvc.schemas import SourceUpdate
    from feedsvc.services.sources import update_source

    update_source(ctx, 1, SourceUpdate(mode="related"))
    kept = run(site_runner, "category", "sync", str(other))
    assert (
        "differs from the file (kept; --overwrite applies it): source https://其他.example/feed.xml"
        in kept.output
    )
    applied = run(site_runner, "category", "sync", "--overwrite", str(other))
    assert "sources: 0 added, 1 updated" in applied.output
    listed = run(site_runner, "source", "list").output
    assert "posts" in listed.splitlines()[1]


def test_init_and_sync_without_a_site_folder(runner) -> None:  # type: ignore[no-untyped-def]
    """A site from the environment only (no config file): no categories file, no samples."""
    result = run(runner, "init")
    assert result.exit_code == 0, result.output
    assert "config: none (defaults and FEEDSVC_* environment)" in result.output
    assert "categories: no categories file (paths.categories, or categories.toml)" in result.output
    assert "sample posts: none (no posts folder: paths.posts, or posts/)" in result.output
    sync = run(runner, "category", "sync")
    assert (sync.exit_code, sync.output) == (
        2,
        "feedsvc: error: no categories file: name one (feedsvc category sync FILE), "
        "or set paths.categories\n",
    )


def test_samples_wait_for_their_categories(site_runner) -> None:  # type: ignore[no-untyped-def]
    ctx = site_runner.app.extensions["feedsvc"]
    ctx.settings.paths.categories.write_text(
        '[[categories]]\nslug = "jijin"\nname = "基金"\n', encoding="utf-8"
    )
    result = run(site_runner, "init")
    assert result.exit_code == 0, result.output
    assert (
        "sample posts: skipped: their categories baoxian, gupiao, licai-fangfa, zhaiquan do not "
        "exist (add them, then run init again)" in result.output
    )
    assert Factory(ctx).counts()["posts"] == 0


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


def test_init_adds_sources_only_with_the_categories_it_adds(db_url: str, tmp_path: Path) -> None:
    """A source removed through the API is not brought back by init (its category exists);
    `category sync` adds it, explicitly."""
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
        assert "sources: 1 added\n" in first.output
        assert "sample posts: none (no posts folder" in first.output
        with ctx.db.read() as session:
            (source,) = source_repo.list_sources(session)
            assert (source.category.slug, source.mode, source.interval_minutes) == (
                "jijin",
                "related",
                45,
            )
        assert run(app.test_cli_runner(), "source", "remove", "1").exit_code == 0
        again = run(app.test_cli_runner(), "init")
        assert "sources: 0 added, 1 listed under existing categories not added" in again.output
        with ctx.db.read() as session:
            assert source_repo.list_sources(session) == []
        synced = run(app.test_cli_runner(), "category", "sync")
        assert "added source https://上游.example/基金.xml (jijin)" in synced.output
    finally:
        ctx.db.dispose()


def test_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert (result.exit_code, result.output) == (0, f"feedsvc {version('feedsvc')}\n")
    assert version("feedsvc") == "0.1.0"
