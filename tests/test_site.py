"""`feedsvc new-site`, and how a real `feedsvc` process finds its site (--config, then
FEEDSVC_CONFIG, then ./feedsvc.toml), run as a user would: a process, a working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import cli
from feedsvc.config import load_settings
from feedsvc.services.samples import SAMPLE_CATEGORIES, SAMPLE_POSTS
from tests.processes import alive, children, cmdline, free_port, kill_all, wait_for


def feedsvc(
    *args: str | bytes, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    return subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", *args],
        cwd=cwd,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("feedsvc: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    return result.stderr.removeprefix("feedsvc: error: ").rstrip("\n")


def new_site(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["new-site", *args])
    return result.exit_code, result.output


# -- new-site ------------------------------------------------------------------------------------


def test_new_site_writes_a_site_that_loads(tmp_path: Path) -> None:
    folder = tmp_path / "我的站"
    code, output = new_site(
        str(folder),
        "--base-url",
        "https://feeds.例子.cn/",
        "--title",
        '小王的"理财"笔记',
        "--tag-authority",
        "例子.cn",
    )
    assert code == 0, output
    assert f"wrote {folder}/feedsvc.toml" in output and f"wrote {folder}/categories.toml" in output
    assert output.endswith(
        f"next: cd {folder} && feedsvc init && feedsvc serve\n"
        "admin: feedsvc user create NAME (then sign in at /admin)\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["categories.toml", "feedsvc.toml"]
    text = (folder / "feedsvc.toml").read_text(encoding="utf-8")
    assert "NEVER change them" in text  # why guids must stay
    raw = tomllib.loads(text)
    assert len(raw["site"]["secret_key"]) >= 40
    settings = load_settings(environ={"FEEDSVC_CONFIG": str(folder / "feedsvc.toml")})
    assert settings.site.title == '小王的"理财"笔记'
    assert settings.site.base_url == "https://feeds.例子.cn"
    assert settings.site.tag_authority == "例子.cn"
    assert settings.site.secret_key == raw["site"]["secret_key"]
    assert settings.database.url == f"sqlite:///{folder}/feedsvc.db"
    assert settings.paths.categories == folder / "categories.toml"
    # A second site gets another secret.
    assert new_site(str(tmp_path / "另一个"))[0] == 0
    other = tomllib.loads((tmp_path / "另一个" / "feedsvc.toml").read_text(encoding="utf-8"))
    assert other["site"]["secret_key"] != raw["site"]["secret_key"]
    assert other["site"]["tag_authority"] == "127.0.0.1"  # the base URL's host


def test_new_site_with_samples_copies_the_packaged_posts(tmp_path: Path) -> None:
    code, output = new_site(str(tmp_path / "site"), "--samples")
    assert code == 0, output
    posts = sorted(p.name for p in (tmp_path / "site" / "posts").iterdir())
    assert posts == sorted(p.name for p in SAMPLE_POSTS.glob("*.md")) and len(posts) == 16
    assert (tmp_path / "site" / "categories.toml").read_bytes() == SAMPLE_CATEGORIES.read_bytes()


def test_new_site_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "feedsvc.toml").write_text("# 我自己的配置\n", encoding="utf-8")
    code, output = new_site(str(folder))
    assert code == 1
    assert output == (
        f"feedsvc: error: {folder}: the folder is not empty; use --force to add the missing "
        "files to it (existing files are never overwritten)\n"
    )
    assert [p.name for p in folder.iterdir()] == ["feedsvc.toml"]
    code, output = new_site(str(folder), "--force", "--samples")
    assert code == 0, output
    assert f"kept {folder}/feedsvc.toml (exists; not overwritten)" in output
    assert f"wrote {folder}/categories.toml" in output
    assert (folder / "feedsvc.toml").read_text(encoding="utf-8") == "# 我自己的配置\n"
    assert len(list((folder / "posts").iterdir())) == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-url", "ftp://x.example"], "--base-url: must be an absolute http(s) URL"),
        (["--database-url", "mysql://u@h/x"], "--database-url: unsupported database 'mysql'"),
        (["--title", ""], "--title: String should have at least 1 character"),
        (["--title", "坏\x07标题"], "--title: contains the control character U+0007"),
    ],
)
def test_new_site_bad_options_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = new_site(str(tmp_path / "site"), *args)
    assert code == 1
    assert output.startswith(f"feedsvc: error: {message}") and output.count("\n") == 1
    assert not (tmp_path / "site").exists()


def test_new_site_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "文件").write_text("x", encoding="utf-8")
    code, output = new_site(str(tmp_path / "文件"))
    assert (code, output) == (1, f"feedsvc: error: {tmp_path}/文件: exists and is not a folder\n")
    code, output = new_site(str(tmp_path / "文件" / "站点"))
    assert code == 1 and "cannot write the site: Not a directory" in output


def test_new_site_unwritable_dir(tmp_path: Path) -> None:
    # /proc refuses new folders even to root, so this runs as root too.
    result = feedsvc("new-site", "/proc/feedsvc-站点", cwd=tmp_path)
    message = one_line_error(result, 1)
    assert message.startswith("/proc/feedsvc-站点: cannot write the site: ")
    if os.geteuid() != 0:  # pragma: no cover - root may write anywhere
        locked = tmp_path / "只读"
        locked.mkdir(mode=0o555)
        assert "not writable" in one_line_error(feedsvc("new-site", str(locked), cwd=tmp_path), 1)


def test_new_site_hostile_names(tmp_path: Path) -> None:
    nul = CliRunner().invoke(cli, ["new-site", "a\x00b"])
    assert (nul.exit_code, nul.output) == (
        1,
        "feedsvc: error: argument 2 contains a NUL character\n",
    )
    # Bytes that are not UTF-8 reach Python as lone surrogates (PEP 383): refused, one line.
    result = feedsvc(b"new-site", b"site-\xff", cwd=tmp_path)  # type: ignore[arg-type]
    assert one_line_error(result, 1) == "argument 2 contains bytes that are not UTF-8"
    assert list(tmp_path.iterdir()) == []


# -- discovery, in real processes ----------------------------------------------------------------


def make_site(folder: Path, title: str) -> Path:
    code, output = new_site(str(folder), "--title", title)
    assert code == 0, output
    return folder / "feedsvc.toml"


def test_discovery_order_in_a_process(tmp_path: Path) -> None:
    by_option = make_site(tmp_path / "选项", "选项站")
    by_env = make_site(tmp_path / "环境", "环境站")
    here = make_site(tmp_path / "当前", "当前站")
    cwd = here.parent
    env = {"FEEDSVC_CONFIG": str(by_env)}
    first = feedsvc("--config", str(by_option), "init", "--no-samples", cwd=cwd, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"config: {by_option}"
    assert f"database: sqlite:///{by_option.parent}/feedsvc.db at revision" in first.stdout
    second = feedsvc("init", "--no-samples", cwd=cwd, env=env)
    assert second.stdout.splitlines()[0] == f"config: {by_env}"
    third = feedsvc("init", "--no-samples", cwd=cwd)
    assert third.stdout.splitlines()[0] == f"config: {here}"
    # A relative --config is relative to the working directory; the site's files are not.
    relative = feedsvc("--config", "../选项/feedsvc.toml", "category", "list", cwd=cwd)
    assert relative.returncode == 0, relative.stderr
    assert "suibi" in relative.stdout
    assert sorted(p.name for p in cwd.iterdir()) == [
        "categories.toml",
        "feedsvc.db",
        "feedsvc.toml",
    ]


def test_no_site_found_is_exit_2_with_a_hint(tmp_path: Path) -> None:
    result = feedsvc("init", cwd=tmp_path)
    message = one_line_error(result, 2)
    assert message.startswith(
        f"no configuration: no --config, no FEEDSVC_CONFIG and no feedsvc.toml in {tmp_path}; "
    )
    assert "feedsvc new-site DIR" in message and "--config" in message
    assert list(tmp_path.iterdir()) == []  # no database anywhere near


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("option", "--config: {path}: file not found"),
        ("env", "FEEDSVC_CONFIG: {path}: file not found"),
        ("folder-option", "--config: {folder}: is a folder; name the site's feedsvc.toml"),
        ("folder-env", "FEEDSVC_CONFIG: {folder}: is a folder; name the site's feedsvc.toml"),
    ],
)
def test_a_named_config_that_is_not_a_file(tmp_path: Path, how: str, expected: str) -> None:
    path = tmp_path / "缺少.toml"
    named = str(tmp_path) if how.startswith("folder") else str(path)
    if how.endswith("option"):
        result = feedsvc("--config", named, "category", "list", cwd=tmp_path)
    else:
        result = feedsvc("category", "list", cwd=tmp_path, env={"FEEDSVC_CONFIG": named})
    assert one_line_error(result, 2) == expected.format(path=path, folder=tmp_path)


def test_a_named_categories_file_that_does_not_exist(tmp_path: Path) -> None:
    config = make_site(tmp_path / "site", "站")
    text = config.read_text(encoding="utf-8")
    assert '# categories = "categories.toml"' in text
    config.write_text(
        text.replace('# categories = "categories.toml"', 'categories = "分类/没有.toml"'),
        encoding="utf-8",
    )
    result = feedsvc("init", cwd=config.parent)
    assert one_line_error(result, 2) == (
        f"config: {config}: paths.categories: {config.parent}/分类/没有.toml: not found"
    )
    assert not (config.parent / "feedsvc.db").exists()


def test_new_site_then_init_and_serve_from_elsewhere(tmp_path: Path) -> None:
    """The whole path a new user takes, in processes, never inside the checkout."""
    config = tmp_path / "site" / "feedsvc.toml"
    made = feedsvc("new-site", str(config.parent), "--samples", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    init = feedsvc("--config", str(config), "init", cwd=Path("/"))
    assert init.returncode == 0, init.stderr
    assert "categories (" in init.stdout and ": 5 added" in init.stdout
    assert "sample posts: 16 loaded" in init.stdout
    listing = feedsvc("post", "list", "--limit", "100", cwd=config.parent)
    assert listing.returncode == 0
    assert len(listing.stdout.splitlines()) == 1 + 16  # the header, then every sample
    # --config reaches the gunicorn workers and the scheduler process (via FEEDSVC_CONFIG).
    port = free_port()
    log = tmp_path / "serve.log"
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "feedsvc.cli",
                "--config",
                str(config),
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd="/",
            env=clean,
            stdout=output,
            stderr=output,
        )
    started: list[int] = []
    try:

        def answered() -> bytes | None:
            started[:] = [pid for pid in children(server.pid) if pid not in started] + started
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/feeds/all.rss", timeout=5
                ) as r:
                    return bytes(r.read())
            except OSError:
                return None

        body = wait_for(answered, 90, "serve to answer", step=0.5)
        assert body.count(b"<item>") == 16
        scheduler = wait_for(
            lambda: [p for p in children(server.pid) if "scheduler" in cmdline(p)],
            30,
            "the scheduler process",
        )
        time.sleep(2)  # a scheduler that could not find the site would have exited by now
        assert all(alive(pid) for pid in scheduler), log.read_text(errors="replace")[-2000:]
    finally:
        kill_all([*started, *children(server.pid), server.pid])
        server.wait(timeout=30)
