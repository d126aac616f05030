"""Queries, one module per entity. Repo functions take a Session and know nothing of HTTP."""

from collections.abc import Collection, Iterator

# SQLite refuses statements with more bound parameters than its limit (32,766, or 999 in
# older builds): long id lists go to the database in slices.
CHUNK = 500


def chunked(ids: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]
