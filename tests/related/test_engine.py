"""The related-posts engine: list rules, determinism, incremental updates, bounded work."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import feedsvc.related.engine as engine
from feedsvc.related.engine import IdfSnapshot, Related, RelatedDoc, RelatedIndex

from .corpus import OFF_TOPIC, load_corpus, topics

REPO = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
# Small caps so a 63-post corpus exercises cutoffs, blocked terms and pairs.
TIGHT: dict[str, Any] = {
    "posting_cap": 3,
    "candidate_terms": 8,
    "pair_terms": 3,
    "max_df_ratio": 0.2,
}
CONFIGS = [pytest.param({}, id="defaults"), pytest.param(TIGHT, id="tight-caps")]


def make_doc(
    key: str, title: str, body: str, *, tags: tuple[str, ...] = (), day: int = 0
) -> RelatedDoc:
    return RelatedDoc(key, title, tags, body, datetime(2024, 1, 1, tzinfo=CST) + timedelta(day))


def corpus_docs() -> dict[str, RelatedDoc]:
    return {post.doc.key: post.doc for post in load_corpus()}


def built(docs: Iterable[RelatedDoc], **config: Any) -> RelatedIndex:
    index = RelatedIndex(**config)
    index.rebuild(docs)
    return index


def assert_like_fresh_rebuild(
    index: RelatedIndex, docs: dict[str, RelatedDoc], **config: Any
) -> None:
    """Incremental lists must equal a from-scratch rebuild under the same IDF: exactly."""
    fresh = RelatedIndex(**config)
    fresh.rebuild(docs.values(), idf=index.idf_snapshot())
    assert index.lists() == fresh.lists()
    assert len(index) == len(docs) and all(key in index for key in docs)


def changed_lists(before: dict[str, list[Related]], after: dict[str, list[Related]]) -> set[str]:
    return {key for key in after if before.get(key) != after[key]}


# -- list rules -----------------------------------------------------------------------------


def test_lists_never_hold_the_post_itself_and_are_ordered_and_bounded() -> None:
    index = built(corpus_docs().values())
    for key, items in index.lists().items():
        assert len(items) <= index.top_k
        assert key not in {item.key for item in items}
        assert all(item.score >= index.min_score for item in items)
        assert all(item.score == round(item.score, 6) for item in items)
        assert [item.score for item in items] == sorted((i.score for i in items), reverse=True)


def test_posts_about_nothing_else_get_no_list_and_appear_in_none() -> None:
    index = built(corpus_docs().values())
    off_topic = {key for key, topic in topics().items() if topic == OFF_TOPIC}
    lists = index.lists()
    assert all(lists[key] == [] for key in off_topic)
    assert not any(item.key in off_topic for items in lists.values() for item in items)


def test_equal_scores_break_ties_by_recency_then_key() -> None:
    query = make_doc("post:1", "储蓄国债", "储蓄国债到期以后续买了一期。")
    twin = ("国债到期", "储蓄国债的利息按年支付。")
    docs = [
        query,
        make_doc("post:2", *twin, day=1),
        make_doc("post:3", *twin, day=5),
        make_doc("post:5", *twin, day=3),
        make_doc("post:4", *twin, day=3),
    ]
    items = built(docs).related("post:1")
    assert len({item.score for item in items}) == 1
    assert [item.key for item in items] == ["post:3", "post:4", "post:5", "post:2"]


def test_same_data_gives_the_same_lists_in_any_order() -> None:
    docs = list(corpus_docs().values())
    shuffled = docs[:]
    random.Random(7).shuffle(shuffled)
    assert built(docs).lists() == built(shuffled).lists()


def test_same_data_gives_the_same_lists_under_any_hash_seed() -> None:
    # Set iteration order changes with PYTHONHASHSEED; nothing may leak into the results.
    probe = """
