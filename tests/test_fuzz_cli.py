"""Every `feedsvc` command, with hostile arguments and option values, on both backends.

The command tree is walked, so a new command is fuzzed without touching this file. For each
invocation: no traceback, exit 0, 1 or 2, an error is one line `feedsvc: error: ...` (or
click's usage error), and a command that fails changes nothing in the database.

Hypothesis runs derandomized (a fixed seed) with a bounded number of examples per command, so
a run is deterministic and quick; FUZZ_CLI_EXAMPLES raises the count for a longer session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from feedsvc.cli import cli
from feedsvc.models import Base
from tests.factories import Factory

EXAMPLES = int(os.environ.get("FUZZ_CLI_EXAMPLES", "60"))

HOSTILE_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\udcff",
    "标题\ud800",
    "\ufffe",
    "\u202e理财",
    "x" * 8192,
    "理" * 3000,
    "9" * 30,
    "99999999999999999999999",
    "2147483648",
    "2147483647",
    "-1",
    "-99999999999999999999",
    "0",
    "1",
    "2",
    "٣",
    "²",
    "１２",
    "1_0",
    "1e309",
    "NaN",
    "理财方法",
    "基金 定投",
    "licai-fangfa",
    "jijin",
    "head",
    "base",
    "heads",
    "head-1",
    "-",
    "--",
    "../../etc/passwd",
    "/dev/null",
    "/",
    "http://127.0.0.1:9/feed.xml",
    "ftp://127.0.0.1/feed",
    "'; DROP TABLE posts; --",
    "%s%n%x",
    "{0}",
]

# Commands that would block: their arguments are validated, the work itself is replaced.
BLOCKING = {("serve",), ("scheduler",)}


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from leaf_commands(command, path)
        else:
            yield path


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(leaf_commands(cli))


def text_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.text(max_size=40),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
    )


@st.composite
def invocation(draw: st.DrawFn, path: tuple[str, ...]) -> list[str]:
    """The command's path, then a hostile value for each argument and some of its options."""
    args = list(path)
    for param in command_at(path).params:
        if isinstance(param, click.Argument):
            args.append(draw(text_values()))
            continue
        assert isinstance(param, click.Option)
        if param.hidden or param.name == "help" or not draw(st.booleans()):
            continue
        flag = param.opts[-1] if draw(st.booleans()) else param.opts[0]
        if param.is_flag:
            args.append(flag)
            continue
        values = text_values()
        if isinstance(param.type, click.Choice):
            values = st.one_of(st.sampled_from([str(c) for c in param.type.choices]), values)
        for _ in range(draw(st.integers(1, 3)) if param.multiple else 1):
            args += [flag, draw(values)]
    return args


def database_dump(ctx: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what a failed command must leave exactly as it was."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with ctx.db.read() as session:
        for table in Base.metadata.sorted_tables:
            rows = session.execute(select(table)).all()
            dump[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return dump


@pytest.fixture
def blocking_replaced(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`serve` and `scheduler` record what they would start instead of blocking."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "feedsvc.server.serve", lambda settings, options: calls.append({"options": options})
    )
    monkeypatch.setattr("feedsvc.jobs.run_scheduler", lambda *a, **kw: calls.append(kw))
    return calls


@pytest.fixture
def seeded(factory: Factory, runner: Any) -> Factory:
    """Rows with small ids for every kind, so that '٣' read as 3 would find something."""
    for _ in range(3):
        factory.post()
    factory.post("jijin", title="指数基金定投：每月一千元")
    factory.token("编辑")
    added = runner.invoke(
        cli, ["source", "add", "http://127.0.0.1:9/feed.xml", "--category", "jijin"]
    )
    assert added.exit_code == 0, added.output
    return factory


def check(result: Any, args: list[str]) -> None:
    shown = repr(args)[:300]
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        shown,
        result.exception,
    )
    assert "Traceback" not in result.output, shown
    assert result.exit_code in (0, 1, 2), (shown, result.exit_code)
    if result.exit_code == 0:
        return
    lines = result.stderr.splitlines()
    if lines and lines[0].startswith("feedsvc: error: "):
        assert len(lines) == 1, (shown, result.stderr)
    else:
        assert result.exit_code == 2 and "Error: " in result.stderr, (shown, result.output)
        assert "Usage: " in result.stderr or "No such" in result.stderr, (shown, result.output)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_hostile_arguments(
    path: tuple[str, ...],
    seeded: Factory,
    runner: Any,
    ctx: Any,
    blocking_replaced: list[dict[str, Any]],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Commands that write files (`new-site DIR`, backup FILE, export FILE) write them here,
    # never into the checkout: hostile relative names ("0", "-", "head") land here.
    monkeypatch.chdir(tmp_path)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(args=invocation(path))
    def run(args: list[str]) -> None:
        # `new-site DIR` creates DIR: only under tmp_path, never "/…" or "../…" (run as root).
        assume(path != ("new-site",) or not os.path.normpath(args[1]).startswith(("/", "..")))
        before = database_dump(ctx)
        result = runner.invoke(cli, args, input="正文：每月结余先存一半。")
        check(result, args)
        if result.exit_code != 0:
            assert database_dump(ctx) == before, repr(args)[:300]

    run()
    if path in BLOCKING:
        # Whatever reached the real work was valid: binds gunicorn can use, counts in bounds.
        for call in blocking_replaced:
            options = call.get("options")
            if options is None:  # the scheduler
                continue
            assert 1 <= options.workers <= 64 and options.threads >= 1, options
            for bind in options.binds:
                assert "\x00" not in bind and bind.isprintable(), options
                if not bind.startswith("unix:"):
                    port = bind.rsplit(":", 1)[1]
                    assert port.isascii() and port.isdigit() and 1 <= int(port) <= 65535, bind


def test_every_command_is_fuzzed() -> None:
    """The walk finds every command of every group (a new one cannot be missed)."""
    assert {("post", "add"), ("db", "upgrade"), ("token", "revoke"), ("import",)} <= set(COMMANDS)
    assert len(COMMANDS) >= 20
