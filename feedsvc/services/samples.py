"""Sample posts under data/posts/: Markdown or HTML files with TOML front matter (+++)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from feedsvc.errors import Invalid
from feedsvc.schemas import PostCreate, parse_input

FRONT_MATTER = "+++"


def read_post_file(path: Path) -> PostCreate:
    text = path.read_text(encoding="utf-8")
    if not text.startswith(FRONT_MATTER):
        raise Invalid(f"{path.name}: must start with a +++ TOML front matter block")
    try:
        _, header, body = text.split(FRONT_MATTER + "\n", 2)
    except ValueError:
        raise Invalid(f"{path.name}: the front matter block is not closed with +++") from None
    try:
        meta: dict[str, Any] = tomllib.loads(header)
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"{path.name}: invalid front matter: {exc}") from None
    try:
        return parse_input(PostCreate, {**meta, "content": body})
    except Invalid as exc:
        raise Invalid(f"{path.name}: {exc.message}", fields=exc.fields) from None


def sample_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.glob("*.md") if path.is_file())
