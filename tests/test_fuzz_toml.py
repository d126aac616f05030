"""The TOML files with hostile values: feedsvc.toml and categories.toml.

feedsvc.toml: every outcome is either valid Settings or one ConfigError line naming the key
(or the file, for bytes that are not TOML), and exit 2 through the CLI.
categories.toml: `feedsvc init` either syncs the file or prints one line, exits 1 and stores
nothing (every table compared), on both backends.

Hypothesis runs derandomized with a bounded number of examples (FUZZ_TOML_EXAMPLES).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import create_app
from feedsvc.cli import cli
from feedsvc.config import ConfigError, Settings, load_settings
from feedsvc.errors import Invalid
from feedsvc.services.categories import read_categories_file
from tests.conftest import overrides_for
from tests.test_fuzz_cli import database_dump

EXAMPLES = int(os.environ.get("FUZZ_TOML_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def toml_value(value: Any) -> str:
    """A TOML literal for ``value`` (str, int, float, bool, list, dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are TOML basic-string escapes; a NUL becomes \u0000.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def encode(text: str) -> bytes:
    # Lone surrogates in a generated string end up as bytes that are not UTF-8: hostile too.
    return text.encode("utf-8", "surrogatepass")


HOSTILE_VALUES: list[Any] = [
    "",
    "\x00",
    "名称\x00",
    "\x1b[31m",
    "\ufffe",
    "x" * 8192,
    "理财" * 2000,
    "sqlite:////nonexistent-root-folder\x01/x.db",
    0,
    -1,
    2**31,
    2**63,
    10**30,
    -(10**30),
    1.5,
    float("inf"),
    float("nan"),
    True,
    [],
    ["理财", 1],
    {},
    {"嵌套": {"更深": 1}},
]

scalars = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.text(max_size=30),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)

SECTIONS = {
    name: list(field.annotation.model_fields)  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items()
    if name not in ("data_dir", "config_file")
}
KNOWN_KEYS = [(section, key) for section, keys in SECTIONS.items() for key in keys]


# -- feedsvc.toml ----------------------------------------------------------------------------------


def assert_config_error(message: str, *needles: str) -> None:
    assert "\n" not in message and message.strip() == message, message
    assert any(needle in message for needle in needles), (needles, message)


@FUZZ
@given(
    target=st.one_of(
        st.sampled_from(KNOWN_KEYS),
        st.tuples(st.sampled_from(list(SECTIONS)), st.text(min_size=1, max_size=12)),
    ),
    value=values,
)
def test_config_values(
    tmp_path_factory: pytest.TempPathFactory, target: tuple[str, str], value: Any
) -> None:
    section, key = target
    path = tmp_path_factory.mktemp("config") / "feedsvc.toml"
    path.write_bytes(
        encode(f"[{section}]\n{json.dumps(key, ensure_ascii=False)} = {toml_value(value)}\n")
    )
    try:
        load_settings(environ={"FEEDSVC_CONFIG": str(path)})
    except ConfigError as exc:
        assert_config_error(
            str(exc), f"{section}.", f"{section}:", "invalid TOML", "not UTF-8", "control character"
        )


@FUZZ
@given(
    document=st.one_of(
        st.text(max_size=80).map(encode),
        st.binary(max_size=80),
        st.sampled_from(
            [
                b"[site\n",
                b"site = 5\n",
                b'site = "x"\n',
                b"[[site]]\ntitle = 1\n",
                b'[site]\ntitle = "a"\ntitle = "b"\n',
                b"[site]\ntitle = " + b"9" * 5000 + b"\n",
                b"[site]\ntitle = " + b"[" * 5000 + b"]" * 5000 + b"\n",
                b"[site]\ntitle = " + b"{a=" * 2000 + b"1" + b"}" * 2000 + b"\n",
                b"a" + b".b" * 3000 + b" = 1\n",
                b'\xef\xbb\xbf[site]\ntitle = "BOM"\n',
                '[site]\ntitle = "\u6807\u9898"\n'.encode("gbk"),
                b'[site]\ntitle = "\\u0000"\n',
                b'[site]\ntitle = "\\ud800"\n',
                b'["\\u0000"]\nx = 1\n',
                b'[database]\nurl = "mysql://u@127.0.0.1/x"\n',
                b'[database]\nurl = "sqlite:///' + b"x" * 5000 + b'/y.db"\n',
                b"data_dir = 5\n",
                b'data_dir = "\\u0000"\n',
                b"unknown = 1\n",
            ]
        ),
    )
)
def test_config_documents(tmp_path_factory: pytest.TempPathFactory, document: bytes) -> None:
    path = tmp_path_factory.mktemp("config") / "feedsvc.toml"
    path.write_bytes(document)
    try:
        load_settings(environ={"FEEDSVC_CONFIG": str(path)})
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert str(path) in message, message


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (b"[feeds]\nmax_length = 99999999999999999999999999\n", "feeds.max_length"),
        (b'[site]\ntitle = "\\u0000"\n', "site.title"),
        (b"[site]\ntitle = [[[[[1]]]]]\n", "site.title"),
        (b'[site]\ncolour = "\xe7\xba\xa2"\n', "site.colour"),
        (b'[site]\ntitle = "\xff"\n', "not UTF-8"),
        (b"[site]\ntitle = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b"[scheduler]\nlease_seconds = " + b"9" * 5000 + b"\n", "too many digits"),
        (b'[database]\nurl = "postgresql+nodriver://u@127.0.0.1/x"\n', "database.url"),
    ],
)
def test_config_errors_through_the_cli(tmp_path: Path, document: bytes, needle: str) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_bytes(document)
    result = CliRunner().invoke(cli, ["category", "list"], env={"FEEDSVC_CONFIG": str(path)})
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"feedsvc: error: config: {path}: "), line
    assert needle in line, line


