"""The hand-written test corpus (corpus.toml) as RelatedDocs with their topic labels."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from feedsvc.related.engine import RelatedDoc

CORPUS_PATH = Path(__file__).with_name("corpus.toml")
BOILERPLATE = "理财有风险，投资需谨慎。"
# Posts that belong to no topic and to nothing else in the corpus: distractors.
OFF_TOPIC = "杂谈"


@dataclass(frozen=True)
class LabelledPost:
    doc: RelatedDoc
    topic: str


@functools.cache
def load_corpus() -> tuple[LabelledPost, ...]:
    with CORPUS_PATH.open("rb") as fh:
        raw = tomllib.load(fh)
    return tuple(
        LabelledPost(
            doc=RelatedDoc(
                key=f"post:{item['id']}",
                title=item["title"],
                tags=tuple(item["tags"]),
                body=item["body"],
                published_at=item["published_at"],
            ),
            topic=item["topic"],
        )
        for item in raw["post"]
    )


def topics() -> dict[str, str]:
    """Post key -> topic label."""
    return {post.doc.key: post.topic for post in load_corpus()}
