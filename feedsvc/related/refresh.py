"""Keeping stored related lists fresh: the full rebuild and the incremental refresh.

Pipeline: select what changed → get the index (this process's copy if it is the persisted
one's latest revision, else restored from the database: no segmenting, no scoring) → apply
the changes (segmenting only changed posts) → compare its lists with the stored ones → write
the lists that differ, in small batches (lease heartbeat and SIGTERM check between them) →
bump the feeds whose bytes changed → persist what the index changed and move the progress
markers, in one transaction.

What "changed" means: posts written since the last successful run (the post_changes log,
filled in each write's own transaction) and scheduled posts that became due since (no write
marks those). Their own lists, the lists the index says may now hold them, and the stored
lists that show them are compared: the work grows with the change, not the corpus.

Memory is bounded by the compact index (engine.py), never by the posts: a rebuild streams
the published posts from the database in batches of BATCH (text is segmented and dropped,
only term ids and weights stay), and persists the index as a new generation
(repo/related_index.py). The refresh of a new process (a restarted scheduler, `feedsvc jobs
run`) restores that index instead of rebuilding it; a missing or stale one (other engine
settings, a change log pruned past it, an unreadable row) is rebuilt in that run, logged.

Crash safety: the lists are written before the persisted index and the markers move, so a
run that dies leaves an index that is behind the lists, never ahead: the next run applies
the same changes again and finds those lists already written. A run that fails drops this
process's copy, and the next run restores the persisted one.

A list whose related posts and order are unchanged is not rewritten, so a refresh that
finds the same posts (scores aside) changes no byte of any feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from feedsvc.content import html_to_text
from feedsvc.context import Context
from feedsvc.jobs import Lease
from feedsvc.models import ExternalItem, Post, RelatedItem
from feedsvc.related.engine import RelatedDoc, RelatedIndex
from feedsvc.repo import feedstate
from feedsvc.repo import jobs as job_repo
from feedsvc.repo import related as related_repo
from feedsvc.repo import related_index as index_repo
from feedsvc.repo import sources as source_repo

log = logging.getLogger("feedsvc.related")

REFRESH_JOB = "related-refresh"
BATCH = 1000  # lists compared and written per transaction
LOAD_BATCH = 500  # posts read, segmented and dropped at a time by a rebuild
PERSIST_BATCH = 2000  # index rows written per transaction by a rebuild
# Change-log rows older than this are pruned; an index older than that is rebuilt.
CHANGE_LOG_DAYS = 7
MEMORY_KEY = "related"

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class IndexState:
    """The related index a process holds between runs, and what it has applied."""

    index: RelatedIndex
    applied_seq: int
    checked_until: datetime
    external: set[int]  # upstream items in the index (pruned ones must leave it)
    generation: int = 0
    revision: int = 0  # of the persisted index this copy equals
    persisted_terms: int = 0  # vocabulary rows already stored


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


def to_doc(post: Post | related_repo.PostText) -> RelatedDoc:
    return RelatedDoc(
        key=post_key(post.id),
        title=post.title,
        tags=post.tags
        if isinstance(post, related_repo.PostText)
        else tuple(t.name for t in post.tags),
        body=html_to_text(" ".join(post.pages)),
        published_at=post.published_at,
    )


def engine_settings(ctx: Context) -> dict[str, float]:
    return {"top_k": ctx.settings.related.top_k, "min_score": ctx.settings.related.min_score}


def new_index(ctx: Context) -> RelatedIndex:
    return RelatedIndex(**engine_settings(ctx))  # type: ignore[arg-type]


def _load_docs(
    ctx: Context,
    now: datetime,
    post_ids: Collection[int] | None = None,
    external_ids: Collection[int] | None = None,
) -> list[RelatedDoc]:
    """Published, due posts and upstream items (these ids, or all: see _stream_docs)."""
    return list(_stream_docs(ctx, now, post_ids, external_ids))


def _stream_docs(
    ctx: Context,
    now: datetime,
    post_ids: Collection[int] | None = None,
    external_ids: Collection[int] | None = None,
) -> Iterator[RelatedDoc]:
    """Published, due posts and upstream items, LOAD_BATCH posts per read: never all at once."""
    if post_ids is None:
        with ctx.db.read() as session:
            post_ids = related_repo.visible_post_ids(session, now)
    ids = sorted(post_ids)
    for start in range(0, len(ids), LOAD_BATCH):
        with ctx.db.read() as session:
            batch = related_repo.visible_post_texts(session, now, ids[start : start + LOAD_BATCH])
            docs = [to_doc(post) for post in batch]
        yield from docs
    if external_ids is None or external_ids:
        with ctx.db.read() as session:
            items = source_repo.all_external(
                session, None if external_ids is None else set(external_ids)
            )
            docs = [item_doc(item) for item in items]
        yield from docs


def _external_ids(keys: Iterable[str]) -> set[int]:
    return {
        int(ident)
        for key in keys
        if key.startswith("ext:") and (ident := related_repo.split_key(key)[1]) is not None
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
            replaced: dict[int, related_repo.Ranked] = {}
            for post_id in batch:
                new = _ranked(index, post_key(post_id))
                old = stored.get(post_id, [])
                if new == old:
                    continue
                replaced[post_id] = new
                if [key for key, _ in new] != [key for key, _ in old]:
                    changed_shown.append(post_id)
            related_repo.replace_lists(session, replaced, now)
            written += len(replaced)
            if changed_shown:
                # Only what readers see counts: a score change alone leaves every feed alone.
                categories = related_repo.category_ids(session, changed_shown)
                tags = feedstate.tag_ids_of_posts(session, changed_shown)
                feedstate.bump(session, categories, now, visible=True, tag_ids=tags)
        if progress is not None:
            progress(min(start + BATCH, len(ids)), len(ids))
    return len(ids), written


def _save_markers(ctx: Context, session: Session, seq: int, now: datetime) -> None:
    job_repo.ensure_job(session, REFRESH_JOB, "related", now)
    job = job_repo.get_job(session, REFRESH_JOB)
    assert job is not None
    job.last_change_seq, job.checked_until = seq, now
    related_repo.prune_changes(session, now - timedelta(days=CHANGE_LOG_DAYS), seq)


def _persist_generation(
    ctx: Context, lease: Lease | None, state: IndexState, seq: int, now: datetime
) -> None:
    """The whole index as a new generation, made current with the markers; the old one goes."""
    index = state.index
    with ctx.db.read() as session:
        generation = index_repo.next_generation(session)
    terms = index.terms()
    snapshot = index.idf_snapshot()
    for start in range(0, len(terms), PERSIST_BATCH * 5):
        with ctx.db.write() as session:
            part = terms[start : start + PERSIST_BATCH * 5]
            index_repo.add_terms(session, generation, start, part, snapshot)
    keys = index.keys()
    for start in range(0, len(keys), PERSIST_BATCH):
        if lease is not None:
            lease.checkpoint()
        with ctx.db.write() as session:
            part = keys[start : start + PERSIST_BATCH]
            index_repo.put_documents(session, generation, list(index.stored_docs(part)))
    with ctx.db.write() as session:
        state.revision = index_repo.save_header(
            session,
            generation=generation,
            fingerprint=index.settings_fingerprint(),
            idf=snapshot,
            applied_seq=seq,
            checked_until=now,
            term_count=len(terms),
            now=now,
            new_generation=True,
        )
        _save_markers(ctx, session, seq, now)
    with ctx.db.write() as session:
        index_repo.drop_generations_except(session, generation)
    state.generation, state.persisted_terms = generation, len(terms)


def _persist_changes(
    ctx: Context, state: IndexState, keys: Collection[str], gone: Collection[str], seq: int
) -> None:
    """What one refresh changed in the index, with the markers: one transaction."""
    index, now = state.index, state.checked_until
    terms = index.terms()
    with ctx.db.write() as session:
        index_repo.add_terms(
            session,
            state.generation,
            state.persisted_terms,
            terms[state.persisted_terms :],
            index.idf_snapshot(),
        )
        # A document can be both: its list changed before it was removed in this run.
        absent = sorted(key for key in {*gone, *keys} if key not in index)
        index_repo.drop_documents(session, state.generation, absent)
        present = sorted(key for key in keys if key in index)
        index_repo.put_documents(session, state.generation, list(index.stored_docs(present)))
        state.revision = index_repo.save_header(
            session,
            generation=state.generation,
            fingerprint=index.settings_fingerprint(),
            idf=index.idf_snapshot(),
            applied_seq=seq,
            checked_until=now,
            term_count=len(terms),
            now=now,
            new_generation=False,
        )
        _save_markers(ctx, session, seq, now)
    state.persisted_terms = len(terms)


def rebuild(ctx: Context, lease: Lease | None, progress: Progress | None = None) -> RefreshReport:
    """Everything again: IDF over the whole published corpus, every list compared."""
    ctx.memory.pop(MEMORY_KEY, None)
    now = ctx.clock.now()
    with ctx.db.read() as session:
        seq = related_repo.max_change_seq(session)
    index = new_index(ctx)
    index.rebuild(_stream_docs(ctx, now))
    keys = index.keys()
    state = IndexState(index, seq, now, _external_ids(keys))
    visible = {post_id for key in keys if (post_id := post_id_of(key)) is not None}
    with ctx.db.write() as session:
        # Lists of posts that are no longer visible (drafts again, not yet due) go away.
        hidden = select(Post.id).where(or_(Post.status != "published", Post.published_at > now))
        session.execute(delete(RelatedItem).where(RelatedItem.post_id.in_(hidden)))
    compared, written = _write(ctx, lease, index, visible, now, progress)
    _persist_generation(ctx, lease, state, seq, now)
    ctx.memory[MEMORY_KEY] = state
    log.info("related rebuild: %d posts, %d lists written", len(keys), written)
    return RefreshReport(compared, written, len(keys), full=True)


def _restore(ctx: Context, now: datetime) -> IndexState | None:
    """This process's index if it is the persisted one, else the persisted one; None: stale."""
    settings_probe = new_index(ctx)
    with ctx.db.read() as session:
        found = index_repo.header(session)
    if found is None:
        log.warning("related: no persisted index: rebuilding it")
        return None
    if found.fingerprint != settings_probe.settings_fingerprint():
        log.warning("related: the persisted index has other settings: rebuilding it")
        return None
    if found.checked_until < now - timedelta(days=CHANGE_LOG_DAYS - 1):
        log.warning("related: the persisted index is older than the change log: rebuilding it")
        return None
    held: IndexState | None = ctx.memory.get(MEMORY_KEY)
    if held is not None and (held.generation, held.revision) == (found.generation, found.revision):
        return held
    try:
        with ctx.db.read() as session:
            snapshot = index_repo.snapshot(session)
            terms = index_repo.terms(session, found.generation)
            if len(terms) != found.term_count:
                raise ValueError("related index: vocabulary incomplete")
            index = RelatedIndex.restore(
                snapshot,
                terms,
                index_repo.documents(session, found.generation),
                **engine_settings(ctx),
            )
    except ValueError as exc:
        log.warning("related: the persisted index is unreadable (%s): rebuilding it", exc)
        return None
    return IndexState(
        index,
        found.applied_seq,
        found.checked_until,
        _external_ids(index.keys()),
        generation=found.generation,
        revision=found.revision,
        persisted_terms=len(terms),
    )