import json, sys
sys.path.insert(0, "tests")
from related.corpus import load_corpus
from feedsvc.related.engine import RelatedIndex
index = RelatedIndex(**json.loads(sys.argv[1]))
index.rebuild(post.doc for post in load_corpus())
print(json.dumps({k: [[i.key, i.score] for i in v] for k, v in index.lists().items()}))
"""
    outputs = {
        subprocess.run(
            [sys.executable, "-c", probe, json.dumps(TIGHT)],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    here = built(corpus_docs().values(), **TIGHT).lists()
    assert json.loads(outputs.pop()) == {k: [[i.key, i.score] for i in v] for k, v in here.items()}


def test_external_items_are_candidates_but_get_no_list_unless_asked() -> None:
    docs = corpus_docs()
    index = built(docs.values())
    post = docs["post:2"]
    external = make_doc("ext:1", post.title, post.body, tags=post.tags)
    changed = index.upsert([external])
    assert "ext:1" in changed and "post:2" in changed
    assert index.related("post:2")[0] == Related("ext:1", 1.0)
    assert "ext:1" not in index.lists()
    on_demand = index.related("ext:1")
    assert on_demand[0] == Related("post:2", 1.0)
    assert {topics()[item.key] for item in on_demand[:3]} == {"国债"}
    # A full rebuild (under the same IDF) treats it the same way.
    assert_like_fresh_rebuild(index, {**docs, "ext:1": external})


def test_unknown_keys_raise_and_membership_is_reported() -> None:
    index = built(corpus_docs().values())
    assert len(index) == 63 and "post:1" in index and "post:999" not in index
    with pytest.raises(KeyError, match="post:999"):
        index.related("post:999")
    assert index.remove(["post:999"]) == set()


def test_naive_publication_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RelatedDoc("post:1", "国债", (), "国债到期。", datetime(2024, 1, 1))


def test_rebuild_measures_idf_over_the_documents_it_is_given() -> None:
    index = built(corpus_docs().values())
    assert index.idf_snapshot().doc_count == 63
    index.rebuild(list(corpus_docs().values())[:10])
    assert index.idf_snapshot().doc_count == 10 and len(index) == 10


# -- incremental updates --------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_add_edit_remove_equal_a_rebuild_under_the_same_idf(config: dict[str, Any]) -> None:
    docs = corpus_docs()
    keys = sorted(docs, key=lambda key: int(key.split(":")[1]))
    later = keys[3::4]  # every fourth post arrives after the first rebuild
    current = {key: docs[key] for key in keys if key not in later}
    index = built(current.values(), **config)
    if config:  # the tight caps must really cap, or this case tests nothing new
        assert index.idf_snapshot().cutoffs and index.idf_snapshot().blocked

    for batch in (later[:8], later[8:]):  # add
        before = index.lists()
        returned = index.upsert(docs[key] for key in batch)
        current.update((key, docs[key]) for key in batch)
        assert returned >= changed_lists(before, index.lists()) | set(batch)
        assert_like_fresh_rebuild(index, current, **config)

    # Edit: move post:1 from 国债 to 信用卡 by rewriting it.
    moved = dataclasses.replace(
        docs["post:1"],
        title="信用卡账单日和还款日怎么安排",
        tags=("信用卡", "还款"),
        body="我把几张信用卡的账单日错开，还款日都设在发工资之后。这样每张卡的免息期都能用满，"
        "也不会忘记还款。逾期一次就会影响征信，所以我给每张信用卡都开了自动扣款。"
        "理财有风险，投资需谨慎。",
    )
    before = index.lists()
    returned = index.upsert([moved])
    current["post:1"] = moved
    assert returned >= changed_lists(before, index.lists()) | {"post:1"}
    assert_like_fresh_rebuild(index, current, **config)
    now_related = [topics()[item.key] for item in index.related("post:1")]
    assert now_related and now_related.count("信用卡") > len(now_related) / 2

    # Remove: the post listed most often, a distractor, and a key that was never there.
    listed = [item.key for items in index.lists().values() for item in items]
    popular = max(sorted(set(listed)), key=listed.count)
    gone = {popular, "post:62"}
    before = index.lists()
    returned = index.remove([*gone, "post:404"])
    for key in gone:
        del current[key]
    held_them = {key for key, items in before.items() if {i.key for i in items} & gone} - gone
    assert returned == held_them
    assert returned >= changed_lists(before, index.lists())
    assert_like_fresh_rebuild(index, current, **config)

    # And back again.
    index.upsert(docs[key] for key in gone)
    current.update((key, docs[key]) for key in gone)
    assert_like_fresh_rebuild(index, current, **config)


def test_random_update_sequences_equal_a_rebuild_under_the_same_idf() -> None:
    rng = random.Random(2024)
    docs = corpus_docs()
    pool = sorted(docs)
    current = {key: docs[key] for key in rng.sample(pool, 40)}
    index = built(current.values(), **TIGHT)
    for _ in range(20):
        before = index.lists()
        op = rng.choice(("add", "edit", "remove"))
        if op == "remove" and current:
            gone = set(rng.sample(sorted(current), rng.randint(1, 3)))
            returned = index.remove(gone)
            for key in gone:
                del current[key]
            assert returned >= changed_lists(before, index.lists())
        else:
            batch = []
            for key in rng.sample(pool, rng.randint(1, 4)):
                donor = docs[rng.choice(pool)]  # edits take another post's text
                doc = docs[key] if op == "add" else dataclasses.replace(docs[key], body=donor.body)
                batch.append(doc)
                current[key] = doc
            returned = index.upsert(batch)
            expected = changed_lists(before, index.lists()) | {doc.key for doc in batch}
            assert returned >= expected
        assert_like_fresh_rebuild(index, current, **TIGHT)


def test_upsert_before_any_rebuild_uses_an_empty_snapshot() -> None:
    docs = corpus_docs()
    index = RelatedIndex()
    index.upsert(docs.values())
    assert index.idf_snapshot() == IdfSnapshot()
    assert_like_fresh_rebuild(index, docs)


def test_a_repeated_key_in_one_upsert_keeps_the_last_version() -> None:
    docs = corpus_docs()
    index = built(docs.values())
    first = dataclasses.replace(docs["post:1"], body="临时草稿。")
    index.upsert([first, docs["post:1"]])
    assert_like_fresh_rebuild(index, docs)


# -- bounded work ---------------------------------------------------------------------------


def copies_of_the_corpus(times: int) -> list[RelatedDoc]:
    """Exact copies of every post: weights tie everywhere (think syndicated articles)."""
    return [
        dataclasses.replace(doc, key=f"{doc.key}x{n}")
        for doc in corpus_docs().values()
        for n in range(times)
    ]


def test_ties_on_weight_do_not_overflow_a_posting_cap() -> None:
    # One posting key per document, three holders per key: at most two candidates each,
    # even though eight copies share every weight exactly.
    config = {"posting_cap": 3, "candidate_terms": 1, "pair_terms": 0, "max_df_ratio": 1.0}
    copies = copies_of_the_corpus(8)
    index = built(copies, **config)
    assert max(len(index.candidates(doc.key)) for doc in copies) <= 2


def test_upsert_work_stays_under_the_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    copies = copies_of_the_corpus(8)
    index = built(copies, **TIGHT)
    keys_per_doc = TIGHT["candidate_terms"] + 3  # its three heaviest terms make three pairs
    assert max(len(index.candidates(d.key)) for d in copies) <= keys_per_doc * TIGHT["posting_cap"]

    calls = 0  # (query, candidate) pairs scored
    real_score = engine.score_candidates

    def counting(index: RelatedIndex, slot: int, candidates: Any) -> Any:
        nonlocal calls
        calls += len(candidates)
        return real_score(index, slot, candidates)

    monkeypatch.setattr(engine, "score_candidates", counting)
    new = [dataclasses.replace(doc, key=f"{doc.key}new") for doc in copies[::50]]
    index.upsert(new)
    # Offered to each candidate, then its own list computed: both within the caps, where
    # each posting may also hold the documents of the batch.
    cap = keys_per_doc * (TIGHT["posting_cap"] + len(new))
    assert 0 < calls <= 2 * len(new) * cap < len(new) * len(copies)


def test_score_agrees_with_the_lists() -> None:
    """score() (used by bench/related.py to check the candidate cut-offs) is the list score."""
    index = built(corpus_docs().values())
    first = index.related("post:2")[0]
    assert index.score("post:2", first.key) == first.score
    assert index.score("post:2", "post:2") == 1.0
    assert index.score(first.key, "post:2") == first.score  # symmetric
    with pytest.raises(KeyError):
        index.score("post:2", "post:999")


@pytest.mark.parametrize("config", CONFIGS)
def test_a_rebuild_scores_each_pair_once_and_gets_every_list_a_lone_owner_gets(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild scores a pair in the earlier owner's block and offers it to the later one:
    every list must still equal the one `_compute` (the upsert path) finds for that owner
    alone. Small blocks, so offers cross blocks; copies tie on score, and dates that disagree
    with key order make the (score, date, key) order do the work; external items are
    candidates that own no list."""
    monkeypatch.setattr(engine, "BLOCK", 7)
    rng = random.Random(9)
    docs = [
        dataclasses.replace(doc, published_at=doc.published_at + timedelta(rng.randrange(3)))
        for doc in copies_of_the_corpus(3)
    ]
    docs += [dataclasses.replace(doc, key=f"ext:{n}") for n, doc in enumerate(docs[::4])]
    index = built(docs, **config)
    lists = index.lists()
    assert len(lists) == 3 * len(corpus_docs()) and "ext:0" not in lists
    assert sum(map(len, lists.values())) > len(lists)  # lists are filled, not all empty
    assert lists == {key: index._compute(key) for key in lists}


