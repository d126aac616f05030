"""Reading files a user hands us: TOML (feedsvc.toml, categories.toml, front matter) and text.

tomllib raises more than ``TOMLDecodeError``: ``UnicodeDecodeError`` on non-UTF-8 bytes,
``ValueError`` on an integer longer than Python's 4300-digit conversion limit, and
``RecursionError`` on deeply nested arrays or inline tables. Every one of them, and every
``OSError`` opening the file, becomes one ``DataFileError`` whose message is a single line a
user can act on, naming the file (and the byte offset or key where it can).

Values are text for people and feeds, so XML-illegal characters (NUL and the other C0 controls
but TAB/LF/CR, U+FFFE/U+FFFF) are refused with the key that holds them rather than stored or
silently dropped (XML 1.0 §2.2; feedgen refuses a whole feed for one of them).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, BinaryIO

# XML 1.0 §2.2 Char. TOML itself refuses escaped surrogates, so they cannot occur here.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


class DataFileError(Exception):
    """A file cannot be used; the message is one line naming the file."""


def one_line(text: str) -> str:
    """Messages are printed on one line: line breaks inside them become spaces."""
    return " ".join(text.split())


def decode_utf8(data: bytes, where: str) -> str:
    """UTF-8 text, or a ``DataFileError`` naming ``where`` and the first bad byte's offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


# Our files are small; a bound keeps `--file /dev/zero` or a wrong path from eating memory.
# 8 MiB holds the largest post body (2,000,000 characters of up to 4 UTF-8 bytes).
MAX_BYTES = 8 * 1024 * 1024


def read_bytes(stream: BinaryIO, where: str, limit: int = MAX_BYTES) -> bytes:
    """At most ``limit`` bytes; more is refused rather than read to the end."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise DataFileError(f"{where}: larger than {limit} bytes")
    return data


def read_text(path: Path, limit: int = MAX_BYTES) -> str:
    """A whole UTF-8 text file; OSError, size and bad bytes become one ``DataFileError`` line."""
    try:
        with path.open("rb") as handle:
            data = read_bytes(handle, str(path), limit)
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode_utf8(data, str(path))


def loads_toml(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text; ``where`` names the file in every message."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{where}: invalid TOML: {one_line(str(exc))}") from None
    except RecursionError:
        raise DataFileError(f"{where}: invalid TOML: nested too deeply") from None
    except ValueError:  # int() refuses integers of more than 4300 digits
        raise DataFileError(f"{where}: invalid TOML: an integer has too many digits") from None
    bad = find_illegal_text(data)
    if bad is not None:
        key, char = bad
        raise DataFileError(
            f"{where}: {key}: contains the control character U+{ord(char):04X}, "
            "which text here must not contain"
        )
    return data


def read_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file (``read_text`` + ``loads_toml``)."""
    return loads_toml(read_text(path), str(path))


def find_illegal_text(data: Any) -> tuple[str, str] | None:
    """The dotted key of the first key or string holding an illegal character, and the character.

    Iterative, so a document nested as deep as tomllib allows costs no recursion here.
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            found = _ILLEGAL.search(value)
            if found:
                return path or "(root)", found.group()
        elif isinstance(value, dict):
            for key, item in value.items():
                found = _ILLEGAL.search(key)
                name = f"{path}.{key!r}" if found else (f"{path}.{key}" if path else key)
                if found:
                    return name.lstrip("."), found.group()
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None
