"""The CLI's failures: one line `feedsvc: error: ...` on stderr, exit 1 (2: configuration).

Regression tests for issue 7: each case here printed a Python traceback before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, select, text

from feedsvc import create_app, migrate
from feedsvc.cli import cli
from feedsvc.config import load_settings
from feedsvc.db import Database
from feedsvc.models import ApiToken
from tests.conftest import POSTGRES_URL, overrides_for
from tests.factories import Factory


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` must be refused before it starts gunicorn: were it not, fail instead of blocking."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve passed its argument validation")

    monkeypatch.setattr("feedsvc.server.serve", refuse)


def assert_one_error_line(result: Result, exit_code: int, *needles: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("feedsvc: error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def isolated(tmp_path: Path, **env: str) -> dict[str, str]:
    """Environment for a CLI run that builds its own app from FEEDSVC_* settings."""
    config = tmp_path / "feedsvc.toml"
    config.write_text('[site]\ntitle = "测试站"\n[scheduler]\nenabled = false\n', "utf-8")
    return {"FEEDSVC_CONFIG": str(config), **env}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- configuration: exit 2, naming the key -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("garbage", "cannot be read as a database URL"),
        ("foo://x/y", "unsupported database 'foo'"),
        ("postgresql+nodriver://u@127.0.0.1/x", "unknown database dialect or driver"),
        ("mysql://u@127.0.0.1/x", "unsupported database 'mysql'"),
        ("postgresql+psycopg://u@127.0.0.1:port/x", "cannot be read as a database URL"),
        ("sqlite://somehost/x.db", "Invalid SQLite URL"),
        ("sqlite:////tmp/数据\x01库.db", "control character U+0001"),
    ],
)
def test_bad_database_url_is_a_configuration_error(tmp_path: Path, url: str, needle: str) -> None:
    env = isolated(tmp_path, FEEDSVC_DATABASE_URL=url)
    result = CliRunner().invoke(cli, ["category", "list"], env=env)
    assert_one_error_line(result, 2, "FEEDSVC_DATABASE_URL", "database.url", needle)


def test_sqlite_path_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("我是文件", "utf-8")
    url = f"sqlite:///{blocker}/sub/feedsvc.db"
    result = CliRunner().invoke(
        cli, ["post", "list"], env=isolated(tmp_path, FEEDSVC_DATABASE_URL=url)
    )
    assert_one_error_line(result, 2, "database.url", "is not a folder")
    assert blocker.read_text("utf-8") == "我是文件"


def test_sqlite_folder_the_system_refuses_to_create(tmp_path: Path) -> None:
    """/proc takes no new folders, for root too: the OSError becomes one configuration line."""
    url = "sqlite:////proc/feedsvc-测试/feedsvc.db"
    result = CliRunner().invoke(
        cli, ["post", "list"], env=isolated(tmp_path, FEEDSVC_DATABASE_URL=url)
    )
    assert_one_error_line(result, 2, "database.url", "/proc/feedsvc-测试")
    assert not Path("/proc/feedsvc-测试").exists()


def test_bad_url_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "feedsvc.toml"
    config.write_text('[database]\nurl = "oracle://scott@127.0.0.1/orcl"\n', "utf-8")
    result = CliRunner().invoke(cli, ["token", "list"], env={"FEEDSVC_CONFIG": str(config)})
    assert_one_error_line(result, 2, str(config), "database.url", "unsupported database")


def test_help_and_unknown_commands_work_with_a_broken_configuration(tmp_path: Path) -> None:
    env = isolated(tmp_path, FEEDSVC_DATABASE_URL="garbage")
    shown = CliRunner().invoke(cli, ["--help"], env=env)
    assert shown.exit_code == 0 and "category" in shown.stdout and shown.stderr == ""
    unknown = CliRunner().invoke(cli, ["nosuch"], env=env)
    assert unknown.exit_code == 2 and "No such command 'nosuch'" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """Through `python -m feedsvc.cli`, as a shell runs it: create_app() fails lazily."""
    env = isolated(tmp_path, FEEDSVC_DATABASE_URL="garbage", PATH="/usr/bin:/bin")
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "category", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("feedsvc: error: environment: FEEDSVC_DATABASE_URL")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# -- storage faults: exit 1 ----------------------------------------------------------------------


def test_unreachable_postgresql(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/feedsvc?connect_timeout=3"
    for args in (["category", "list"], ["token", "create", "编辑"], ["init"]):
        result = CliRunner().invoke(cli, args, env=isolated(tmp_path, FEEDSVC_DATABASE_URL=url))
        assert_one_error_line(result, 1, "unreachable")


@pytest.fixture
def unmigrated_url(backend: str, tmp_path: Path) -> Any:
    """A database without feedsvc's tables: a new SQLite file, or an empty PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    assert POSTGRES_URL
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS feedsvc_unmigrated CASCADE"))
        connection.execute(text("CREATE SCHEMA feedsvc_unmigrated"))
    yield f"{POSTGRES_URL}?options=-csearch_path%3Dfeedsvc_unmigrated"
    with admin.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA feedsvc_unmigrated CASCADE"))
    admin.dispose()


