"""The portable archive: what it holds and how each line is checked. Pure: no database.

Format (version 1): gzip'd JSON lines, UTF-8.
- line 1, the header: ``{"format": "feedsvc-export", "version": 1, "created_at": ...,
  "feedsvc": ..., "schema": ..., "database": "sqlite"|"postgresql", "site": {base_url,
  tag_authority, tag_date}, "sequences": {table: last id given}}``;
- one line per row, parents before children: ``{"table": "posts", "row": {column: value}}``
  with every column of the table, by name; datetimes as ISO 8601 in UTC, JSON columns as
  JSON;
- the last line, the trailer: ``{"end": "feedsvc-export", "rows": {table: count}}``. Without
  it the file is truncated, whatever gzip says.

A column added to the schema after an archive was written is filled with its default (or
NULL) on restore, so older archives stay readable; a column this feedsvc does not know is an
error (the archive comes from a newer feedsvc).

Rows keep their ids: guids, slugs, dates and ids are what the feeds' bytes depend on (guids and
links directly; the order of equal dates, related lists and their links by id), so a restored
site serves the same bytes. The related lists travel too, as derived data: the restored site
serves them at once, and restore clears the scheduler's markers so its next run recomputes
them all (a rebuild on the same data finds the same lists and changes no feed).

API tokens travel as their SHA-256 hashes only (the tokens themselves were never stored), so
API clients keep working after a move and the archive holds no usable secret. Job runs, leases
and the change log are the old site's operational history and stay behind.

Every value is checked against its column before anything is written: type (a JSON ``true``
is no integer), integer range (PostgreSQL's 32-bit integer), string length (PostgreSQL
enforces it, SQLite would not, so an archive that restores on one restores on both), and no
NUL or unpaired surrogate (PostgreSQL refuses them; UTF-8 cannot encode them); then against
the rules the services enforce on writes (rules.py).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Integer, String, Table, Text

from feedsvc.errors import Invalid
from feedsvc.models import Base
from feedsvc.transfer.rules import broken_rule

FORMAT = "feedsvc-export"
VERSION = 1

# Parents before children (foreign keys are checked as rows arrive).
TABLES = (
    "site_state",
    "removed_categories",  # so that `init` does not bring them back on the new site
    "categories",
    "tags",
    "posts",
    "post_tags",
    "sources",
    "source_entries",
    "external_items",
    "related_items",
    "api_tokens",
)
# Tables whose ids come from a sequence (SQLite AUTOINCREMENT, PostgreSQL SERIAL).
SEQUENCED = (
    "categories",
    "tags",
    "posts",
    "sources",
    "source_entries",
    "external_items",
    "api_tokens",
)

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
MAX_LINE_BYTES = 64 * 1024 * 1024  # one row; a post's body is far smaller


class ArchiveError(Invalid):
    """The file is not a usable archive: one line saying where and why."""


def table(name: str) -> Table:
    return Base.metadata.tables[name]


# -- writing --------------------------------------------------------------------------------


def header(
    database: str,
    sequences: Mapping[str, int],
    created_at: datetime,
    version: str,
    schema: str | None,
    site: Mapping[str, str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "feedsvc": version,
        "schema": schema,  # the Alembic revision it was read from (for a human; not checked)
        "database": database,
        # What the feeds' links and ids are built from (not stored in any row): restore warns
        # when the configuration it runs with differs.
        "site": dict(site),
        "sequences": dict(sequences),
    }


def encode_row(source: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in source.columns:
        value = row[column.name]
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        out[column.name] = value
    return out


def dump_line(value: Mapping[str, Any]) -> bytes:
    # ensure_ascii=False: Chinese text stays readable and small; allow_nan=False: strict JSON.
    return (
        json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        + b"\n"
    )


@contextmanager
def open_for_writing(path: Path) -> Iterator[gzip.GzipFile]:
    # No name and mtime=0 in the gzip header: the same data gives the same bytes.
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
    ):
        yield out


def is_archive(path: Path) -> bool:
    """A file whose first line is an archive header (what `export --force` may replace)."""
    try:
        with gzip.open(path, "rb") as stream:
            first = json.loads(stream.readline(64 * 1024))
    except (OSError, EOFError, zlib.error, ValueError, RecursionError):
        return False
    return isinstance(first, dict) and first.get("format") == FORMAT


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    created_at: str
    database: str
    sequences: dict[str, int]
    site: dict[str, str]


@dataclass(frozen=True)
class Row:
    table: str
    values: dict[str, Any]
    line: int


def read(path: Path) -> tuple[Header, Iterator[Row]]:
    """The header, then the rows, each checked; the iterator raises ArchiveError at the first
    bad line, and at the end if the trailer is missing or its counts differ."""
    if path.is_dir():
        raise ArchiveError(f"{path}: is a directory")
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise ArchiveError(f"{path}: empty file, not a feedsvc export")
    head = _header(path, first[1])
    return head, _rows(path, lines)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with gzip.open(path, "rb") as stream:
            yield from enumerate(_limited(stream), start=1)
    except (OSError, EOFError, zlib.error) as exc:
        # gzip: "Not a gzipped file", a truncated stream (EOFError), a bad CRC or length.
        raise ArchiveError(
            f"{path}: not a readable gzip file ({exc or type(exc).__name__})"
        ) from None


def _limited(stream: gzip.GzipFile) -> Iterator[bytes]:
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES:
            raise ArchiveError(f"a line longer than {MAX_LINE_BYTES} bytes: not a feedsvc export")
        yield line


def _json(path: Path, number: int, line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{path}: line {number}: not UTF-8 (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, a 5000-digit number, nesting
        raise ArchiveError(f"{path}: line {number}: not JSON ({_short(str(exc))})") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _header(path: Path, line: bytes) -> Header:
    value = _json(path, 1, line)
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise ArchiveError(f"{path}: not a feedsvc export (no feedsvc-export header)")
    version = value.get("version")
    if type(version) is not int:
        raise ArchiveError(f"{path}: header: version must be an integer")
    if version > VERSION:
        raise ArchiveError(
            f"{path}: archive format version {version} is newer than this feedsvc reads "
            f"({VERSION}): upgrade feedsvc"
        )
    if version < 1:
        raise ArchiveError(f"{path}: archive format version {version} does not exist")
    sequences = value.get("sequences")
    if not isinstance(sequences, dict) or not all(
        name in SEQUENCED and type(seq) is int and 0 <= seq <= INT_MAX
        for name, seq in sequences.items()
    ):
        raise ArchiveError(f"{path}: header: sequences must map table names to ids")
    created, database = value.get("created_at"), value.get("database")
    if not isinstance(created, str) or not isinstance(database, str):
        raise ArchiveError(f"{path}: header: created_at and database must be strings")
    site = value.get("site", {})
    if not isinstance(site, dict) or not all(isinstance(v, str) for v in site.values()):
        raise ArchiveError(f"{path}: header: site must map settings to strings")
    return Header(created, database, sequences, site)


def _rows(path: Path, lines: Iterator[tuple[int, bytes]]) -> Iterator[Row]:
    counts = dict.fromkeys(TABLES, 0)
    order = 0  # tables arrive in TABLES order
    for number, line in lines:
        value = _json(path, number, line)
        if not isinstance(value, dict):
            raise ArchiveError(f"{path}: line {number}: not an object")
        if value.get("end") == FORMAT:
            _trailer(path, number, value, counts)
            if next(lines, None) is not None:
                raise ArchiveError(f"{path}: data after the end line {number}")
            return
        name, row = value.get("table"), value.get("row")
        if not isinstance(name, str) or name not in TABLES or not isinstance(row, dict):
            raise ArchiveError(f"{path}: line {number}: not a row of a known table")
        position = TABLES.index(name)
        if position < order:
            raise ArchiveError(f"{path}: line {number}: {name} rows after later tables' rows")
        order = position
        try:
            values = check_row(table(name), row)
        except ValueError as exc:
            raise ArchiveError(f"{path}: line {number}: {name}: {exc}") from None
        broken = broken_rule(name, values)
        if broken:
            raise ArchiveError(f"{path}: line {number}: {name}: {broken}")
        counts[name] += 1
        yield Row(name, values, number)
    raise ArchiveError(f"{path}: truncated (no end line)")


def _trailer(path: Path, number: int, value: dict[str, Any], counts: dict[str, int]) -> None:
    rows = value.get("rows")
    if not isinstance(rows, dict):
        raise ArchiveError(f"{path}: line {number}: the end line has no row counts")
    for name in TABLES:
        if rows.get(name, 0) != counts[name]:
            raise ArchiveError(
                f"{path}: {name}: the end line counts {rows.get(name, 0)!r} rows, "
                f"the file holds {counts[name]}"
            )


def check_row(source: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values as the database takes them; ValueError names the first bad one."""
    names = {column.name for column in source.columns}
    unknown = sorted(set(row) - names)
    if unknown:
        raise ValueError(f"unknown column {_short(unknown[0])!r} (from a newer feedsvc?)")
    values: dict[str, Any] = {}
    for column in source.columns:
        if column.name in row:
            values[column.name] = _value(column, row[column.name])
        elif column.default is not None and column.default.is_scalar:
            values[column.name] = column.default.arg  # type: ignore[attr-defined]
        elif column.nullable:
            values[column.name] = None
        else:
            raise ValueError(f"missing column {column.name!r}")
    return values


def _value(column: Column[Any], value: Any) -> Any:
    try:
        if value is None:
            if not column.nullable:
                raise ValueError("must not be null")
            return None
        return _typed(column, value)
    except ValueError as exc:
        raise ValueError(f"{column.name}: {exc}") from None


def _typed(column: Column[Any], value: Any) -> Any:
    kind = column.type
    if isinstance(kind, Boolean):
        if type(value) is not bool:
            raise ValueError("must be true or false")
        return value
    if isinstance(kind, Integer):
        if type(value) is not int:
            raise ValueError("must be an integer")
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError("is out of range")
        return value
    if isinstance(kind, Float):
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ValueError("must be a number")
        return float(value)
    if isinstance(kind, JSON):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("must be a list of strings")
        return [_text(item, None) for item in value]
    if isinstance(kind, (String, Text)):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return _text(value, getattr(kind, "length", None))
    # UTCDateTime, the one type left in the schema.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{_short(value)!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError("must have a UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{_short(value)!r} is out of range") from None


def _text(value: str, length: int | None) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired surrogate") from None
    if length is not None and len(value) > length:
        raise ValueError(f"is longer than {length} characters")
    return value


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:60] + "…"
