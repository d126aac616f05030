"""Related posts: TF-IDF cosine over title, tags and body, kept current by bounded updates.

Pipeline, in memory and free of I/O:
  doc -> terms per field (tokenize) -> field-weighted sublinear TF x BM25 IDF, L2-normalised
      -> candidates from a capped inverted index -> exact cosine -> top-k list per post.

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

The index only decides who is compared; the score is the exact cosine of the full vectors,
summed with math.fsum (exactly rounded, so independent of iteration order) and rounded to
6 decimals. Lists are ordered by score desc, published_at desc, key: a total order.

Not thread-safe: one writer (the related job) owns an index.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from feedsvc.related.tokenize import tag_terms, tokenize

Vector = dict[str, float]
_PAIR = "\x1f"  # joins two terms into one posting key; no term contains it


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
    # Per posting key, the (weight, doc key) of its posting_cap-th holder at the rebuild: a
    # document is posted under it if it ranks no lower (weight desc, then key). The key makes
    # the cap exact even when many documents tie on weight (syndicated copies). No entry:
    # the key had at most posting_cap holders, everyone is posted.
    cutoffs: Mapping[str, tuple[float, str]] = field(default_factory=dict)
    # Terms in so many documents that posting them would make candidate sets unbounded.
    blocked: frozenset[str] = frozenset()

    def weight(self, term: str) -> float:
        found = self.idf.get(term)
        # A term the rebuild never saw counts as occurring once: in the document being added.
        return bm25_idf(max(self.doc_count, 1), 1) if found is None else found


def bm25_idf(doc_count: int, df: int) -> float:
    """Lucene's BM25 IDF: always positive, ~0 for a term in every document (理财有风险...)."""
    return math.log(1.0 + (doc_count - df + 0.5) / (df + 0.5))


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Dot product of two unit vectors. fsum is exact, so the order of terms cannot matter."""
    if len(a) > len(b):
        a, b = b, a
    return math.fsum([w * b[t] for t, w in a.items() if t in b])


def is_post(key: str) -> bool:
    """Default list owner: posts get related lists; external items ("ext:") are candidates."""
    return not key.startswith("ext:")


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
        # Settings are fixed for the index's life: cached term counts depend on the weights.
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

    def _reset(self, snapshot: IdfSnapshot) -> None:
        self._snapshot = snapshot
        self._docs: dict[str, RelatedDoc] = {}
        self._tf: dict[str, Vector] = {}  # field-weighted TF before IDF: survives rebuilds
        self._vectors: dict[str, Vector] = {}
        self._posted: dict[str, tuple[str, ...]] = {}  # key -> terms it is posted under
        self._postings: dict[str, set[str]] = {}  # term -> keys posted under it
        self._lists: dict[str, list[Related]] = {}  # owner -> its related list
        self._listed_in: dict[str, set[str]] = {}  # key -> owners whose lists hold it

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, key: object) -> bool:
        return key in self._docs

    def idf_snapshot(self) -> IdfSnapshot:
        return self._snapshot

    def related(self, key: str) -> list[Related]:
        if key not in self._docs:
            raise KeyError(f"related index: no document {key!r}")
        if self.owns_list(key):
            return list(self._lists[key])
        return self._compute(key)  # asked for an external item: computed, not kept

    def lists(self) -> dict[str, list[Related]]:
        return {key: list(self._lists[key]) for key in sorted(self._lists)}

    def candidates(self, key: str) -> frozenset[str]:
        """The documents `key` is compared with (diagnostics, benchmarks)."""
        return frozenset(self._candidates(key))

    def score(self, a: str, b: str) -> float:
        """Cosine of two indexed documents, whether or not they are candidates."""
        return round(cosine(self._vectors[a], self._vectors[b]), 6)

    # -- updates ---------------------------------------------------------------------------

    def rebuild(self, docs: Iterable[RelatedDoc], idf: IdfSnapshot | None = None) -> None:
        """Recompute IDF and posting cutoffs over `docs`, then every vector and every list.

        With `idf` (another index's `idf_snapshot()`), use those statistics instead: this is
        what incremental results are compared with.
        """
        batch = _by_key(docs)
        # Segmenting is the slow part: reuse term counts of documents that did not change.
        tf = {
            key: self._tf[key] if self._docs.get(key) == doc else self._field_tf(doc)
            for key, doc in batch.items()
        }
        self._reset(idf if idf is not None else self._corpus_idf(tf))
        vectors = {key: self._vector(tf[key]) for key in batch}
        offers = {key: self._posting_offers(vector) for key, vector in vectors.items()}
        if idf is None:
            self._snapshot = replace(self._snapshot, cutoffs=self._cutoffs(offers))
        for key, doc in batch.items():
            self._attach(doc, tf[key], vectors[key], offers[key])
        self._compute_all()

    def upsert(self, docs: Iterable[RelatedDoc]) -> set[str]:
        """Add or replace documents under the current snapshot.

        Returns the keys of the upserted documents and of every list that changed.
        """
        batch = _by_key(docs)
        recompute: set[str] = set()
        for key, doc in batch.items():
            if key in self._docs:
                recompute |= self._detach(key)  # lists that held the old version
            tf = self._field_tf(doc)
            vector = self._vector(tf)
            self._attach(doc, tf, vector, self._posting_offers(vector))
        recompute |= {key for key in batch if self.owns_list(key)}
        changed = set(batch)
        # Other lists can only gain a new document, and only if it is their candidate: offer
        # it to each candidate instead of recomputing their lists.
        for key in batch:
            vector = self._vectors[key]
            for other in self._candidates(key):
                if other in recompute or not self.owns_list(other):
                    continue
                if self._offer(other, Related(key, round(cosine(vector, self._vectors[other]), 6))):
                    changed.add(other)
        for key in recompute:
            if self._store(key, self._compute(key)):
                changed.add(key)
        return changed

    def remove(self, keys: Iterable[str]) -> set[str]:
        """Drop documents; return the owners whose lists held them (recomputed)."""
        gone = {key for key in keys if key in self._docs}
        recompute: set[str] = set()
        for key in gone:
            recompute |= self._detach(key)
        recompute -= gone
        for key in recompute:
            self._store(key, self._compute(key))
        return recompute

    # -- vectors ---------------------------------------------------------------------------

    def _field_tf(self, doc: RelatedDoc) -> Vector:
        # Sublinear TF per field, then fields weighted: a word said five times in the body
        # should not outweigh the same word once in the title.
        fields = (
            (self.title_weight, tokenize(doc.title)),
            (self.tag_weight, [term for tag in doc.tags for term in tag_terms(tag)]),
            (1.0, tokenize(doc.body)),
        )
        tf: Vector = {}
        for weight, terms in fields:
            # Interned, so all documents holding a term share one string: a third less memory.
            for term, count in Counter(map(sys.intern, terms)).items():
                tf[term] = tf.get(term, 0.0) + weight * (1.0 + math.log(count))
        return tf

    def _vector(self, tf: Mapping[str, float]) -> Vector:
        weights = {term: w * self._snapshot.weight(term) for term, w in tf.items()}
        norm = math.sqrt(math.fsum(w * w for w in weights.values()))
        return {term: w / norm for term, w in weights.items()} if norm > 0 else {}

    def _posting_offers(self, vector: Mapping[str, float]) -> list[tuple[str, float]]:
        """Posting keys the document may be posted under, with its weight for each.

        Its `candidate_terms` heaviest unblocked terms, and every pair of its `pair_terms`
        heaviest (weight: the lighter of the two). A pair is far more specific than either
        term, so when a small vocabulary makes every term common, and every capped posting
        list crowded, documents that share their main terms still meet under a pair.
        """
        blocked = self._snapshot.blocked
        terms = [term for term in vector if term not in blocked]
        top = heapq.nsmallest(self.candidate_terms, terms, key=lambda t: (-vector[t], t))
        offers = [(term, vector[term]) for term in top]
        for i, first in enumerate(top[: self.pair_terms]):
            for second in top[i + 1 : self.pair_terms]:
                pair = sys.intern(f"{min(first, second)}{_PAIR}{max(first, second)}")
                offers.append((pair, vector[second]))  # top is sorted: second is lighter
        return offers

    def _corpus_idf(self, tf: Mapping[str, Mapping[str, float]]) -> IdfSnapshot:
        n = len(tf)
        df = Counter(term for doc_tf in tf.values() for term in doc_tf)
        # Blocking only saves work, so a term is never blocked below posting_cap holders:
        # small corpora compare every pair that shares a top term.
        limit = max(self.max_df_ratio * n, self.posting_cap)
        return IdfSnapshot(
            doc_count=n,
            idf={term: bm25_idf(n, count) for term, count in df.items()},
            blocked=frozenset(term for term, count in df.items() if count > limit),
        )

    def _cutoffs(
        self, offers: Mapping[str, list[tuple[str, float]]]
    ) -> dict[str, tuple[float, str]]:
        """Per posting key with too many holders, the rank of its posting_cap-th."""
        holders: dict[str, list[tuple[float, str]]] = {}
        for key, doc_offers in offers.items():
            for posting, weight in doc_offers:
                holders.setdefault(posting, []).append((-weight, key))
        cutoffs = {}
        for posting, ranks in holders.items():
            if len(ranks) > self.posting_cap:
                weight, key = heapq.nsmallest(self.posting_cap, ranks)[-1]
                cutoffs[posting] = (-weight, key)
        return cutoffs

    # -- postings and lists ----------------------------------------------------------------

    def _attach(
        self, doc: RelatedDoc, tf: Vector, vector: Vector, offers: list[tuple[str, float]]
    ) -> None:
        cutoffs = self._snapshot.cutoffs
        posted = tuple(
            posting
            for posting, weight in offers
            if (cut := cutoffs.get(posting)) is None or (-weight, doc.key) <= (-cut[0], cut[1])
        )
        self._docs[doc.key] = doc
        self._tf[doc.key] = tf
        self._vectors[doc.key] = vector
        self._posted[doc.key] = posted
        for term in posted:
            self._postings.setdefault(term, set()).add(doc.key)

    def _detach(self, key: str) -> set[str]:
        """Forget a document; return the owners whose lists held it."""
        for term in self._posted.pop(key):
            posting = self._postings[term]
            posting.discard(key)
            if not posting:
                del self._postings[term]
        self._unlist(key, self._lists.pop(key, []))
        del self._docs[key], self._tf[key], self._vectors[key]
        return self._listed_in.pop(key, set())

    def _candidates(self, key: str) -> set[str]:
        found: set[str] = set()
        for term in self._posted[key]:
            found |= self._postings[term]
        found.discard(key)
        return found

    def _order(self, item: Related) -> tuple[float, float, str]:
        return (-item.score, -self._docs[item.key].published_at.timestamp(), item.key)

    def _compute(self, key: str) -> list[Related]:
        vector = self._vectors[key]
        scored = []
        for other in self._candidates(key):
            score = round(cosine(vector, self._vectors[other]), 6)
            if score >= self.min_score:
                scored.append(Related(other, score))
        return heapq.nsmallest(self.top_k, scored, key=self._order)

    def _compute_all(self) -> None:
        """Every list at once, scoring each candidate pair once instead of twice."""
        keys = sorted(self._docs)
        rank = {key: i for i, key in enumerate(keys)}
        stamp = {key: doc.published_at.timestamp() for key, doc in self._docs.items()}
        # Bounded min-heaps whose top is the worst entry: lowest score, oldest, greatest key
        # (ranks stand in for keys so the whole entry is numeric and can be negated).
        heaps: dict[str, list[tuple[float, float, int]]] = {
            key: [] for key in keys if self.owns_list(key)
        }

        def push(owner: str, score: float, other: str) -> None:
            heap, entry = heaps[owner], (score, stamp[other], -rank[other])
            if len(heap) < self.top_k:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)

        for key in keys:
            vector, mine = self._vectors[key], key in heaps
            for other in self._candidates(key):
                theirs = other in heaps
                # The relation is symmetric: each pair is met twice, scored the first time.
                if rank[other] < rank[key] or not (mine or theirs):
                    continue
                score = round(cosine(vector, self._vectors[other]), 6)
                if score < self.min_score:
                    continue
                if mine:
                    push(key, score, other)
                if theirs:
                    push(other, score, key)
        for owner, heap in heaps.items():
            best = sorted(heap, reverse=True)
            self._store(owner, [Related(keys[-neg_rank], score) for score, _, neg_rank in best])

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