@pytest.mark.parametrize(
    "args",
    [
        ["category", "list"],
        ["post", "list"],
        ["post", "show", "1"],
        ["token", "create", "编辑"],
        ["source", "list"],
        ["jobs"],
        ["related", "show", "some-post"],
    ],
)
def test_any_command_before_init_says_run_init(unmigrated_url: str, args: list[str]) -> None:
    app = create_app(settings=load_settings(overrides_for(unmigrated_url), environ={}))
    try:
        result = app.test_cli_runner().invoke(cli, args)
        assert_one_error_line(result, 1, "run `feedsvc init`")
        assert migrate.current_revision(app.extensions["feedsvc"].db) is None
    finally:
        app.extensions["feedsvc"].db.dispose()


def make_read_only(ctx: Any) -> None:
    """Every new connection refuses writes, as a read-only file or a standby does."""
    engine = ctx.db.engine
    engine.dispose()
    statement = (
        "PRAGMA query_only = ON"
        if engine.dialect.name == "sqlite"
        else "SET default_transaction_read_only = on"
    )

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        if engine.dialect.name != "sqlite":
            dbapi_connection.commit()


def test_read_only_database(runner: Any, ctx: Any, factory: Factory, tmp_path: Path) -> None:
    factory.post()
    before = factory.snapshot(), factory.counts()
    make_read_only(ctx)
    source = tmp_path / "正文.md"
    source.write_text("只读数据库里写不进去。", "utf-8")
    for args in (
        ["token", "create", "编辑"],
        ["category", "add", "baoxian", "--name", "保险"],
        ["category", "edit", "licai-fangfa", "--name", "理财"],
        ["post", "add", "--title", "只读", "--category", "licai-fangfa", "--file", str(source)],
        ["post", "remove", "1"],
    ):
        result = runner.invoke(cli, args)
        assert_one_error_line(result, 1, "read-only")
    listing = runner.invoke(cli, ["post", "list"])  # reading still works
    assert listing.exit_code == 0 and "每月结余" in listing.stdout
    assert (factory.snapshot(), factory.counts()) == before


# -- bad input: exit 1, nothing changed ----------------------------------------------------------


def test_unknown_revision(runner: Any, ctx: Any) -> None:
    before = migrate.current_revision(ctx.db)
    result = runner.invoke(cli, ["db", "upgrade", "--revision", "zzz"])
    assert_one_error_line(result, 1, "migration:", "'zzz'")
    assert migrate.current_revision(ctx.db) == before == migrate.head_revision()


def test_post_add_with_non_utf8_file(runner: Any, factory: Factory, tmp_path: Path) -> None:
    factory.category()
    before = factory.counts()
    source = tmp_path / "gbk.md"
    source.write_bytes("# 标题\n\n正文".encode("gbk"))
    result = runner.invoke(
        cli, ["post", "add", "--title", "编码", "--category", "licai-fangfa", "--file", str(source)]
    )
    assert_one_error_line(result, 1, str(source), "not UTF-8", "at offset 2")
    from_stdin = runner.invoke(
        cli,
        ["post", "add", "--title", "编码", "--category", "licai-fangfa"],
        input="正文".encode() + b"\xff",
    )
    assert_one_error_line(from_stdin, 1, "stdin", "byte 0xff at offset 6")
    assert factory.counts() == before


