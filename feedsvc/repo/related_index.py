"""The persisted related index (migration 0006): generations, vocabulary, documents.

A *generation* is one rebuild's index. A rebuild writes its terms and documents under a new
generation number in batches, then `switch()` makes it current in one small transaction (with
the job markers), and the old generation's rows are deleted afterwards: a rebuild that dies
half-way leaves the current index untouched. An incremental refresh rewrites the rows of the
documents it changed and bumps ``revision``, which tells a process holding the index in
memory that another process moved it on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from feedsvc.models import RelatedIndexDoc, RelatedIndexState, RelatedIndexTerm
from feedsvc.related.engine import IdfSnapshot, Related, StoredDoc

STATE_ID = 1
_TERMS = cast(Table, RelatedIndexTerm.__table__)
_DOCS = cast(Table, RelatedIndexDoc.__table__)


@dataclass(frozen=True)
class IndexHeader:
    generation: int
    revision: int
    fingerprint: str
    applied_seq: int
    checked_until: datetime
    term_count: int


def header(session: Session) -> IndexHeader | None:
    row = session.get(RelatedIndexState, STATE_ID)
    if row is None:
        return None
    return IndexHeader(
        row.generation,
        row.revision,
        row.fingerprint,
        row.applied_seq,
        row.checked_until,
        row.term_count,
    )


def next_generation(session: Session) -> int:
    current = session.scalar(select(func.max(RelatedIndexDoc.generation))) or 0
    terms = session.scalar(select(func.max(RelatedIndexTerm.generation))) or 0
    row = session.get(RelatedIndexState, STATE_ID)
    return max(current, terms, row.generation if row else 0) + 1


def snapshot(session: Session) -> IdfSnapshot:
    """The current generation's IDF snapshot (its terms with an IDF, blocked, cutoffs)."""
    row = session.get(RelatedIndexState, STATE_ID)
    assert row is not None
    frozen = json.loads(row.snapshot)
    idf = {
        term: float(value or 0.0)
        for term, value in session.execute(
            select(RelatedIndexTerm.term, RelatedIndexTerm.idf).where(
                RelatedIndexTerm.generation == row.generation, RelatedIndexTerm.idf.is_not(None)
            )
        )
    }
    return IdfSnapshot(
        doc_count=row.doc_count,
        idf=idf,
        cutoffs={key: (int(w), doc) for key, (w, doc) in frozen["cutoffs"].items()},
        blocked=frozenset(frozen["blocked"]),
    )


def terms(session: Session, generation: int) -> list[str]:
    rows = session.execute(
        select(RelatedIndexTerm.id, RelatedIndexTerm.term)
        .where(RelatedIndexTerm.generation == generation)
        .order_by(RelatedIndexTerm.id)
    )
    found = []
    for expected, (term_id, term) in enumerate(rows):
        if term_id != expected:
            raise ValueError(f"related index: term ids of generation {generation} have a gap")
        found.append(term)
    return found


def documents(session: Session, generation: int) -> Iterator[StoredDoc]:
    query = (
        select(
            RelatedIndexDoc.key,
            RelatedIndexDoc.stamp,
            RelatedIndexDoc.term_ids,
            RelatedIndexDoc.weights,
            RelatedIndexDoc.related,
        )
        .where(RelatedIndexDoc.generation == generation)
        .execution_options(yield_per=2000)
    )
    for key, stamp, term_ids, weights, related in session.execute(query):
        listed = None
        if related is not None:
            listed = tuple(Related(item, float(score)) for item, score in json.loads(related))
        yield StoredDoc(key, stamp, bytes(term_ids), bytes(weights), listed)


def add_terms(
    session: Session, generation: int, first_id: int, new: Sequence[str], idf: IdfSnapshot
) -> None:
    if new:
        session.execute(
            insert(_TERMS),  # Core on the tables: rows never read back
            [
                {
                    "generation": generation,
                    "id": first_id + n,
                    "term": term,
                    "idf": idf.idf.get(term),
                }
                for n, term in enumerate(new)
            ],
        )


def put_documents(session: Session, generation: int, docs: Iterable[StoredDoc]) -> None:
    rows = [
        {
            "generation": generation,
            "key": doc.key,
            "stamp": doc.stamp,
            "term_ids": doc.term_ids,
            "weights": doc.weights,
            "related": None
            if doc.related is None
            else json.dumps([[item.key, item.score] for item in doc.related]),
        }
        for doc in docs
    ]
    if rows:
        drop_documents(session, generation, [str(row["key"]) for row in rows])
        session.execute(insert(_DOCS), rows)


def drop_documents(session: Session, generation: int, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), 500):
        part = list(keys[start : start + 500])
        session.execute(
            delete(RelatedIndexDoc).where(
                RelatedIndexDoc.generation == generation, RelatedIndexDoc.key.in_(part)
            )
        )


def save_header(
    session: Session,
    *,
    generation: int,
    fingerprint: str,
    idf: IdfSnapshot,
    applied_seq: int,
    checked_until: datetime,
    term_count: int,
    now: datetime,
    new_generation: bool,
) -> int:
    """Write the header (a new generation, or progress on the current one); the revision."""
    row = session.get(RelatedIndexState, STATE_ID)
    if row is None:
        row = RelatedIndexState(id=STATE_ID, revision=0)
        session.add(row)
    if new_generation or row.generation is None:
        row.generation = generation
        row.fingerprint = fingerprint
        row.doc_count = idf.doc_count
        row.snapshot = json.dumps(
            {
                "blocked": sorted(idf.blocked),
                "cutoffs": {key: [w, doc] for key, (w, doc) in sorted(idf.cutoffs.items())},
            },
            ensure_ascii=False,
        )
    row.revision = (row.revision or 0) + 1
    row.applied_seq, row.checked_until = applied_seq, checked_until
    row.term_count, row.written_at = term_count, now
    session.flush()
    return row.revision


def drop_generations_except(session: Session, keep: int) -> None:
    session.execute(delete(RelatedIndexDoc).where(RelatedIndexDoc.generation != keep))
    session.execute(delete(RelatedIndexTerm).where(RelatedIndexTerm.generation != keep))


def forget(session: Session) -> None:
    """No persisted index: the next related run rebuilds (a restore, tests)."""
    session.execute(delete(RelatedIndexState))
    drop_generations_except(session, -1)
