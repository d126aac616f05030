"""Related posts: TF-IDF cosine over title, tags and body, kept current by bounded updates.

Pipeline, free of I/O:
  doc -> terms per field (tokenize) -> field-weighted sublinear TF x BM25 IDF, L2-normalised,
      quantised to integers -> candidates from a capped inverted index -> exact cosine over
      the candidates, vectorised -> top-k list per post.

Compact representation. Terms get integer ids (a vocabulary kept by the index); a document is
two arrays, its term ids (int32) and its weights (int32: the unit vector times SCALE = 2^26,
rounded). Documents live in *slots*: all vectors sit end to end in a few growable arrays
(CSR-like: offsets, ids, weights), never one dict per document. Replacing a document gives it
a new slot and marks the old one dead, so the arrays only grow between two rebuilds. The
posting lists are one sorted array of posting ids with offsets (built by `rebuild()` and
`restore()`), plus a small overlay for the documents upserted since. At 100,000 documents
this is about 12 bytes per (document, term), where the dict-per-document index of before
took about 20 times that.

Exact cosine, vectorised. A score is the dot product of two quantised vectors: a sum of
products of integers below 2^26, each below 2^52, all non-negative, whose total is at most
about 2^52 (both vectors have unit length). Every partial sum is then an integer below 2^53,
which a float64 holds exactly, so numpy sums it exactly in any order (np.bincount over the
candidates' terms): the score does not depend on which path, batch or order computed it.
So a rebuild scores each pair once, for both documents (`_rebuild_lists`).
It is divided by 2^52 and rounded to 6 decimals. Quantising moves a weight by at most 2^-27:
scores move by well under 1e-6, and precision@5 on the test corpus is unchanged (0.913).

Who gets compared. A document offers *posting keys*: its `candidate_terms` heaviest terms
(skipping terms in more than `max_df_ratio` of the corpus) and every pair of its `pair_terms`
heaviest. It is posted under a key if it ranks among the key's `posting_cap` heaviest holders
as of the last rebuild; that rank is frozen as a cutoff in the `IdfSnapshot`. Two documents
are candidates for each other when they are posted under a common key. The relation is
symmetric and depends only on the two vectors and the snapshot, never on other documents, so:

* a document has at most (candidate_terms + pairs) x posting_cap candidates, plus documents
  upserted since the rebuild, whatever the corpus size: that bounds `upsert()`/`related()`;
* after any upserts and removals every list equals what `rebuild(docs, idf=snapshot)`
  computes from scratch, exactly (no tolerance): nothing depends on the order of updates.

Lists are ordered by score desc, published_at desc, key: a total order.

Persistence (refresh.py stores it in the database): `stored_docs()` gives each document's
arrays and list, `terms()` the vocabulary in id order; `RelatedIndex.restore()` builds an
index from them without segmenting or scoring anything, so a new process continues where
the last one stopped.

Not thread-safe: one writer (the related job) owns an index.
"""

from __future__ import annotations

import functools
import heapq
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from feedsvc.related.tokenize import tag_terms, tokenize

Array = npt.NDArray[Any]
Vector = dict[str, float]
_PAIR = "\x1f"  # joins two terms into one posting key; no term contains it
SCALE = 2**26  # unit-vector weights are stored as round(w * SCALE)
_DOT_SCALE = float(SCALE) * float(SCALE)
_PAIR_SHIFT = 32  # a pair's posting id: (first id + 1) << 32 | second id
BLOCK = 256  # lists a rebuild computes at once (memory: about 1 MiB per list)
OFFER_BLOCK = 8192  # documents whose postings a rebuild or a restore decides at once


@dataclass(frozen=True)
class RelatedDoc:
    key: str  # "post:12", "ext:7"
    title: str
    tags: tuple[str, ...]
    body: str  # plain text: the caller strips HTML
    published_at: datetime  # tz-aware; only breaks ties

    def __post_init__(self) -> None:
        # A naive datetime would be read in the server's local zone and reorder ties silently.
        if self.published_at.utcoffset() is None:
            raise ValueError(f"related: published_at of {self.key!r} must be timezone-aware")


@dataclass(frozen=True)
class Related:
    key: str
    score: float  # cosine, rounded to 6 decimals


@dataclass(frozen=True)
class IdfSnapshot:
    """Statistics frozen by `rebuild()`: upserts are weighted and posted under them."""

    doc_count: int = 0
    idf: Mapping[str, float] = field(default_factory=dict)
    # Per posting key (a term, or two terms joined by \\x1f), the (quantised weight, doc key)
    # of its posting_cap-th holder at the rebuild: a document is posted under it if it ranks
    # no lower (weight desc, then key). The key makes the cap exact even when many documents
    # tie on weight (syndicated copies). No entry: at most posting_cap holders, all posted.
    cutoffs: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    # Terms in so many documents that posting them would make candidate sets unbounded.
    blocked: frozenset[str] = frozenset()

    def weight(self, term: str) -> float:
        found = self.idf.get(term)
        # A term the rebuild never saw counts as occurring once: in the document being added.
        return bm25_idf(max(self.doc_count, 1), 1) if found is None else found