@pytest.mark.parametrize("config", CONFIGS)
def test_rebuild_and_restore_post_documents_where_an_upsert_would(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild and a restore decide every document's postings at once (`_all_offers`,
    `_post_all`); an upsert decides one document's (`_posting_offers`, `_kept`). Both must
    give the same postings, or incremental lists would drift from a rebuild's. Copies tie on
    every weight, so cutoffs are decided by keys. Small blocks of documents, so they cross."""
    monkeypatch.setattr(engine, "OFFER_BLOCK", 7)
    docs = copies_of_the_corpus(4)
    docs += [dataclasses.replace(doc, key=f"ext:{n}") for n, doc in enumerate(docs[::5])]
    index = built(docs, **config)
    restored = RelatedIndex.restore(
        index.idf_snapshot(), index.terms(), index.stored_docs(), **config
    )
    assert bool(index.idf_snapshot().cutoffs) == (config == TIGHT)  # tight caps bite
    for source in (index, restored):
        for key in sorted(source._slot):
            slot = source._slot[key]
            lo, hi = source._vec_ptr.view[slot], source._vec_ptr.view[slot + 1]
            offers = source._posting_offers(source._vec_ids.view[lo:hi], source._vec_w.view[lo:hi])
            one_by_one = source._kept(key, *offers)
            assert sorted(source._posted[slot].tolist()) == sorted(one_by_one.tolist()), key
    assert sum(map(len, index._posted)) > len(docs)
    assert restored.lists() == index.lists()