def refresh(ctx: Context, lease: Lease | None) -> RefreshReport:
    """Only what can have changed since the last successful run (see the module doc)."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        job = job_repo.get_job(session, REFRESH_JOB)
    if job is None or job.checked_until is None:
        return rebuild(ctx, lease)  # never ran: nothing to be incremental from
    state = _restore(ctx, now)
    if state is None:
        return rebuild(ctx, lease)
    ctx.memory.pop(MEMORY_KEY, None)  # until this run has finished, no copy is trusted
    with ctx.db.read() as session:
        seq = related_repo.max_change_seq(session)
        since_run = related_repo.changed_since(session, job.last_change_seq, seq)
        since_run |= related_repo.became_due(session, job.checked_until, now)
        items_since_run = source_repo.external_changed(session, job.checked_until, now)
        existing_items = source_repo.external_ids(session)
        to_apply = related_repo.changed_since(session, state.applied_seq, seq)
        to_apply |= related_repo.became_due(session, state.checked_until, now)
        to_apply |= since_run
        items_to_apply = source_repo.external_changed(session, state.checked_until, now)
        items_to_apply |= items_since_run
        shown_by = related_repo.referrers(session, to_apply)
        shown_by |= source_repo.items_shown_by(session, sorted(items_to_apply))
    docs = _load_docs(ctx, now, to_apply, items_to_apply)
    visible = {post_id_of(doc.key) for doc in docs} - {None}
    gone = [post_key(post_id) for post_id in to_apply if post_id not in visible]
    gone += [external_key(item) for item in state.external - existing_items]
    touched = state.index.upsert(docs) | state.index.remove(gone)
    state.applied_seq, state.checked_until = seq, now
    state.external = (state.external & existing_items) | _external_ids(d.key for d in docs)
    candidates = {
        post_id
        for post_id in {post_id_of(key) for key in touched} | visible | shown_by
        if post_id is not None
    }
    with ctx.db.write() as session:
        for post_id in to_apply - visible:
            session.execute(delete(RelatedItem).where(RelatedItem.post_id == post_id))
    compared, written = _write(ctx, lease, state.index, candidates, now)
    _persist_changes(ctx, state, touched | {doc.key for doc in docs}, gone, seq)
    ctx.memory[MEMORY_KEY] = state
    log.info(
        "related refresh: %d posts and %d upstream items changed, %d compared, %d written",
        len(to_apply),
        len(items_to_apply),
        compared,
        written,
    )
    return RefreshReport(compared, written, len(state.index), full=False)
