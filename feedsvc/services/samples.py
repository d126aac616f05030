"""Sample posts under data/posts/: Markdown or HTML files with TOML front matter (+++)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedsvc import datafiles
from feedsvc.errors import Invalid
from feedsvc.schemas import PostCreate, parse_input

FRONT_MATTER = "+++"


def read_post_file(path: Path) -> PostCreate:
    try:
        text = datafiles.read_text(path)
    except datafiles.DataFileError as exc:
        raise Invalid(str(exc)) from None
    if not text.startswith(FRONT_MATTER):
        raise Invalid(f"{path.name}: must start with a +++ TOML front matter block")
    try:
        _, header, body = text.split(FRONT_MATTER + "\n", 2)
    except ValueError:
        raise Invalid(f"{path.name}: the front matter block is not closed with +++") from None
    try:
        meta: dict[str, Any] = datafiles.loads_toml(header, f"{path.name}: front matter")
    except datafiles.DataFileError as exc:
        raise Invalid(str(exc)) from None
    try:
        return parse_input(PostCreate, {**meta, "content": body})
    except Invalid as exc:
        raise Invalid(f"{path.name}: {exc.message}", fields=exc.fields) from None


def sample_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.glob("*.md") if path.is_file())
