"""`feedsvc backup FILE`: SQLite through the online backup API, PostgreSQL through pg_dump."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from feedsvc.cli import cli
from feedsvc.errors import FeedsvcError
from feedsvc.transfer import backup as backup_module
from tests.factories import Factory
from tests.test_cli_errors import assert_one_error_line


def run(runner: Any, *args: str) -> Any:
    return runner.invoke(cli, list(args))


def sqlite_file(ctx: Any) -> Path:
    return Path(make_url(ctx.db.url).database or "")


@pytest.fixture
def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's online backup API")


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("pg_dump")


@pytest.mark.usefixtures("sqlite_only")
def test_sqlite_backup_includes_writes_still_in_the_wal(
    runner: Any, ctx: Any, factory: Factory, tmp_path: Path
) -> None:
    factory.post(title="写进主文件的文章")
    path = sqlite_file(ctx)
    ctx.db.dispose()
    # Everything so far into the main file, then a write that stays in the WAL: a live
    # connection with automatic checkpoints off, still open while the backup runs.
    live = sqlite3.connect(path, isolation_level=None)
    live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    live.execute("PRAGMA wal_autocheckpoint=0")
    live.execute("UPDATE categories SET name = '只在预写日志里的新名字'")
    try:
        assert "只在预写日志里的新名字".encode() not in path.read_bytes()
        assert "只在预写日志里的新名字".encode() in Path(f"{path}-wal").read_bytes()
        # What copying the file would have lost:
        copied = tmp_path / "copied.db"
        shutil.copyfile(path, copied)
        with sqlite3.connect(copied) as plain:
            assert plain.execute("SELECT name FROM categories").fetchone()[0] == "理财方法"

        target = tmp_path / "backup.db"
        result = run(runner, "backup", str(target))
        assert result.exit_code == 0, result.output
        assert f"backup: {target}" in result.stdout and "sqlite-backup-api" in result.stdout
    finally:
        live.close()
    assert not Path(f"{target}-wal").exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a backup holds the whole site
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".backup.db")] == []
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT name FROM categories").fetchone()[0] == "只在预写日志里的新名字"
        assert copy.execute("SELECT title FROM posts").fetchone()[0] == "写进主文件的文章"


@pytest.mark.usefixtures("sqlite_only")
def test_sqlite_backup_while_writes_go_on(
    ctx: Any, factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write during the copy restarts it: the copy is one committed state, never a mix."""
    for _ in range(20):
        factory.post(content="长文。" * 2000)
    monkeypatch.setattr(backup_module, "PAGES_PER_STEP", 2)  # many steps, writes between them
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        while not stop.is_set() and len(written) < 30:
            written.append(factory.post().id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[int] = []
        report = backup_module.backup(
            ctx.db.url,
            tmp_path / "live.db",
            force=False,
            progress=lambda done, total: seen.append(done),
        )
    finally:
        stop.set()
        thread.join()
    assert report.method == "sqlite-backup-api" and seen and seen[-1] > 0
    with sqlite3.connect(tmp_path / "live.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        posts = copy.execute("SELECT count(*) FROM posts").fetchone()[0]
        # Each post and its tags and feed versions are one transaction: all there, or none.
        tagged = copy.execute("SELECT count(DISTINCT post_id) FROM post_tags").fetchone()[0]
    assert 20 <= posts <= 20 + len(written) and tagged == posts


def test_backup_refuses_to_overwrite_without_force(
    runner: Any, ctx: Any, factory: Factory, tmp_path: Path, backend: str
) -> None:
    if backend == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    factory.post()
    target = tmp_path / "existing.bak"
    assert run(runner, "backup", str(target)).exit_code == 0
    first = target.read_bytes()
    assert first[:5] == (b"PGDMP" if backend == "postgresql" else b"SQLit")
    factory.post(title="第一次备份之后写的")
    assert_one_error_line(run(runner, "backup", str(target)), 1, "already exists", "--force")
    assert target.read_bytes() == first
    forced = run(runner, "backup", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() != first
    if backend == "sqlite":
        with sqlite3.connect(target) as copy:
            assert copy.execute("SELECT count(*) FROM posts").fetchone()[0] == 2


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("where", ["directory", "no-parent"])
def test_backup_to_an_unusable_path(runner: Any, tmp_path: Path, where: str) -> None:
    target = tmp_path if where == "directory" else tmp_path / "missing" / "b.db"
    needle = "is a directory" if where == "directory" else "no such directory"
    assert_one_error_line(run(runner, "backup", str(target)), 1, needle)


@pytest.mark.usefixtures("postgresql_only")
def test_postgresql_backup_is_a_pg_dump_archive(
    runner: Any, factory: Factory, tmp_path: Path
) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump is not installed")
    factory.post(title="备份里的文章")
    target = tmp_path / "site.dump"
    result = run(runner, "backup", str(target))
    assert result.exit_code == 0, result.output
    assert "pg_dump" in result.stdout
    listing = subprocess.run(
        ["pg_restore", "--list", str(target)], capture_output=True, text=True, check=True
    )
    assert "TABLE DATA public posts" in listing.stdout
    data = subprocess.run(
        ["pg_restore", "--data-only", "--table=posts", "--file=-", str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "备份里的文章" in data.stdout


@pytest.mark.usefixtures("postgresql_only")
def test_postgresql_backup_without_pg_dump_says_how(
    runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump there
    result = run(runner, "backup", str(tmp_path / "site.dump"))
    assert_one_error_line(result, 1, "pg_dump is not on PATH", "postgresql-client")
    assert not (tmp_path / "site.dump").exists()


def fake_pg_dump(folder: Path, exit_code: int) -> Path:
    """A pg_dump that records its arguments and environment, then writes a file or fails."""
    script = folder / "pg_dump"
    record = folder / "record"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {record}\n'
        f'printf "PGPASSWORD=%s\\n" "$PGPASSWORD" >> {record}\n'
        f'for a in "$@"; do case "$a" in --file=*) printf PGDMP > "${{a#--file=}}";; esac; done\n'
        + (
            f'echo "pg_dump: error: connection refused" >&2\nexit {exit_code}\n'
            if exit_code
            else ""
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return record


def test_pg_dump_gets_the_password_only_in_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = fake_pg_dump(bin_dir, 0)
    monkeypatch.setenv("PATH", str(bin_dir))
    url = "postgresql+psycopg://feeds:s3cr%40t@127.0.0.1:5433/site?sslmode=require"
    report = backup_module.backup(url, tmp_path / "site.dump", force=False)
    assert report.method == "pg_dump" and (tmp_path / "site.dump").read_bytes() == b"PGDMP"
    lines = record.read_text().splitlines()
    assert "PGPASSWORD=s3cr@t" in lines
    arguments = lines[: lines.index("PGPASSWORD=s3cr@t")]
    assert not any("s3cr" in argument for argument in arguments)
    assert "--format=custom" in arguments and "--no-password" in arguments
    assert "--dbname=postgresql://feeds@127.0.0.1:5433/site?sslmode=require" in arguments


def test_pg_dump_failure_is_one_line_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_pg_dump(bin_dir, 1)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    with pytest.raises(FeedsvcError, match="pg_dump failed: pg_dump: error: connection refused"):
        backup_module.backup("postgresql://u:pw@127.0.0.1/x", tmp_path / "x.dump", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", ["other file", "symlink", "fifo"])
def test_force_replaces_only_a_backup(runner: Any, tmp_path: Path, kind: str) -> None:
    """--force is for replacing an earlier backup, never for destroying another file."""
    precious = tmp_path / "notes.txt"
    precious.write_text("我的笔记，不是备份。", encoding="utf-8")
    target = tmp_path / "target"
    if kind == "other file":
        target = precious
    elif kind == "symlink":
        target.symlink_to(precious)
    else:
        os.mkfifo(target)
    needle = "not what this command writes" if kind == "other file" else "not a regular file"
    assert_one_error_line(run(runner, "backup", str(target), "--force"), 1, needle)
    assert precious.read_text(encoding="utf-8") == "我的笔记，不是备份。"
    assert os.path.lexists(target)


WRITER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA wal_autocheckpoint=0")
connection.execute("UPDATE categories SET name = '另一个进程写的名字'")
print("written", flush=True)
time.sleep(60)  # holds its connection open: nothing checkpoints the WAL meanwhile
"""


@pytest.mark.usefixtures("sqlite_only")
def test_backup_of_a_running_site_by_real_processes(
    ctx: Any, factory: Factory, tmp_path: Path
) -> None:
    """Another process has committed into the WAL and is still running; `feedsvc backup`,
    itself a separate process, copies that write."""
    import sys

    from tests.processes import ROOT, config_env

    factory.post()
    path = sqlite_file(ctx)
    ctx.db.dispose()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
        assert "另一个进程写的名字".encode() not in path.read_bytes()
        env = config_env(tmp_path, ctx.db.url, scheduler={"enabled": False})
        target = tmp_path / "running.db"
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc.cli", "backup", str(target)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    finally:
        writer.kill()
        writer.wait(timeout=10)
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("SELECT name FROM categories").fetchone()[0] == "另一个进程写的名字"
        assert copy.execute("SELECT count(*) FROM posts").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://u@127.0.0.1/x", "database 'mysql' is not supported"),
        ("sqlite:///:memory:", "must name an SQLite file"),
        ("sqlite:///{tmp}/absent.db", "no such database file"),
    ],
)
def test_what_cannot_be_backed_up(tmp_path: Path, url: str, needle: str) -> None:
    with pytest.raises(FeedsvcError, match=needle):
        backup_module.backup(url.format(tmp=tmp_path), tmp_path / "b.db", force=False)
    assert not (tmp_path / "b.db").exists()


def test_a_name_taken_during_the_copy_is_not_overwritten(tmp_path: Path) -> None:
    """Without --force the final step is a link, which fails if the name appeared meanwhile."""
    from feedsvc.transfer.files import replacing, starts_with

    target = tmp_path / "b.db"
    with (
        pytest.raises(FeedsvcError, match="already exists"),
        replacing(target, force=False, is_ours=backup_module.is_backup) as temporary,
    ):
        temporary.write_bytes(b"SQLite format 3\x00new")
        target.write_bytes(b"written by someone else")
    assert target.read_bytes() == b"written by someone else"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.db"]
    assert not starts_with(tmp_path / "absent", b"SQLite")
