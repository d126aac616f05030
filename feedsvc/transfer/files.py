"""Writing an output file safely: a temporary file in the same folder, renamed into place.

The rename is atomic on one file system, so FILE is either absent, its old self, or the
whole new file. Without ``force`` an existing FILE is refused before any work, and again at
the end with ``os.link`` (which fails if the name appeared meanwhile) instead of a rename.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from feedsvc.errors import Conflict, Invalid


def check_destination(path: Path, *, force: bool) -> None:
    if path.is_dir():
        raise Invalid(f"{path}: is a directory")
    if path.exists() and not force:
        raise Conflict(f"{path}: already exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise Invalid(f"{path.parent}: no such directory")


@contextmanager
def replacing(path: Path, *, force: bool) -> Iterator[Path]:
    """A temporary path to write; on success it becomes ``path``, on failure it is removed."""
    check_destination(path, force=force)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        if force:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise Conflict(f"{path}: already exists (use --force to overwrite it)") from None
    finally:
        temporary.unlink(missing_ok=True)