# -- categories.toml ------------------------------------------------------------------------------

SLUGS = ["licai-fangfa", "jijin", "baoxian", "all", "BAD SLUG", "理财", ""]


@st.composite
def category_entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "slug": draw(st.sampled_from(SLUGS) | values),
        "name": draw(st.sampled_from(["理财方法", "基金", "保险"]) | values),
    }
    for key in ("description", "language", "position", "feed_length", "unknown"):
        if draw(st.booleans()):
            entry[key] = draw(values)
    if draw(st.booleans()):
        entry["sources"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "url": st.sampled_from(
                            ["http://127.0.0.1:9/a.xml", "http://127.0.0.1:9/b.xml"]
                        )
                        | values
                    },
                    optional={
                        "mode": st.sampled_from(["related", "posts"]) | values,
                        "interval_minutes": values,
                    },
                ),
                max_size=2,
            )
        )
    return entry


def categories_document(entries: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for entry in entries:
        lines.append("[[categories]]")
        lines += [
            f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
            for k, v in entry.items()
            if k != "sources"
        ]
        for source in entry.get("sources", []):
            lines.append("[[categories.sources]]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in source.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def init_runner(db_url: str, tmp_path: Path, clock: Any) -> Any:
    """A CLI runner whose data folder (categories.toml, posts/) is a temporary one."""
    overrides = overrides_for(db_url)
    overrides["data_dir"] = str(tmp_path)
    (tmp_path / "posts").mkdir()
    app = create_app(settings=load_settings(overrides, environ={}), clock=clock)
    yield app.test_cli_runner(), app.extensions["feedsvc"], tmp_path / "categories.toml"
    app.extensions["feedsvc"].db.dispose()


def check_init(runner: Any, ctx: Any, document: bytes, path: Path) -> Any:
    path.write_bytes(document)
    before = database_dump(ctx)
    result = runner.invoke(cli, ["init", "--no-samples"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.exit_code == 1, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith("feedsvc: error: "), line
        assert database_dump(ctx) == before
    return result


@pytest.mark.usefixtures("backend")
def test_categories_file_values(init_runner: Any) -> None:
    runner, ctx, path = init_runner

    @FUZZ
    @given(entries=st.lists(category_entries(), max_size=3))
    def run(entries: list[dict[str, Any]]) -> None:
        result = check_init(runner, ctx, encode(categories_document(entries)), path)
        slugs = [e["slug"] for e in entries]
        if result.exit_code == 0:
            assert len(set(map(repr, slugs))) == len(slugs), "a slug listed twice was accepted"

    run()


JIJIN = '[[categories]]\nslug = "jijin"\nname = "基金"\n'.encode()


def source(url: bytes) -> bytes:
    return b'[[categories.sources]]\nurl = "' + url + b'"\n'


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (
            JIJIN + JIJIN,
            "is already category #1",
        ),
        (b'[[categories]]\nslug = "jijin"\nname = "\\u0000"\n', "control character"),
        (
            b'[[categories]]\nslug = "jijin"\nname = "a"\nposition = 99999999999999999999\n',
            "position",
        ),
        (b'[[categories]]\nslug = 5\nname = "a"\n', "slug"),
        (
            JIJIN + b'[[categories]]\nslug = "gupiao"\nname = 1\n',
            "category #2",
        ),
        (b'categories = "jijin"\n', "array of tables"),
        (b"[[categories]\n", "invalid TOML"),
        (b'[[categories]]\nslug = "jijin"\nname = "\xff"\n', "not UTF-8"),
        (
            JIJIN + source(b"ftp://127.0.0.1/f"),
            "source #1",
        ),
        (
            JIJIN + source(b"http://127.0.0.1:9/f") + b"interval_minutes = 1\n",
            "min_interval_minutes",
        ),
        (
            JIJIN
            + source(b"http://127.0.0.1:9/f")
            + b'[[categories]]\nslug = "gupiao"\nname = "b"\n'
            + source(b"http://127.0.0.1:9/f"),
            "listed already",
        ),
        (b"[[categories]]\nslug = " + b"9" * 5000 + b"\n", "too many digits"),
        (b'colour = "red"\n', "unknown key"),
    ],
)
def test_categories_file_errors(init_runner: Any, document: bytes, needle: str) -> None:
    runner, ctx, path = init_runner
    result = check_init(runner, ctx, document, path)
    assert result.exit_code == 1, result.output
    assert str(path) in result.stderr and needle in result.stderr, result.stderr


@pytest.mark.parametrize("entry", ["1", '"基金"', "[1, 2]", "true"])
def test_a_category_entry_that_is_not_a_table_is_named_as_such(tmp_path: Path, entry: str) -> None:
    # Was "the body must be a JSON object": the API's words, in a TOML file's error.
    path = tmp_path / "categories.toml"
    path.write_text(f"categories = [{entry}]\n", encoding="utf-8")
    with pytest.raises(Invalid) as raised:
        read_categories_file(path)
    assert raised.value.message == f"{path}: category #1: must be a table ([[categories]])"
