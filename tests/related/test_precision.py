"""Precision@5 against the corpus's topic labels, beside a character-bigram baseline.

Precision@5 here is strict: for every post that has a topic, the share of its 5 slots that
hold a post of the same topic. An empty slot (a list shorter than 5) counts as wrong, and so
does an off-topic distractor. The 3 distractors ("杂谈") are not scored themselves: they have
no topic to match; test_engine checks that their lists are empty. Run with -s to see figures.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

from feedsvc.related.engine import RelatedIndex, cosine

from .corpus import BOILERPLATE, OFF_TOPIC, load_corpus, topics

K = 5
CONFUSABLE_PAIRS = [
    ("国债", "债券基金"),
    ("养老保险", "年金险"),
    ("房贷利率", "存款利率"),
    ("指数基金定投", "ETF"),
    ("信用卡", "消费贷"),
]


def precision_at_k(lists: Mapping[str, Sequence[str]]) -> float:
    labels = topics()
    scored = [key for key, topic in labels.items() if topic != OFF_TOPIC]
    hits = sum(labels[other] == labels[key] for key in scored for other in lists[key][:K])
    return hits / (K * len(scored))


def per_topic(lists: Mapping[str, Sequence[str]]) -> dict[str, float]:
    labels = topics()
    result = {}
    for topic in sorted(set(labels.values()) - {OFF_TOPIC}):
        keys = [key for key, label in labels.items() if label == topic]
        hits = sum(labels[other] == topic for key in keys for other in lists[key][:K])
        result[topic] = hits / (K * len(keys))
    return result


def engine_lists(**config: float) -> dict[str, list[str]]:
    index = RelatedIndex(**config)  # type: ignore[arg-type]
    index.rebuild(post.doc for post in load_corpus())
    return {key: [item.key for item in items] for key, items in index.lists().items()}


def bigram_baseline_lists() -> dict[str, list[str]]:
    """Plain character-bigram TF-IDF cosine: no segmenter, stop words, field weights or
    threshold; title, tags and body as one text; every list filled to 5."""
    docs = {}
    for post in load_corpus():
        doc = post.doc
        text = unicodedata.normalize("NFKC", f"{doc.title} {' '.join(doc.tags)} {doc.body}")
        runs = re.findall(r"\w+", text.lower())
        docs[doc.key] = Counter(run[i : i + 2] for run in runs for i in range(len(run) - 1))
    df = Counter(gram for grams in docs.values() for gram in grams)
    n = len(docs)
    vectors = {}
    for key, grams in docs.items():
        # scikit-learn's default smooth IDF.
        weights = {g: c * (math.log((1 + n) / (1 + df[g])) + 1) for g, c in grams.items()}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        vectors[key] = {g: w / norm for g, w in weights.items()}

    def top(key: str) -> list[str]:
        others = (k for k in vectors if k != key)
        return sorted(others, key=lambda k: (-cosine(vectors[key], vectors[k]), k))[:K]

    return {key: top(key) for key in vectors}


def test_corpus_is_large_varied_and_shares_the_boilerplate() -> None:
    posts = load_corpus()
    assert len({post.doc.key for post in posts}) == len(posts)
    sizes = Counter(post.topic for post in posts if post.topic != OFF_TOPIC)
    assert sum(sizes.values()) >= 48 and len(sizes) >= 8 and min(sizes.values()) >= 6
    assert {topic for pair in CONFUSABLE_PAIRS for topic in pair} <= set(sizes)
    for post in posts:
        sentences = [s for s in re.split("[。！？]", post.doc.body) if s.strip()]
        assert 3 <= len(sentences) <= 6, post.doc.key
        assert post.doc.body.count(BOILERPLATE) == 1, post.doc.key
    text = "".join(post.doc.title + post.doc.body for post in posts)
    assert all(term in text for term in ("ETF", "LPR", "REITs", "2021", "AI"))


def test_precision_at_5_is_high_and_beats_a_character_bigram_baseline() -> None:
    ours = engine_lists()
    baseline = bigram_baseline_lists()
    # Same scoring without the candidate index: what bounding the work costs here.
    exhaustive = engine_lists(candidate_terms=10**6, posting_cap=10**6, max_df_ratio=1.0)
    ours_p, baseline_p = precision_at_k(ours), precision_at_k(baseline)

    print(f"\nstrict precision@{K} over {len(topics()) - 3} topical posts")
    print(f"  ours (defaults)                 {ours_p:.4f}")
    print(f"  ours, every pair compared       {precision_at_k(exhaustive):.4f}")
    print(f"  character-bigram TF-IDF cosine  {baseline_p:.4f}")
    for topic, value in per_topic(ours).items():
        print(f"  ours {value:.2f}  baseline {per_topic(baseline)[topic]:.2f}  {topic}")

    assert ours_p >= 0.85
    assert ours_p >= baseline_p
