"""Keeping stored related lists fresh: the full rebuild and the incremental refresh.

Pipeline: select what changed → bring the process's in-memory index up to date (segmenting
only changed posts) → compare its lists with the stored ones → write the lists that differ,
in small batches (lease heartbeat and SIGTERM check between them) → bump the feeds whose bytes
changed → move the progress markers.

What "changed" means: posts written since the last successful run (the post_changes log,
filled in each write's own transaction) and scheduled posts that became due since (no write
marks those). Their own lists, the lists the index says may now hold them, and the stored
lists that show them are compared: the work grows with the change, not the corpus.

A list whose related posts and order are unchanged is not rewritten, so a refresh that
finds the same posts (scores aside) changes no byte of any feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from feedsvc.content import html_to_text
from feedsvc.context import Context
from feedsvc.jobs import Lease
from feedsvc.models import ExternalItem, Post, RelatedItem
from feedsvc.related.engine import RelatedDoc, RelatedIndex
from feedsvc.repo import feedstate
from feedsvc.repo import jobs as job_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo import sources as source_repo

log = logging.getLogger("feedsvc.related")

REFRESH_JOB = "related-refresh"
BATCH = 200
# Change-log rows older than this are pruned; an in-memory index older than that reloads.
CHANGE_LOG_DAYS = 7

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class IndexState:
    """The related index a process keeps between runs, and what it has applied."""

    index: RelatedIndex
    applied_seq: int
    checked_until: datetime
    external: set[int]  # upstream items in the index (pruned ones must leave it)


@dataclass(frozen=True)
class RefreshReport:
    compared: int
    written: int
    documents: int
    full: bool


post_key, external_key = related_repo.post_key, related_repo.external_key


def post_id_of(key: str) -> int | None:
    return related_repo.split_key(key)[0]


def item_doc(item: ExternalItem) -> RelatedDoc:
    return RelatedDoc(
        key=external_key(item.id),
        title=item.title,
        tags=tuple(item.tags or ()),
        body=item.body,
        published_at=item.published_at,
    )


def to_doc(post: Post) -> RelatedDoc:
    return RelatedDoc(
        key=post_key(post.id),
        title=post.title,
        tags=tuple(tag.name for tag in post.tags),
        body=html_to_text(" ".join(post.pages)),
        published_at=post.published_at,
    )


def new_index(ctx: Context) -> RelatedIndex:
    return RelatedIndex(top_k=ctx.settings.related.top_k, min_score=ctx.settings.related.min_score)


def _load_docs(
    ctx: Context,
    now: datetime,
    post_ids: Collection[int] | None = None,
    external_ids: Collection[int] | None = None,
) -> list[RelatedDoc]:
    """Published, due posts and upstream items (all of them, or these ids)."""
    with ctx.db.read() as session:
        docs = [to_doc(post) for post in related_repo.visible_posts(session, now, post_ids)]
        if external_ids is None or external_ids:
            items = source_repo.all_external(
                session, None if external_ids is None else set(external_ids)
            )
            docs += [item_doc(item) for item in items]
    return docs


def _external_ids(docs: Iterable[RelatedDoc]) -> set[int]:
    return {
        int(ident)
        for doc in docs
        if doc.key.startswith("ext:") and (ident := related_repo.split_key(doc.key)[1]) is not None
    }


def _ranked(index: RelatedIndex, key: str) -> related_repo.Ranked:
    return [(item.key, item.score) for item in index.related(key)] if key in index else []


def _write(
    ctx: Context,
    lease: Lease | None,
    index: RelatedIndex,
    post_ids: Iterable[int],
    now: datetime,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Store the lists of ``post_ids`` that differ from what is stored; bump their feeds."""
    ids = sorted(set(post_ids))
    written = 0
    for start in range(0, len(ids), BATCH):
        if lease is not None:
            lease.checkpoint()
        batch = ids[start : start + BATCH]
        with ctx.db.write() as session:
            stored = related_repo.stored_lists(session, batch)
            changed_shown: list[int] = []
            for post_id in batch:
                new = _ranked(index, post_key(post_id))
                old = stored.get(post_id, [])
                if new == old:
                    continue
                related_repo.replace_list(session, post_id, new, now)
                written += 1
                if [key for key, _ in new] != [key for key, _ in old]:
                    changed_shown.append(post_id)
            if changed_shown:
                # Only what readers see counts: a score change alone leaves every feed alone.
                categories = related_repo.category_ids(session, changed_shown)
                feedstate.bump(session, categories, now, visible=True)
        if progress is not None:
            progress(min(start + BATCH, len(ids)), len(ids))
    return len(ids), written


