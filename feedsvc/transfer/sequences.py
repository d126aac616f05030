"""The last id each table's sequence gave out, read and raised on both backends.

Ids are never reused (migration 0004): a restore must leave every sequence past the archive's
ids *and* past what the source had given out (a deleted newest post's id included), and must
never lower a sequence the target database already advanced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, text

from feedsvc.transfer.archive import SEQUENCED


def last_given(connection: Connection) -> dict[str, int]:
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text("SELECT name, seq FROM sqlite_sequence")).all()
        return {name: int(seq) for name, seq in rows if name in SEQUENCED and seq}
    given = {}
    for name in SEQUENCED:
        sequence = _pg_sequence(connection, name)
        last, called = connection.execute(
            text(f"SELECT last_value, is_called FROM {sequence}")  # a name from the catalog
        ).one()
        if called:
            given[name] = int(last)
    return given


def raise_to(connection: Connection, wanted: Mapping[str, int], tables: Iterable[str]) -> None:
    """Every sequence at least ``wanted`` and at least max(id) of its table."""
    current = last_given(connection)
    for name in tables:
        top = connection.execute(text(f"SELECT max(id) FROM {name}")).scalar() or 0
        value = max(wanted.get(name, 0), int(top))
        if value <= current.get(name, 0):
            continue
        if connection.dialect.name == "sqlite":
            updated = connection.execute(
                text("UPDATE sqlite_sequence SET seq = :v WHERE name = :t"), {"v": value, "t": name}
            )
            # Migration 0004 leaves a row for every AUTOINCREMENT table: the INSERT is for an
            # SQLite that would not (as in 0004).
            if updated.rowcount == 0:  # pragma: no cover
                connection.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :v)"),
                    {"v": value, "t": name},
                )
        else:
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v, true)"),
                {"t": name, "v": value},
            )


def _pg_sequence(connection: Connection, name: str) -> str:
    sequence = connection.execute(
        text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": name}
    ).scalar()
    assert isinstance(sequence, str), f"{name}.id has no sequence"
    return sequence