@dataclass(frozen=True)
class StoredDoc:
    """One document as the index keeps it: what persistence writes and `restore()` reads."""

    key: str
    stamp: float  # published_at as a POSIX timestamp
    term_ids: bytes  # int32 little-endian, ids of `RelatedIndex.terms()`
    weights: bytes  # int32 little-endian, quantised unit vector
    related: tuple[Related, ...] | None  # its list (None: not a list owner)


def bm25_idf(doc_count: int, df: int) -> float:
    """Lucene's BM25 IDF: always positive, ~0 for a term in every document (理财有风险...)."""
    return math.log(1.0 + (doc_count - df + 0.5) / (df + 0.5))


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Dot product of two unit dict vectors (baselines in tests; the index uses arrays)."""
    if len(a) > len(b):
        a, b = b, a
    return math.fsum([w * b[t] for t, w in a.items() if t in b])


def is_post(key: str) -> bool:
    """Default list owner: posts get related lists; external items ("ext:") are candidates."""
    return not key.startswith("ext:")


class _Grow:
    """A numpy array that grows by doubling (amortised appends)."""

    def __init__(self, dtype: Any, initial: Array | Sequence[Any] | None = None) -> None:
        data = np.zeros(0, dtype) if initial is None else np.asarray(initial, dtype)
        self._buf = np.empty(max(16, len(data)), dtype)
        self._buf[: len(data)] = data
        self.size = len(data)

    def extend(self, values: Array | Sequence[Any]) -> None:
        n = len(values)
        need = self.size + n
        if need > len(self._buf):
            grown = np.empty(max(need, 2 * len(self._buf)), self._buf.dtype)
            grown[: self.size] = self._buf[: self.size]
            self._buf = grown
        self._buf[self.size : need] = values
        self.size = need

    @property
    def view(self) -> Array:
        return self._buf[: self.size]


def _spans(ptr: Array, rows: Array) -> tuple[Array, Array]:
    """Positions of the slices ptr[r]:ptr[r+1] for r in rows, end to end; their lengths."""
    starts = ptr[rows]
    lengths = ptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64), lengths
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(total), lengths


def _gather(ptr: Array, data: Array, rows: Array) -> tuple[Array, Array]:
    """Concatenated slices data[ptr[r]:ptr[r+1]] for r in rows, and their lengths."""
    at, lengths = _spans(ptr, rows)
    return data[at], lengths


def _distinct(values: Array) -> Array:
    """Sorted distinct values (np.unique's hash path is slower on these int arrays)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


@functools.lru_cache(maxsize=1024)
def _sublinear(count: int) -> float:
    """1 + ln(count): a term's count in one field -> its TF (counts repeat: computed once)."""
    return 1.0 + math.log(count)


_MICRO = 1 << 20  # above 10^6: a score rounded to 6 decimals, in millionths, fits below it


class _Ranks:
    """Candidates as one int64 sort key each: (score desc, published_at desc, slot asc).

    A slot's rank orders the slots by (published_at desc, slot), so (score, rank) is the
    lists' total order (a rebuild's slots are in key order); smaller keys come first.
    """

    def __init__(self, stamps: Array) -> None:
        self._by_rank = np.lexsort((np.arange(len(stamps)), -stamps))
        self._rank = np.empty(len(stamps), np.int64)
        self._rank[self._by_rank] = np.arange(len(stamps))
        self._bits = max(1, len(stamps).bit_length())

    def key(self, scores: Array, slots: Array) -> Array:
        # Scores are rounded to 6 decimals: distinct scores give distinct millionths.
        micro = np.rint(scores * 1e6).astype(np.int64)
        found: Array = ((_MICRO - micro) << self._bits) | self._rank[slots]
        return found

    def slot(self, keys: Array) -> Array:
        found: Array = self._by_rank[keys & ((1 << self._bits) - 1)]
        return found


class _Offers:
    """Per slot, the best `k` (key, score) offers it received so far (a rebuild's scratch)."""

    _NONE = np.iinfo(np.int64).max

    def __init__(self, n: int, k: int) -> None:
        self._k = k
        self._keys = np.full((n, k), self._NONE, np.int64)  # sorted per row, best first
        self._scores = np.zeros((n, k), np.float64)

    def add(self, targets: Array, keys: Array, scores: Array) -> None:
        if not len(targets) or not self._k:
            return
        # What cannot beat a target's k-th best never will: most offers stop here.
        fits = keys < self._keys[targets, -1]
        targets, keys, scores = targets[fits], keys[fits], scores[fits]
        if not len(targets):
            return
        rows = _distinct(targets)
        held = self._keys[rows].ravel()
        there = held != self._NONE
        targets = np.concatenate([np.repeat(rows, self._k)[there], targets])
        keys = np.concatenate([held[there], keys])
        scores = np.concatenate([self._scores[rows].ravel()[there], scores])
        at = _best_per_group(targets, keys, self._k, len(self._keys))
        targets, keys, scores = targets[at], keys[at], scores[at]
        place = np.arange(len(targets)) - np.searchsorted(targets, targets)
        self._keys[rows] = self._NONE
        self._keys[targets, place] = keys
        self._scores[targets, place] = scores

    def take(self, slots: Array) -> tuple[Array, Array, Array]:
        """(index in slots, key, score) of the offers these slots hold; they are dropped."""
        keys = self._keys[slots].ravel()
        there = keys != self._NONE
        which = np.repeat(np.arange(len(slots)), self._k)[there]
        scores = self._scores[slots].ravel()[there]
        self._keys[slots] = self._NONE
        return which, keys[there], scores


def _best_per_group(groups: Array, keys: Array, k: int, group_count: int) -> Array:
    """Positions of the k smallest keys of each group, sorted by (group, key)."""
    if not len(groups):
        return np.zeros(0, np.int64)
    shift = int(keys.max()).bit_length()
    if shift + max(1, group_count).bit_length() <= 63:
        order = np.argsort((groups.astype(np.int64) << shift) | keys)
    else:
        order = np.lexsort((keys, groups))
    ordered = groups[order]
    first = np.searchsorted(ordered, ordered)  # where each group's run starts
    best: Array = order[np.arange(len(order)) - first < k]
    return best


def _scores(dots: Array) -> Array:
    """Exact integer dot products -> cosines rounded to 6 decimals (one function everywhere)."""
    return np.round(dots / _DOT_SCALE, 6)


# Scores every (query, candidate) pair; tests count its calls' sizes to check bounded work.
def score_candidates(index: RelatedIndex, slot: int, candidates: Array) -> Array:
    return index._score_slots(slot, candidates)


class RelatedIndex:
    def __init__(
        self,
        *,
        top_k: int = 5,
        # On the test corpus, same-topic pairs score 0.12+ (10th percentile), 90% of
        # cross-topic pairs and every off-topic post stay under 0.041.
        min_score: float = 0.05,
        title_weight: float = 2.0,
        tag_weight: float = 1.5,
        candidate_terms: int = 24,
        pair_terms: int = 4,
        posting_cap: int = 96,
        max_df_ratio: float = 0.5,
        owns_list: Callable[[str], bool] = is_post,
    ) -> None:
        self.top_k = top_k
        self.min_score = min_score
        self.title_weight = title_weight
        self.tag_weight = tag_weight
        self.candidate_terms = candidate_terms
        self.pair_terms = pair_terms
        self.posting_cap = posting_cap
        self.max_df_ratio = max_df_ratio
        self.owns_list = owns_list
        self._reset(IdfSnapshot())

    def settings_fingerprint(self) -> str:
        """What persisted state depends on: a stored index with another one is stale."""
        return (
            f"v1 scale={SCALE} top_k={self.top_k} min_score={self.min_score!r} "
            f"title={self.title_weight!r} tag={self.tag_weight!r} "
            f"terms={self.candidate_terms} pairs={self.pair_terms} cap={self.posting_cap} "
            f"df={self.max_df_ratio!r}"
        )

    def _reset(self, snapshot: IdfSnapshot) -> None:
        self._snapshot = snapshot
        # The snapshot's cutoffs by posting id, for the terms this vocabulary has; the
        # others wait under a missing term until it arrives (_term_id).
        self._cut_ids: dict[int, tuple[int, str]] = {}
        self._cut_waiting: dict[str, list[str]] = {}
        self._term_ids: dict[str, int] = {}
        self._terms: list[str] = []
        self._idf = _Grow(np.float64)  # per term id: snapshot.weight(term)
        self._dense = np.zeros(16, np.float64)  # scratch: one query vector spread out
        self._slot: dict[str, int] = {}  # live key -> slot
        self._keys: list[str] = []  # slot -> key (dead slots keep theirs)
        self._stamp = _Grow(np.float64)
        self._alive = _Grow(np.bool_)
        self._vec_ptr = _Grow(np.int64, np.zeros(1, np.int64))
        self._vec_ids = _Grow(np.int32)
        self._vec_w = _Grow(np.int32)
        self._posted: list[Array] = []  # slot -> posting ids it is posted under (int64)
        self._post_keys = np.zeros(0, np.int64)  # base postings: sorted ids, offsets, slots
        self._post_ptr = np.zeros(1, np.int64)
        self._post_slots = np.zeros(0, np.int32)
        self._overlay: dict[int, list[int]] = {}  # postings of slots added since the base
        self._lists: dict[str, list[Related]] = {}  # owner -> its related list
        self._listed_in: dict[str, set[str]] = {}  # key -> owners whose lists hold it

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def idf_snapshot(self) -> IdfSnapshot:
        return self._snapshot

    def keys(self) -> list[str]:
        return sorted(self._slot)

    def related(self, key: str) -> list[Related]:
        if key not in self._slot:
            raise KeyError(f"related index: no document {key!r}")
        if self.owns_list(key):
            return list(self._lists[key])
        return self._compute(key)  # asked for an external item: computed, not kept

    def lists(self) -> dict[str, list[Related]]:
        return {key: list(self._lists[key]) for key in sorted(self._lists)}

    def candidates(self, key: str) -> frozenset[str]:
        """The documents `key` is compared with (diagnostics, benchmarks)."""
        return frozenset(self._keys[s] for s in self._candidates(self._slot[key]))

    def score(self, a: str, b: str) -> float:
        """Cosine of two indexed documents, whether or not they are candidates."""
        found = self._score_slots(self._slot[a], np.array([self._slot[b]], np.int64))
        return float(found[0])

    def scores_with_all(self, key: str) -> dict[str, float]:
        """Cosine of `key` with every other document (brute force, for benchmarks)."""
        others = np.array([s for s in self._slot.values() if self._keys[s] != key], np.int64)
        scores = self._score_slots(self._slot[key], others).tolist()
        return {self._keys[s]: score for s, score in zip(others.tolist(), scores, strict=True)}

    def terms(self) -> list[str]:
        """The vocabulary in id order (ids only grow until the next rebuild)."""
        return list(self._terms)

    def term_count(self) -> int:
        return len(self._terms)

    def stored_docs(self, keys: Iterable[str] | None = None) -> Iterator[StoredDoc]:
        """Documents as persistence stores them (all, in key order, or these keys)."""
        ptr, ids, weights = self._vec_ptr.view, self._vec_ids.view, self._vec_w.view
        stamps = self._stamp.view
        for key in sorted(self._slot) if keys is None else keys:
            slot = self._slot[key]
            lo, hi = int(ptr[slot]), int(ptr[slot + 1])
            yield StoredDoc(
                key=key,
                stamp=float(stamps[slot]),
                term_ids=ids[lo:hi].astype("<i4").tobytes(),
                weights=weights[lo:hi].astype("<i4").tobytes(),
                related=tuple(self._lists[key]) if key in self._lists else None,
            )

    # -- updates ---------------------------------------------------------------------------

    def rebuild(self, docs: Iterable[RelatedDoc], idf: IdfSnapshot | None = None) -> None:
        """Recompute IDF and posting cutoffs over `docs`, then every vector and every list.

        `docs` is read once and not kept (stream it): only term ids and counts stay. With
        `idf` (another index's `idf_snapshot()`), use those statistics instead: this is what
        incremental results are compared with.
        """
        self._reset(idf if idf is not None else IdfSnapshot())
        counted: dict[str, tuple[float, Array, Array]] = {}
        for doc in docs:  # last one wins for a repeated key
            counted[doc.key] = (doc.published_at.timestamp(), *self._field_tf(doc))
        keys = sorted(counted)
        if idf is None:
            df = np.zeros(len(self._terms), np.int64)
            for key in keys:
                df[counted[key][1]] += 1
            n = len(keys)
            limit = max(self.max_df_ratio * n, self.posting_cap)
            self._snapshot = IdfSnapshot(
                doc_count=n,
                idf={term: bm25_idf(n, int(df[i])) for i, term in enumerate(self._terms)},
                blocked=frozenset(t for i, t in enumerate(self._terms) if df[i] > limit),
            )
            self._idf = _Grow(np.float64, [self._snapshot.idf[t] for t in self._terms])
        for key in keys:
            stamp, term_ids, tf = counted.pop(key)
            self._append_slot(key, stamp, term_ids, self._quantise(term_ids, tf))
        offers = self._all_offers()
        if idf is None:
            self._snapshot = IdfSnapshot(
                doc_count=self._snapshot.doc_count,
                idf=self._snapshot.idf,
                cutoffs=self._cutoffs(offers),
                blocked=self._snapshot.blocked,
            )
        self._install_cutoffs()
        self._post_all(offers)
        owners = np.array([slot for slot, key in enumerate(keys) if self.owns_list(key)], np.int64)
        self._rebuild_lists(owners)

    @classmethod
    def restore(
        cls,
        snapshot: IdfSnapshot,
        terms: Sequence[str],
        docs: Iterable[StoredDoc],
        **settings: Any,
    ) -> RelatedIndex:
        """An index as `stored_docs()` and `terms()` described it: nothing segmented, nothing
        scored (the stored lists are taken as they are)."""
        index = cls(**settings)
        index._reset(snapshot)
        index._terms = list(map(sys.intern, terms))
        index._term_ids = {term: i for i, term in enumerate(index._terms)}
        index._idf = _Grow(np.float64, [snapshot.weight(t) for t in index._terms])
        index._install_cutoffs()
        lists: dict[str, list[Related]] = {}
        # Streamed, in any order: slots need key order only in a rebuild (_compute_block).
        for doc in docs:
            term_ids = np.frombuffer(doc.term_ids, "<i4").astype(np.int32)
            weights = np.frombuffer(doc.weights, "<i4").astype(np.int32)
            index._append_slot(doc.key, doc.stamp, term_ids, weights)
            if index.owns_list(doc.key):
                lists[doc.key] = list(doc.related or ())
        index._post_all(index._all_offers())
        for owner, items in lists.items():
            index._store(owner, [item for item in items if item.key in index._slot])
        return index

    def upsert(self, docs: Iterable[RelatedDoc]) -> set[str]:
        """Add or replace documents under the current snapshot.

        Returns the keys of the upserted documents and of every list that changed.
        """
        batch = _by_key(docs)
        recompute: set[str] = set()
        for key, doc in batch.items():
            if key in self._slot:
                recompute |= self._detach(key)  # lists that held the old version
            term_ids, tf = self._field_tf(doc)
            weights = self._quantise(term_ids, tf)
            slot = self._append_slot(key, doc.published_at.timestamp(), term_ids, weights)
            for posting in self._posted_under(key, *self._posting_offers(term_ids, weights)):
                self._overlay.setdefault(int(posting), []).append(slot)
        recompute |= {key for key in batch if self.owns_list(key)}
        changed = set(batch)
        # Other lists can only gain a new document, and only if it is their candidate: offer
        # it to each candidate instead of recomputing their lists.
        for key in batch:
            slot = self._slot[key]
            found = self._candidates(slot)
            scores = score_candidates(self, slot, found)
            for other_slot, score in zip(found.tolist(), scores.tolist(), strict=True):
                other = self._keys[other_slot]
                if other in recompute or not self.owns_list(other):
                    continue
                if self._offer(other, Related(key, score)):
                    changed.add(other)
        for key in sorted(recompute):
            if self._store(key, self._compute(key)):
                changed.add(key)
        return changed

    def remove(self, keys: Iterable[str]) -> set[str]:
        """Drop documents; return the owners whose lists held them (recomputed)."""
        gone = {key for key in keys if key in self._slot}
        recompute: set[str] = set()
        for key in gone:
            recompute |= self._detach(key)
        recompute -= gone
        for key in sorted(recompute):
            self._store(key, self._compute(key))
        return recompute

    # -- vectors ---------------------------------------------------------------------------

    def _term_id(self, term: str) -> int:
        found = self._term_ids.get(term)
        if found is None:
            term = sys.intern(term)  # one string per term, shared with the snapshot
            found = self._term_ids[term] = len(self._terms)
            self._terms.append(term)
            self._idf.extend([self._snapshot.weight(term)])
            for name in self._cut_waiting.pop(term, ()):
                self._resolve_cutoff(name)
        return found

    def _install_cutoffs(self) -> None:
        self._cut_ids, self._cut_waiting = {}, {}
        for name in self._snapshot.cutoffs:
            self._resolve_cutoff(name)

    def _resolve_cutoff(self, name: str) -> None:
        parts = name.split(_PAIR)
        known = [self._term_ids.get(part) for part in parts]
        missing = [part for part, ident in zip(parts, known, strict=True) if ident is None]
        if missing:
            self._cut_waiting.setdefault(missing[0], []).append(name)
            return
        ids = [ident for ident in known if ident is not None]
        posting = ids[0]
        if len(ids) == 2:
            low, high = min(ids), max(ids)
            posting = ((low + 1) << _PAIR_SHIFT) | high
        self._cut_ids[posting] = self._snapshot.cutoffs[name]

    def _field_tf(self, doc: RelatedDoc) -> tuple[Array, Array]:
        # Sublinear TF per field, then fields weighted: a word said five times in the body
        # should not outweigh the same word once in the title.
        fields = (
            (self.title_weight, tokenize(doc.title)),
            (self.tag_weight, [term for tag in doc.tags for term in tag_terms(tag)]),
            (1.0, tokenize(doc.body)),
        )
        tf: dict[int, float] = {}
        known, sublinear = self._term_ids.get, _sublinear
        for weight, terms in fields:
            for term, count in Counter(terms).items():
                term_id = known(term)
                if term_id is None:
                    term_id = self._term_id(term)
                tf[term_id] = tf.get(term_id, 0.0) + weight * sublinear(count)
        return np.fromiter(tf.keys(), np.int32, len(tf)), np.fromiter(tf.values(), np.float64)

    def _quantise(self, term_ids: Array, tf: Array) -> Array:
        weights = tf * self._idf.view[term_ids]
        # fsum: exactly rounded, so the norm cannot depend on the order of the terms.
        norm = math.sqrt(math.fsum((weights * weights).tolist()))
        if norm <= 0:
            return np.zeros(len(term_ids), np.int32)
        return np.rint(weights / norm * SCALE).astype(np.int32)

    def _append_slot(self, key: str, stamp: float, term_ids: Array, weights: Array) -> int:
        keep = weights > 0  # a zero weight scores nothing
        term_ids, weights = term_ids[keep], weights[keep]
        slot = len(self._keys)
        self._keys.append(key)
        self._slot[key] = slot
        self._stamp.extend([stamp])
        self._alive.extend([True])
        self._vec_ids.extend(term_ids)
        self._vec_w.extend(weights)
        self._vec_ptr.extend([self._vec_ids.size])
        return slot

    def _posting_offers(self, term_ids: Array, weights: Array) -> tuple[Array, Array]:
        """Posting ids the document may be posted under, with its weight for each.

        Its `candidate_terms` heaviest unblocked terms (ties: by term), and every pair of its
        `pair_terms` heaviest (weight: the lighter of the two). A pair is far more specific
        than either term, so when a small vocabulary makes every term common, and every
        capped posting list crowded, documents that share their main terms still meet under
        a pair.
        """
        blocked, terms = self._snapshot.blocked, self._terms
        ranked = sorted(
            (-w, terms[t], t)
            for t, w in zip(term_ids.tolist(), weights.tolist(), strict=True)
            if w > 0 and terms[t] not in blocked
        )[: self.candidate_terms]
        postings = [t for _, _, t in ranked]
        offered = [-w for w, _, _ in ranked]
        top = ranked[: self.pair_terms]
        for i, (_, _, first) in enumerate(top):
            for w, _, second in top[i + 1 :]:
                low, high = min(first, second), max(first, second)
                postings.append(((low + 1) << _PAIR_SHIFT) | high)
                offered.append(-w)  # ranked is sorted: second is the lighter
        return np.array(postings, np.int64), np.array(offered, np.int64)

    def _posting_name(self, posting: int) -> str:
        """The posting's key in snapshots: a term, or two terms joined in string order."""
        if posting < 1 << _PAIR_SHIFT:
            return self._terms[posting]
        a, b = self._terms[(posting >> _PAIR_SHIFT) - 1], self._terms[posting & 0xFFFFFFFF]
        return f"{min(a, b)}{_PAIR}{max(a, b)}"

    def _posted_under(self, key: str, postings: Array, weights: Array) -> Array:
        posted = self._kept(key, postings, weights)
        self._posted.append(posted)
        return posted

    def _kept(self, key: str, postings: Array, weights: Array) -> Array:
        """The offers a document is posted under: those where it ranks within the cutoff."""
        cutoffs = self._cut_ids
        keep = [
            i
            for i, (posting, weight) in enumerate(
                zip(postings.tolist(), weights.tolist(), strict=True)
            )
            if (cut := cutoffs.get(posting)) is None or (-weight, key) <= (-cut[0], cut[1])
        ]
        kept: Array = postings[keep]
        return kept

    def _all_offers(self) -> tuple[Array, Array, Array]:
        """`_posting_offers` of every slot at once (a rebuild or a restore): the same
        (posting, weight) offers, as flat arrays (postings, weights, slots) in slot order."""
        blocked = np.zeros(len(self._terms), np.bool_)
        blocked[[self._term_ids[t] for t in self._snapshot.blocked if t in self._term_ids]] = True
        # Heaviest first, ties by term (a term's rank in string order), as _posting_offers.
        by_name = np.empty(len(self._terms), np.int64)
        by_name[sorted(range(len(self._terms)), key=self._terms.__getitem__)] = np.arange(
            len(self._terms)
        )
        # OFFER_BLOCK slots at a time: the work arrays stay small whatever the corpus.
        parts = [
            self._offers_of(lo, min(lo + OFFER_BLOCK, len(self._keys)), blocked, by_name)
            for lo in range(0, len(self._keys), OFFER_BLOCK)
        ]
        if not parts:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        postings, weights, slots = zip(*parts, strict=True)
        return np.concatenate(postings), np.concatenate(weights), np.concatenate(slots)

    def _offers_of(
        self, lo: int, hi: int, blocked: Array, by_name: Array
    ) -> tuple[Array, Array, Array]:
        ptr = self._vec_ptr.view[lo : hi + 1]
        ids, weights = self._vec_ids.view[ptr[0] : ptr[-1]], self._vec_w.view[ptr[0] : ptr[-1]]
        n = hi - lo
        doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(ptr))
        keep = (weights > 0) & ~blocked[ids]
        doc, term, weight = doc[keep], ids[keep].astype(np.int64), weights[keep].astype(np.int64)
        order = np.lexsort((by_name[term], -weight, doc))
        doc, term, weight = doc[order], term[order], weight[order]
        place = np.arange(len(doc)) - np.searchsorted(doc, doc)  # rank within its document
        top = place < self.candidate_terms
        parts = [(doc[top], place[top], term[top], weight[top])]
        # Every pair of the pair_terms heaviest, in _posting_offers' order, after the terms.
        count = np.minimum(np.bincount(doc, minlength=n), self.candidate_terms)
        first = np.searchsorted(doc, np.arange(n))
        combo = self.candidate_terms
        for i in range(self.pair_terms):
            for j in range(i + 1, self.pair_terms):
                has = np.flatnonzero(count > j)
                a, b = term[first[has] + i], term[first[has] + j]
                low, high = np.minimum(a, b), np.maximum(a, b)
                pair = ((low + 1) << _PAIR_SHIFT) | high
                parts.append((has, np.full(len(has), combo), pair, weight[first[has] + j]))
                combo += 1
        doc = np.concatenate([p[0] for p in parts])
        seq = np.concatenate([p[1] for p in parts])
        order = np.lexsort((seq, doc))
        postings = np.concatenate([p[2] for p in parts])[order]
        offered = np.concatenate([p[3] for p in parts])[order]
        return postings, offered, doc[order] + lo

    def _cutoffs(self, offers: tuple[Array, Array, Array]) -> dict[str, tuple[int, str]]:
        """Per posting key with too many holders, the rank of its posting_cap-th."""
        postings, weights, slots = offers
        if not len(postings):
            return {}
        # Slots are in key order here (rebuild), so the slot stands for the key.
        order = np.lexsort((slots, -weights, postings))
        postings, weights, slots = postings[order], weights[order], slots[order]
        unique, starts, counts = np.unique(postings, return_index=True, return_counts=True)
        capped = counts > self.posting_cap
        cutoffs = {}
        for posting, start in zip(unique[capped].tolist(), starts[capped].tolist(), strict=True):
            at = start + self.posting_cap - 1
            cutoffs[self._posting_name(posting)] = (int(weights[at]), self._keys[slots[at]])
        return cutoffs

    def _post_all(self, offers: tuple[Array, Array, Array]) -> None:
        """The base posting lists, for slots 0..n-1 (a rebuild or a restore), and each slot's
        postings: the offers `_posted_under` keeps, decided for all slots at once."""
        postings, weights, slots = offers
        cut_ids = np.array(sorted(self._cut_ids), np.int64)
        at = np.searchsorted(cut_ids, postings)
        capped = at < len(cut_ids)
        capped[capped] = cut_ids[at[capped]] == postings[capped]
        keep = ~capped
        cut_weight = np.array([self._cut_ids[c][0] for c in cut_ids.tolist()], np.int64)
        mine, theirs = weights[capped], cut_weight[at[capped]]
        decided = mine > theirs
        # Equal weights: the keys decide, (-weight, key) <= (-cut weight, cut key).
        tied = np.flatnonzero(mine == theirs)
        for i, posting, slot in zip(
            tied.tolist(),
            postings[capped][tied].tolist(),
            slots[capped][tied].tolist(),
            strict=True,
        ):
            decided[i] = self._keys[slot] <= self._cut_ids[posting][1]
        keep[capped] = decided
        postings, slots = postings[keep], slots[keep]
        bounds = np.searchsorted(slots, np.arange(1, len(self._keys)))
        self._posted = np.split(postings, bounds) if len(self._keys) else []
        if not len(postings):
            return
        order = np.argsort(postings, kind="stable")
        postings, slots = postings[order], slots[order].astype(np.int32)
        self._post_keys, starts = np.unique(postings, return_index=True)
        self._post_ptr = np.append(starts, len(postings)).astype(np.int64)
        self._post_slots = slots

    # -- postings and lists ----------------------------------------------------------------

    def _detach(self, key: str) -> set[str]:
        """Forget a document; return the owners whose lists held it."""
        slot = self._slot.pop(key)
        self._alive.view[slot] = False  # its postings now point at a dead slot: filtered
        self._unlist(key, self._lists.pop(key, []))
        return self._listed_in.pop(key, set())

    def _candidates(self, slot: int) -> Array:
        posted = self._posted[slot]
        found: list[Array] = []
        if len(self._post_keys) and len(posted):
            at = np.searchsorted(self._post_keys, posted)
            inside = at < len(self._post_keys)
            at = at[inside]
            rows = at[self._post_keys[at] == posted[inside]]
            found.append(_gather(self._post_ptr, self._post_slots, rows)[0])
        if self._overlay:
            extra = [s for p in posted.tolist() for s in self._overlay.get(p, ())]
            found.append(np.array(extra, np.int32))
        if not found:
            return np.zeros(0, np.int64)
        slots: Array = np.unique(np.concatenate(found)).astype(np.int64)
        live: Array = slots[self._alive.view[slots] & (slots != slot)]
        return live

    def _score_slots(self, slot: int, others: Array) -> Array:
        ptr, ids, weights = self._vec_ptr.view, self._vec_ids.view, self._vec_w.view
        if len(self._dense) < len(self._terms):
            self._dense = np.zeros(max(len(self._terms), 2 * len(self._dense)), np.float64)
        lo, hi = int(ptr[slot]), int(ptr[slot + 1])
        mine = ids[lo:hi]
        self._dense[mine] = weights[lo:hi]
        try:
            at, lengths = _spans(ptr, others)
            products = self._dense[ids[at]] * weights[at]
            rows = np.repeat(np.arange(len(others)), lengths)
            dots = np.bincount(rows, weights=products, minlength=len(others))
        finally:
            self._dense[mine] = 0.0
        scores: Array = _scores(dots)
        return scores

    def _rebuild_lists(self, owners: Array) -> None:
        """Every owner's list, BLOCK owners at a time, all numpy, each pair scored once.

        The cosine is symmetric, so when an owner's block scores its candidates it also
        scores them for each candidate that owns a list: a block scores an owner against a
        later owner (in slot order) or a non-owner only, and offers each score to the later
        owner, which keeps the best `top_k` offers it received (`_Offers`) until its own block
        adds them to the pairs it scores itself. Same lists as `_compute`, owner by owner:
        same candidates, same exact scores, same order, where the slot stands for the key (a
        rebuild assigns slots in key order).
        """
        n = len(self._keys)
        owns = np.zeros(n, np.bool_)
        owns[owners] = True
        ranks = _Ranks(self._stamp.view)
        offers = _Offers(n, self.top_k)
        for start in range(0, len(owners), BLOCK):
            block = owners[start : start + BLOCK]
            pair_owner, pair_slot = self._block_pairs(block, owns)
            scores = self._block_scores(block, pair_owner, pair_slot)
            good = scores >= self.min_score
            pair_owner, pair_slot, scores = pair_owner[good], pair_slot[good], scores[good]
            later = owns[pair_slot]  # a later owner (an earlier one was left out above)
            offers.add(
                pair_slot[later], ranks.key(scores[later], block[pair_owner[later]]), scores[later]
            )
            listed, keys, found = offers.take(block)
            pair_owner = np.concatenate([pair_owner, listed])
            keys = np.concatenate([ranks.key(scores, pair_slot), keys])
            scores = np.concatenate([scores, found])
            at = _best_per_group(pair_owner, keys, self.top_k, len(block))
            items = zip(
                pair_owner[at].tolist(),
                ranks.slot(keys[at]).tolist(),
                scores[at].tolist(),
                strict=True,
            )
            lists: list[list[Related]] = [[] for _ in range(len(block))]
            for owner, slot, score in items:
                lists[owner].append(Related(self._keys[slot], score))
            for owner, items_of in zip(block.tolist(), lists, strict=True):
                self._store(self._keys[owner], items_of)

    def _block_pairs(self, block: Array, owns: Array) -> tuple[Array, Array]:
        """(index in block, slot) of each candidate pair a block scores, once, in order."""
        posted_lengths = np.array([len(self._posted[o]) for o in block.tolist()], np.int64)
        empty = np.zeros(0, np.int64)
        if not posted_lengths.sum() or not len(self._post_keys):
            return empty, empty
        posted = np.concatenate([self._posted[o] for o in block.tolist()])
        owner_of = np.repeat(np.arange(len(block)), posted_lengths)
        at = np.searchsorted(self._post_keys, posted)
        inside = at < len(self._post_keys)
        at, owner_of, posted = at[inside], owner_of[inside], posted[inside]
        hit = self._post_keys[at] == posted
        at, owner_of = at[hit], owner_of[hit]
        slots, lengths = _gather(self._post_ptr, self._post_slots, at)
        owner_of = np.repeat(owner_of, lengths)
        mine = block[owner_of]
        # An earlier owner scored this pair in its own block and offered it (see above).
        keep = self._alive.view[slots] & (slots != mine) & ~(owns[slots] & (slots < mine))
        pairs = _distinct(owner_of[keep] * len(self._keys) + slots[keep])
        return pairs // len(self._keys), pairs % len(self._keys)

    def _block_scores(self, block: Array, pair_owner: Array, pair_slot: Array) -> Array:
        """Exact cosines of (block[pair_owner], pair_slot) pairs."""
        if not len(pair_slot):
            return np.zeros(0, np.float64)
        ptr, ids, weights = self._vec_ptr.view, self._vec_ids.view, self._vec_w.view
        # The owners' vectors spread out over the block's own vocabulary (a small dense
        # matrix), so each candidate term is one lookup: local[term], then that cell.
        mine, mine_lengths = _spans(ptr, block)
        mine_terms = ids[mine]
        block_terms = _distinct(mine_terms)
        local = np.full(len(self._terms) + 1, len(block_terms), np.int64)  # default: a 0 column
        local[block_terms] = np.arange(len(block_terms))
        width = len(block_terms) + 1
        dense = np.zeros(len(block) * width, np.float64)
        cells = np.repeat(np.arange(len(block)), mine_lengths) * width + local[mine_terms]
        dense[cells] = weights[mine]
        theirs, their_lengths = _spans(ptr, pair_slot)
        cells = np.repeat(pair_owner * width, their_lengths) + local[ids[theirs]]
        products = dense[cells] * weights[theirs]
        pair_of = np.repeat(np.arange(len(pair_slot)), their_lengths)
        return _scores(np.bincount(pair_of, weights=products, minlength=len(pair_slot)))

    def _compute(self, key: str) -> list[Related]:
        slot = self._slot[key]
        found = self._candidates(slot)
        if not len(found):
            return []
        scores = score_candidates(self, slot, found)
        keep = scores >= self.min_score
        found, scores = found[keep], scores[keep]
        stamps = self._stamp.view[found]
        if len(found) > self.top_k:
            order = np.lexsort((-stamps, -scores))
            kth = order[self.top_k - 1]
            # The k best by (score, date), and whatever ties with the k-th: keys decide those.
            best = (scores > scores[kth]) | ((scores == scores[kth]) & (stamps >= stamps[kth]))
            found, scores, stamps = found[best], scores[best], stamps[best]
        ranked = heapq.nsmallest(
            self.top_k,
            zip(
                (-scores).tolist(),
                (-stamps).tolist(),
                [self._keys[s] for s in found.tolist()],
                strict=True,
            ),
        )
        return [Related(key, -score) for score, _, key in ranked]

    def _order(self, item: Related) -> tuple[float, float, str]:
        return (-item.score, -float(self._stamp.view[self._slot[item.key]]), item.key)

    def _offer(self, owner: str, item: Related) -> bool:
        """Put `item` into `owner`'s list if it makes the top k; True if the list changed."""
        current = self._lists[owner]
        if item.score < self.min_score or (
            len(current) >= self.top_k and self._order(item) >= self._order(current[-1])
        ):
            return False
        return self._store(owner, sorted([*current, item], key=self._order)[: self.top_k])

    def _store(self, owner: str, items: list[Related]) -> bool:
        old = self._lists.get(owner, [])
        self._unlist(owner, old)
        for item in items:
            self._listed_in.setdefault(item.key, set()).add(owner)
        self._lists[owner] = items
        return items != old

    def _unlist(self, owner: str, items: list[Related]) -> None:
        for item in items:
            holders = self._listed_in.get(item.key)
            if holders is None:  # that document was detached a moment ago
                continue
            holders.discard(owner)
            if not holders:
                del self._listed_in[item.key]


def _by_key(docs: Iterable[RelatedDoc]) -> dict[str, RelatedDoc]:
    """Last one wins for a repeated key; sorted, so every pass visits documents in one order."""
    latest = {doc.key: doc for doc in docs}
    return {key: latest[key] for key in sorted(latest)}
