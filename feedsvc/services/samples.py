"""Sample posts: Markdown or HTML files with TOML front matter (+++), in the site's posts/.

The package carries one set (feedsvc/samples/: posts/ and the categories.toml they belong to),
which `feedsvc new-site --samples` copies into a new site and the checkout's data/feedsvc.toml
names directly. They load only into a database that never had a post (``never_had_posts``):
deleting every post must not bring them back with new guids.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from feedsvc import datafiles
from feedsvc.context import Context
from feedsvc.errors import Invalid
from feedsvc.models import SiteState
from feedsvc.schemas import PostCreate, parse_input

FRONT_MATTER = "+++"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_POSTS = SAMPLES_DIR / "posts"
SAMPLE_CATEGORIES = SAMPLES_DIR / "categories.toml"


def never_had_posts(ctx: Context) -> bool:
    """True until the first post is stored, by any path (a trigger keeps it: migration 0005)."""
    with ctx.db.read() as session:
        return not session.scalar(select(SiteState.had_posts).where(SiteState.id == 1))


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


def load_samples(
    ctx: Context, samples: list[PostCreate], progress: Callable[[int], None] | None = None
) -> int:
    """Store the sample posts in one write transaction (rendered before it), then ANALYZE."""
    from feedsvc.services import posts as post_service

    prepared = [post_service.prepare_post(data) for data in samples]
    with ctx.db.write() as session:
        post_service.insert_posts(ctx, session, [post_service.NewPost(p) for p in prepared])
    if progress is not None:
        progress(len(prepared))
    if samples:
        ctx.db.analyze()
    return len(samples)