def test_post_add_with_unreadable_file(runner: Any, factory: Factory, tmp_path: Path) -> None:
    factory.category()
    before = factory.counts()
    missing = tmp_path / "不存在.md"
    result = runner.invoke(
        cli, ["post", "add", "--title", "缺", "--category", "licai-fangfa", "--file", str(missing)]
    )
    assert_one_error_line(result, 1, str(missing), "No such file")
    assert factory.counts() == before


def test_post_add_refuses_an_endless_file(runner: Any, factory: Factory) -> None:
    factory.category()
    before = factory.counts()
    result = runner.invoke(
        cli, ["post", "add", "--title", "无尽", "--category", "licai-fangfa", "--file", "/dev/zero"]
    )
    assert_one_error_line(result, 1, "/dev/zero: larger than 8388608 bytes")
    assert factory.counts() == before


HOSTILE_IDS = ["99999999999999999999999", "2147483648", "0", "٣", "²", "１", "1_0", " 1"]


@pytest.mark.parametrize("ident", HOSTILE_IDS)
def test_ids_are_ascii_digits_within_range(
    runner: Any, factory: Factory, ident: str, httpserver: Any
) -> None:
    # One row of each kind with id 1, so that '٣' → 3 or '１' → 1 would find something.
    for _ in range(3):
        factory.post()
    factory.token("编辑")
    url = httpserver.url_for("/feed.xml")
    assert runner.invoke(cli, ["source", "add", url, "--category", "licai-fangfa"]).exit_code == 0
    before = factory.snapshot(), factory.counts()
    for args, needle in (
        (["post", "show", ident], "no post with id or slug"),
        (["post", "remove", ident], "no post with id or slug"),
        (["related", "show", ident], "no post with id or slug"),
        (["source", "enable", ident], "no source with id or URL"),
        (["source", "disable", ident], "no source with id or URL"),
        (["source", "remove", ident], "no source with id or URL"),
        (["token", "revoke", ident], "no token with id or name"),
    ):
        result = runner.invoke(cli, args)
        assert_one_error_line(result, 1, needle)
    assert (factory.snapshot(), factory.counts()) == before
    with runner.app.extensions["feedsvc"].db.read() as session:
        assert session.scalars(select(ApiToken.revoked_at)).all() == [None]


@pytest.mark.parametrize(
    "args",
    [
        ["category", "add", "baoxian", "--name", "保险", "--position", "99999999999999999999999"],
        ["category", "add", "baoxian", "--name", "保险", "--position", "٣"],
        ["category", "add", "baoxian", "--name", "保险", "--feed-length", "0"],
        ["category", "edit", "licai-fangfa", "--feed-length", "-1"],
        ["category", "edit", "licai-fangfa", "--position", "1e3"],
        ["post", "list", "--limit", "99999999999999999999999"],
        ["post", "list", "--limit", "٣"],
        ["source", "add", "http://127.0.0.1:9/f", "--category", "licai-fangfa", "--interval", "²"],
        [
            "source",
            "add",
            "http://127.0.0.1:9/f",
            "--category",
            "licai-fangfa",
            "--interval",
            "99999999999999999999999",
        ],
        ["serve", "--port", "99999999999999999999999"],
        ["serve", "--port", "0"],
        ["serve", "--workers", "٣"],
    ],
)
def test_number_options_are_bounded(runner: Any, factory: Factory, args: list[str]) -> None:
    factory.category()
    before = factory.snapshot(), factory.counts()
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.stderr and "is not a whole number from" in result.stderr
    assert "Traceback" not in result.output
    assert (factory.snapshot(), factory.counts()) == before