def _save_markers(ctx: Context, seq: int, now: datetime) -> None:
    with ctx.db.write() as session:
        job_repo.ensure_job(session, REFRESH_JOB, "related", now)
        job = job_repo.get_job(session, REFRESH_JOB)
        assert job is not None
        job.last_change_seq, job.checked_until = seq, now
        related_repo.prune_changes(session, now - timedelta(days=CHANGE_LOG_DAYS), seq)


def rebuild(ctx: Context, lease: Lease | None, progress: Progress | None = None) -> RefreshReport:
    """Everything again: IDF over the whole published corpus, every list compared."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        seq = related_repo.max_change_seq(session)
    docs = _load_docs(ctx, now)
    index = new_index(ctx)
    index.rebuild(docs)
    ctx.memory["related"] = IndexState(index, seq, now, _external_ids(docs))
    visible = {post_id_of(doc.key) for doc in docs} - {None}
    with ctx.db.write() as session:
        # Lists of posts that are no longer visible (drafts again, not yet due) go away.
        hidden = select(Post.id).where(or_(Post.status != "published", Post.published_at > now))
        session.execute(delete(RelatedItem).where(RelatedItem.post_id.in_(hidden)))
    compared, written = _write(ctx, lease, index, visible, now, progress)  # type: ignore[arg-type]
    _save_markers(ctx, seq, now)
    log.info("related rebuild: %d posts, %d lists written", len(docs), written)
    return RefreshReport(compared, written, len(docs), full=True)


def refresh(ctx: Context, lease: Lease | None) -> RefreshReport:
    """Only what can have changed since the last successful run (see the module doc)."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        job = job_repo.get_job(session, REFRESH_JOB)
    if job is None or job.checked_until is None:
        return rebuild(ctx, lease)  # never ran: nothing to be incremental from
    with ctx.db.read() as session:
        seq = related_repo.max_change_seq(session)
        since_run = related_repo.changed_since(session, job.last_change_seq, seq)
        since_run |= related_repo.became_due(session, job.checked_until, now)
        items_since_run = source_repo.external_changed(session, job.checked_until, now)
        existing_items = source_repo.external_ids(session)
    state: IndexState | None = ctx.memory.get("related")
    if state is None or state.checked_until < now - timedelta(days=CHANGE_LOG_DAYS - 1):
        # A new process: the index as of the last run, then the changes since applied.
        base = [
            doc
            for doc in _load_docs(ctx, now)
            if post_id_of(doc.key) not in since_run
            and related_repo.split_key(doc.key)[1] not in items_since_run
        ]
        state = IndexState(
            new_index(ctx), job.last_change_seq, job.checked_until, _external_ids(base)
        )
        state.index.rebuild(base)
    with ctx.db.read() as session:
        to_apply = related_repo.changed_since(session, state.applied_seq, seq)
        to_apply |= related_repo.became_due(session, state.checked_until, now)
        to_apply |= since_run
        items_to_apply = source_repo.external_changed(session, state.checked_until, now)
        items_to_apply |= items_since_run
        shown_by = related_repo.referrers(session, to_apply)
        shown_by |= source_repo.items_shown_by(session, sorted(items_to_apply))
    try:
        docs = _load_docs(ctx, now, to_apply, items_to_apply)
        visible = {post_id_of(doc.key) for doc in docs} - {None}
        gone = [post_key(post_id) for post_id in to_apply if post_id not in visible]
        gone += [external_key(item) for item in state.external - existing_items]
        touched = state.index.upsert(docs) | state.index.remove(gone)
    except Exception:
        ctx.memory.pop("related", None)  # half-applied: reload next time
        raise
    state.applied_seq, state.checked_until = seq, now
    state.external = (state.external & existing_items) | _external_ids(docs)
    ctx.memory["related"] = state
    candidates = {
        post_id
        for post_id in {post_id_of(key) for key in touched} | visible | shown_by
        if post_id is not None
    }
    with ctx.db.write() as session:
        for post_id in to_apply - visible:
            session.execute(delete(RelatedItem).where(RelatedItem.post_id == post_id))
    compared, written = _write(ctx, lease, state.index, candidates, now)
    _save_markers(ctx, seq, now)
    log.info(
        "related refresh: %d posts and %d upstream items changed, %d compared, %d written",
        len(to_apply),
        len(items_to_apply),
        compared,
        written,
    )
    return RefreshReport(compared, written, len(state.index), full=False)
