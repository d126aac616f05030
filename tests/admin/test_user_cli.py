"""`feedsvc user`: create, list, passwd, remove, and every mistake as one line and exit 1."""

from __future__ import annotations

import pytest

from feedsvc.cli import cli
from feedsvc.services import users as user_service
from tests.admin.conftest import PASSWORD
from tests.test_cli_errors import assert_one_error_line

pytestmark = pytest.mark.usefixtures("backend")


def run(runner, *args: str, input: str | bytes | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), input=input)


def test_create_list_passwd_remove(runner, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    created = run(runner, "user", "create", "编辑小王", "--password-stdin", input=PASSWORD + "\n")
    assert created.exit_code == 0, created.output
    assert "created user 1 (编辑小王)" in created.stdout
    stored = user_service.list_users(ctx)[0]
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert user_service.sign_in(ctx, "编辑小王", PASSWORD, "192.0.2.1").user is not None

    listed = run(runner, "user", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[0].split() == ["id", "name", "created", "last", "login"]
    assert "编辑小王" in listed.stdout
    assert "2026-11-28T12:00:00+08:00" in listed.stdout  # created and last login, Beijing time

    changed = run(
        runner, "user", "passwd", "编辑小王", "--password-stdin", input="新的密码新的密码12\n"
    )
    assert changed.exit_code == 0, changed.output
    assert user_service.sign_in(ctx, "编辑小王", PASSWORD, "192.0.2.2").user is None
    assert user_service.sign_in(ctx, "编辑小王", "新的密码新的密码12", "192.0.2.2").user is not None

    removed = run(runner, "user", "remove", "编辑小王")
    assert removed.exit_code == 0
    assert "removed user 编辑小王" in removed.stdout
    assert "no admin accounts are left" in removed.stdout
    assert user_service.list_users(ctx) == []


def test_create_prompts_twice_without_echo(runner, ctx) -> None:  # type: ignore[no-untyped-def]
    answer = run(runner, "user", "create", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert answer.exit_code == 0, answer.output
    assert PASSWORD not in answer.output
    assert [user.name for user in user_service.list_users(ctx)] == ["admin"]


def test_removing_one_of_two_says_nothing_about_the_last(runner, ctx) -> None:  # type: ignore[no-untyped-def]
    user_service.create_user(ctx, "甲", PASSWORD)
    user_service.create_user(ctx, "乙", PASSWORD)
    removed = run(runner, "user", "remove", "甲")
    assert removed.exit_code == 0
    assert "no admin accounts are left" not in removed.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["create", "太短", "--password-stdin"], "short123\n", "at least 10 characters"),
        (["create", "有NUL", "--password-stdin"], "abcdefghij\x00klm\n", "NUL"),
        (["create", "x" * 51, "--password-stdin"], PASSWORD + "\n", "1 to 50 characters"),
        (["create", "tab\tname", "--password-stdin"], PASSWORD + "\n", "control characters"),
        (["create", "空的", "--password-stdin"], "", "no password on standard input"),
        (["passwd", "无此人", "--password-stdin"], PASSWORD + "\n", "no user named '无此人'"),
        (["passwd", "编辑小王", "--password-stdin"], "short\n", "at least 10 characters"),
        (["remove", "无此人"], None, "no user named '无此人'"),
    ],
)
def test_mistakes_are_one_line(runner, ctx, args, stdin, needle) -> None:  # type: ignore[no-untyped-def]
    user_service.create_user(ctx, "编辑小王", PASSWORD)
    answer = run(runner, "user", *args, input=stdin)
    assert_one_error_line(answer, 1, needle)
    assert [user.name for user in user_service.list_users(ctx)] == ["编辑小王"]


def test_duplicate_name(runner, ctx) -> None:  # type: ignore[no-untyped-def]
    user_service.create_user(ctx, "编辑小王", PASSWORD)
    answer = run(runner, "user", "create", "编辑小王", "--password-stdin", input=PASSWORD + "\n")
    assert_one_error_line(answer, 1, "already exists")
    assert len(user_service.list_users(ctx)) == 1


def test_password_not_utf8_on_stdin(runner, ctx) -> None:  # type: ignore[no-untyped-def]
    answer = run(
        runner, "user", "create", "编辑", "--password-stdin", input=b"\xff\xfeabcdefghijk\n"
    )
    assert_one_error_line(answer, 1, "not UTF-8")
    assert user_service.list_users(ctx) == []


def test_nul_in_name_argument(runner, ctx) -> None:  # type: ignore[no-untyped-def]
    answer = run(runner, "user", "create", "a\x00b", "--password-stdin", input=PASSWORD + "\n")
    assert_one_error_line(answer, 1, "NUL")


@pytest.mark.parametrize("args", [["user", "create", "编辑部"], ["user", "passwd", "编辑部"]])
def test_no_typed_password_is_one_line(runner, ctx, args) -> None:  # type: ignore[no-untyped-def]
    """Input that ends before a password is typed (no terminal, a closed pipe): click's bare
    "Aborted!" before; one error line now, naming --password-stdin."""
    run(runner, "user", "create", "编辑部", "--password-stdin", input="旧密码是十个字以上的\n")
    result = run(runner, *args, input="")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("feedsvc: error: no password was typed")
    assert "--password-stdin" in line
