"""Writing an output file safely: a temporary file in the same folder, renamed into place.

The rename is atomic on one file system, so FILE is either absent, its old self, or the
whole new file. Without ``force`` an existing FILE is refused before any work, and again at
the end with ``os.link`` (which fails if the name appeared meanwhile) instead of a rename.

``force`` replaces only what this command itself writes (``is_ours``: an earlier backup, an
earlier archive) or an empty file: a slip such as `feedsvc backup ~/.bashrc --force`, or
`/dev/null`, is refused rather than destroyed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from feedsvc.errors import Conflict, Invalid

Recognizer = Callable[[Path], bool]


def check_destination(path: Path, *, force: bool, is_ours: Recognizer) -> None:
    if path.is_dir():
        raise Invalid(f"{path}: is a directory")
    if path.exists() or path.is_symlink():
        if not force:
            raise Conflict(f"{path}: already exists (use --force to overwrite it)")
        if path.is_symlink() or not path.is_file():
            raise Invalid(f"{path}: is not a regular file; refusing to replace it")
        if path.stat().st_size and not is_ours(path):
            raise Invalid(
                f"{path}: exists and is not what this command writes; refusing to replace it "
                "even with --force"
            )
    if not path.parent.is_dir():
        raise Invalid(f"{path.parent}: no such directory")


@contextmanager
def replacing(path: Path, *, force: bool, is_ours: Recognizer) -> Iterator[Path]:
    """A temporary path to write; on success it becomes ``path``, on failure it is removed."""
    check_destination(path, force=force, is_ours=is_ours)
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


def starts_with(path: Path, *magics: bytes) -> bool:
    try:
        with path.open("rb") as stream:
            head = stream.read(max(len(magic) for magic in magics))
    except OSError:
        return False
    return any(head.startswith(magic) for magic in magics)
