"""Storing a plan: posts created through the post service, keyed by the WordPress guid.

A post whose guid is already stored is left alone, so importing the same file twice changes
nothing the second time (and an import cut short is finished by running it again). Posts go
in batches of 200, one transaction each, their Markdown rendered before the transaction and
stored in statements that do not grow with the batch (services/posts.py insert_posts): an
import never holds the write lock for long on a running site, and pays one commit per batch.
Then ANALYZE, so the planner's statistics follow the data. The plan was checked whole before
this runs (plan.py), so what can still fail here is the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedsvc.context import Context
from feedsvc.errors import Conflict
from feedsvc.models import Post
from feedsvc.repo import posts as post_repo
from feedsvc.services import posts as post_service
from feedsvc.wordpress.plan import Plan, PlannedPost

BATCH = 200
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportReport:
    created: int
    already_imported: int
    slugs_changed: int  # the WordPress slug was taken by another post: one was derived
    skipped: dict[str, int]


def store(ctx: Context, plan: Plan, progress: Progress | None = None) -> ImportReport:
    created = existing = renamed = 0
    posts = list(plan.posts)
    for start in range(0, len(posts), BATCH):
        batch = posts[start : start + BATCH]
        # The CPU work (Markdown, sanitizing, pinyin) before the write lock is taken.
        prepared = {id(p): post_service.prepare_post(p.data) for p in batch}
        with ctx.db.write() as session:
            stored = set(
                session.scalars(select(Post.guid).where(Post.guid.in_([p.guid for p in batch])))
            )
            fresh = [planned for planned in batch if planned.guid not in stored]
            existing += len(batch) - len(fresh)
            try:
                with session.begin_nested():
                    renamed += _insert_batch(ctx, session, fresh, prepared)
            except Conflict:
                # A WordPress slug equal to one generated earlier in this batch: post by post,
                # each slug checked against all stored before it.
                renamed += _insert_one_by_one(ctx, session, fresh, prepared)
            except IntegrityError:  # pragma: no cover - two imports of one file at once
                raise Conflict(
                    "posts of this file appeared meanwhile (another import running?); "
                    "run the import again"
                ) from None
            created += len(fresh)
        if progress is not None:
            progress(len(batch))
    if created:
        ctx.db.analyze()  # a bulk load: the planner's statistics follow the data
    return ImportReport(created, existing, renamed, dict(plan.skipped))


def _derived(planned: PlannedPost) -> post_service.PreparedPost:
    # The WordPress slug is taken by another post: one is derived from the title.
    return post_service.prepare_post(planned.data.model_copy(update={"slug": None}))


def _insert_batch(
    ctx: Context,
    session: Session,
    fresh: list[PlannedPost],
    prepared: dict[int, post_service.PreparedPost],
) -> int:
    """The batch in constant statements (post_service.insert_posts); how many renamed."""
    taken = post_repo.slugs_taken(session, {p.data.slug for p in fresh if p.data.slug})
    new: list[post_service.NewPost] = []
    renamed = 0
    for planned in fresh:
        ready, slug = prepared[id(planned)], planned.data.slug
        if slug is not None and slug in taken:  # stored, or given earlier in this batch
            ready, renamed = _derived(planned), renamed + 1
        elif slug is not None:
            taken.add(slug)
        # The guid readers of the WordPress feed know (RFC 4287 §4.2.6: an entry's id never
        # changes), in place of the one feedsvc mints.
        new.append(post_service.NewPost(ready, guid=planned.guid))
    post_service.insert_posts(ctx, session, new)
    return renamed


def _insert_one_by_one(
    ctx: Context,
    session: Session,
    fresh: list[PlannedPost],
    prepared: dict[int, post_service.PreparedPost],
) -> int:
    renamed = 0
    for planned in fresh:
        ready, slug = prepared[id(planned)], planned.data.slug
        if slug is not None and post_repo.slug_taken(session, slug):
            ready, renamed = _derived(planned), renamed + 1
        post_service.insert_post(ctx, session, ready, guid=planned.guid)
    return renamed