@pytest.mark.parametrize("arg", ["a\x00b", "\udcff", "标题\udc80"])
def test_arguments_a_shell_cannot_pass_are_refused(runner: Any, factory: Factory, arg: str) -> None:
    factory.category()
    before = factory.snapshot(), factory.counts()
    for args in (["token", "create", arg], ["category", "add", "x", "--name", arg]):
        result = runner.invoke(cli, args)
        assert_one_error_line(result, 1, f"argument {args.index(arg) + 1} contains")
    assert (factory.snapshot(), factory.counts()) == before


def app_with_data(db_url: str, data_dir: Path) -> Any:
    overrides = overrides_for(db_url)
    overrides["data_dir"] = str(data_dir)
    return create_app(settings=load_settings(overrides, environ={}))


GBK_SAMPLE = '+++\ntitle = "编码"\n+++\n正文'.encode("gbk")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (GBK_SAMPLE, "坏样例.md: not UTF-8 text (byte 0xb1 at offset 13)"),
        ("# 没有头部\n\n正文".encode(), "坏样例.md: must start with a +++ TOML front matter"),
        ('+++\ntitle = "未闭合"\n正文'.encode(), "坏样例.md: the front matter block is not closed"),
        ("+++\ntitle = 未加引号\n+++\n正文".encode(), "坏样例.md: front matter: invalid TOML"),
        (
            '+++\ntitle = "缺分类"\n+++\n正文'.encode(),
            "坏样例.md: invalid input: category: is required",
        ),
    ],
)
def test_init_refuses_a_bad_sample_post(
    unmigrated_url: str, tmp_path: Path, content: bytes, needle: str
) -> None:
    """Every sample is read before the database is touched: a bad one changes nothing."""
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "01-好样例.md").write_text(
        '+++\ntitle = "好的"\ncategory = "jijin"\n+++\n正文', "utf-8"
    )
    (tmp_path / "posts" / "02-坏样例.md").write_bytes(content)
    app = app_with_data(unmigrated_url, tmp_path)
    try:
        result = app.test_cli_runner().invoke(cli, ["init"])
        assert_one_error_line(result, 1, needle)
        assert migrate.current_revision(app.extensions["feedsvc"].db) is None
    finally:
        app.extensions["feedsvc"].db.dispose()


def test_init_refuses_sources_that_are_not_tables(unmigrated_url: str, tmp_path: Path) -> None:
    (tmp_path / "categories.toml").write_text(
        '[[categories]]\nslug = "jijin"\nname = "基金"\nsources = "https://上游.test/feed"\n',
        "utf-8",
    )
    app = app_with_data(unmigrated_url, tmp_path)
    try:
        result = app.test_cli_runner().invoke(cli, ["init", "--no-samples"])
        assert_one_error_line(
            result, 1, "categories.toml: category #1: 'sources' must be [[categories.sources]]"
        )
        assert migrate.current_revision(app.extensions["feedsvc"].db) is None
    finally:
        app.extensions["feedsvc"].db.dispose()


def test_a_bug_keeps_its_traceback(runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only known failures become one line: a bug must not hide behind a tidy message."""

    def broken(_session: Any) -> None:
        raise RuntimeError("程序缺陷")

    monkeypatch.setattr("feedsvc.repo.categories.list_categories", broken)
    result = runner.invoke(cli, ["category", "list"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError) and str(result.exception) == "程序缺陷"
    assert "feedsvc: error" not in result.output


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`feedsvc category list | head -0`: the pipe closes before feedsvc writes; no error line."""
    from tests.processes import config_env

    env = config_env(tmp_path, f"sqlite:///{tmp_path}/feedsvc.db")
    init = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "init"], env=env, capture_output=True, timeout=120
    )
    assert init.returncode == 0, init.stderr
    reader, writer = os.pipe()
    os.close(reader)  # gone before the command writes a byte
    try:
        result = subprocess.run(
            [sys.executable, "-m", "feedsvc.cli", "category", "list"],
            env=env,
            stdout=writer,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)
    assert result.returncode == 1
    assert result.stderr == b""  # neither "error: Broken pipe" nor a traceback
